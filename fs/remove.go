package fs

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/store"
)

var (
	_ = (fusefs.NodeUnlinker)((*dirNode)(nil))
	_ = (fusefs.NodeRmdirer)((*dirNode)(nil))
)

// keepOpenLimit is the largest file whose bytes are fetched when it is
// unlinked or replaced while open, so its handles keep reading it and its
// object goes at once; a larger one keeps its object until the last close.
const keepOpenLimit = 64 << 20

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := d.writable(name); e != 0 {
		return e
	}
	key := d.pfx() + name
	if ch := d.GetChild(name); ch != nil {
		if n, ok := ch.Operations().(*fileNode); ok {
			if err := n.detach(ctx, true); err != nil {
				return d.fsys.errno("unlink", d.path(name), err)
			}
			n.settled()
			d.listingDel(name)
			d.touch()
			return 0
		}
	}
	d.fsys.del.add(d.bucket, key)
	d.listingDel(name)
	d.touch()
	return 0
}

// detach makes the node anonymous: open handles go on reading and writing
// it, nothing of it is stored again, and (with del) its object is deleted:
// at once, or for a large file still open, at its last close.
func (n *fileNode) detach(ctx context.Context, del bool) error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	if n.unlinked {
		n.mu.Unlock()
		return nil
	}
	key, stored, open, size, shadows := n.key, n.stored, len(n.handles) > 0, n.info.Size, n.shadows
	c := n.content
	n.mu.Unlock()
	if stored && open && size <= keepOpenLimit {
		var err error
		if c == nil {
			c, err = n.contentFor(false)
		}
		if err == nil {
			err = c.Fetch(ctx)
		}
		if err != nil {
			return err
		}
	}
	n.endDeferred() // the object goes: nothing to store on it
	n.dropPending() // written back and not uploaded: nothing is sent
	n.mu.Lock()
	n.unlinked, n.shadows = true, false
	c = n.content
	deferred := del && stored && open && size > keepOpenLimit
	if deferred {
		n.deleteAtClose = key
	}
	n.mu.Unlock()
	if c != nil {
		c.Detach()
	}
	if del && (stored && !deferred || !stored && shadows) {
		// An unstored file renamed over an object takes that object with
		// it: else the name would show the replaced file again.
		n.fsys.del.add(n.bucket, key)
	}
	return nil
}

// Rmdir removes an empty directory (its marker object, if any).
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := d.writable(name); e != 0 {
		return e
	}
	if err := d.rmdir(ctx, name); err != nil {
		return d.fsys.errno("rmdir", d.path(name), err)
	}
	return 0
}

func (d *dirNode) rmdir(ctx context.Context, name string) error {
	prefix := d.pfx() + name + "/"
	if err := d.fsys.del.flush(ctx); err != nil {
		return err
	}
	if d.holdsLocal(name) {
		return syscall.ENOTEMPTY // files not in the store yet (being created, written back)
	}
	if err := d.fsys.checkEmpty(ctx, d.bucket, prefix); err != nil {
		if ch := d.GetChild(name); ch != nil && errors.Is(err, syscall.ENOTEMPTY) {
			if sub, ok := ch.Operations().(*dirNode); ok {
				// The store holds what this mount's listing lacks (made
				// elsewhere, or a key MinIO did not list under an object of
				// the same name): the next readdir lists it afresh.
				sub.forgetAll()
			}
		}
		return err
	}
	if err := d.fsys.store.Remove(ctx, store.ObjectRef{Bucket: d.bucket, Key: prefix}); err != nil {
		return err
	}
	if d.s3fsDirObject(ctx, name) {
		if err := d.fsys.store.Remove(ctx, store.ObjectRef{Bucket: d.bucket, Key: strings.TrimSuffix(prefix, "/")}); err != nil {
			return err
		}
	}
	if ch := d.GetChild(name); ch != nil {
		if sub, ok := ch.Operations().(*dirNode); ok {
			sub.forgetAll()
			sub.setMarker(store.ObjectInfo{}, d.fsys.now())
		}
	}
	d.listingDel(name)
	d.touch()
	return nil
}

// holdsLocal says whether subdirectory name holds files only this mount
// has so far.
func (d *dirNode) holdsLocal(name string) bool {
	if ch := d.GetChild(name); ch != nil {
		if sub, ok := ch.Operations().(*dirNode); ok {
			return len(sub.localEntries()) > 0
		}
	}
	return false
}

// checkEmpty returns ENOTEMPTY when anything but the marker is under prefix.
func (f *FS) checkEmpty(ctx context.Context, bucket, prefix string) error {
	p, err := f.store.List(ctx, store.ListRequest{Bucket: bucket, Prefix: prefix, Max: 2})
	if err != nil {
		return err
	}
	for _, o := range p.Objects {
		if o.Key != prefix && !f.del.isPending(bucket, o.Key) {
			return syscall.ENOTEMPTY
		}
	}
	if len(p.Prefixes) > 0 || p.NextToken != "" {
		return syscall.ENOTEMPTY
	}
	return nil
}

// FinishDelete deletes an object a killed run had unlinked (at) but not
// yet deleted, unless it was written again since (then it is another
// object, and stays). It reports whether it deleted.
func (f *FS) FinishDelete(ctx context.Context, bucket, key string, at time.Time) (bool, error) {
	info, err := f.store.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: key})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if info.LastModified.After(at) {
		f.cfg.Log.Warn("an unlinked file was written again before its deletion was sent; kept", "bucket", bucket, "key", key)
		return false, nil
	}
	if err := f.store.Remove(ctx, store.ObjectRef{Bucket: bucket, Key: key}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return true, nil
}

// s3fsDirObject says whether the directory name is (also) s3fs's object
// without the slash, which goes with it on rmdir and rename.
func (d *dirNode) s3fsDirObject(ctx context.Context, name string) bool {
	key := d.pfx() + name
	if ch := d.GetChild(name); ch != nil {
		if sub, ok := ch.Operations().(*dirNode); ok {
			sub.mu.Lock()
			k, learnt := sub.marker.Key, !sub.attrAt.IsZero()
			sub.mu.Unlock()
			if k == key || learnt {
				return k == key
			}
		}
	}
	o, err := d.fsys.store.Stat(ctx, store.ObjectRef{Bucket: d.bucket, Key: key})
	return err == nil && isDirObject(o)
}

// moveDirObject moves s3fs's object of a directory (its name without the
// slash) with the directory, times kept.
func (d *dirNode) moveDirObject(ctx context.Context, srcKey, dstKey string) error {
	o, err := d.fsys.store.Stat(ctx, store.ObjectRef{Bucket: d.bucket, Key: srcKey})
	if err != nil {
		return err
	}
	if _, err := d.fsys.copyKeepingTimes(ctx, d.bucket, o, dstKey); err != nil {
		return err
	}
	return d.fsys.store.Remove(ctx, store.ObjectRef{Bucket: d.bucket, Key: srcKey})
}
