package upload

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"kfs/fs/store"
)

// multipart is one upload whose parts are sent in the background, at most
// Parallel at a time.
type multipart struct {
	p    *Pipeline
	up   store.UploadRef
	opts store.PutOptions // what the upload was started with

	sem chan struct{}  // bounds the parts in flight
	wg  sync.WaitGroup // parts in flight

	progress chan struct{} // a part ended (signalled without blocking)

	mu      sync.Mutex       // protects the fields below
	sent    map[int]sentPart // GUARDED_BY(mu): parts stored, by number
	pending map[int]uint32   // GUARDED_BY(mu): generation of each part being sent
}

// busy says whether parts are on their way.
func (m *multipart) busy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending) > 0
}

// waitOne waits until some part ends (or ctx does).
func (m *multipart) waitOne(ctx context.Context) {
	select {
	case <-m.progress:
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

type sentPart struct {
	part store.Part
	gen  uint32 // the part's generation when it was read for sending
	size int64
}

func (f *File) startLocked(ctx context.Context, opts store.PutOptions) error {
	up, err := f.p.cfg.Store.NewUpload(ctx, store.ObjectRef{Bucket: f.bucket, Key: f.key}, opts)
	if err != nil {
		return err
	}
	if j := f.p.cfg.Journal; j != nil {
		j.Record(up, true)
	}
	f.mp = &multipart{p: f.p, up: up, opts: opts,
		sem: make(chan struct{}, f.p.cfg.Parallel), sent: map[int]sentPart{}, pending: map[int]uint32{},
		progress: make(chan struct{}, 1)}
	return nil
}

func (m *multipart) sentAt(num int, gen uint32, size int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sent[num]
	return ok && s.gen == gen && s.size == size
}

// sentOrSending says whether part num in generation gen is stored or on
// its way.
func (m *multipart) sentOrSending(num int, gen uint32, size int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, ok := m.pending[num]; ok && g == gen {
		return true
	}
	s, ok := m.sent[num]
	return ok && s.gen == gen && s.size == size
}

func (m *multipart) sentCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

// goPart runs send in the background as part num (generation gen, size
// bytes), holding a slot of the file and of the pipeline's bytes in
// flight. A failed send is only forgotten: the commit sends the part again.
func (m *multipart) goPart(ctx context.Context, num int, gen uint32, size int64, send func(context.Context) (store.Part, error)) error {
	units, err := m.p.inflight.acquire(ctx, size)
	if err != nil {
		return err
	}
	if err := m.run(ctx, num, gen, size, units, send); err != nil {
		m.p.inflight.release(units)
		return err
	}
	return nil
}

// goPartHeld is goPart for a part whose buffer already holds its budget.
func (m *multipart) goPartHeld(ctx context.Context, num int, gen uint32, size int64, send func(context.Context) (store.Part, error)) error {
	return m.run(ctx, num, gen, size, 0, send)
}

func (m *multipart) run(ctx context.Context, num int, gen uint32, size int64, units int, send func(context.Context) (store.Part, error)) error {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.mu.Lock()
	m.pending[num] = gen
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			if m.pending[num] == gen {
				delete(m.pending, num)
			}
			m.mu.Unlock()
			select {
			case m.progress <- struct{}{}:
			default:
			}
		}()
		defer func() { <-m.sem }()
		defer m.p.inflight.release(units)
		ctx, cancel := context.WithTimeout(context.Background(), m.p.cfg.Timeout)
		defer cancel()
		p, err := send(ctx)
		if err != nil {
			m.p.cfg.Log.Debug("background part upload failed; the commit sends it again", "bucket", m.up.Bucket, "key", m.up.Key, "part", num, "err", err)
			return
		}
		m.record(num, gen, size, p)
	}()
	return nil
}

// record notes part num as stored in generation gen.
func (m *multipart) record(num int, gen uint32, size int64, p store.Part) {
	m.mu.Lock()
	m.sent[num] = sentPart{part: p, gen: gen, size: size}
	m.mu.Unlock()
}

// sendPassedLocked sends, in the background, the parts a write that ended
// at end has just completed: parts the writer has gone past, fully held
// here, changed, not sent yet in their current state, and not the first
// part of a file that may yet fit one PutObject.
func (f *File) sendPassedLocked(ctx context.Context, off, end int64) error {
	if f.key == "" {
		return nil // anonymous: nothing will be stored
	}
	l := f.layout()
	if end <= 2*l.base && f.mp == nil {
		return nil
	}
	first := l.part(off)
	if f.mp == nil {
		first = 1 // parts passed before the file outgrew one PutObject
	}
	for n := first; ; n++ {
		lo := l.start(n)
		hi := lo + l.size(n)
		if hi > end || hi > f.size {
			return nil
		}
		if !f.heldWhole(lo, hi) || !f.changedIn(lo, hi) || f.mp != nil && f.mp.sentOrSending(n, f.gen(n), hi-lo) {
			continue
		}
		if f.mp == nil {
			if err := f.startLocked(ctx, f.opts()); err != nil {
				return err
			}
		}
		if err := f.goSendLocked(ctx, n, lo, hi); err != nil {
			return err
		}
	}
}

func (f *File) goSendLocked(ctx context.Context, n int, lo, hi int64) error {
	m, sf := f.mp, f.f
	return m.goPart(ctx, n, f.gen(n), hi-lo, func(ctx context.Context) (store.Part, error) {
		return f.p.cfg.Store.PutPart(ctx, store.PartRequest{Upload: m.up, Number: n, Body: io.NewSectionReader(sf, lo, hi-lo), Size: hi - lo})
	})
}

func (f *File) heldWhole(lo, hi int64) bool {
	for c := lo / chunk; c*chunk < hi; c++ {
		if c >= int64(len(f.chunks)) || f.chunks[c]&present == 0 {
			return false
		}
	}
	return true
}

func (f *File) changedIn(lo, hi int64) bool {
	for c := lo / chunk; c*chunk < hi && c < int64(len(f.chunks)); c++ {
		if f.chunks[c]&changed != 0 {
			return true
		}
	}
	return false
}

// canCopy says whether [lo, hi) is untouched base bytes (copied server side).
func (f *File) canCopy(lo, hi int64) bool {
	return f.base.Key != "" && hi <= f.baseLimit && !f.changedIn(lo, hi)
}

// abortLocked discards the upload in flight (after its parts end).
func (f *File) abortLocked() {
	m := f.mp
	f.mp = nil
	m.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), f.p.cfg.Timeout)
	defer cancel()
	if err := f.p.cfg.Store.AbortUpload(ctx, m.up); err != nil {
		f.p.cfg.Log.Warn("could not abort an upload (the next mount cleans it up)", "bucket", m.up.Bucket, "key", m.up.Key, "upload", m.up.ID, "err", err)
		return
	}
	if j := f.p.cfg.Journal; j != nil {
		j.Record(m.up, false)
	}
}

// KeepMax is the largest content whose committed bytes a File keeps for
// Kept (small files read back at once: git, make, scripts).
const KeepMax = 1 << 20

// Kept is the bytes of the version the last Commit stored, when the
// content was at most KeepMax bytes and all held here, until the content
// changes (nil else). The caller must not modify them.
func (f *File) Kept() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kept
}

// Commit makes the store hold exactly the content under the file's key,
// with opts (for a single PutObject, or a multipart upload started now).
// It returns the object and the options the object really got: those of
// a multipart upload started earlier in the background, which the caller
// compares with opts to apply what changed since. A failed commit stores
// nothing and keeps the content, so it can be retried. An anonymous
// (detached) file commits nothing.
func (f *File) Commit(ctx context.Context, opts store.PutOptions) (store.ObjectInfo, store.PutOptions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return store.ObjectInfo{}, opts, errClosed
	}
	if f.key == "" {
		return store.ObjectInfo{}, opts, nil
	}
	if !f.dirty {
		return f.base, opts, nil
	}
	if f.lost != nil {
		return store.ObjectInfo{}, opts, f.lost
	}
	l := f.layout()
	if f.mp != nil && f.size <= l.base && !f.hasDroppedLocked() && f.st == nil {
		f.abortLocked() // shrank back to one part
	}
	var info store.ObjectInfo
	applied := opts
	var err error
	switch {
	case f.mp == nil && f.size <= 2*l.base:
		info, err = f.putLocked(ctx, opts)
	case f.st != nil:
		if f.mp != nil {
			applied = f.mp.opts
		}
		info, err = f.multipartStreamLocked(ctx, opts)
	default:
		if f.mp != nil {
			applied = f.mp.opts
		}
		info, err = f.multipartLocked(ctx, opts)
	}
	if err != nil {
		if f.mp != nil {
			if f.hasDroppedLocked() || f.st != nil && len(f.st.evicted) > 0 {
				f.lost = fmt.Errorf("%s/%s: upload failed after parts were dropped from the staging file: %w", f.bucket, f.key, err)
			}
			f.abortLocked()
		}
		return store.ObjectInfo{}, applied, err
	}
	info.Key, info.Size = f.key, f.size
	f.kept = nil
	if f.size > 0 && f.size <= KeepMax {
		buf := make([]byte, f.size)
		if n, ok := f.readHeldLocked(buf, 0); ok && int64(n) == f.size {
			f.kept = buf // exactly the bytes of info's version: f.mu was held throughout
		}
	}
	f.base, f.baseLimit, f.dirty = info, f.size, false
	for c := range f.chunks {
		f.chunks[c] &^= changed | dropped
	}
	f.dropStreamLocked() // later access reads the object (or what is staged)
	return info, applied, nil
}

func (f *File) putLocked(ctx context.Context, opts store.PutOptions) (store.ObjectInfo, error) {
	var body io.ReadSeeker
	if f.st != nil {
		body = f.streamBody()
	} else {
		if err := f.stagingLocked(); err != nil {
			return store.ObjectInfo{}, err
		}
		if err := f.ensureLocked(ctx, 0, f.size); err != nil {
			return store.ObjectInfo{}, err
		}
		body = io.NewSectionReader(f.f, 0, f.size)
	}
	ctx, cancel := context.WithTimeout(ctx, f.p.cfg.Timeout)
	defer cancel()
	return f.p.cfg.Store.Put(ctx, store.PutRequest{Bucket: f.bucket, Key: f.key, Body: body, Size: f.size, Options: opts})
}

// multipartStreamLocked completes a streaming upload: the parts not sent
// yet go from memory, then CompleteMultipartUpload.
func (f *File) multipartStreamLocked(ctx context.Context, opts store.PutOptions) (store.ObjectInfo, error) {
	if f.mp == nil {
		if err := f.startLocked(ctx, opts); err != nil {
			return store.ObjectInfo{}, err
		}
	}
	l := f.layout()
	for n := 1; n <= l.count(f.size); n++ {
		if mb, ok := f.st.bufs[n]; ok {
			if err := f.sendMemLocked(ctx, n, mb); err != nil {
				return store.ObjectInfo{}, err
			}
		}
	}
	return f.completeLocked(ctx)
}

// completeLocked waits for the parts and completes the upload with every
// part of the content, each sent in its current state.
func (f *File) completeLocked(ctx context.Context) (store.ObjectInfo, error) {
	m, l := f.mp, f.layout()
	m.wg.Wait()
	count := l.count(f.size)
	parts := make([]store.Part, 0, count)
	for n := 1; n <= count; n++ {
		lo, hi := l.start(n), min(l.start(n)+l.size(n), f.size)
		m.mu.Lock()
		s, ok := m.sent[n]
		m.mu.Unlock()
		if !ok || s.gen != f.gen(n) || s.size != hi-lo {
			return store.ObjectInfo{}, fmt.Errorf("upload of %s/%s: part %d was not stored: %w", f.bucket, f.key, n, store.ErrUnavailable)
		}
		parts = append(parts, s.part)
	}
	cctx, cancel := context.WithTimeout(ctx, f.p.cfg.Timeout)
	defer cancel()
	info, err := f.p.cfg.Store.CompleteUpload(cctx, m.up, parts)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	f.mp = nil
	if j := f.p.cfg.Journal; j != nil {
		j.Record(m.up, false)
	}
	return info, nil
}

func (f *File) multipartLocked(ctx context.Context, opts store.PutOptions) (store.ObjectInfo, error) {
	l := f.layout()
	count := l.count(f.size)
	// Fetch what must be uploaded first, so the parts read a complete file.
	for n := 1; n <= count; n++ {
		lo, hi := l.start(n), min(l.start(n)+l.size(n), f.size)
		if !f.canCopy(lo, hi) && !(f.mp != nil && f.mp.sentAt(n, f.gen(n), hi-lo)) {
			if err := f.ensureLocked(ctx, lo, hi-lo); err != nil {
				return store.ObjectInfo{}, err
			}
		}
	}
	if f.mp == nil && f.base.Key != "" {
		return f.plannedLocked(ctx, opts) // an edit none of whose parts went ahead
	}
	if f.mp == nil {
		if err := f.startLocked(ctx, opts); err != nil {
			return store.ObjectInfo{}, err
		}
	}
	m := f.mp
	m.wg.Wait() // parts on their way count once stored
	for n := 1; n <= count; n++ {
		lo, hi := l.start(n), min(l.start(n)+l.size(n), f.size)
		if m.sentAt(n, f.gen(n), hi-lo) {
			continue
		}
		var err error
		if f.canCopy(lo, hi) {
			src, etag, num := f.base.Key, f.base.ETag, n
			err = m.goPart(ctx, n, f.gen(n), hi-lo, func(ctx context.Context) (store.Part, error) {
				return f.p.cfg.Store.CopyPart(ctx, store.CopyPartRequest{Upload: m.up, Number: num, Src: store.ObjectRef{Bucket: m.up.Bucket, Key: src}, SrcETag: etag, Offset: lo, Length: hi - lo})
			})
		} else {
			err = f.goSendLocked(ctx, n, lo, hi)
		}
		if err != nil {
			return store.ObjectInfo{}, err
		}
	}
	return f.completeLocked(ctx)
}

// completeSentLocked completes the upload with the parts sent so far from
// the first on (those still current), the fallback for dropped bytes.
func (f *File) completeSentLocked(ctx context.Context) (store.ObjectInfo, int, error) {
	m := f.mp
	if m == nil {
		return store.ObjectInfo{}, 0, fmt.Errorf("no upload holds them: %w", store.ErrUnavailable)
	}
	m.wg.Wait()
	l := f.layout()
	var parts []store.Part
	var size int64
	for n := 1; ; n++ {
		lo := l.start(n)
		hi := min(lo+l.size(n), f.size)
		m.mu.Lock()
		s, ok := m.sent[n]
		m.mu.Unlock()
		if !ok || s.gen != f.gen(n) || s.size != hi-lo || lo >= f.size {
			break
		}
		parts, size = append(parts, s.part), hi
	}
	cctx, cancel := context.WithTimeout(ctx, f.p.cfg.Timeout)
	defer cancel()
	info, err := f.p.cfg.Store.CompleteUpload(cctx, m.up, parts)
	if err != nil {
		return store.ObjectInfo{}, 0, err
	}
	f.mp = nil
	if j := f.p.cfg.Journal; j != nil {
		j.Record(m.up, false)
	}
	info.Key, info.Size = m.up.Key, size
	return info, len(parts), nil
}

// SameMeta says whether two option sets give an object the same metadata
// and Content-Type (what a started upload cannot change any more).
func SameMeta(a, b store.PutOptions) bool {
	return a.ContentType == b.ContentType && (len(a.Meta) == 0 && len(b.Meta) == 0 || reflect.DeepEqual(a.Meta, b.Meta))
}
