package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Namespace changes: create, mkdir, unlink, rmdir, rename, symlink. Each
// keeps this mount's directory listings in step, so a name made or removed
// here is seen here at once.

var (
	_ = (fusefs.NodeCreater)((*dirNode)(nil))
	_ = (fusefs.NodeMkdirer)((*dirNode)(nil))
	_ = (fusefs.NodeUnlinker)((*dirNode)(nil))
	_ = (fusefs.NodeRmdirer)((*dirNode)(nil))
	_ = (fusefs.NodeRenamer)((*dirNode)(nil))
	_ = (fusefs.NodeSymlinker)((*dirNode)(nil))
	_ = (fusefs.NodeLinker)((*dirNode)(nil))
	_ = (fusefs.NodeSetattrer)((*dirNode)(nil))
	_ = (fusefs.NodeReadlinker)((*fileNode)(nil))
)

// listingPut adds or replaces an entry in the cached listing.
func (d *dirNode) listingPut(e dirEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listing == nil {
		return
	}
	if i, ok := d.listing.byName[e.name]; ok {
		d.listing.entries[i] = e
		return
	}
	d.listing.add(e)
}

// listingDel drops an entry from the cached listing.
func (d *dirNode) listingDel(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.listing
	if l == nil {
		return
	}
	i, ok := l.byName[name]
	if !ok {
		return
	}
	l.entries = append(l.entries[:i:i], l.entries[i+1:]...)
	delete(l.byName, name)
	for j := i; j < len(l.entries); j++ {
		l.byName[l.entries[j].name] = j
	}
}

func (d *dirNode) writable(name string) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if len(name) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}

// callerAttrs are the attributes a new file or directory stores: only those
// that differ from what the mount shows by default (its --uid, --gid and
// modes), so a plain `cp` stores no metadata (and PUTs faster).
func (f *FS) callerAttrs(ctx context.Context, mode uint32) posixAttrs {
	var a posixAttrs
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
	key := d.pfx() + name
	if err := d.fsys.del.flushIfPending(ctx, d.bucket, key); err != nil {
		return nil, nil, 0, toErrno(d.fsys.cfg.Log, "create "+d.path(name), err)
	}
	info := ObjectInfo{Key: key, LastModified: time.Now()}
	n := newFileNode(d.fsys, d.bucket, key, info, false)
	n.pending = d.fsys.callerAttrs(ctx, syscall.S_IFREG|mode&0o7777)
	info.Meta = n.pending.toMeta(nil)
	n.info = info
	h, err := n.openWriter(true)
	if err != nil {
		return nil, nil, 0, toErrno(d.fsys.cfg.Log, "create "+d.path(name), err)
	}
	d.listingPut(dirEntry{name: name, info: info})
	d.fsys.fileAttr(&out.Attr, info)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG}), h, 0, 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if e := d.writable(name); e != 0 {
		return nil, e
	}
	key := d.pfx() + name + "/"
	meta := d.fsys.callerAttrs(ctx, syscall.S_IFDIR|mode&0o7777).toMeta(nil)
	if _, err := d.fsys.store.Put(ctx, d.bucket, key, bytes.NewReader(nil), 0, PutOptions{ContentType: "application/x-directory", Meta: meta}); err != nil {
		return nil, toErrno(d.fsys.cfg.Log, "mkdir "+d.path(name), err)
	}
	d.listingPut(dirEntry{name: name, isDir: true})
	d.fsys.dirAttr(&out.Attr, time.Now())
	n := newDirNode(d.fsys, d.bucket, key, time.Now())
	n.listing = newListing(time.Now()) // empty and complete: nothing to ask the store
	n.listing.complete = true
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := d.writable(name); e != 0 {
		return e
	}
	key := d.pfx() + name
	stored := true
	if ch := d.GetChild(name); ch != nil {
		if f, ok := ch.Operations().(*fileNode); ok {
			f.mu.Lock()
			stored = f.stored
			f.mu.Unlock()
		}
	}
	if stored {
		d.fsys.del.add(d.bucket, key)
	}
	d.listingDel(name)
	return 0
}

// Rmdir removes an empty directory (its marker object, if any).
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := d.writable(name); e != 0 {
		return e
	}
	prefix := d.pfx() + name + "/"
	if err := d.fsys.del.flush(ctx); err != nil {
		return toErrno(d.fsys.cfg.Log, "rmdir "+d.path(name), err)
	}
	if err := d.checkEmpty(ctx, prefix); err != nil {
		return toErrno(d.fsys.cfg.Log, "rmdir "+d.path(name), err)
	}
	if err := d.fsys.store.Remove(ctx, d.bucket, prefix); err != nil {
		return toErrno(d.fsys.cfg.Log, "rmdir "+d.path(name), err)
	}
	d.listingDel(name)
	return 0
}

// checkEmpty returns ENOTEMPTY when anything but the marker is under prefix.
func (d *dirNode) checkEmpty(ctx context.Context, prefix string) error {
	p, err := d.fsys.store.List(ctx, d.bucket, prefix, "", 2, false)
	if err != nil {
		return err
	}
	if len(p.Prefixes) > 0 || len(p.Objects) > 1 || len(p.Objects) == 1 && p.Objects[0].Key != prefix {
		return syscall.ENOTEMPTY
	}
	return nil
}

func (d *dirNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	d.fsys.logOnce("hard links are not supported on object storage (ENOTSUP)")
	return nil, syscall.ENOTSUP
}

// Symlink stores the link as s3fs does: the object's body is the target and
// its mode metadata says S_IFLNK.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if e := d.writable(name); e != 0 {
		return nil, e
	}
	key := d.pfx() + name
	if err := d.fsys.del.flushIfPending(ctx, d.bucket, key); err != nil {
		return nil, toErrno(d.fsys.cfg.Log, "symlink "+d.path(name), err)
	}
	meta := d.fsys.callerAttrs(ctx, syscall.S_IFLNK|0o777).toMeta(nil)
	info, err := d.fsys.store.Put(ctx, d.bucket, key, strings.NewReader(target), int64(len(target)), PutOptions{ContentType: "application/octet-stream", Meta: meta})
	if err != nil {
		return nil, toErrno(d.fsys.cfg.Log, "symlink "+d.path(name), err)
	}
	info.Key, info.Size, info.Meta = key, int64(len(target)), meta
	d.listingPut(dirEntry{name: name, info: info})
	d.fsys.fileAttr(&out.Attr, info)
	return d.NewInode(ctx, newFileNode(d.fsys, d.bucket, key, info, true), fusefs.StableAttr{Mode: syscall.S_IFLNK}), 0
}

func (f *fileNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	info, _, _ := f.snapshot()
	if info.Size > 4096 {
		return nil, syscall.EINVAL
	}
	buf := make([]byte, info.Size)
	n, err := f.fsys.store.ReadAt(ctx, f.bucket, f.objKey(), "", buf, 0)
	if err != nil {
		return nil, toErrno(f.fsys.cfg.Log, "readlink "+f.bucket+"/"+f.objKey(), err)
	}
	return buf[:n], 0
}

// Setattr on a directory: accepted (chmod, utimes of rsync and tar) but
// directories have no stored attributes of their own.
func (d *dirNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	d.fsys.dirAttr(&out.Attr, d.mtime)
	return 0
}

// Rename moves a file (server-side copy, then delete of the source: a
// reader of the target sees the old or the new object, never a mix) or a
// directory (every object under it copied first, then all deleted, so an
// interruption loses nothing).
func (d *dirNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := d.writable(newName); e != 0 {
		return e
	}
	nd, ok := newParent.(*dirNode)
	if !ok || nd.bucket != d.bucket {
		return syscall.EXDEV // mv falls back to copy and delete
	}
	if flags&^uint32(unixRenameNoreplace) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	err := d.rename(ctx, name, nd, newName, flags&unixRenameNoreplace != 0)
	if err != nil {
		return toErrno(d.fsys.cfg.Log, fmt.Sprintf("rename %s to %s", d.path(name), nd.path(newName)), err)
	}
	return 0
}

const unixRenameNoreplace = 1 // RENAME_NOREPLACE

func (d *dirNode) rename(ctx context.Context, name string, nd *dirNode, newName string, noReplace bool) error {
	if err := d.fsys.del.flushPrefix(ctx, d.bucket, d.pfx()+name); err != nil {
		return err
	}
	if err := d.fsys.del.flushPrefix(ctx, d.bucket, nd.pfx()+newName); err != nil {
		return err
	}
	src, err := d.lookupEntry(ctx, name)
	if err != nil {
		return err
	}
	dst, derr := nd.lookupEntry(ctx, newName)
	exists := derr == nil
	if derr != nil && !errors.Is(derr, os.ErrNotExist) {
		return derr
	}
	if exists && noReplace {
		return syscall.EEXIST
	}
	srcPrefix, dstPrefix := d.pfx()+name, nd.pfx()+newName
	if src.isDir {
		if exists && !dst.isDir {
			return syscall.ENOTDIR
		}
		if exists {
			if err := nd.checkEmpty(ctx, dstPrefix+"/"); err != nil {
				return err
			}
		}
		if err := d.fsys.moveTree(ctx, d.bucket, srcPrefix+"/", dstPrefix+"/"); err != nil {
			return err
		}
		if ch := d.GetChild(name); ch != nil {
			repoint(ch, srcPrefix+"/", dstPrefix+"/")
		}
	} else {
		if exists && dst.isDir {
			return syscall.EISDIR
		}
		if err := d.moveFile(ctx, name, src, dstPrefix); err != nil {
			return err
		}
		src.info.Key = dstPrefix
	}
	d.listingDel(name)
	src.name = newName
	nd.listingPut(src)
	return nil
}

// moveFile renames one object; a file still being created (no object yet)
// just changes the key its upload will use.
func (d *dirNode) moveFile(ctx context.Context, name string, src dirEntry, dstKey string) error {
	var fn *fileNode
	if ch := d.GetChild(name); ch != nil {
		fn, _ = ch.Operations().(*fileNode)
	}
	if fn != nil {
		fn.mu.Lock()
		stored := fn.stored
		if !stored {
			fn.key = dstKey
		}
		src.info = fn.info
		fn.mu.Unlock()
		if !stored {
			return nil
		}
	}
	info, err := d.fsys.store.Copy(ctx, d.bucket, src.info.Key, src.info.ETag, dstKey, nil)
	if err != nil {
		return err
	}
	if err := d.fsys.store.Remove(ctx, d.bucket, src.info.Key); err != nil {
		return err
	}
	if fn != nil {
		fn.setKey(dstKey)
		fn.committed(info)
	}
	return nil
}

// repoint rewrites the prefixes and keys of a renamed subtree's nodes.
func repoint(n *fusefs.Inode, from, to string) {
	switch op := n.Operations().(type) {
	case *dirNode:
		op.mu.Lock()
		op.prefix = to + strings.TrimPrefix(op.prefix, from)
		op.listing = nil
		op.mu.Unlock()
	case *fileNode:
		op.mu.Lock()
		op.key = to + strings.TrimPrefix(op.key, from)
		op.mu.Unlock()
	}
	for _, ch := range n.Children() {
		repoint(ch, from, to)
	}
}

// moveTree copies every object under from to the same name under to, then
// deletes the sources. Copies run 8 at a time; progress is logged.
func (f *FS) moveTree(ctx context.Context, bucket, from, to string) error {
	var keys []ObjectInfo
	if err := f.walk(ctx, bucket, from, func(o ObjectInfo) { keys = append(keys, o) }); err != nil {
		return err
	}
	start := time.Now()
	f.cfg.Log.Printf("rename %s/%s -> %s: copying %d objects", bucket, from, to, len(keys))
	var (
		mu    sync.Mutex
		first error
		done  int
		wg    sync.WaitGroup
	)
	work := make(chan ObjectInfo)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				_, err := f.store.Copy(ctx, bucket, o.Key, o.ETag, to+strings.TrimPrefix(o.Key, from), nil)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				done++
				if done%1000 == 0 {
					f.cfg.Log.Printf("rename %s/%s: %d of %d copied", bucket, from, done, len(keys))
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range keys {
		work <- o
	}
	close(work)
	wg.Wait()
	if first != nil {
		f.cfg.Log.Printf("rename %s/%s -> %s stopped, sources kept: %v", bucket, from, to, first)
		return first
	}
	names := make([]string, len(keys))
	for i, o := range keys {
		names[i] = o.Key
	}
	if err := f.store.RemoveMany(ctx, bucket, names); err != nil {
		return err
	}
	f.cfg.Log.Printf("rename %s/%s -> %s: %d objects in %v", bucket, from, to, len(keys), time.Since(start).Round(time.Millisecond))
	return nil
}

// walk calls fn for every object under prefix, depth first.
func (f *FS) walk(ctx context.Context, bucket, prefix string, fn func(ObjectInfo)) error {
	token := ""
	for {
		p, err := f.store.List(ctx, bucket, prefix, token, 1000, false)
		if err != nil {
			return err
		}
		for _, o := range p.Objects {
			fn(o)
		}
		for _, sub := range p.Prefixes {
			if err := f.walk(ctx, bucket, sub, fn); err != nil {
				return err
			}
		}
		if token = p.NextToken; token == "" {
			return nil
		}
	}
}
