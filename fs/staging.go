package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// stageChunk is the unit in which a staging file tracks what it holds.
const stageChunk = 1 << 20

// errStagingFull is ENOSPC: the staging directory's budget is spent.
var errStagingFull = fmt.Errorf("staging directory full (raise --cache-dir-size): %w", syscall.ENOSPC)

// staging is a local sparse file overlaying one version of an object (the
// base). Chunks of the base are fetched on first need (a read, a partial
// write, a commit); written chunks are marked dirty. The file is unlinked at
// creation, so nothing is left behind whatever happens to the process.
//
// Not safe for concurrent use: its owner (a writeHandle) serialises calls.
type staging struct {
	fsys   *FS
	bucket string
	f      *os.File

	base      ObjectInfo // Key == "" when there is no object underneath
	baseLimit int64      // bytes of base still underneath (truncation lowers it)
	present   []bool     // per chunk: the file holds the right bytes
	dirty     []bool     // per chunk: changed since base
	charged   int64      // bytes charged to the mount's staging budget
}

func newStaging(f *FS, bucket string, base ObjectInfo) (*staging, error) {
	file, err := os.CreateTemp(f.cfg.CacheDir, "stage-*")
	if err != nil {
		return nil, fmt.Errorf("staging file: %w", err)
	}
	os.Remove(file.Name())
	st := &staging{fsys: f, bucket: bucket, f: file, base: base, baseLimit: base.Size}
	if err := st.charge(base.Size); err != nil {
		file.Close()
		return nil, err
	}
	return st, nil
}

func (s *staging) close() {
	s.f.Close()
	s.fsys.stageUsed.Add(-s.charged)
	s.charged = 0
}

// charge reserves budget for a file of size bytes.
func (s *staging) charge(size int64) error {
	if size <= s.charged {
		return nil
	}
	d := size - s.charged
	if s.fsys.stageUsed.Add(d) > s.fsys.cfg.CacheDirSize {
		s.fsys.stageUsed.Add(-d)
		return errStagingFull
	}
	s.charged = size
	return nil
}

func (s *staging) grow(chunks int64) {
	for int64(len(s.present)) < chunks {
		s.present = append(s.present, false)
		s.dirty = append(s.dirty, false)
	}
}

// ensure fetches the chunks of [off, off+n) that lie over the base and are
// not here yet, in as few range GETs as possible.
func (s *staging) ensure(ctx context.Context, off, n int64) error {
	end := min(off+n, s.baseLimit)
	if off >= end {
		return nil
	}
	first, last := off/stageChunk, (end-1)/stageChunk
	s.grow(last + 1)
	for c := first; c <= last; {
		if s.present[c] {
			c++
			continue
		}
		run := c
		for run <= last && !s.present[run] && run-c < 16 {
			run++
		}
		lo, hi := c*stageChunk, min(run*stageChunk, s.baseLimit)
		buf := make([]byte, hi-lo)
		got, err := s.fsys.store.ReadAt(ctx, s.bucket, s.base.Key, s.base.ETag, buf, lo)
		if err != nil {
			return err
		}
		if int64(got) != hi-lo {
			return fmt.Errorf("%s/%s: %d of %d bytes at %d: %w", s.bucket, s.base.Key, got, hi-lo, lo, io.ErrUnexpectedEOF)
		}
		if _, err := s.f.WriteAt(buf, lo); err != nil {
			return fmt.Errorf("staging file: %w", err)
		}
		for ; c < run; c++ {
			s.present[c] = true
		}
	}
	return nil
}

func (s *staging) read(ctx context.Context, p []byte, off int64) (int, error) {
	if err := s.ensure(ctx, off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := s.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) { // a sparse tail: zeros
		clear(p[n:])
		return len(p), nil
	}
	return n, err
}

func (s *staging) write(ctx context.Context, data []byte, off int64) error {
	end := off + int64(len(data))
	if err := s.charge(end); err != nil {
		return err
	}
	// Edge chunks the write does not cover whole keep the base's other bytes.
	if off%stageChunk != 0 {
		if err := s.ensure(ctx, off-off%stageChunk, stageChunk); err != nil {
			return err
		}
	}
	if end%stageChunk != 0 {
		if err := s.ensure(ctx, end-end%stageChunk, stageChunk); err != nil {
			return err
		}
	}
	if _, err := s.f.WriteAt(data, off); err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	s.markDirty(off, end)
	return nil
}

func (s *staging) markDirty(off, end int64) {
	if end <= off {
		return
	}
	first, last := off/stageChunk, (end-1)/stageChunk
	s.grow(last + 1)
	for c := first; c <= last; c++ {
		s.present[c], s.dirty[c] = true, true
	}
}

// truncate changes the size from old to size.
func (s *staging) truncate(ctx context.Context, old, size int64) error {
	if err := s.charge(size); err != nil {
		return err
	}
	// Keep the base bytes of the chunk the new end (shrinking) or the old
	// end (growing) falls in.
	edge := min(old, size)
	if edge%stageChunk != 0 {
		if err := s.ensure(ctx, edge-edge%stageChunk, stageChunk); err != nil {
			return err
		}
	}
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	s.baseLimit = min(s.baseLimit, size)
	if size < old {
		s.markDirty(size, size+1)
	} else {
		s.markDirty(old, size)
	}
	return nil
}

func (s *staging) dirtyIn(off, end int64) bool {
	for c := off / stageChunk; c*stageChunk < end && c < int64(len(s.dirty)); c++ {
		if s.dirty[c] {
			return true
		}
	}
	return false
}

// commit stores size bytes as key: one PutObject for a small file; for a
// large one a multipart upload whose parts that lie over untouched base
// bytes are copied server side (no bytes through kfs).
func (s *staging) commit(ctx context.Context, key string, size int64, opts PutOptions) (ObjectInfo, error) {
	partSize := s.fsys.cfg.PartSize
	if need := (size + MaxParts - 1) / MaxParts; need > partSize {
		partSize = (need + stageChunk - 1) / stageChunk * stageChunk
	}
	var info ObjectInfo
	if size <= 2*partSize {
		if err := s.ensure(ctx, 0, size); err != nil {
			return ObjectInfo{}, err
		}
		var err error
		info, err = s.fsys.store.Put(ctx, s.bucket, key, io.NewSectionReader(s.f, 0, size), size, opts)
		if err != nil {
			return ObjectInfo{}, err
		}
	} else {
		var err error
		if info, err = s.commitMultipart(ctx, key, size, partSize, opts); err != nil {
			return ObjectInfo{}, err
		}
	}
	info.Key, info.Size, info.ContentType, info.Meta = key, size, opts.ContentType, opts.Meta
	s.base, s.baseLimit = info, size
	clear(s.dirty)
	return info, nil
}

func (s *staging) commitMultipart(ctx context.Context, key string, size, partSize int64, opts PutOptions) (ObjectInfo, error) {
	canCopy := func(off, end int64) bool {
		return s.base.Key != "" && end <= s.baseLimit && !s.dirtyIn(off, end)
	}
	// Fetch what must be uploaded first, so the parts read a complete file.
	for off := int64(0); off < size; off += partSize {
		end := min(off+partSize, size)
		if !canCopy(off, end) {
			if err := s.ensure(ctx, off, end-off); err != nil {
				return ObjectInfo{}, err
			}
		}
	}
	mp, err := startMultipart(ctx, s.fsys, s.bucket, key, opts)
	if err != nil {
		return ObjectInfo{}, err
	}
	n := 0
	for off := int64(0); off < size; off += partSize {
		n++
		num, lo, hi := n, off, min(off+partSize, size)
		if canCopy(lo, hi) {
			src, etag := s.base.Key, s.base.ETag
			mp.goPart(num, func(ctx context.Context) (Part, error) {
				return s.fsys.store.CopyPart(ctx, s.bucket, key, mp.id, num, src, etag, lo, hi-lo)
			}, func() {})
			continue
		}
		units, err := s.fsys.writeMem.acquire(ctx, hi-lo)
		if err != nil {
			mp.abort()
			return ObjectInfo{}, err
		}
		mp.goPart(num, func(ctx context.Context) (Part, error) {
			buf := make([]byte, hi-lo)
			if _, err := s.f.ReadAt(buf, lo); err != nil && !errors.Is(err, io.EOF) {
				return Part{}, fmt.Errorf("staging file: %w", err)
			}
			return s.fsys.store.PutPart(ctx, s.bucket, key, mp.id, num, buf)
		}, func() { s.fsys.writeMem.release(units) })
	}
	return mp.complete(ctx, n)
}
