package fs

import (
	"strings"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/listing"
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
	f.ahead.Drop(bucket, dir[:strings.LastIndex(dir, "/")+1])
	if strings.HasSuffix(key, "/") {
		f.ahead.Drop(bucket, key)
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

// Event is Changed for a bucket event made at `at` (the server's time;
// zero when unknown). An event this mount caused (an object it just
// stored with that ETag, a name it already removed), or one older than
// what the mount knows of the key (the listen API delivers late, in
// bursts), changes nothing: the kernel keeps its inodes. An event under
// a directory the kernel has not looked into reaches the deepest one it
// has: a new name there (a prefix that did not exist: the kernel may hold
// a negative entry for it) is forgotten, so it shows at once.
func (f *FS) Event(bucket, key, etag string, removed bool, at time.Time) {
	parent, name := f.findParent(bucket, key)
	if parent == nil {
		if !removed {
			f.newAncestor(bucket, key)
		}
		return
	}
	d, ok := parent.Operations().(*dirNode)
	if ok && strings.HasSuffix(key, "/") && !removed && d.hasDir(name) {
		if ch := d.GetChild(name); ch != nil {
			if sub, ok := ch.Operations().(*dirNode); ok {
				sub.mu.Lock()
				// Every empty marker has the same ETag: it is this mount's
				// own only if this mount stored the marker a moment ago.
				own := etag != "" && sub.marker.ETag == strings.Trim(etag, `"`) && time.Since(sub.markerStored) <= ownMarkerWindow
				sub.mu.Unlock()
				if own {
					return // the marker as this mount stored it
				}
				sub.setMarker(store.ObjectInfo{}, time.Time{}) // a marker changed: attributes reload
				sub.mu.Lock()
				sub.attrAt = time.Time{}
				sub.mu.Unlock()
				f.notifyContent(ch)
			}
		}
		return
	}
	if ok && (d.knows(name, strings.Trim(etag, `"`), removed, at) || d.knowsNewer(name, at)) {
		return
	}
	if f.cfg.Disk != nil && !strings.HasSuffix(key, "/") {
		if removed {
			f.cfg.Disk.Drop(bucket, key, "")
		} else if etag := strings.Trim(etag, `"`); etag != "" {
			f.cfg.Disk.Drop(bucket, key, etag) // older versions go at once
		}
	}
	f.Changed(bucket, key)
	if removed && ok {
		d.vanishIfImplicit()
	}
}

// knowsNewer says whether what this directory knows of name (the node's
// object or the listed one) was stored after `at`: an event from before
// that is history.
func (d *dirNode) knowsNewer(name string, at time.Time) bool {
	if at.IsZero() {
		return false
	}
	if ch := d.GetChild(name); ch != nil {
		if n, ok := ch.Operations().(*fileNode); ok {
			n.mu.Lock()
			newer := n.stored && !n.unlinked && n.info.LastModified.After(at)
			n.mu.Unlock()
			if newer {
				return true
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listing != nil {
		if i, ok := d.listing.Index(name); ok && !d.listing.Entries[i].IsDir {
			return d.listing.Entries[i].Info.LastModified.After(at)
		}
	}
	return false
}

// vanishIfImplicit: after a removal in a directory that exists only as a
// prefix (no marker object), the directory may be gone; its parent's
// listing forgets it, so the next readdir there asks the store.
func (d *dirNode) vanishIfImplicit() {
	d.mu.Lock()
	implicit := d.marker.Key == ""
	d.mu.Unlock()
	if !implicit {
		return
	}
	name, parent := d.Parent()
	if parent == nil {
		return
	}
	if p, ok := parent.Operations().(*dirNode); ok {
		p.forget(name)
	}
}

// newAncestor handles a created key under a directory the kernel has not
// looked into: the deepest known directory on its path forgets the next
// name (and the kernel its negative entry for it).
func (f *FS) newAncestor(bucket, key string) {
	dir, name := f.deepestKnown(bucket, key)
	if dir == nil {
		return
	}
	switch d := dir.Operations().(type) {
	case *dirNode:
		if d.hasDir(name) {
			return // known already: nothing new to show
		}
		d.forget(name)
	case *bucketsNode:
		d.forget()
	}
	f.notifyEntry(dir, name)
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
		if i, ok := d.listing.Index(name); ok {
			return d.listing.Entries[i].IsDir
		}
	}
	return false
}

// knows says whether this directory's view of name already is what an
// event says.
func (d *dirNode) knows(name, etag string, removed bool, at time.Time) bool {
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
	if d.arriving[name] > 0 {
		return true // this mount is storing it: its answer updates everything
	}
	var listed *listing.Entry
	if d.listing != nil {
		if i, ok := d.listing.Index(name); ok {
			listed = &d.listing.Entries[i]
		}
	}
	if removed {
		return gone && listed == nil
	}
	if listed == nil && gone && d.removedVersionLocked(name, etag, at) {
		return true // the creation of a version this mount removed since
	}
	return etag != "" && (childETag == etag || listed != nil && listed.Info.ETag == etag)
}

// ownMarkerWindow is how long after storing a directory's marker an event
// of a marker with its ETag is taken as that store's (webhook events come
// within milliseconds).
const ownMarkerWindow = 2 * time.Second

// ChangedPrefix says anything under bucket/prefix may have changed (a
// recursive removal or copy).
func (f *FS) ChangedPrefix(bucket, prefix string) {
	f.ahead.DropUnder(bucket, prefix)
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

// walkKnown follows key's path through the directories the kernel knows.
// It returns the directory holding key and key's name in it (complete
// true), or, when a directory on the way is unknown, the deepest known one
// and the next name in it (complete false); nil when key is not under
// this mount.
func (f *FS) walkKnown(bucket, key string) (dir *fusefs.Inode, name string, complete bool) {
	root := f.rootInode()
	if root == nil {
		return nil, "", false
	}
	dir = root
	if r, ok := root.Operations().(*dirNode); ok {
		if r.bucket != bucket || !strings.HasPrefix(key, r.pfx()) {
			return nil, "", false
		}
		key = strings.TrimPrefix(key, r.pfx())
	} else {
		if key == "" {
			return root, bucket, true
		}
		ch := root.GetChild(bucket)
		if ch == nil {
			return root, bucket, false
		}
		dir = ch
	}
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	for _, s := range segs[:len(segs)-1] {
		next := dir.GetChild(s)
		if next == nil {
			return dir, s, false
		}
		dir = next
	}
	return dir, segs[len(segs)-1], true
}

// deepestKnown returns the deepest directory on key's path the kernel
// knows, and the next name in it, when key's own directory is unknown.
func (f *FS) deepestKnown(bucket, key string) (*fusefs.Inode, string) {
	if dir, name, complete := f.walkKnown(bucket, key); !complete {
		return dir, name
	}
	return nil, ""
}

// findParent returns the inode of the directory holding key, and the name
// of key in it, when the kernel knows that directory.
func (f *FS) findParent(bucket, key string) (*fusefs.Inode, string) {
	if dir, name, complete := f.walkKnown(bucket, key); complete {
		return dir, name
	}
	return nil, ""
}
