package upload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"kfs/fs/store"
)

// stream is the fast path of a file written front to back from empty (the
// cp case): its parts live in pooled memory buffers, charged to the
// pipeline's in-flight budget, and are sent straight from memory. Sent
// parts stay in memory while the budget allows (the first part longest,
// where writers come back to patch headers). The first access that is not
// an append at the end (a seek back, a read of bytes no longer held, a
// truncate) moves the content to the staging file: held buffers are
// written there; parts sent and no longer held are dropped and, if ever
// needed, come back by completing the upload so far (see package doc).
type stream struct {
	bufs    map[int]*membuf // part number -> its buffer
	evicted map[int]bool    // sent parts whose buffer was given back
	next    int             // the first part not handed to the upload yet
}

type membuf struct {
	b     []byte
	units int // budget units held
}

const smallBuf = 1 << 20 // a part buffer grows to this size without budget

func newStream() *stream { return &stream{bufs: map[int]*membuf{}, evicted: map[int]bool{}, next: 1} }

// appendStreamLocked adds data at the end.
func (f *File) appendStreamLocked(ctx context.Context, data []byte) error {
	l := f.layout()
	for len(data) > 0 {
		n := l.part(f.size)
		lo, psize := l.start(n), l.size(n)
		mb := f.st.bufs[n]
		if mb == nil {
			mb = &membuf{b: make([]byte, 0, min(64<<10, psize))}
			f.st.bufs[n] = mb
		}
		k := min(int64(len(data)), lo+psize-f.size)
		if err := f.growBufLocked(ctx, n, mb, int64(len(mb.b))+k, psize); err != nil {
			return err
		}
		mb.b = append(mb.b, data[:k]...)
		f.bump(f.size, f.size+k)
		f.size += k
		data = data[k:]
	}
	f.dirty, f.written, f.kept = true, time.Now(), nil
	if f.size > 2*l.base || f.mp != nil {
		return f.sendFullStreamLocked(ctx)
	}
	return nil
}

// growBufLocked makes room for need bytes in part n's buffer: doubling up
// to 1 MiB without budget (small files need no more), then the whole part,
// charged to the budget (evicting sent parts of this file if needed).
func (f *File) growBufLocked(ctx context.Context, n int, mb *membuf, need, psize int64) error {
	if need <= int64(cap(mb.b)) {
		return nil
	}
	size := int64(cap(mb.b))
	for size < need && size < smallBuf {
		size *= 2
	}
	if size < need || size > smallBuf {
		units, err := f.acquireLocked(ctx, psize)
		if err != nil {
			return err
		}
		mb.units += units
		size = psize
	}
	nb := f.p.getBuf(size)
	mb.b = append(nb[:0], mb.b...)
	return nil
}

// acquireLocked takes budget for one part, giving back this file's sent
// buffers (the oldest first, the first part last) when the budget is spent.
func (f *File) acquireLocked(ctx context.Context, bytes int64) (int, error) {
	for {
		if units, ok := f.p.inflight.tryAcquire(bytes); ok {
			return units, nil
		}
		if f.evictOneLocked(false) {
			continue
		}
		if f.mp != nil && f.mp.busy() {
			f.mp.waitOne(ctx) // a part on its way becomes evictable once stored
			continue
		}
		if f.evictOneLocked(true) {
			continue
		}
		if resent, err := f.resendFailedLocked(ctx); err != nil {
			return 0, err // the store keeps failing: the write fails, not waits forever
		} else if resent {
			continue
		}
		if f.mp == nil && f.holdsFullPartLocked() {
			// Full parts kept for one PUT hold budget others may wait for,
			// while this writer would wait for theirs: writers each holding
			// a part and waiting for one more deadlock. Send them instead
			// (a multipart upload), so they can be given back.
			if err := f.sendFullStreamLocked(ctx); err != nil {
				return 0, err
			}
			continue
		}
		return f.p.inflight.acquire(ctx, bytes) // wait for other files
	}
}

// holdsFullPartLocked says whether the next part to send is full and
// charged to the budget.
func (f *File) holdsFullPartLocked() bool {
	mb, ok := f.st.bufs[f.st.next]
	return ok && f.key != "" && mb.units > 0 && int64(len(mb.b)) == f.layout().size(f.st.next)
}

// resendFailedLocked sends again, in the foreground, the full parts whose
// background send failed (their buffers hold budget the writer needs). It
// reports whether it sent any; the error is the store's when one fails
// again.
func (f *File) resendFailedLocked(ctx context.Context) (bool, error) {
	if f.mp == nil || f.key == "" {
		return false, nil
	}
	l, m, resent := f.layout(), f.mp, false
	for n := 1; n < f.st.next; n++ {
		mb, ok := f.st.bufs[n]
		if !ok {
			continue // given back: sent
		}
		size := int64(len(mb.b))
		if size != l.size(n) || m.sentOrSending(n, f.gen(n), size) {
			continue
		}
		p, err := f.p.cfg.Store.PutPart(ctx, store.PartRequest{Upload: m.up, Number: n, Body: bytes.NewReader(mb.b), Size: size})
		if err != nil {
			return resent, fmt.Errorf("%s/%s: part %d: %w", f.bucket, f.key, n, err)
		}
		m.record(n, f.gen(n), size, p)
		resent = true
	}
	return resent, nil
}

// evictOneLocked gives back the buffer of the oldest part sent in its
// current state (part 1 only with first).
func (f *File) evictOneLocked(first bool) bool {
	if f.mp == nil {
		return false
	}
	l := f.layout()
	best := 0
	for n, mb := range f.st.bufs {
		if (n == 1) != first || mb.units == 0 || !f.mp.sentAt(n, f.gen(n), int64(len(mb.b))) || int64(len(mb.b)) != l.size(n) {
			continue
		}
		if best == 0 || n < best {
			best = n
		}
	}
	if best == 0 {
		return false
	}
	f.releaseBuf(best)
	f.st.evicted[best] = true
	return true
}

func (f *File) releaseBuf(n int) {
	mb := f.st.bufs[n]
	delete(f.st.bufs, n)
	f.p.putBuf(mb.b)
	f.p.inflight.release(mb.units)
}

// sendFullStreamLocked sends every full part not sent yet, from memory.
func (f *File) sendFullStreamLocked(ctx context.Context) error {
	if f.key == "" {
		return nil // anonymous: nothing will be stored
	}
	l := f.layout()
	for ; ; f.st.next++ {
		n := f.st.next
		mb, ok := f.st.bufs[n]
		if !ok || int64(len(mb.b)) != l.size(n) {
			return nil // the part still filling
		}
		if err := f.sendMemLocked(ctx, n, mb); err != nil {
			return err
		}
	}
}

// sendMemLocked sends part n from its buffer unless it is stored or on its
// way in its current state.
func (f *File) sendMemLocked(ctx context.Context, n int, mb *membuf) error {
	if f.mp == nil {
		if err := f.startLocked(ctx, f.opts()); err != nil {
			return err
		}
	}
	m, size := f.mp, int64(len(mb.b))
	if m.sentOrSending(n, f.gen(n), size) {
		return nil
	}
	data := mb.b
	return m.goPartHeld(ctx, n, f.gen(n), size, func(ctx context.Context) (store.Part, error) {
		return f.p.cfg.Store.PutPart(ctx, store.PartRequest{Upload: m.up, Number: n, Body: bytes.NewReader(data), Size: size})
	})
}

// streamReadLocked serves a read from the held buffers; ok is false when
// some byte of it is not held.
func (f *File) streamReadLocked(p []byte, off int64) (int, bool) {
	l := f.layout()
	end := min(off+int64(len(p)), f.size)
	for o := off; o < end; {
		n := l.part(o)
		mb, held := f.st.bufs[n]
		if !held {
			return 0, false
		}
		lo := l.start(n)
		k := copy(p[o-off:end-off], mb.b[o-lo:])
		o += int64(k)
	}
	return int(end - off), true
}

// toStagedLocked moves a streaming content to the staging file.
func (f *File) toStagedLocked() error {
	if f.st == nil {
		return nil
	}
	if err := f.stagingLocked(); err != nil {
		return err
	}
	if f.mp != nil {
		f.mp.wg.Wait() // buffers are read by the parts on their way
	}
	l := f.layout()
	// In part order: when the disk budget runs short, the parts already
	// staged and sent can be dropped, which must precede those kept.
	for _, n := range slices.Sorted(maps.Keys(f.st.bufs)) {
		mb := f.st.bufs[n]
		lo := l.start(n)
		if len(mb.b) > 0 {
			if err := f.holdLocked(lo, lo+int64(len(mb.b))); err != nil {
				return err
			}
			if _, err := f.f.WriteAt(mb.b, lo); err != nil {
				return err
			}
			f.mark(lo, lo+int64(len(mb.b)), present|changed)
		}
	}
	for n := range f.st.evicted {
		lo := l.start(n)
		f.mark(lo, min(lo+l.size(n), f.size), dropped)
	}
	for n := range f.st.bufs {
		f.releaseBuf(n)
	}
	f.st = nil
	return nil
}

// streamBody is the content of a streaming file for one PutObject,
// seekable so a failed request can be sent again.
func (f *File) streamBody() io.ReadSeeker {
	l := f.layout()
	var bufs [][]byte
	for n := 1; n <= l.count(f.size); n++ {
		if mb, ok := f.st.bufs[n]; ok {
			bufs = append(bufs, mb.b)
		}
	}
	return &joined{bufs: bufs, size: f.size}
}

// joined reads buffers one after the other.
type joined struct {
	bufs [][]byte
	size int64
	off  int64
}

func (j *joined) Read(p []byte) (int, error) {
	if j.off >= j.size {
		return 0, io.EOF
	}
	start, n := int64(0), 0
	for _, b := range j.bufs {
		end := start + int64(len(b))
		if j.off < end && n < len(p) {
			k := copy(p[n:], b[j.off-start:])
			n += k
			j.off += int64(k)
		}
		start = end
	}
	return n, nil
}

func (j *joined) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += j.off
	case io.SeekEnd:
		off += j.size
	}
	if off < 0 {
		return 0, fmt.Errorf("seek to %d: negative offset", off)
	}
	j.off = off
	return off, nil
}

// dropStreamLocked gives every buffer back.
func (f *File) dropStreamLocked() {
	if f.st == nil {
		return
	}
	if f.mp != nil {
		f.mp.wg.Wait()
	}
	for n := range f.st.bufs {
		f.releaseBuf(n)
	}
	f.st = nil
}
