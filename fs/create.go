package fs

import (
	"context"
	"errors"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/fs/listing"
	"kfs/fs/store"
)

// Creating names: files, directories, special files, symbolic links. Each
// keeps this mount's listing of the parent in step, so a name made here is
// seen here at once.

var (
	_ = (fusefs.NodeCreater)((*dirNode)(nil))
	_ = (fusefs.NodeMkdirer)((*dirNode)(nil))
	_ = (fusefs.NodeMknoder)((*dirNode)(nil))
	_ = (fusefs.NodeSymlinker)((*dirNode)(nil))
	_ = (fusefs.NodeLinker)((*dirNode)(nil))
	_ = (fusefs.NodeReadlinker)((*fileNode)(nil))
)

// writable refuses changes on a read-only mount and names Linux cannot
// have.
func (d *dirNode) writable(name string) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if len(name) > listing.MaxNameLen || len(d.pfx())+len(name)+1 > store.MaxKeyLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}

// callerAttrs are the attributes a new file or directory stores: only those
// that differ from what the mount shows by default (its --uid, --gid and
// modes), so a plain `cp` stores no metadata (and PUTs faster). Special
// files always store their mode (it says what they are).
func (f *FS) callerAttrs(ctx context.Context, mode uint32) posix {
	var a posix
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		if mode&0o7777 != f.cfg.FileMode {
			a.mode = mode
		}
	case syscall.S_IFDIR:
		if mode&0o7777 != f.cfg.DirMode {
			a.mode = mode
		}
	default:
		a.mode = mode
	}
	if c, ok := fuse.FromContext(ctx); ok {
		if c.Uid != f.cfg.UID {
			uid := c.Uid
			a.uid = &uid
		}
		if c.Gid != f.cfg.GID {
			gid := c.Gid
			a.gid = &gid
		}
	}
	return a
}

func (d *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	if e := d.writable(name); e != 0 {
		return nil, nil, 0, e
	}
	n, h, err := d.create(ctx, name, flags, mode)
	if err != nil {
		return nil, nil, 0, d.fsys.errno("create", d.path(name), err)
	}
	n.fillAttr(&out.Attr)
	if d.fsys.wb != nil {
		// Written back, it lives only here until uploaded: the kernel
		// must not forget it (settled() ends that).
		n.mu.Lock()
		n.persistent = true
		n.mu.Unlock()
		return d.NewPersistentInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG}), h, 0, 0
	}
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG}), h, 0, 0
}

func (d *dirNode) create(ctx context.Context, name string, flags, mode uint32) (*fileNode, *handle, error) {
	key := d.pfx() + name
	if err := d.fsys.del.flushIfPending(ctx, d.bucket, key); err != nil {
		return nil, nil, err
	}
	now := d.fsys.now()
	info := store.ObjectInfo{Key: key, LastModified: now}
	n := newFileNode(d.fsys, d.bucket, key, syscall.S_IFREG, info, false)
	n.pending = d.fsys.callerAttrs(ctx, syscall.S_IFREG|mode&0o7777)
	if _, err := n.contentFor(true); err != nil {
		return nil, nil, err
	}
	n.wtime, n.dirty = now, true
	h, err := n.open(ctx, flags, true)
	if err != nil {
		n.dropContent()
		return nil, nil, err
	}
	d.listingPut(listing.Entry{Name: name, Info: info})
	d.touch()
	return n, h, nil
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if e := d.writable(name); e != 0 {
		return nil, e
	}
	key := d.pfx() + name + "/"
	meta := d.fsys.callerAttrs(ctx, syscall.S_IFDIR|mode&0o7777).toMeta(nil)
	done := d.incoming(name) // the marker's event may come before the listing says it
	defer done()
	info, err := d.fsys.putMarker(ctx, d.bucket, key, meta)
	if err != nil && !errors.Is(err, errNoDirMeta) { // without metadata kept, the directory shows the defaults
		return nil, d.fsys.errno("mkdir", d.path(name), err)
	}
	now := d.fsys.now()
	n := newDirNode(d.fsys, d.bucket, key)
	n.marker, n.attrAt, n.markerStored = info, now, now
	n.listing = listing.New(now) // empty and complete (for the negative TTL): nothing to ask the store
	n.listing.Complete, n.listing.Own = true, true
	n.mu.Lock()
	n.attrLocked(&out.Attr)
	n.mu.Unlock()
	d.listingPut(listing.Entry{Name: name, IsDir: true, Seen: now, Info: info, Marker: true}) // its marker's event is then known as this mount's
	d.touch()
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Mknod makes a regular file (an empty object) or a FIFO, socket or device
// node (an empty object whose mode, and rdev, say what it is).
func (d *dirNode) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if e := d.writable(name); e != 0 {
		return nil, e
	}
	typ := mode & syscall.S_IFMT
	switch typ {
	case 0:
		typ = syscall.S_IFREG
	case syscall.S_IFREG, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	default:
		return nil, syscall.EINVAL
	}
	a := d.fsys.callerAttrs(ctx, typ|mode&0o7777)
	if typ == syscall.S_IFCHR || typ == syscall.S_IFBLK {
		a.rdev = rdev
	}
	n, err := d.putEmpty(ctx, name, typ, a, "")
	if err != nil {
		return nil, d.fsys.errno("mknod", d.path(name), err)
	}
	n.fillAttr(&out.Attr)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: typ}), 0
}

// putEmpty stores a small object (empty, or a link's target) for a new name.
func (d *dirNode) putEmpty(ctx context.Context, name string, typ uint32, a posix, body string) (*fileNode, error) {
	key := d.pfx() + name
	if err := d.fsys.del.flushIfPending(ctx, d.bucket, key); err != nil {
		return nil, err
	}
	meta := a.toMeta(nil)
	ct := contentType(key)
	if typ != syscall.S_IFREG {
		ct = "application/octet-stream"
	}
	info, err := d.fsys.store.Put(ctx, store.PutRequest{Bucket: d.bucket, Key: key, Body: strings.NewReader(body), Size: int64(len(body)), Options: store.PutOptions{ContentType: ct, Meta: meta}})
	if err != nil {
		return nil, err
	}
	info.Key, info.Size, info.Meta, info.ContentType = key, int64(len(body)), meta, ct
	d.listingPut(listing.Entry{Name: name, Info: info})
	d.touch()
	return newFileNode(d.fsys, d.bucket, key, typ, info, true), nil
}

func (d *dirNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	d.fsys.logOnce("hard links are not possible on object storage: an object has one name (ENOTSUP)")
	return nil, syscall.ENOTSUP
}

// Symlink stores the link as s3fs does: the object's body is the target and
// its mode metadata says S_IFLNK.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if e := d.writable(name); e != 0 {
		return nil, e
	}
	a := d.fsys.callerAttrs(ctx, syscall.S_IFLNK|0o777)
	n, err := d.putEmpty(ctx, name, syscall.S_IFLNK, a, target)
	if err != nil {
		return nil, d.fsys.errno("symlink", d.path(name), err)
	}
	n.fillAttr(&out.Attr)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFLNK}), 0
}

func (n *fileNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.mu.Lock()
	info, key := n.info, n.key
	n.mu.Unlock()
	if info.Size > 4096 {
		return nil, syscall.EINVAL
	}
	buf := make([]byte, info.Size)
	m, err := n.fsys.store.ReadAt(ctx, store.ReadRequest{Bucket: n.bucket, Key: key}, buf)
	if err != nil {
		return nil, n.fsys.errno("readlink", n.path(), err)
	}
	return buf[:m], 0
}
