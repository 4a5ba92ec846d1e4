package upload

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Write-back (Config.Named): a small content is made durable on local disk
// at close (Persist) and uploaded later by the caller's Commit. Its staging
// file then has a name, so the next mount can upload what a crash left.

// NamedPrefix starts the names of the named staging files of process pid.
func NamedPrefix(pid int) string { return fmt.Sprintf("wb-%d-", pid) }

// Persisted is a content made durable on local disk by Persist: in its
// staging file, or (inline) given back as bytes for the caller to make
// durable itself (in a journal record).
type Persisted struct {
	Path string // the staging file (it holds exactly the content); "" when inline
	Data []byte // the content, when inline (a copy)
	Size int64
}

// Persist writes the whole content to its named staging file and syncs it,
// so it survives a crash of kfs or of the machine; or, with inlineMax, a
// content held in memory of at most that many bytes is copied out instead
// (the caller journals it: one sync instead of two). It reports false, with
// nothing changed that matters, for a content it cannot hold whole: one
// larger than two parts, one with parts sent ahead or dropped, one over
// bytes of a stored object not fetched, or on a pipeline without named
// staging files; the caller then commits it as usual.
func (f *File) Persist(inlineMax int64) (Persisted, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Persisted{}, false, errClosed
	}
	if !f.p.cfg.Named || f.mp != nil || f.lost != nil || f.size > 2*f.layout().base || f.key == "" {
		return Persisted{}, false, nil
	}
	if f.st != nil && f.size <= inlineMax {
		buf := make([]byte, f.size)
		if n, ok := f.streamReadLocked(buf, 0); ok && int64(n) == f.size || f.size == 0 {
			return Persisted{Data: buf, Size: f.size}, true, nil
		}
	}
	if f.st != nil {
		if err := f.toStagedLocked(); err != nil {
			if errors.Is(err, ErrDiskFull) {
				return Persisted{}, false, nil
			}
			return Persisted{}, false, err
		}
	}
	if f.hasDroppedLocked() || !f.baseHeldLocked() {
		return Persisted{}, false, nil
	}
	if err := f.stagingLocked(); err != nil {
		return Persisted{}, false, err
	}
	if err := f.f.Truncate(f.size); err != nil { // a sparse tail is part of the content
		return Persisted{}, false, fmt.Errorf("staging file: %w", err)
	}
	if err := f.f.Sync(); err != nil {
		return Persisted{}, false, fmt.Errorf("staging file: %w", err)
	}
	return Persisted{Path: f.f.Name(), Size: f.size}, true, nil
}

// baseHeldLocked says whether every byte of the base still underneath is
// in the staging file.
func (f *File) baseHeldLocked() bool {
	if f.base.Key == "" {
		return true
	}
	for c := int64(0); c*chunk < f.baseLimit; c++ {
		if c >= int64(len(f.chunks)) || f.chunks[c]&present == 0 {
			return false
		}
	}
	return true
}

// Age is how long ago the content was last written.
func (f *File) Age() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.written)
}

// removeNamed removes a named staging file (Close).
func (f *File) removeNamed() {
	if f.p.cfg.Named && f.f != nil {
		os.Remove(f.f.Name())
	}
}
