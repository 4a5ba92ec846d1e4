package fs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
	"kfs/fs/store"
)

// handle is one open file description: its flags and read position. The
// content it reads and writes belongs to the node.
type handle struct {
	node  *fileNode
	write bool
	pid   uint32 // the process that opened it

	mu     sync.Mutex       // protects the fields below
	pin    store.ObjectInfo // GUARDED_BY(mu): the version read when there is no local content
	served bool             // GUARDED_BY(mu): bytes of pin were handed out (a changed object is then ESTALE)
	ra     cache.Readahead  // GUARDED_BY(mu)
	copied copyMark         // GUARDED_BY(mu): the whole-file server-side copy this handle made
}

var (
	_ = (fusefs.FileReader)((*handle)(nil))
	_ = (fusefs.FileWriter)((*handle)(nil))
	_ = (fusefs.FileFlusher)((*handle)(nil))
	_ = (fusefs.FileFsyncer)((*handle)(nil))
	_ = (fusefs.FileReleaser)((*handle)(nil))
	_ = (fusefs.FileGetattrer)((*handle)(nil))
	_ = (fusefs.FileSetattrer)((*handle)(nil))
	_ = (fusefs.FileAllocater)((*handle)(nil))
)

func newHandle(n *fileNode, write bool, pid uint32) *handle {
	f := n.fsys
	return &handle{node: n, write: write, pid: pid, ra: f.blocks.Readahead(f.cfg.MaxReadahead, f.streams)}
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	res, err := h.read(ctx, dest, off)
	if err != nil {
		return nil, h.node.fsys.errno("read", fmt.Sprintf("%s at %d", h.node.path(), off), err)
	}
	return res, 0
}

// read serves local content when there is some (writes of every handle),
// else the pinned version of the object. An object changed by another
// client before this handle handed out any byte is read afresh; after,
// the handle gets ESTALE (never bytes of two versions).
func (h *handle) read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, error) {
	n := h.node
	n.mu.Lock()
	c := n.content
	n.mu.Unlock()
	if c != nil {
		m, err := c.ReadAt(ctx, dest, off)
		return fuse.ReadResultData(dest[:m]), err
	}
	for attempt := 0; ; attempt++ {
		h.mu.Lock()
		pin := h.pin
		h.mu.Unlock()
		res, err := n.fsys.readObject(ctx, n.bucket, pin, &h.mu, &h.ra, dest, off)
		if err == nil {
			h.mu.Lock()
			h.served = h.served || res.Size() > 0
			h.mu.Unlock()
			return res, nil
		}
		if !errors.Is(err, store.ErrStale) || attempt > 0 {
			return nil, err
		}
		h.mu.Lock()
		served := h.served
		h.mu.Unlock()
		if served {
			return nil, err
		}
		fresh, ferr := n.reload(ctx)
		if ferr != nil {
			return nil, ferr
		}
		h.mu.Lock()
		h.pin = fresh
		h.mu.Unlock()
	}
}

// reload learns the object now (it changed) and tells the kernel to drop
// what it cached of the old version.
func (n *fileNode) reload(ctx context.Context) (store.ObjectInfo, error) {
	key := n.objKey()
	at := n.fsys.now()
	info, err := n.fsys.store.Stat(ctx, store.ObjectRef{Bucket: n.bucket, Key: key})
	if err != nil {
		return store.ObjectInfo{}, err
	}
	n.setInfo(info, at)
	n.fsys.notifyContent(n.EmbeddedInode())
	return info, nil
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := h.node.write(ctx, data, off); err != nil {
		return 0, h.node.fsys.errno("write", h.node.path(), err)
	}
	return uint32(len(data)), 0
}

func (n *fileNode) write(ctx context.Context, data []byte, off int64) error {
	c, err := n.contentFor(false)
	if err != nil {
		return err
	}
	if err := c.WriteAt(ctx, data, off); err != nil {
		return err
	}
	n.mu.Lock()
	n.size = max(n.size, off+int64(len(data)))
	n.wtime, n.dirty = n.fsys.now(), true
	n.mu.Unlock()
	return nil
}

// Flush runs at every close(2) of a descriptor; its error is close's
// error. It commits the file, unless the closing process (or the one that
// opened the handle) still holds another descriptor of it: a shell's
// dup2-and-close of `> f`, or a child's exec closing an inherited
// descriptor. That later close commits, so one logical write is one PUT.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	n := h.node
	if !h.write {
		return 0
	}
	if n.persistClose(ctx) {
		// Written back: durable on local disk, uploaded soon. Another
		// descriptor still open (a dup) persists it again at its close.
		return 0
	}
	if n.fsys.stillOpen(n, h.pid, callerPid(ctx)) { // the opener first: a closer may be in the middle of an exec
		return 0
	}
	if err := n.commit(ctx); err != nil {
		return n.fsys.errno("close", n.path(), err)
	}
	return 0
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if err := h.node.flushDeferred(ctx); err != nil {
		return h.node.fsys.errno("fsync", h.node.path(), err)
	}
	if err := h.node.commit(ctx); err != nil {
		return h.node.fsys.errno("fsync", h.node.path(), err)
	}
	h.node.settled()
	return 0
}

// Release frees the handle. The kernel ignores its result: a file still
// dirty here (its last Flush was skipped, or never came) is committed and
// a failure logged; after a failed Flush nothing is retried (close already
// reported it).
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	h.ra.Close()
	h.mu.Unlock()
	h.node.release(h)
	return 0
}

// Getattr through an open descriptor (fstat, and the kernel before each
// read when attr-ttl has passed) answers from what the mount knows, without
// asking the store: the descriptor reads the version it opened whatever
// the store holds now (every read is conditioned on its ETag), so a HEAD
// per read (5x slower reads at attr-ttl 0) would tell it nothing. stat by
// name still asks after attr-ttl.
func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	n := h.node
	n.mu.Lock()
	known := n.stored || n.content != nil
	n.mu.Unlock()
	if !known {
		if err := n.refresh(ctx); err != nil {
			return n.fsys.errno("getattr", n.path(), err)
		}
	}
	n.fillAttr(&out.Attr)
	return 0
}

func (h *handle) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.node.Setattr(ctx, h, in, out)
}

// Allocate (fallocate) grows the file like a truncate; punching holes is
// not something an object can keep.
func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if mode != 0 {
		return syscall.EOPNOTSUPP
	}
	n := h.node
	n.mu.Lock()
	cur := n.info.Size
	if n.content != nil {
		cur = n.size
	}
	n.mu.Unlock()
	if end := int64(off + size); end > cur {
		if err := n.truncate(ctx, end); err != nil {
			return n.fsys.errno("fallocate", n.path(), err)
		}
	}
	return 0
}

func (n *fileNode) release(h *handle) {
	n.mu.Lock()
	delete(n.handles, h)
	if h.write {
		n.writers--
	}
	pending := n.wbID != ""
	last := n.writers == 0 && (!n.unlinked || len(n.handles) == 0) && !pending
	retry := n.writers == 0 && n.content != nil && !n.commitFailed && !pending
	n.mu.Unlock()
	if retry && n.persistClose(context.Background()) {
		retry, last = false, false // written back (its last Flush was skipped)
	}
	if retry {
		ctx, cancel := n.fsys.background()
		if err := n.commit(ctx); err != nil {
			n.fsys.cfg.Log.Error("data not stored: the last close of the file came without a successful commit", "path", n.path(), "err", err)
		}
		cancel()
	}
	if last {
		n.dropContent()
	}
	n.mu.Lock()
	del := ""
	ghost := len(n.handles) == 0 && !n.stored && !n.unlinked && n.content == nil
	closed := len(n.handles) == 0
	if closed {
		del, n.deleteAtClose = n.deleteAtClose, ""
	}
	n.mu.Unlock()
	if del != "" {
		n.fsys.del.add(n.bucket, del)
	}
	if ghost {
		n.forgetName() // created, never stored (its upload failed): the name goes
	}
	if closed {
		n.settled() // a file made on a write-back mount and stored at close: its inode need not stay
	}
}

// forgetName drops the node's name from its parent's listing and the
// kernel's cache.
func (n *fileNode) forgetName() {
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	if d, ok := parent.Operations().(*dirNode); ok {
		d.listingDel(name)
	}
	n.fsys.notifyEntry(parent, name)
}

// dropContent frees the content once no handle writes (reads then come
// from the object the content was committed to), or, for an unlinked
// file, once no handle is left.
func (n *fileNode) dropContent() {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	c := n.content
	if n.writers > 0 || c == nil || n.unlinked && len(n.handles) > 0 || n.wbID != "" {
		n.mu.Unlock()
		return // still written, read while unlinked, or written back and not uploaded
	}
	n.content, n.commitFailed = nil, false
	n.mu.Unlock()
	c.Close()
}
