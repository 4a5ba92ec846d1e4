package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func filler(fill byte) FetchFunc {
	return func(ctx context.Context, buf []byte) (int, error) {
		for i := range buf {
			buf[i] = fill
		}
		return len(buf), nil
	}
}

func mustGet(t *testing.T, c *Blocks, k Key, size int, fetch FetchFunc) []byte {
	t.Helper()
	blk, err := c.Get(context.Background(), k, size, fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer blk.Release()
	return append([]byte(nil), blk.Bytes()...)
}

func TestGetDeduplicatesConcurrentFetches(t *testing.T) {
	c := New(1<<20, 1024, time.Minute)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context, buf []byte) (int, error) {
		calls.Add(1)
		<-release
		return filler(7)(ctx, buf)
	}
	k := Key{"b", "o", "e1", 0}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			blk, err := c.Get(context.Background(), k, 100, fetch)
			if err != nil {
				t.Error(err)
				return
			}
			if d := blk.Bytes(); len(d) != 100 || d[0] != 7 {
				t.Errorf("Get = %d bytes", len(d))
			}
			blk.Release()
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("fetch called %d times, want 1", n)
	}
	mustGet(t, c, k, 100, func(context.Context, []byte) (int, error) { return 0, errors.New("must be a hit") })
	if s := c.Stats(); s.Hits != 1 || s.Bytes != 100 {
		t.Fatalf("stats %+v", s)
	}
}

func TestByteBoundAndETagKeys(t *testing.T) {
	c := New(1000, 300, time.Minute)
	for i := int64(0); i < 10; i++ {
		if d := mustGet(t, c, Key{"b", "o", "e1", i}, 300, filler(byte(i))); d[0] != byte(i) {
			t.Fatalf("block %d has %d", i, d[0])
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
	c := New(1000, 100, time.Minute)
	k := Key{"b", "o", "e", 0}
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), k, 5, func(context.Context, []byte) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if d := mustGet(t, c, k, 5, filler(1)); len(d) != 5 {
		t.Fatalf("retry after error: %d bytes", len(d))
	}
}

func TestGetHonoursCallerContext(t *testing.T) {
	c := New(1000, 100, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	defer close(stop)
	go cancel()
	_, err := c.Get(ctx, Key{"b", "o", "e", 0}, 10, func(ctx context.Context, buf []byte) (int, error) { <-stop; return 0, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestPrefetchBudget(t *testing.T) {
	c := New(1000, 200, time.Minute) // prefetch budget 500
	release := make(chan struct{})
	fetch := func(ctx context.Context, buf []byte) (int, error) { <-release; return filler(1)(ctx, buf) }
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
	if d := mustGet(t, c, Key{"b", "o", "e", 1}, 200, fetch); len(d) != 200 {
		t.Fatalf("Get after prefetch: %d bytes", len(d))
	}
	deadline := time.Now().Add(time.Second)
	for !c.Prefetch(Key{"b", "o", "e", 7}, 200, fetch) {
		if time.Now().After(deadline) {
			t.Fatal("budget never returned after prefetches finished")
		}
		time.Sleep(time.Millisecond)
	}
}

// A buffer is recycled only when the cache and every reader let go of it:
// bytes a reader holds never change under it.
func TestBlocksAreNotRecycledWhileReferenced(t *testing.T) {
	c := New(200, 100, time.Minute) // room for two blocks
	held, err := c.Get(context.Background(), Key{"b", "o", "e", 0}, 100, filler(0xAA))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i < 50; i++ { // evict block 0 and churn the pool
		mustGet(t, c, Key{"b", "o", "e", i}, 100, filler(byte(i)))
	}
	for _, x := range held.Bytes() {
		if x != 0xAA {
			t.Fatal("a held block was overwritten after eviction")
		}
	}
	held.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("a second Release did not panic")
		}
	}()
	held.Release()
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

// Sequential readers of one budget each get their share of it: a fourth
// reader shrinks the others' windows, one that seeks or closes gives its
// share back.
func TestReadaheadSharesTheBudget(t *testing.T) {
	const bs, size = 100, 1 << 20
	s := &Streams{Budget: 800}
	readers := make([]*Readahead, 4)
	for i := range readers {
		readers[i] = &Readahead{BlockSize: bs, Max: 800, Slack: 20, Shared: s}
	}
	window := func(r *Readahead, off int64) int64 {
		d := r.Observe(off, bs, size)
		return d.To - d.From
	}
	var off int64
	for ; off < 1000; off += bs { // one reader alone grows to the whole budget
		window(readers[0], off)
	}
	if w := window(readers[0], off); w != 800 {
		t.Fatalf("a lone reader's window: %d, want 800", w)
	}
	for _, r := range readers[1:] {
		window(r, 0)
	}
	if s.Active() != 4 {
		t.Fatalf("%d readers streaming, want 4", s.Active())
	}
	off += bs
	if w := window(readers[0], off); w != 200 {
		t.Fatalf("with 4 readers a window of %d, want 200", w)
	}
	readers[1].Observe(5000, 10, size) // a seek: no longer streaming
	readers[2].Close()
	readers[3].Close()
	readers[3].Close() // twice: counted once
	if s.Active() != 1 {
		t.Fatalf("%d readers streaming, want 1", s.Active())
	}
	for i := 0; i < 5; i++ {
		off += bs
		window(readers[0], off)
	}
	if w := window(readers[0], off+bs); w != 800 {
		t.Fatalf("alone again: a window of %d, want 800", w)
	}
	tiny := &Streams{Budget: 10}
	r := &Readahead{BlockSize: bs, Max: 800, Slack: 20, Shared: tiny}
	if w := window(r, 0); w != bs {
		t.Fatalf("a share below one block: window %d, want one block", w)
	}
}
