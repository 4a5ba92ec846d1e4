package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func block(n int, fill byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = fill
	}
	return b
}

func TestGetDeduplicatesConcurrentFetches(t *testing.T) {
	c := New(1<<20, time.Minute)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return block(100, 7), nil
	}
	k := Key{"b", "o", "e1", 0}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := c.Get(context.Background(), k, fetch)
			if err != nil || len(d) != 100 || d[0] != 7 {
				t.Errorf("Get = %d bytes, %v", len(d), err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("fetch called %d times, want 1", n)
	}
	if _, err := c.Get(context.Background(), k, func(context.Context) ([]byte, error) {
		return nil, errors.New("must be a hit")
	}); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Hits != 1 || s.Bytes != 100 {
		t.Fatalf("stats %+v", s)
	}
}

func TestByteBoundAndETagKeys(t *testing.T) {
	c := New(1000, time.Minute)
	for i := int64(0); i < 10; i++ {
		i := i
		if _, err := c.Get(context.Background(), Key{"b", "o", "e1", i}, func(context.Context) ([]byte, error) {
			return block(300, byte(i)), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.Bytes > 1000 || s.Bytes != 900 || s.Evictions != 7 {
		t.Fatalf("stats %+v: want 3 blocks of 300 kept", s)
	}
	if c.Contains(Key{"b", "o", "e1", 0}) || !c.Contains(Key{"b", "o", "e1", 9}) {
		t.Fatal("LRU order wrong")
	}
	if c.Contains(Key{"b", "o", "e2", 9}) {
		t.Fatal("a new ETag must not hit the old version's block")
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := New(1000, time.Minute)
	k := Key{"b", "o", "e", 0}
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), k, func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	d, err := c.Get(context.Background(), k, func(context.Context) ([]byte, error) { return block(5, 1), nil })
	if err != nil || len(d) != 5 {
		t.Fatalf("retry after error: %v", err)
	}
}

func TestGetHonoursCallerContext(t *testing.T) {
	c := New(1000, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	defer close(stop)
	go cancel()
	_, err := c.Get(ctx, Key{"b", "o", "e", 0}, func(context.Context) ([]byte, error) { <-stop; return nil, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestPrefetchBudget(t *testing.T) {
	c := New(1000, time.Minute) // prefetch budget 500
	release := make(chan struct{})
	fetch := func(context.Context) ([]byte, error) { <-release; return block(200, 1), nil }
	started := 0
	for i := int64(0); i < 5; i++ {
		if c.Prefetch(Key{"b", "o", "e", i}, 200, fetch) {
			started++
		}
	}
	if started != 2 {
		t.Fatalf("started %d prefetches, want 2 within a 500-byte budget", started)
	}
	if c.Prefetch(Key{"b", "o", "e", 0}, 200, fetch) {
		t.Fatal("prefetch of an in-flight block started again")
	}
	close(release)
	d, err := c.Get(context.Background(), Key{"b", "o", "e", 1}, fetch)
	if err != nil || len(d) != 200 {
		t.Fatalf("Get after prefetch: %v", err)
	}
	deadline := time.Now().Add(time.Second)
	for !c.Prefetch(Key{"b", "o", "e", 7}, 200, fetch) {
		if time.Now().After(deadline) {
			t.Fatal("budget never returned after prefetches finished")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReadahead(t *testing.T) {
	const bs = 100
	type step struct {
		off, n   int64
		seq      bool
		from, to int64
	}
	cases := []struct {
		name  string
		max   int64
		steps []step
	}{
		{"sequential grows per block and is capped", 400, []step{
			{0, 50, true, 50, 150},
			{50, 50, true, 100, 300}, // crossed into block 1: window 200
			{100, 50, true, 150, 350},
			{150, 50, true, 200, 600}, // block 2: window 400 (max)
			{200, 100, true, 300, 700},
			{300, 100, true, 400, 800},
		}},
		{"seek resets", 400, []step{
			{0, 100, true, 100, 200},
			{500, 10, false, 0, 0},
			{510, 10, true, 520, 620},
		}},
		{"first read not at zero is random", 400, []step{
			{700, 10, false, 0, 0},
		}},
		{"clipped to size", 400, []step{
			{0, 100, true, 100, 200},
			{100, 100, true, 200, 400},
			{900, 100, false, 0, 0},
		}},
		{"no readahead", 0, []step{
			{0, 100, true, 100, 100},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Readahead{BlockSize: bs, Max: c.max, Slack: 20}
			for i, s := range c.steps {
				d := r.Observe(s.off, s.n, 1000)
				want := Decision{Sequential: s.seq, From: s.from, To: s.to}
				if d != want {
					t.Fatalf("step %d: got %+v, want %+v", i, d, want)
				}
			}
		})
	}
}
