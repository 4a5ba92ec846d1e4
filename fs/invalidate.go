package fs

import (
	"strings"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/store"
)

// Changes made elsewhere — by the control socket in this process, by
// bucket events from other clients — reach the mount here: kfs forgets
// what it knew of the names (listings, attributes) and tells the kernel
// to drop its entries and cached pages, so the next access asks the store.
// Only nodes the kernel knows are visited; nothing is fetched.

// Changed says the object bucket/key was created, overwritten or removed.
func (f *FS) Changed(bucket, key string) {
	dir := strings.TrimSuffix(key, "/")
	f.ahead.drop(bucket, dir[:strings.LastIndex(dir, "/")+1])
	if strings.HasSuffix(key, "/") {
		f.ahead.drop(bucket, key)
	}
	parent, name := f.findParent(bucket, key)
	if parent == nil {
		return
	}
	var child *fusefs.Inode
	switch d := parent.Operations().(type) {
	case *dirNode:
		d.forget(name)
		child = d.GetChild(name)
	case *bucketsNode:
		d.forget()
		child = d.GetChild(name)
	}
	if child != nil {
		switch n := child.Operations().(type) {
		case *fileNode:
			n.stale()
		case *dirNode:
			n.forgetAll()
		}
	}
	f.notifyEntry(parent, name)
	if child != nil {
		f.notifyContent(child)
	}
}

// Event is Changed for a bucket event: one this mount caused (an object it
// just stored with that ETag, a name it already removed) changes nothing.
func (f *FS) Event(bucket, key, etag string, removed bool) {
	parent, name := f.findParent(bucket, key)
	if parent == nil {
		return
	}
	d, ok := parent.Operations().(*dirNode)
	if ok && strings.HasSuffix(key, "/") && !removed && d.hasDir(name) {
		if ch := d.GetChild(name); ch != nil {
			if sub, ok := ch.Operations().(*dirNode); ok {
				sub.setMarker(store.ObjectInfo{}, time.Time{}) // a marker changed: attributes reload
				sub.mu.Lock()
				sub.attrAt = time.Time{}
				sub.mu.Unlock()
				f.notifyContent(ch)
			}
		}
		return
	}
	if ok && d.knows(name, strings.Trim(etag, `"`), removed) {
		return
	}
	f.Changed(bucket, key)
}

// hasDir says whether name is a directory this mount knows.
func (d *dirNode) hasDir(name string) bool {
	if ch := d.GetChild(name); ch != nil {
		_, ok := ch.Operations().(*dirNode)
		return ok
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listing != nil {
		if i, ok := d.listing.byName[name]; ok {
			return d.listing.entries[i].isDir
		}
	}
	return false
}

// knows says whether this directory's view of name already is what an
// event says.
func (d *dirNode) knows(name, etag string, removed bool) bool {
	var childETag string
	gone := true
	if ch := d.GetChild(name); ch != nil {
		if n, ok := ch.Operations().(*fileNode); ok {
			if n.busy.Load() > 0 {
				return true // this mount is storing it: the store's answer updates everything
			}
			n.mu.Lock()
			childETag, gone = n.info.ETag, n.unlinked || !n.stored
			n.mu.Unlock()
		} else {
			gone = false
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var listed *dirEntry
	if d.listing != nil {
		if i, ok := d.listing.byName[name]; ok {
			listed = &d.listing.entries[i]
		}
	}
	if removed {
		return gone && listed == nil
	}
	return etag != "" && (childETag == etag || listed != nil && listed.info.ETag == etag)
}

// ChangedPrefix says anything under bucket/prefix may have changed (a
// recursive removal or copy).
func (f *FS) ChangedPrefix(bucket, prefix string) {
	f.ahead.dropUnder(bucket, prefix)
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		if r := f.bucketDir(bucket); r != nil {
			f.forgetTree(r)
		}
		return
	}
	f.Changed(bucket, prefix)
	parent, name := f.findParent(bucket, prefix)
	if parent == nil {
		return
	}
	if ch := parent.GetChild(name); ch != nil {
		f.forgetTree(ch)
	}
}

func (f *FS) forgetTree(n *fusefs.Inode) {
	switch op := n.Operations().(type) {
	case *dirNode:
		op.forgetAll()
	case *fileNode:
		op.stale()
	}
	for _, ch := range n.Children() {
		f.forgetTree(ch)
	}
	f.notifyContent(n)
}

// stale makes the next getattr or open ask the store.
func (n *fileNode) stale() {
	n.mu.Lock()
	n.infoAt = time.Time{}
	n.mu.Unlock()
}

// bucketDir is the directory node of bucket's root (nil when not known).
func (f *FS) bucketDir(bucket string) *fusefs.Inode {
	root := f.rootInode()
	if root == nil {
		return nil
	}
	switch r := root.Operations().(type) {
	case *bucketsNode:
		return r.GetChild(bucket)
	case *dirNode:
		if r.bucket == bucket {
			return root
		}
	}
	return nil
}

// findParent returns the inode of the directory holding key, and the name
// of key in it, when the kernel knows that directory.
func (f *FS) findParent(bucket, key string) (*fusefs.Inode, string) {
	root := f.rootInode()
	if root == nil {
		return nil, ""
	}
	dir := root
	if r, ok := root.Operations().(*dirNode); ok {
		if r.bucket != bucket || !strings.HasPrefix(key, r.pfx()) {
			return nil, ""
		}
		key = strings.TrimPrefix(key, r.pfx())
	} else {
		if key == "" {
			return root, bucket
		}
		if dir = root.GetChild(bucket); dir == nil {
			return nil, ""
		}
	}
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	for _, s := range segs[:len(segs)-1] {
		if dir = dir.GetChild(s); dir == nil {
			return nil, ""
		}
	}
	return dir, segs[len(segs)-1]
}
