package fs

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fileNode is one object (or one file being created).
//
// Lock order: a writeHandle's mu before the node's mu.
type fileNode struct {
	fusefs.Inode
	fsys   *FS
	bucket string

	mu            sync.Mutex                // protects the fields below
	key           string                    // GUARDED_BY(mu): changes on rename
	info          ObjectInfo                // GUARDED_BY(mu): the stored object (Size: as written so far while writing)
	infoAt        time.Time                 // GUARDED_BY(mu): when info was learnt
	stored        bool                      // GUARDED_BY(mu): the object exists in the store
	pageCacheETag string                    // GUARDED_BY(mu): version whose bytes the kernel may cache
	pending       posixAttrs                // GUARDED_BY(mu): attributes to store with the next upload
	writers       map[*writeHandle]struct{} // GUARDED_BY(mu): open write handles

	pendingX pendingXattrs // GUARDED_BY(mu): extended attributes for the coming upload

	xattrMu sync.Mutex // serialises attribute read-modify-writes (tags, metadata); taken before mu
}

var (
	_ = (fusefs.NodeGetattrer)((*fileNode)(nil))
	_ = (fusefs.NodeSetattrer)((*fileNode)(nil))
	_ = (fusefs.NodeOpener)((*fileNode)(nil))
	_ = (fusefs.NodeStatfser)((*fileNode)(nil))
	_ = (fusefs.NodeFsyncer)((*fileNode)(nil))
)

func newFileNode(f *FS, bucket, key string, info ObjectInfo, stored bool) *fileNode {
	n := &fileNode{fsys: f, bucket: bucket, key: key, stored: stored, writers: map[*writeHandle]struct{}{}}
	n.info, n.infoAt = info, time.Now()
	return n
}

func (f *fileNode) objKey() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.key
}

func (f *fileNode) setKey(k string) {
	f.mu.Lock()
	f.key = k
	f.mu.Unlock()
}

// setInfo records what a listing (made at `at`) or a HEAD said, unless a
// writer is active or kfs learnt something newer since.
func (f *fileNode) setInfo(info ObjectInfo, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.writers) > 0 || at.Before(f.infoAt) {
		return
	}
	f.info, f.infoAt, f.stored = info, at, true
}

func (f *fileNode) snapshot() (ObjectInfo, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info, f.infoAt, len(f.writers) > 0
}

// noteSize records the size a writer has reached.
func (f *fileNode) noteSize(size int64) {
	f.mu.Lock()
	f.info.Size = size
	f.mu.Unlock()
}

// committed records a finished upload, here and in the parent's listing.
func (f *fileNode) committed(info ObjectInfo) {
	f.mu.Lock()
	f.info, f.infoAt, f.stored = info, time.Now(), true
	f.pageCacheETag = info.ETag // the kernel's pages hold what was just written
	f.pending = posixAttrs{}
	f.pendingX = pendingXattrs{}
	f.mu.Unlock()
	if name, parent := f.Parent(); parent != nil {
		if d, ok := parent.Operations().(*dirNode); ok {
			d.listingPut(dirEntry{name: name, info: info})
		}
	}
}

func (f *fileNode) writerGone(h *writeHandle) {
	f.mu.Lock()
	delete(f.writers, h)
	f.mu.Unlock()
	f.fsys.dropWriter(h)
}

// pendingXattrs are extended attributes set while an upload is pending.
type pendingXattrs struct {
	tags        map[string]string
	meta        map[string]string
	contentType string
	lockMode    string
	lockUntil   time.Time
	legalHold   *bool
}

// putOptions are what an upload of this file gets: the stored metadata
// with pending attribute changes applied, the Content-Type its name implies
// unless one was set, and tags and lock settings set while it was pending.
func (f *fileNode) putOptions() PutOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	meta := f.pending.toMeta(f.info.Meta)
	for k, v := range f.pendingX.meta {
		meta[k] = v
	}
	o := PutOptions{ContentType: contentType(f.key), Meta: meta, Tags: f.pendingX.tags,
		LockMode: f.pendingX.lockMode, LockUntil: f.pendingX.lockUntil, LegalHold: f.pendingX.legalHold}
	if f.pendingX.contentType != "" {
		o.ContentType = f.pendingX.contentType
	}
	return o
}

func (f *fileNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	info, at, writing := f.snapshot()
	if !writing && time.Since(at) > f.fsys.cfg.AttrTTL {
		now := time.Now()
		fresh, err := f.fsys.store.Stat(ctx, f.bucket, f.objKey())
		if err != nil {
			return toErrno(f.fsys.cfg.Log, "getattr "+f.bucket+"/"+f.objKey(), err)
		}
		f.setInfo(fresh, now)
		info, _, _ = f.snapshot()
	}
	f.fsys.fileAttr(&out.Attr, info)
	return 0
}

func (f *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// Open snapshots (key, ETag, size) for readers; the kernel keeps its page
// cache across opens while the ETag it was filled from is unchanged. A
// writer streams (O_TRUNC) or overlays the object in a staging file.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	if write && f.fsys.cfg.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	f.mu.Lock()
	info := f.info
	keep := f.pageCacheETag == info.ETag && info.ETag != ""
	f.pageCacheETag = info.ETag
	f.mu.Unlock()
	var fuseFlags uint32
	if keep {
		fuseFlags = fuse.FOPEN_KEEP_CACHE
	}
	if !write {
		return newReadHandle(f.fsys, f.bucket, info), fuseFlags, 0
	}
	h, err := f.openWriter(flags&syscall.O_TRUNC != 0)
	if err != nil {
		return nil, 0, toErrno(f.fsys.cfg.Log, "open "+f.bucket+"/"+f.objKey(), err)
	}
	return h, fuseFlags, 0
}

// openWriter returns a write handle: streaming over an empty file when
// truncating, else staged over the current object.
func (f *fileNode) openWriter(trunc bool) (*writeHandle, error) {
	f.mu.Lock()
	info, stored := f.info, f.stored
	f.mu.Unlock()
	var h *writeHandle
	if trunc || !stored {
		h = newStreamHandle(f)
		if !stored && !trunc {
			h.dirty = false // another handle is creating the file
		}
	} else {
		var err error
		if h, err = newStagedHandle(f, info); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.writers[h] = struct{}{}
	if trunc {
		f.info.Size = 0
	}
	f.mu.Unlock()
	f.fsys.addWriter(h)
	return h, nil
}

func (f *fileNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	h, _ := fh.(*writeHandle)
	return f.setattr(ctx, h, in, out)
}

// setattr changes size (through h, or a transient writer), mode, owner and
// mtime. Attributes go with a pending upload when a writer has one,
// otherwise into the stored object by a server-side copy onto itself.
func (f *fileNode) setattr(ctx context.Context, h *writeHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if f.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if size, ok := in.GetSize(); ok {
		if err := f.truncate(ctx, h, int64(size)); err != nil {
			return toErrno(f.fsys.cfg.Log, fmt.Sprintf("truncate %s/%s", f.bucket, f.objKey()), err)
		}
	}
	var a posixAttrs
	changed := false
	if m, ok := in.GetMode(); ok {
		a.mode, changed = syscall.S_IFREG|(m&0o7777), true
	}
	if u, ok := in.GetUID(); ok {
		a.uid, changed = &u, true
	}
	if g, ok := in.GetGID(); ok {
		a.gid, changed = &g, true
	}
	if t, ok := in.GetMTime(); ok {
		a.mtime, changed = t, true
	}
	if changed {
		if err := f.setAttrs(ctx, a); err != nil {
			return toErrno(f.fsys.cfg.Log, fmt.Sprintf("setattr %s/%s", f.bucket, f.objKey()), err)
		}
	}
	info, _, _ := f.snapshot()
	f.fsys.fileAttr(&out.Attr, info)
	return 0
}

// truncate resizes through h; without one (truncate(2), or open(O_TRUNC)
// as the kernel sends it: OPEN, then SETATTR), through every open writer,
// which store it when closed; with none, at once by a transient writer.
func (f *fileNode) truncate(ctx context.Context, h *writeHandle, size int64) error {
	if h != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.truncateLocked(ctx, size)
	}
	f.mu.Lock()
	writers := make([]*writeHandle, 0, len(f.writers))
	for w := range f.writers {
		writers = append(writers, w)
	}
	f.mu.Unlock()
	if len(writers) > 0 {
		for _, w := range writers {
			w.mu.Lock()
			err := w.truncateLocked(ctx, size)
			w.mu.Unlock()
			if err != nil {
				return err
			}
		}
		return nil
	}
	w, err := f.openWriter(size == 0)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.truncateLocked(ctx, size); err != nil {
		return err
	}
	w.dirty = true
	return w.commitLocked(ctx)
}

func (f *fileNode) setAttrs(ctx context.Context, a posixAttrs) error {
	f.mu.Lock()
	merge(&f.pending, a)
	writers := make([]*writeHandle, 0, len(f.writers))
	for w := range f.writers {
		writers = append(writers, w)
	}
	f.mu.Unlock()
	for _, w := range writers {
		w.mu.Lock()
		dirty := w.dirty && w.err == nil
		w.mu.Unlock()
		if dirty {
			return nil // stored with that upload
		}
	}
	f.mu.Lock()
	key, info := f.key, f.info
	opts := PutOptions{ContentType: info.ContentType, Meta: f.pending.toMeta(info.Meta)}
	f.mu.Unlock()
	if opts.ContentType == "" {
		opts.ContentType = contentType(key)
	}
	fresh, err := f.fsys.store.Copy(ctx, f.bucket, key, info.ETag, key, &opts)
	if err != nil {
		return err
	}
	f.committed(fresh)
	return nil
}

func merge(dst *posixAttrs, a posixAttrs) {
	if a.mode != 0 {
		dst.mode = a.mode
	}
	if a.uid != nil {
		dst.uid = a.uid
	}
	if a.gid != nil {
		dst.gid = a.gid
	}
	if !a.mtime.IsZero() {
		dst.mtime = a.mtime
	}
}

// Fsync without a handle (fsync on a directory entry): nothing to do.
func (f *fileNode) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := fh.(*writeHandle); ok {
		return h.Fsync(ctx, flags)
	}
	return 0
}
