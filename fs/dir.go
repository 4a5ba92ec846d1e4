package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirNode is a bucket or a prefix ("a/b/") of one.
type dirNode struct {
	fusefs.Inode
	fsys   *FS
	bucket string
	mtime  time.Time

	mu       sync.Mutex    // protects the fields below
	prefix   string        // GUARDED_BY(mu): "" for the bucket itself, else ends in "/"; changes on rename
	listing  *listing      // GUARDED_BY(mu): the last listing kfs made of this directory
	listWait chan struct{} // GUARDED_BY(mu): closed when a lookup-triggered listing ends
	listedAt time.Time     // GUARDED_BY(mu): start of the last lookup-triggered listing

	xattrMu sync.Mutex // serialises bucket tag read-modify-writes; taken before mu
}

var (
	_ = (fusefs.NodeLookuper)((*dirNode)(nil))
	_ = (fusefs.NodeOpendirHandler)((*dirNode)(nil))
	_ = (fusefs.NodeGetattrer)((*dirNode)(nil))
	_ = (fusefs.NodeStatfser)((*dirNode)(nil))
)

// listing is what one listing of a directory said.
type listing struct {
	entries  []dirEntry
	byName   map[string]int // index into entries
	complete bool           // every entry of the directory is in entries
	at       time.Time      // when the listing started
}

func newListing(at time.Time) *listing { return &listing{byName: map[string]int{}, at: at} }

func (l *listing) add(e dirEntry) {
	l.byName[e.name] = len(l.entries)
	l.entries = append(l.entries, e)
}

func (d *dirNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttr(&out.Attr, d.mtime)
	return 0
}

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	at := time.Now()
	e, err := d.lookupEntry(ctx, name)
	if err == nil && !e.isDir && d.fsys.del.isPending(d.bucket, e.info.Key) {
		err = fmt.Errorf("%s: deleted: %w", d.path(name), os.ErrNotExist)
	}
	if err != nil {
		return nil, toErrno(d.fsys.cfg.Log, "lookup "+d.path(name), err)
	}
	return d.child(ctx, e, at, out), 0
}

func (d *dirNode) path(name string) string { return d.bucket + "/" + d.pfx() + name }

func (d *dirNode) pfx() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prefix
}

func newDirNode(f *FS, bucket, prefix string, mtime time.Time) *dirNode {
	return &dirNode{fsys: f, bucket: bucket, prefix: prefix, mtime: mtime}
}

// cached answers a lookup from a fresh listing: known is false when the
// listing cannot tell.
func (d *dirNode) cachedLocked(name string, now time.Time) (e dirEntry, found, known bool) {
	l := d.listing
	if l == nil || now.Sub(l.at) > d.fsys.cfg.EntryTTL {
		return dirEntry{}, false, false
	}
	if i, ok := l.byName[name]; ok {
		return l.entries[i], true, true
	}
	return dirEntry{}, false, l.complete
}

// lookupEntry finds name in this directory. The first lookup in a directory
// not listed recently lists it (one page): many lookups usually follow (a
// shell glob, `stat` of many files), and a page of 1,000 names costs about
// as much as one HEAD. A directory larger than a page falls back to one
// targeted lookup per name.
func (d *dirNode) lookupEntry(ctx context.Context, name string) (dirEntry, error) {
	for {
		now := time.Now()
		d.mu.Lock()
		if e, found, known := d.cachedLocked(name, now); known {
			d.mu.Unlock()
			if !found {
				return dirEntry{}, fmt.Errorf("%s: %w", d.path(name), os.ErrNotExist)
			}
			return e, nil
		}
		if w := d.listWait; w != nil {
			d.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return dirEntry{}, ctx.Err()
			}
		}
		if now.Sub(d.listedAt) <= d.fsys.cfg.EntryTTL {
			d.mu.Unlock()
			return d.targetedLookup(ctx, name)
		}
		w := make(chan struct{})
		d.listWait, d.listedAt = w, now
		d.mu.Unlock()

		l, err := d.listFirstPage(ctx, now)
		d.mu.Lock()
		if err == nil {
			d.listing = l
		}
		d.listWait = nil
		d.mu.Unlock()
		close(w)
		if err != nil {
			return dirEntry{}, err
		}
	}
}

// listFirstPage lists one page of the directory.
func (d *dirNode) listFirstPage(ctx context.Context, now time.Time) (*listing, error) {
	ls := newLister(d.fsys, d.bucket, d.pfx())
	if err := ls.fetchPage(ctx); err != nil {
		return nil, err
	}
	l := newListing(now)
	l.complete = ls.done
	for _, e := range ls.queue {
		l.add(e)
	}
	return l, nil
}

// targetedLookup asks the store about one name: a HEAD for the object and a
// one-key listing for the prefix, in parallel. A prefix wins over an object.
func (d *dirNode) targetedLookup(ctx context.Context, name string) (dirEntry, error) {
	if reason := checkName(name); reason != "" {
		return dirEntry{}, fmt.Errorf("%s: %s: %w", d.path(name), reason, os.ErrNotExist)
	}
	key := d.pfx() + name
	var info ObjectInfo
	var statErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		info, statErr = d.fsys.store.Stat(ctx, d.bucket, key)
	}()
	page, listErr := d.fsys.store.List(ctx, d.bucket, key+"/", "", 1, false)
	<-done
	if listErr == nil && (len(page.Objects) > 0 || len(page.Prefixes) > 0) {
		if statErr == nil {
			d.fsys.logOnce(fmt.Sprintf("%s/%s is both an object and a prefix: showing the directory, hiding the object", d.bucket, key))
		}
		return dirEntry{name: name, isDir: true}, nil
	}
	if statErr == nil {
		return dirEntry{name: name, info: info}, nil
	}
	if listErr != nil && !errors.Is(listErr, os.ErrNotExist) {
		return dirEntry{}, listErr
	}
	return dirEntry{}, statErr
}

// child returns the inode for e (as known at `at`), reusing the existing one
// when the type matches so the kernel keeps its caches, and fills out.
func (d *dirNode) child(ctx context.Context, e dirEntry, at time.Time, out *fuse.EntryOut) *fusefs.Inode {
	existing := d.GetChild(e.name)
	if e.isDir {
		d.fsys.dirAttr(&out.Attr, d.fsys.mounted)
		if existing != nil {
			if _, ok := existing.Operations().(*dirNode); ok {
				return existing
			}
		}
		n := newDirNode(d.fsys, d.bucket, d.pfx()+e.name+"/", d.fsys.mounted)
		return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFDIR})
	}
	mode := uint32(syscall.S_IFREG)
	if parseAttrs(e.info.Meta).isSymlink() {
		mode = syscall.S_IFLNK
	}
	if existing != nil && existing.Mode()&syscall.S_IFMT == mode {
		if f, ok := existing.Operations().(*fileNode); ok {
			f.setInfo(e.info, at)
			info, _, _ := f.snapshot()
			d.fsys.fileAttr(&out.Attr, info)
			return existing
		}
	}
	d.fsys.fileAttr(&out.Attr, e.info)
	n := newFileNode(d.fsys, d.bucket, e.info.Key, e.info, true)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: mode})
}

// OpendirHandle starts a listing. A directory listed completely within the
// entry TTL is served from memory; otherwise the handle streams pages.
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	now := time.Now()
	d.mu.Lock()
	l := d.listing
	d.mu.Unlock()
	h := &dirHandle{dir: d}
	if l != nil && l.complete && now.Sub(l.at) <= d.fsys.cfg.EntryTTL {
		h.fromMem, h.cached, h.listedAt = true, l.entries, l.at
	} else {
		h.reset(now)
	}
	return h, 0, 0
}
