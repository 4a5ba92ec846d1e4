package fs

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache/disk"
	"kfs/fs/store"
	"kfs/fs/upload"
)

// fileNode is one object (or one file being created): a regular file, a
// symbolic link, a FIFO, a socket or a device node (the last four are
// empty objects whose mode metadata says so, as s3fs stores them).
//
// Its content while open for writing (or with unsaved changes) is one
// upload.File shared by every handle; pending attribute changes go with
// the next upload.
type fileNode struct {
	fusefs.Inode
	fsys   *FS
	bucket string
	typ    uint32 // S_IFREG, S_IFLNK, S_IFIFO, ...

	opMu sync.Mutex   // serialises content changes (open for writing, commits, truncates, renames)
	busy atomic.Int32 // store writes of this object in progress (their bucket events change nothing)

	mu            sync.Mutex           // protects the fields below
	key           string               // GUARDED_BY(mu): changes on rename; "" once unlinked
	info          store.ObjectInfo     // GUARDED_BY(mu): the stored object as last known
	infoAt        time.Time            // GUARDED_BY(mu): when info was learnt
	stored        bool                 // GUARDED_BY(mu): an object exists under key
	shadows       bool                 // GUARDED_BY(mu): not stored, renamed over an object still under key: it goes when this file leaves key unstored
	unlinked      bool                 // GUARDED_BY(mu)
	content       *upload.File         // GUARDED_BY(mu): nil when no handle writes and nothing is unsaved
	size          int64                // GUARDED_BY(mu): the content's size while content != nil
	dirty         bool                 // GUARDED_BY(mu): written since the last commit
	wtime         time.Time            // GUARDED_BY(mu): last write or truncate through this mount
	writers       int                  // GUARDED_BY(mu): open handles that may write
	handles       map[*handle]struct{} // GUARDED_BY(mu): every open handle
	pending       posix                // GUARDED_BY(mu): attribute changes for the next upload
	pendingAt     time.Time            // GUARDED_BY(mu): when pending.mtime was set
	pendingX      pendingXattrs        // GUARDED_BY(mu): extended attributes for the next upload
	commitFailed  bool                 // GUARDED_BY(mu): the last commit failed (release does not retry it)
	pageCacheETag string               // GUARDED_BY(mu): version whose bytes the kernel may cache
	deleteAtClose string               // GUARDED_BY(mu): key to delete when the last handle goes
	pt            int                  // GUARDED_BY(mu): open passthrough handles (ptHandle)
	ptETag        string               // GUARDED_BY(mu): the version they read
	ptEnt         *disk.Handle         // GUARDED_BY(mu): their entry, for more readers of it (nil when pt == 0)
	wopening      int                  // GUARDED_BY(mu): opens for writing not yet registered
	uploadedAt    time.Time            // GUARDED_BY(mu): when this mount last stored the file's bytes
	deferID       string               // GUARDED_BY(mu): journal id of attributes held back (deferattrs.go); "" when none
	deferTimer    *time.Timer          // GUARDED_BY(mu): stores them at the latest deferDelay after they were first held
	persistent    bool                 // GUARDED_BY(mu): its inode is persistent (write-back: made here, not uploaded yet)
	wbID          string               // GUARDED_BY(mu): journal id of its write-back record (writeback.go); "" when none
	wbFile        string               // GUARDED_BY(mu): the staging file that record names ("": its bytes are in the record, charged to writeBack.inline)
	wbSize        int64                // GUARDED_BY(mu): its size at the close recorded
	wbExpect      string               // GUARDED_BY(mu): ETag of the object its upload may replace ("" none)

	xattrMu sync.Mutex // serialises tag and metadata read-modify-writes; taken before opMu
}

var (
	_ = (fusefs.NodeGetattrer)((*fileNode)(nil))
	_ = (fusefs.NodeSetattrer)((*fileNode)(nil))
	_ = (fusefs.NodeOpener)((*fileNode)(nil))
	_ = (fusefs.NodeStatfser)((*fileNode)(nil))
)

func newFileNode(f *FS, bucket, key string, typ uint32, info store.ObjectInfo, stored bool) *fileNode {
	return &fileNode{fsys: f, bucket: bucket, key: key, typ: typ, info: info, infoAt: time.Now(), stored: stored,
		handles: map[*handle]struct{}{}}
}

func (n *fileNode) objKey() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.key
}

func (n *fileNode) path() string { return n.bucket + "/" + n.objKey() }

// localOnly says whether the file exists only here so far (being
// created, or written back and not uploaded): the store cannot tell of it.
func (n *fileNode) localOnly() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.stored && !n.unlinked && n.content != nil
}

// sameObject says whether the node still stands for key (it was not
// renamed away or unlinked).
func (n *fileNode) sameObject(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.key == key && !n.unlinked
}

// setInfo records what a listing (made at `at`) or a HEAD said, unless
// content is being written or kfs learnt something newer since.
func (n *fileNode) setInfo(info store.ObjectInfo, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.content != nil || at.Before(n.infoAt) || n.unlinked {
		return
	}
	if info.Meta == nil && n.info.ETag == info.ETag {
		info.Meta, info.ContentType = n.info.Meta, n.info.ContentType // a plain listing says less
	}
	n.info, n.infoAt, n.stored, n.shadows = info, at, true, false
}

// attrsLocked are the node's POSIX attributes and times now.
func (n *fileNode) attrsLocked() (posix, times, int64) {
	a := parsePosix(n.info.Meta).merge(n.pending)
	t := objectTimes(n.info, parsePosix(n.info.Meta))
	size := n.info.Size
	if n.content != nil {
		size = n.size
	}
	if n.dirty {
		t.mtime, t.ctime = n.wtime, n.wtime
	}
	if !n.pending.mtime.IsZero() && (!n.dirty || !n.pendingAt.Before(n.wtime)) {
		t.mtime = n.pending.mtime
	}
	if !n.pending.atime.IsZero() {
		t.atime = n.pending.atime
	}
	if !n.pending.ctime.IsZero() && n.pending.ctime.After(t.ctime) {
		t.ctime = n.pending.ctime
	}
	return a, t, size
}

func (n *fileNode) fillAttr(out *fuse.Attr) {
	n.mu.Lock()
	a, t, size := n.attrsLocked()
	unlinked := n.unlinked
	n.mu.Unlock()
	n.fsys.ownerAndMode(out, a, n.typ)
	out.Nlink = 1
	if unlinked {
		out.Nlink = 0
	}
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
	out.Blksize = 1 << 20
	out.Rdev = a.rdev
	setTimes(out, t)
}

// refresh learns the object again when what kfs knows is older than the
// attribute TTL (and nothing local is newer).
func (n *fileNode) refresh(ctx context.Context) error {
	n.mu.Lock()
	key, local := n.key, n.content != nil || !n.stored || n.unlinked
	stale := time.Since(n.infoAt) > n.fsys.cfg.AttrTTL
	n.mu.Unlock()
	if local || !stale {
		return nil
	}
	at := time.Now()
	info, err := n.fsys.store.Stat(ctx, store.ObjectRef{Bucket: n.bucket, Key: key})
	if err != nil {
		return err
	}
	n.setInfo(info, at)
	return nil
}

// throughDescriptor says whether a GETATTR came through an open
// descriptor rather than by name (served.GetAttr marks it).
func (f *FS) throughDescriptor(ctx context.Context) bool {
	fc, ok := ctx.(*fuse.Context)
	return ok && fc.Cancel != nil && fc.Cancel == f.viaFH
}

func (n *fileNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := asHandle(fh); ok && n.fsys.throughDescriptor(ctx) {
		return h.Getattr(ctx, out)
	}
	if err := n.refresh(ctx); err != nil {
		return n.fsys.errno("getattr", n.path(), err)
	}
	n.fillAttr(&out.Attr)
	return 0
}

func (n *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// Open returns a handle. The kernel keeps its page cache across opens
// while the version it was filled from is unchanged.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	if write && n.fsys.cfg.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	if n.typ == syscall.S_IFLNK {
		return nil, 0, syscall.ELOOP
	}
	if !write {
		if err := n.refresh(ctx); err != nil {
			return nil, 0, n.fsys.errno("open", n.path(), err)
		}
		if ch, err := n.openCached(ctx); ch != nil || err != nil {
			if err != nil {
				return nil, 0, n.fsys.errno("open", n.path(), err)
			}
			return ch, n.keepCache(), 0
		}
	}
	if write { // no passthrough reader may start until this writer is registered
		defer n.writerComing()()
	}
	if err := n.waitReaders(ctx, write, time.Now().Add(passthroughWait)); err != nil {
		return nil, 0, n.fsys.errno("open", n.path(), err)
	}
	h, err := n.open(ctx, flags, write)
	if err != nil {
		return nil, 0, n.fsys.errno("open", n.path(), err)
	}
	return h, n.keepCache(), 0
}

// keepCache says whether the kernel may keep what it cached of the file's
// pages: they are of the version it opens now.
func (n *fileNode) keepCache() uint32 {
	n.mu.Lock()
	keep := n.content == nil && n.pageCacheETag == n.info.ETag && n.info.ETag != ""
	n.pageCacheETag = n.info.ETag
	n.mu.Unlock()
	if keep {
		return fuse.FOPEN_KEEP_CACHE
	}
	return 0
}

// open registers a handle; a truncating open empties the content.
func (n *fileNode) open(ctx context.Context, flags uint32, write bool) (*handle, error) {
	h := newHandle(n, write, callerPid(ctx))
	if write {
		n.opMu.Lock()
		defer n.opMu.Unlock()
		if flags&syscall.O_TRUNC != 0 {
			c, err := n.contentFor(true)
			if err != nil {
				return nil, err
			}
			if err := c.Truncate(ctx, 0); err != nil {
				return nil, err
			}
			n.mu.Lock()
			n.size, n.wtime, n.dirty = 0, time.Now(), true
			n.mu.Unlock()
		}
	}
	n.mu.Lock()
	n.handles[h] = struct{}{}
	h.pin = n.info
	if write {
		n.writers++
	}
	n.mu.Unlock()
	return h, nil
}

// contentFor returns the file's content, starting it over the stored
// object (or empty with trunc) when there is none.
func (n *fileNode) contentFor(trunc bool) (*upload.File, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.content != nil {
		return n.content, nil
	}
	base := store.ObjectInfo{}
	if n.stored {
		base = n.info
	}
	c, err := n.fsys.up.Open(n.bucket, n.key, base, trunc, n.uploadOptions)
	if err != nil {
		return nil, err
	}
	if n.unlinked {
		c.Detach()
	}
	n.content, n.size = c, base.Size
	if trunc {
		n.size = 0
	}
	return c, nil
}

func callerPid(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Pid
	}
	return 0
}
