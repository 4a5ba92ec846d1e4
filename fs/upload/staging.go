package upload

import (
	"context"
	"fmt"
	"io"
	"kfs/fs/store"

	"golang.org/x/sys/unix"
)

// The staging file of a File: which chunks of it hold bytes (present),
// differ from the base (changed) or were punched out after being sent
// (dropped); their charge to the disk budget; and fetching the base's
// bytes into it when a write or read needs them.

// mark sets state on every chunk of [off, end).
func (f *File) mark(off, end int64, s chunkState) {
	first, last := off/chunk, (end-1)/chunk
	f.grow(last + 1)
	for c := first; c <= last; c++ {
		f.chunks[c] = f.chunks[c]&^dropped | s
	}
}

// holdLocked charges the chunks of [off, end) not held yet to the disk
// budget, punching out sent parts when it is spent.
func (f *File) holdLocked(off, end int64) error {
	first, last := off/chunk, (end-1)/chunk
	f.grow(last + 1)
	var need int64
	for c := first; c <= last; c++ {
		if f.chunks[c]&present == 0 {
			need += chunk
		}
	}
	if need == 0 {
		return nil
	}
	if f.p.disk.Add(need) > f.p.cfg.DiskLimit {
		f.p.disk.Add(-need)
		if f.mp != nil {
			f.mp.wg.Wait() // parts on their way become droppable once stored
		}
		if !f.freeLocked(need, off, end) && !f.waitSpaceLocked(need) {
			return ErrDiskFull
		}
		f.p.disk.Add(need)
	}
	f.held += need
	return nil
}

// freeLocked frees at least n staging bytes, outside [lo, hi) (the range
// being written or fetched): first chunks that hold unchanged bytes of the
// base (fetched again when needed), then parts that were sent and have not
// changed since, from the first part on, so the parts still held locally
// always follow the dropped ones.
func (f *File) freeLocked(n, lo, hi int64) bool {
	var freed int64
	drop := func(c int64, to chunkState) {
		freed += chunk
		f.held -= chunk
		f.p.disk.Add(-chunk)
		f.chunks[c] = to
		_ = unix.Fallocate(int(f.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, c*chunk, chunk)
	}
	for c := int64(0); c < int64(len(f.chunks)) && freed < n; c++ {
		clean := f.chunks[c]&(present|changed) == present && (c+1)*chunk <= f.baseLimit && f.base.Key != ""
		if clean && ((c+1)*chunk <= lo || c*chunk >= hi) {
			drop(c, 0)
		}
	}
	if f.mp == nil {
		return freed >= n
	}
	l := f.layout()
	for num := 1; freed < n; num++ {
		plo := l.start(num)
		phi := min(plo+l.size(num), f.size)
		if plo >= f.size || phi > lo || !f.mp.sentAt(num, f.gen(num), phi-plo) {
			break
		}
		for c := plo / chunk; c*chunk < phi; c++ {
			if f.chunks[c]&present != 0 && (c+1)*chunk <= phi {
				drop(c, dropped)
			}
		}
	}
	return freed >= n
}

func (f *File) hasDroppedLocked() bool {
	for _, c := range f.chunks {
		if c&dropped != 0 {
			return true
		}
	}
	return false
}

// ensureLocked fetches the chunks of [off, off+n) that lie over the base
// and are not here yet, in as few range GETs as possible.
func (f *File) ensureLocked(ctx context.Context, off, n int64) error {
	if err := f.recoverDroppedLocked(ctx, off, off+n); err != nil {
		return err
	}
	end := min(off+n, f.baseLimit)
	if off >= end || f.base.Key == "" {
		return nil
	}
	if err := f.stagingLocked(); err != nil {
		return err
	}
	first, last := off/chunk, (end-1)/chunk
	f.grow(last + 1)
	for c := first; c <= last; {
		if f.chunks[c]&present != 0 {
			c++
			continue
		}
		run := f.missingRun(c, last)
		lo, hi := c*chunk, min(run*chunk, f.baseLimit)
		if err := f.holdLocked(lo, hi); err != nil {
			return err
		}
		buf := make([]byte, hi-lo)
		got, err := f.p.cfg.Store.ReadAt(ctx, store.ReadRequest{Bucket: f.bucket, Key: f.base.Key, ETag: f.base.ETag, Offset: lo}, buf)
		if err == nil && int64(got) != hi-lo {
			err = fmt.Errorf("%s/%s: %d of %d bytes at %d: %w", f.bucket, f.base.Key, got, hi-lo, lo, io.ErrUnexpectedEOF)
		}
		if err != nil {
			f.unholdLocked(lo, hi)
			return err
		}
		for ; c < run; c++ {
			if f.chunks[c]&present != 0 {
				continue // written here: its bytes are the file's, not the base's
			}
			b := buf[c*chunk-lo : min((c+1)*chunk, hi)-lo]
			if _, err := f.f.WriteAt(b, c*chunk); err != nil {
				f.unholdLocked(lo, hi)
				return fmt.Errorf("staging file: %w", err)
			}
			f.chunks[c] |= present
		}
	}
	return nil
}

// missingRun is where one base fetch starting at the missing chunk c ends
// (exclusive): at most 16 chunks, bridging runs of up to 2 chunks already
// present when missing ones follow (an edit in the middle of a part costs
// one GET of the part, not one on each side of the edit).
func (f *File) missingRun(c, last int64) int64 {
	end, run := c, c
	for run <= last && run-c < 16 {
		if f.chunks[run]&present == 0 {
			run++
			end = run
			continue
		}
		gap := run
		for gap <= last && f.chunks[gap]&present != 0 && gap-run < 2 {
			gap++
		}
		if gap > last || f.chunks[gap]&present != 0 || gap-c >= 16 {
			break
		}
		run = gap
	}
	return end
}

// unholdLocked returns the charge holdLocked took for chunks that did not
// become present.
func (f *File) unholdLocked(lo, hi int64) {
	for c := lo / chunk; c*chunk < hi; c++ {
		if f.chunks[c]&present == 0 {
			f.held -= chunk
			f.p.disk.Add(-chunk)
		}
	}
}

// recoverDroppedLocked makes dropped chunks of [off, end) readable again:
// the upload sent so far is completed into the object, which becomes the
// base (the documented case where a partial object shows before the
// final commit).
func (f *File) recoverDroppedLocked(ctx context.Context, off, end int64) error {
	hit := false
	for c := off / chunk; c*chunk < end && c < int64(len(f.chunks)); c++ {
		hit = hit || f.chunks[c]&dropped != 0
	}
	if !hit {
		return nil
	}
	if f.lost != nil {
		return f.lost
	}
	info, n, err := f.completeSentLocked(ctx)
	if err != nil {
		f.lost = fmt.Errorf("%s/%s: bytes dropped from the staging file are lost: %w", f.bucket, f.key, err)
		return f.lost
	}
	f.p.cfg.Log.Warn("file larger than the staging budget read back or rewritten while open: completed its first parts into the object early",
		"bucket", f.bucket, "key", f.key, "parts", n, "bytes", info.Size)
	f.base, f.baseLimit = info, info.Size
	for c := range f.chunks {
		f.chunks[c] &^= dropped
		if int64(c+1)*chunk <= info.Size {
			f.chunks[c] &^= changed
		}
	}
	return nil
}

// Fetch brings every byte of the base into the staging file (before the
// object goes away under an open file).
func (f *File) Fetch(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	if f.st != nil || f.base.Key == "" {
		return nil // nothing underneath
	}
	if err := f.stagingLocked(); err != nil {
		return err
	}
	return f.ensureLocked(ctx, 0, f.size)
}

// waitSpaceLocked waits (Config.WaitSpace) until need staging bytes fit,
// at most spaceWait, and charges nothing; false when they still do not.
func (f *File) waitSpaceLocked(need int64) bool {
	w := f.p.cfg.WaitSpace
	if w == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.p.cfg.SpaceWait)
	defer cancel()
	for f.p.disk.Load()+need > f.p.cfg.DiskLimit {
		if !w(ctx) || ctx.Err() != nil {
			return f.p.disk.Load()+need <= f.p.cfg.DiskLimit
		}
	}
	return true
}
