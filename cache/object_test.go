package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

type fakeObject struct {
	data  []byte
	mu    sync.Mutex
	reads [][2]int64 // offset, length of every ranged read
	short bool       // answer one byte less than asked
}

func (f *fakeObject) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	f.mu.Lock()
	f.reads = append(f.reads, [2]int64{off, int64(len(p))})
	f.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, nil
	}
	n := copy(p, f.data[off:])
	if f.short && n > 0 {
		n--
	}
	return n, nil
}

func (f *fakeObject) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reads)
}

type sink struct {
	mu  sync.Mutex
	got map[int64][]byte
}

func (s *sink) Has(b int64) bool { s.mu.Lock(); defer s.mu.Unlock(); _, ok := s.got[b]; return ok }
func (s *sink) Add(b int64, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[b] = append([]byte(nil), p...)
}
func (s *sink) Missing() []int64 { return nil }

// ReadObject: a random read fetches only its bytes, a sequential one goes
// through blocks (one fetch per block, then hits) and feeds the sink,
// reads across blocks stitch, and a block that comes back short is an
// error, never a short file.
func TestReadObject(t *testing.T) {
	ctx := context.Background()
	const bs = 100
	data := make([]byte, 350)
	for i := range data {
		data[i] = byte(i)
	}
	f := &fakeObject{data: data}
	b := New(10*bs, bs, time.Minute)
	if b.BlockSize() != bs {
		t.Fatalf("block size %d", b.BlockSize())
	}
	o := Object{Bucket: "b", Key: "k", ETag: "e", Size: int64(len(data)), ReadAt: f.readAt}
	read := func(d Decision, s Sink, off, n int64) []byte {
		t.Helper()
		r, err := b.ReadObject(ctx, Read{Object: o, Decision: d, Sink: s, Dest: make([]byte, n), Off: off})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		return append([]byte(nil), r.Data...)
	}

	if got := read(Decision{}, nil, 10, 20); !bytes.Equal(got, data[10:30]) || f.count() != 1 || f.reads[0] != [2]int64{10, 20} {
		t.Fatalf("random read: %v, reads %v", got, f.reads)
	}
	s := &sink{got: map[int64][]byte{}}
	seq := Decision{Sequential: true, From: 0, To: 200}
	if got := read(seq, s, 0, 50); !bytes.Equal(got, data[:50]) {
		t.Fatalf("sequential read: %v", got)
	}
	if got := read(seq, s, 50, 100); !bytes.Equal(got, data[50:150]) {
		t.Fatalf("read across blocks: %v", got)
	}
	if n := f.count(); n != 3 {
		t.Errorf("%d store reads for blocks 0 and 1 (and the random read), want 3: %v", n, f.reads)
	}
	if !s.Has(0) || !s.Has(1) || !bytes.Equal(s.got[1], data[100:200]) {
		t.Errorf("the sink lacks blocks: %v", s.got)
	}
	// A random read whose block is cached comes from memory.
	if got := read(Decision{}, nil, 120, 10); !bytes.Equal(got, data[120:130]) || f.count() != 3 {
		t.Errorf("a cached random read: %v, %d reads", got, f.count())
	}
	// The last block is short by nature; the end of the object reads empty.
	if got := read(seq, nil, 300, 100); !bytes.Equal(got, data[300:]) {
		t.Errorf("last block: %v", got)
	}
	if got := read(seq, nil, 350, 10); len(got) != 0 {
		t.Errorf("past the end: %v", got)
	}
	short := &fakeObject{data: data, short: true}
	o2 := o
	o2.ETag, o2.ReadAt = "e2", short.readAt
	if _, err := b.ReadObject(ctx, Read{Object: o2, Decision: seq, Dest: make([]byte, 10)}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a short block: %v, want ErrUnexpectedEOF", err)
	}
	ra := b.Readahead(400, nil)
	if ra.BlockSize != bs || ra.Max != 400 || ra.Slack != bs {
		t.Errorf("readahead %+v", ra)
	}
}
