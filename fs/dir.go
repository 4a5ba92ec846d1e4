package fs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/fs/listing"
	"kfs/fs/store"
)

// dirNode is a bucket or a prefix ("a/b/") of one. Its attributes live on
// its marker object ("a/b/", created when a prefix-only directory gets
// attributes); a directory without one shows the mount's defaults and the
// mount time. Changes of entries update its times as this mount sees them
// (not stored).
type dirNode struct {
	fusefs.Inode
	fsys    *FS
	bucket  string
	isRoot  bool      // the root of a bucket (or prefix) mount
	created time.Time // a bucket directory of an all-buckets mount: the bucket's creation

	mu           sync.Mutex       // protects the fields below
	prefix       string           // GUARDED_BY(mu): "" for the bucket itself, else ends in "/"; changes on rename
	listing      *listing.Listing // GUARDED_BY(mu): the last listing kfs made of this directory
	listWait     chan struct{}    // GUARDED_BY(mu): closed when a lookup-triggered listing ends
	listedAt     time.Time        // GUARDED_BY(mu): start of the last lookup-triggered listing
	changed      time.Time        // GUARDED_BY(mu): when an entry last changed (through this mount or an event)
	marker       store.ObjectInfo // GUARDED_BY(mu): the marker object (Key "": none)
	attrAt       time.Time        // GUARDED_BY(mu): when marker was learnt (zero: not yet)
	local        times            // GUARDED_BY(mu): times changed through this mount
	localExact   bool             // GUARDED_BY(mu): local's atime and mtime were set (utimes) where nothing stores them: shown as they are
	misses       int              // GUARDED_BY(mu): names missing from the listing verified since missWindow
	missWindow   time.Time        // GUARDED_BY(mu)
	tombs        map[string]tomb  // GUARDED_BY(mu): versions of names this mount removed lately (listing.go)
	arriving     map[string]int   // GUARDED_BY(mu): names this mount is storing by a copy right now (incoming)
	markerStored time.Time        // GUARDED_BY(mu): when this mount last stored the marker (its event is then its own)
	rootAttr     posix            // GUARDED_BY(mu): attributes of a bucket root (kept in memory)
	deferID      string           // GUARDED_BY(mu): journal id of attributes held in marker.Meta until the times write stores them (write-back)

	xattrMu sync.Mutex // serialises attribute read-modify-writes; taken before mu
}

var (
	_ = (fusefs.NodeLookuper)((*dirNode)(nil))
	_ = (fusefs.NodeOpendirHandler)((*dirNode)(nil))
	_ = (fusefs.NodeGetattrer)((*dirNode)(nil))
	_ = (fusefs.NodeSetattrer)((*dirNode)(nil))
	_ = (fusefs.NodeStatfser)((*dirNode)(nil))
	_ = (fusefs.NodeFsyncer)((*dirNode)(nil))
)

func newDirNode(f *FS, bucket, prefix string) *dirNode {
	return &dirNode{fsys: f, bucket: bucket, prefix: prefix}
}

func (d *dirNode) pfx() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prefix
}

func (d *dirNode) path(name string) string { return d.bucket + "/" + d.pfx() + name }

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// touch records that an entry changed here (create, remove, rename); a
// directory with a marker object stores its new times soon (dirTimes).
func (d *dirNode) touch() {
	now := time.Now()
	d.mu.Lock()
	d.local.mtime, d.local.ctime = now, now
	explicit := d.marker.Key != "" && d.prefix != ""
	d.mu.Unlock()
	if explicit {
		d.fsys.dirt.add(d)
	}
}

// loadMarker learns the marker object when it is unknown or older than the
// attribute TTL.
func (d *dirNode) loadMarker(ctx context.Context) error {
	d.mu.Lock()
	prefix, fresh, s3fsDir := d.prefix, d.markerFreshLocked(), d.marker.Key != "" && d.marker.Key == strings.TrimSuffix(d.prefix, "/")
	d.mu.Unlock()
	if prefix == "" || fresh {
		return nil
	}
	at := time.Now()
	info, err := d.fsys.statMarker(ctx, d.bucket, prefix)
	if err == nil && info.Key == "" && s3fsDir {
		// The directory is s3fs's object without the slash: ask it again.
		if o, err := d.fsys.store.Stat(ctx, store.ObjectRef{Bucket: d.bucket, Key: strings.TrimSuffix(prefix, "/")}); err == nil && isDirObject(o) {
			info = o
		}
	}
	if err != nil {
		return err
	}
	d.setMarker(info, at)
	return nil
}

// markerFreshLocked says whether the marker was learnt within the
// attribute TTL.
func (d *dirNode) markerFreshLocked() bool {
	return !d.attrAt.IsZero() && time.Since(d.attrAt) <= d.fsys.cfg.AttrTTL
}

// statMarker asks the store for the marker object prefix; a directory
// without one gets ObjectInfo{} and no error.
func (f *FS) statMarker(ctx context.Context, bucket, prefix string) (store.ObjectInfo, error) {
	info, err := f.store.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: prefix})
	if errors.Is(err, store.ErrNotFound) {
		return store.ObjectInfo{}, nil
	}
	return info, err
}

// setMarker records what the store said of the marker (at `at`).
func (d *dirNode) setMarker(info store.ObjectInfo, at time.Time) {
	d.mu.Lock()
	if !at.Before(d.attrAt) && d.deferID == "" { // attributes held back are newer than any store answer
		d.marker, d.attrAt = info, at
	}
	d.mu.Unlock()
}

// attrLocked fills a directory's attributes.
func (d *dirNode) attrLocked(out *fuse.Attr) {
	a := d.rootAttr
	t := times{atime: d.fsys.mounted, mtime: d.fsys.mounted, ctime: d.fsys.mounted}
	if !d.created.IsZero() {
		t = times{atime: d.created, mtime: d.created, ctime: d.created}
	}
	if d.marker.Key != "" {
		a = parsePosix(d.marker.Meta)
		t = objectTimes(d.marker, a)
	}
	if d.local.mtime.After(t.mtime) || d.localExact {
		t.mtime = d.local.mtime
	}
	if d.local.ctime.After(t.ctime) {
		t.ctime = d.local.ctime
	}
	if d.local.atime.After(t.atime) || d.localExact {
		t.atime = d.local.atime
	}
	d.fsys.ownerAndMode(out, a, syscall.S_IFDIR)
	out.Nlink = 2
	out.Blksize = 4096
	setTimes(out, t)
}

func (d *dirNode) fillAttr(ctx context.Context, out *fuse.Attr) error {
	if err := d.loadMarker(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.attrLocked(out)
	d.mu.Unlock()
	return nil
}

func (d *dirNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.setRoot(d.EmbeddedInode())
	if err := d.fillAttr(ctx, &out.Attr); err != nil {
		return d.fsys.errno("getattr", d.path(""), err)
	}
	return 0
}

// Setattr stores mode, owner and times on the marker object (created if the
// directory was only a prefix); a bucket root keeps them in memory.
func (d *dirNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := d.setattr(ctx, in); err != nil {
		return d.fsys.errno("setattr", d.path(""), err)
	}
	d.mu.Lock()
	d.attrLocked(&out.Attr)
	d.mu.Unlock()
	return 0
}

func (d *dirNode) setattr(ctx context.Context, in *fuse.SetAttrIn) error {
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	d.xattrMu.Lock()
	defer d.xattrMu.Unlock()
	if err := d.loadMarker(ctx); err != nil {
		return err
	}
	change := setattrPosix(in, syscall.S_IFDIR)
	now := time.Now()
	var cur fuse.Attr
	d.mu.Lock()
	d.attrLocked(&cur)
	prefix, marker := d.prefix, d.marker
	d.mu.Unlock()
	shown := times{atime: time.Unix(int64(cur.Atime), int64(cur.Atimensec)), mtime: time.Unix(int64(cur.Mtime), int64(cur.Mtimensec))}
	a := parsePosix(marker.Meta).merge(change)
	a.ctime = now
	if change.mtime.IsZero() {
		a.mtime = shown.mtime // keep it: the marker's LastModified changes
	}
	if change.atime.IsZero() {
		a.atime = shown.atime
	}
	if prefix == "" {
		d.mu.Lock()
		d.rootAttr = d.rootAttr.merge(change)
		d.local = times{atime: a.atime, mtime: a.mtime, ctime: now}
		d.mu.Unlock()
		return nil
	}
	timesOnly := change.mode == 0 && change.uid == nil && change.gid == nil
	if d.fsys.dirMeta.keepsNone(d.bucket) {
		return d.timesInMemory(timesOnly, a, now)
	}
	if d.holdAttrs(prefix, marker, a, now) {
		return nil
	}
	info, err := d.fsys.putMarker(ctx, d.bucket, prefix, a.toMeta(marker.Meta))
	if errors.Is(err, errNoDirMeta) {
		d.setMarker(info, time.Now())
		return d.timesInMemory(timesOnly, a, now)
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.marker, d.attrAt = info, time.Now()
	d.markerStored = d.attrAt
	d.local, d.localExact = times{}, false
	d.mu.Unlock()
	return nil
}

// timesInMemory is a directory's setattr on a server that keeps no
// directory metadata: times show until the mount ends (rsync -a and tar
// set them on every directory; failing would fail those tools); a mode or
// owner, which decide who may enter, is refused rather than shown and
// lost. (The log said so when the server's answer was learnt.)
func (d *dirNode) timesInMemory(timesOnly bool, a posix, now time.Time) error {
	if !timesOnly {
		return errNoDirMeta
	}
	d.mu.Lock()
	d.local, d.localExact = times{atime: a.atime, mtime: a.mtime, ctime: now}, true
	d.mu.Unlock()
	return nil
}

// putMarker stores an empty directory marker object with metadata. On
// a server that keeps no metadata on directory objects (SeaweedFS makes
// a folder of "name/"), the marker is stored all the same and
// errNoDirMeta returned with it: its info then has no metadata.
func (f *FS) putMarker(ctx context.Context, bucket, key string, meta map[string]string) (store.ObjectInfo, error) {
	info, err := f.store.Put(ctx, store.PutRequest{Bucket: bucket, Key: key, Body: strings.NewReader(""), Size: 0, Options: store.PutOptions{ContentType: "application/x-directory", Meta: meta}})
	if err != nil {
		return store.ObjectInfo{}, err
	}
	info.Key, info.Meta = key, meta
	if len(meta) == 0 {
		return info, nil
	}
	if !f.dirMeta.check(ctx, f, bucket, key, meta) {
		info.Meta = map[string]string{}
		return info, errNoDirMeta
	}
	return info, nil
}

// errNoDirMeta: the server keeps no metadata on directory objects, so a
// directory's mode, owner, times and xattrs cannot be stored (ENOTSUP).
var errNoDirMeta = fmt.Errorf("this S3 server keeps no metadata on directory objects: a directory's mode, owner, times and extended attributes cannot be stored: %w", store.ErrUnsupported)

// dirMetaSupport learns once per bucket whether the server keeps the
// metadata of directory markers: unless the store knows (MinIO does), the
// first marker stored with metadata is looked up again (one HEAD per
// bucket and mount).
type dirMetaSupport struct {
	mu    sync.Mutex
	known map[string]bool // GUARDED_BY(mu): bucket -> metadata kept
}

// check says whether the server kept meta on the marker key just stored
// (when it cannot tell, yes: the next marker stored looks again).
func (s *dirMetaSupport) check(ctx context.Context, f *FS, bucket, key string, meta map[string]string) bool {
	s.mu.Lock()
	kept, ok := s.known[bucket]
	s.mu.Unlock()
	if ok {
		return kept
	}
	if k, ok := f.store.(interface{ KeepsDirMeta() bool }); ok && k.KeepsDirMeta() {
		return true // known (MinIO, the fake): no HEAD
	}
	got, err := f.store.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: key})
	if err != nil {
		return true // unknown (the marker went meanwhile, the store is down): the next marker looks again
	}
	kept = len(got.Meta) > 0
	for k := range meta { // names, not values: a server may normalise a value
		_, has := got.Meta[k]
		kept = kept && has
	}
	s.mu.Lock()
	if s.known == nil {
		s.known = map[string]bool{}
	}
	s.known[bucket] = kept
	s.mu.Unlock()
	if !kept {
		f.cfg.Log.Warn("the server keeps no metadata on directory objects: directories show the mount's --dir-mode, --uid and --gid, and changing their mode, owner or extended attributes fails with ENOTSUP; their times last until the mount ends (README: Compatibility)", "bucket", bucket)
	}
	return kept
}

// keepsNone says whether bucket is known to keep no directory metadata.
func (s *dirMetaSupport) keepsNone(bucket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept, ok := s.known[bucket]
	return ok && !kept
}

// setattrPosix is what a SETATTR asks to change (size aside).
func setattrPosix(in *fuse.SetAttrIn, typ uint32) posix {
	var a posix
	if m, ok := in.GetMode(); ok {
		a.mode = typ | m&0o7777
	}
	if u, ok := in.GetUID(); ok {
		a.uid = &u
	}
	if g, ok := in.GetGID(); ok {
		a.gid = &g
	}
	if t, ok := in.GetMTime(); ok {
		a.mtime = t
	}
	if t, ok := in.GetATime(); ok {
		a.atime = t
	}
	return a
}

// Fsync of a directory (the save pattern's fsync of the parent after a
// rename): deletions still batched are sent first, and files written back
// into it uploaded.
func (d *dirNode) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	if err := d.fsys.del.flush(ctx); err != nil {
		return d.fsys.errno("fsync", d.path(""), err)
	}
	if wb := d.fsys.wb; wb != nil {
		for _, e := range d.localEntries() {
			if ch := d.GetChild(e.Name); ch != nil {
				if n, ok := ch.Operations().(*fileNode); ok {
					if err := n.uploadNow(ctx); err != nil {
						return d.fsys.errno("fsync", d.path(e.Name), err)
					}
				}
			}
		}
	}
	d.fsys.dirt.flush(ctx, d)
	return 0
}

// describe is for log lines.
func (d *dirNode) String() string { return fmt.Sprintf("dir %s/%s", d.bucket, d.pfx()) }
