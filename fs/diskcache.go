package fs

// Reads from the dataset cache (package cache/disk): a file opened
// read-only whose version is whole in the cache is read from the cache
// file, by the kernel itself (FUSE passthrough) where it can.
//
// The kernel's rule for passthrough: while an inode has a passthrough
// open, every open of it must be passthrough to the same backing file
// (anything else fails with EIO), and a passthrough open fails while
// other opens exist. So kfs hands out passthrough only when no other
// descriptor of the file is open or opening for writing, gives later
// readers of the same version the same entry, and answers ETXTBSY (as for
// a running program's file) to an open for writing, or of a newer
// version, until those readers close.

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache/disk"
	"kfs/fs/store"
)

// cachedHandle reads one version of a file from its disk cache entry.
type cachedHandle struct {
	*handle
	ent *disk.Handle
}

// ptHandle is a cachedHandle the kernel reads by itself: go-fuse registers
// its descriptor as the inode's backing file.
type ptHandle struct{ *cachedHandle }

var (
	_ = (fusefs.FileReader)((*cachedHandle)(nil))
	_ = (fusefs.FileReleaser)((*cachedHandle)(nil))
	_ = (fusefs.FilePassthroughFder)((*ptHandle)(nil))
)

func (h *ptHandle) PassthroughFd() (int, bool) { return int(h.ent.File.Fd()), true }

// Read serves the entry (the kernel sends reads here when it did not take
// the passthrough, e.g. without the capability), unless content written
// through the mount since is there: then that, as every handle reads.
func (h *cachedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.node
	n.mu.Lock()
	local := n.content != nil
	n.mu.Unlock()
	if local {
		return h.handle.Read(ctx, dest, off)
	}
	m, err := h.ent.File.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.fsys.errno("read", n.path(), err)
	}
	return fuse.ReadResultData(dest[:m]), 0
}

func (h *ptHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.node.fsys.noPassthrough("the kernel did not take a passthrough open") // later opens are served by kfs
	return h.cachedHandle.Read(ctx, dest, off)
}

func (h *cachedHandle) Release(ctx context.Context) syscall.Errno {
	h.ent.Close()
	return h.handle.Release(ctx)
}

func (h *ptHandle) Release(ctx context.Context) syscall.Errno {
	n := h.node
	n.mu.Lock()
	n.pt--
	var last *disk.Handle
	if n.pt == 0 {
		last, n.ptEnt = n.ptEnt, nil
	}
	n.mu.Unlock()
	if last != nil {
		last.Close()
	}
	return h.cachedHandle.Release(ctx)
}

// noPassthrough turns passthrough off for the opens to come (cached files
// are then served by kfs), saying why once.
func (f *FS) noPassthrough(why string) {
	if f.ptOff.Swap(true) || !f.cfg.Passthrough {
		return
	}
	f.cfg.Log.Warn("disk cache: cached files are served by kfs, not by the kernel (FUSE passthrough off)", "why", why)
}

// asHandle unwraps the handle of any open file.
func asHandle(fh fusefs.FileHandle) (*handle, bool) {
	switch h := fh.(type) {
	case *handle:
		return h, true
	case *cachedHandle:
		return h.handle, true
	case *ptHandle:
		return h.handle, true
	}
	return nil, false
}

// diskID names the version info of the node's object in the disk cache.
func (n *fileNode) diskID(info store.ObjectInfo) disk.ID {
	return disk.ID{Bucket: n.bucket, Key: info.Key, ETag: info.ETag, Size: info.Size}
}

// passthroughWait is how long an open the kernel would refuse beside
// passthrough readers waits for them to close before it gets ETXTBSY.
const passthroughWait = 5 * time.Second

// openCached opens the node read-only from the disk cache when its current
// version is whole there: nil when it is not (the caller opens as usual).
// While a writer waits for the passthrough readers to go, new readers wait
// too (they could only join them), so writers are not starved.
func (n *fileNode) openCached(ctx context.Context) (fusefs.FileHandle, error) {
	if n.fsys.cfg.Disk == nil {
		return nil, nil
	}
	deadline := time.Now().Add(passthroughWait)
	for {
		if err := n.waitReaders(ctx, false, deadline); err != nil {
			return nil, err
		}
		h, again, err := n.tryOpenCached(ctx)
		if !again {
			return h, err
		}
	}
}

// tryOpenCached is one attempt of openCached; again: the passthrough
// readers changed under it, wait for them and try again.
func (n *fileNode) tryOpenCached(ctx context.Context) (fusefs.FileHandle, bool, error) {
	f := n.fsys
	n.mu.Lock()
	info, plain := n.info, n.stored && n.content == nil && !n.unlinked && n.typ == syscall.S_IFREG
	var shared *disk.Handle // the entry the passthrough readers use: the kernel allows no other
	if n.pt > 0 && n.ptETag == info.ETag && n.ptEnt != nil {
		shared, _ = n.ptEnt.Dup()
	}
	n.mu.Unlock()
	if !plain {
		if shared != nil {
			shared.Close()
		}
		return nil, false, nil
	}
	ent, ok := shared, shared != nil
	if !ok {
		ent, ok = f.cfg.Disk.Open(n.diskID(info))
	}
	if !ok {
		return nil, false, nil
	}
	h := newHandle(n, false, callerPid(ctx))
	n.mu.Lock()
	if n.content != nil || n.info.ETag != info.ETag || n.unlinked {
		n.mu.Unlock()
		ent.Close()
		return nil, false, nil // changed meanwhile: the usual way
	}
	if n.pt > 0 && (n.ptETag != info.ETag || n.wopening > 0) {
		n.mu.Unlock()
		ent.Close()
		return nil, true, nil
	}
	pt := n.pt > 0 || f.cfg.Passthrough && !f.ptOff.Load() && len(n.handles) == 0 && n.writers == 0 && n.wopening == 0
	n.handles[h] = struct{}{}
	h.pin = n.info
	if pt {
		if n.pt == 0 {
			n.ptEnt, _ = ent.Dup() // closed by the last passthrough reader's release
		}
		n.pt++
		n.ptETag = info.ETag
	}
	n.mu.Unlock()
	ch := &cachedHandle{handle: h, ent: ent}
	if pt {
		f.cfg.Disk.CountPassthrough()
		return &ptHandle{ch}, false, nil
	}
	return ch, false, nil
}

// waitReaders waits, until deadline, for the passthrough readers an open
// must not meet (the kernel would fail it with EIO): for a writer (or a
// truncate) any; for a reader those of another version, or any while a
// writer waits. Then ETXTBSY, with a log line.
func (n *fileNode) waitReaders(ctx context.Context, write bool, deadline time.Time) error {
	for {
		n.mu.Lock()
		blocked := n.pt > 0 && (write || n.wopening > 0 || n.ptETag != n.info.ETag || n.content != nil)
		n.mu.Unlock()
		if !blocked {
			return nil
		}
		if time.Now().After(deadline) {
			n.fsys.logOnce("a file read through FUSE passthrough cannot be opened for writing (or read at a newer version) until its readers close it; mount with --passthrough=false to avoid this", "path", n.path())
			return syscall.ETXTBSY
		}
		select {
		case <-ctx.Done():
			return syscall.EINTR
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// writerComing counts a writer on its way (no passthrough reader starts
// meanwhile); the returned func uncounts it.
func (n *fileNode) writerComing() func() {
	n.mu.Lock()
	n.wopening++
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		n.wopening--
		n.mu.Unlock()
	}
}

// truncateBeside truncates once no passthrough reader is left (the kernel
// truncates before it opens with O_TRUNC: a refusal must come before any
// byte goes), as a writer would.
func (n *fileNode) truncateBeside(ctx context.Context, size int64) error {
	defer n.writerComing()()
	if err := n.waitReaders(ctx, true, time.Now().Add(passthroughWait)); err != nil {
		return err
	}
	return n.truncate(ctx, size)
}

// fillFor is the disk cache fill of a version being read sequentially
// (nil: no disk cache, or not to be cached).
func (f *FS) fillFor(bucket string, o store.ObjectInfo) *disk.Fill {
	if f.cfg.Disk == nil {
		return nil
	}
	return f.cfg.Disk.Fill(disk.ID{Bucket: bucket, Key: o.Key, ETag: o.ETag, Size: o.Size})
}

// fillingFor is the fill of a version under way (nil: none), without
// starting one.
func (f *FS) fillingFor(bucket string, o store.ObjectInfo) *disk.Fill {
	if f.cfg.Disk == nil {
		return nil
	}
	return f.cfg.Disk.Filling(disk.ID{Bucket: bucket, Key: o.Key, ETag: o.ETag, Size: o.Size})
}

// Warm stores an object whole in the disk cache from body, its bytes as a
// GET answered with info (kfs warm); false: it was there already.
func (f *FS) Warm(ctx context.Context, bucket string, info store.ObjectInfo, body io.Reader) (bool, error) {
	if f.cfg.Disk == nil {
		return false, errors.New("this mount has no disk cache (mount it with --disk-cache-size)")
	}
	return f.cfg.Disk.Warm(ctx, disk.ID{Bucket: bucket, Key: info.Key, ETag: info.ETag, Size: info.Size}, body)
}
