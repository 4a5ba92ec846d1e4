package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"kfs/fs/store"
)

// chunk is the unit in which a File tracks what its staging file holds.
const chunk = 1 << 20

type chunkState uint8

const (
	present chunkState = 1 << iota // the staging file holds the right bytes
	changed                        // differs from the base
	dropped                        // sent, then punched out of the staging file
)

// File is the content of one file while it is open for writing (or has
// unsaved changes): shared by all of the file's handles.
type File struct {
	p      *Pipeline
	bucket string
	opts   func() store.PutOptions // what a multipart upload starts with

	mu        sync.Mutex       // serialises the file; protects the fields below
	closed    bool             // GUARDED_BY(mu)
	st        *stream          // GUARDED_BY(mu): the memory fast path of a front-to-back writer (nil: staged)
	f         *os.File         // GUARDED_BY(mu): the staging file, made when first needed
	key       string           // GUARDED_BY(mu): where a commit goes
	base      store.ObjectInfo // GUARDED_BY(mu): the object underneath (Key "": none)
	baseLimit int64            // GUARDED_BY(mu): bytes of base still underneath
	size      int64            // GUARDED_BY(mu)
	chunks    []chunkState     // GUARDED_BY(mu)
	held      int64            // GUARDED_BY(mu): staging bytes charged to the pipeline
	dirty     bool             // GUARDED_BY(mu): differs from what the store holds under key
	gens      []uint32         // GUARDED_BY(mu): per part, bumped by every change
	mp        *multipart       // GUARDED_BY(mu): upload being sent (nil: none)
	lost      error            // GUARDED_BY(mu): dropped bytes that can no longer be had
	kept      []byte           // GUARDED_BY(mu): the last commit's bytes, for Kept (small contents only)
	written   time.Time        // GUARDED_BY(mu): last change
}

// Open starts the content of a file at key. base is the object underneath
// (zero Key: none, a new file); with trunc the content starts empty (and
// differs from the object). opts gives the options a multipart upload
// starts with (called with the File locked).
func (p *Pipeline) Open(bucket, key string, base store.ObjectInfo, trunc bool, opts func() store.PutOptions) (*File, error) {
	f := &File{p: p, bucket: bucket, opts: opts, key: key, base: base, baseLimit: base.Size, size: base.Size,
		written: time.Now()}
	if trunc || base.Key == "" {
		f.base, f.baseLimit, f.size, f.dirty = store.ObjectInfo{}, 0, 0, true
		f.st = newStream()
	}
	p.mu.Lock()
	p.files[f] = &status{bucket: bucket, started: time.Now()}
	p.mu.Unlock()
	return f, nil
}

func (f *File) layout() layout { return layout{f.p.cfg.PartSize} }

// stagingLocked makes the staging file (unlinked at once) when first needed.
func (f *File) stagingLocked() error {
	if f.f != nil {
		return nil
	}
	pattern := "stage-*"
	if f.p.cfg.Named {
		pattern = NamedPrefix(os.Getpid()) + "*" // the next mount knows whose it was
	}
	sf, err := os.CreateTemp(f.p.cfg.Dir, pattern)
	if err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	if !f.p.cfg.Named {
		os.Remove(sf.Name())
	}
	f.f = sf
	return nil
}

// Size is the content's size.
func (f *File) Size() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// Dirty reports whether the content differs from what the store holds.
func (f *File) Dirty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirty
}

// Written is when the content last changed.
func (f *File) Written() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

func (f *File) status() (FileStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirty || f.closed {
		return FileStatus{}, false
	}
	st := FileStatus{Key: f.key, Bytes: f.size}
	if f.mp != nil {
		st.PartsSent = f.mp.sentCount()
	}
	return st, true
}

func (f *File) grow(n int64) {
	for int64(len(f.chunks)) < n {
		f.chunks = append(f.chunks, 0)
	}
}

func (f *File) bump(off, end int64) {
	if end <= off {
		end = off + 1
	}
	l := f.layout()
	last := l.part(end - 1)
	for len(f.gens) < last {
		f.gens = append(f.gens, 0)
	}
	for n := l.part(off); n <= last; n++ {
		f.gens[n-1]++
	}
}

func (f *File) gen(n int) uint32 {
	if n-1 < len(f.gens) {
		return f.gens[n-1]
	}
	return 0
}

// ReadAt reads the content (zeros past the end of the staging file).
func (f *File) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errClosed
	}
	if off >= f.size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), f.size-off)]
	if f.kept != nil { // committed and unchanged: the bytes just uploaded
		return copy(p, f.kept[off:]), nil
	}
	if f.st != nil {
		if n, ok := f.streamReadLocked(p, off); ok {
			return n, nil
		}
		if err := f.toStagedLocked(); err != nil {
			return 0, err
		}
	}
	if err := f.stagingLocked(); err != nil {
		return 0, err
	}
	if err := f.ensureLocked(ctx, off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := f.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) { // a sparse tail reads as zeros
		clear(p[n:])
		return len(p), nil
	}
	if err != nil {
		return n, fmt.Errorf("staging file: %w", err)
	}
	return n, nil
}

// readHeldLocked reads like ReadAt, but only what is held here (the
// stream's buffers, the staging file's bytes); false, without asking the
// store, when some byte would have to be fetched.
func (f *File) readHeldLocked(p []byte, off int64) (int, bool) {
	if f.closed || off >= f.size {
		return 0, false
	}
	p = p[:min(int64(len(p)), f.size-off)]
	end := off + int64(len(p))
	if f.st != nil {
		return f.streamReadLocked(p, off)
	}
	if f.f == nil {
		return 0, false
	}
	for c := off / chunk; c*chunk < end; c++ {
		var st chunkState
		if c < int64(len(f.chunks)) {
			st = f.chunks[c]
		}
		if st&dropped != 0 || st&present == 0 && c*chunk < f.baseLimit && f.base.Key != "" {
			return 0, false // sent and punched out, or the base's bytes not fetched
		}
	}
	n, err := f.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) { // a sparse tail reads as zeros
		clear(p[n:])
		return len(p), true
	}
	return n, err == nil && n == len(p)
}

// WriteAt writes data at off. Parts the write completes are sent in the
// background.
func (f *File) WriteAt(ctx context.Context, data []byte, off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	end := off + int64(len(data))
	if end > store.MaxObjectSize {
		return ErrTooLarge
	}
	if len(data) == 0 {
		return nil
	}
	if f.st != nil {
		if off == f.size {
			return f.appendStreamLocked(ctx, data)
		}
		if err := f.toStagedLocked(); err != nil {
			return err
		}
	}
	if err := f.stagingLocked(); err != nil {
		return err
	}
	// Edge chunks the write does not cover whole keep the base's bytes.
	if off%chunk != 0 {
		if err := f.ensureLocked(ctx, off-off%chunk, chunk); err != nil {
			return err
		}
	}
	if end%chunk != 0 {
		if err := f.ensureLocked(ctx, end-end%chunk, chunk); err != nil {
			return err
		}
	}
	if err := f.recoverDroppedLocked(ctx, off, end); err != nil {
		return err
	}
	if err := f.holdLocked(off, end); err != nil {
		return err
	}
	if _, err := f.f.WriteAt(data, off); err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	f.mark(off, end, present|changed)
	f.bump(off, end)
	f.size = max(f.size, end)
	f.dirty, f.written, f.kept = true, time.Now(), nil
	return f.sendPassedLocked(ctx, off, end)
}

// Truncate sets the size. Growing holds no bytes (the staging file is
// sparse).
func (f *File) Truncate(ctx context.Context, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	if size > store.MaxObjectSize {
		return ErrTooLarge
	}
	if f.st != nil {
		if size == f.size {
			return nil
		}
		if err := f.toStagedLocked(); err != nil {
			return err
		}
	}
	if err := f.stagingLocked(); err != nil {
		return err
	}
	old := f.size
	if size < old {
		if err := f.recoverDroppedLocked(ctx, size, old); err != nil {
			return err
		}
	}
	if err := f.f.Truncate(size); err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	f.baseLimit = min(f.baseLimit, size)
	// Chunks wholly past the new end hold nothing any more.
	for c := (size + chunk - 1) / chunk; c < int64(len(f.chunks)); c++ {
		if f.chunks[c]&present != 0 {
			f.held -= chunk
			f.p.disk.Add(-chunk)
		}
		f.chunks[c] = 0
	}
	f.bump(min(old, size), max(old, size))
	f.size = size
	f.dirty, f.written, f.kept = true, time.Now(), nil
	return nil
}

// Rekey moves the content to a new key (a rename): an upload sent so far
// under the old key is abandoned (it is sent again at the commit), and
// base names the object's new place (its bytes are unchanged).
func (f *File) Rekey(ctx context.Context, key string, base store.ObjectInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mp != nil {
		if f.hasDroppedLocked() || f.st != nil && len(f.st.evicted) > 0 {
			return fmt.Errorf("%s/%s: larger than the staging budget and still being written: rename it once closed: %w",
				f.bucket, f.key, unix.EBUSY)
		}
		f.abortLocked()
	}
	f.key = key
	if f.base.Key != "" && base.Key != "" {
		f.base = base
	}
	return nil
}

// Detach makes the content anonymous (the file was unlinked or replaced):
// reads and writes go on, commits store nothing.
func (f *File) Detach() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mp != nil {
		if f.hasDroppedLocked() || f.st != nil && len(f.st.evicted) > 0 {
			f.lost = fmt.Errorf("%s/%s: unlinked while parts of it were only in its upload: %w", f.bucket, f.key, store.ErrUnavailable)
		}
		f.abortLocked()
	}
	f.key = ""
}

// Close discards the content and frees its staging file.
func (f *File) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if f.mp != nil {
		f.abortLocked()
	}
	f.dropStreamLocked()
	if f.f != nil {
		f.removeNamed()
		f.f.Close()
	}
	f.p.disk.Add(-f.held)
	f.held = 0
	f.p.mu.Lock()
	delete(f.p.files, f)
	f.p.mu.Unlock()
}
