package fs

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/listing"
	"kfs/fs/store"
)

// listingPut adds or replaces an entry in the cached listing.
func (d *dirNode) listingPut(e listing.Entry) {
	if e.Seen.IsZero() {
		e.Seen = time.Now()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changedLocked()
	if d.listing != nil {
		d.listing.Add(e)
	}
}

// listingDel drops an entry from the cached listing.
func (d *dirNode) listingDel(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changedLocked()
	if d.listing != nil {
		if i, ok := d.listing.Index(name); ok && d.listing.Entries[i].Info.ETag != "" {
			d.tombLocked(name, d.listing.Entries[i].Info.ETag)
		}
		d.listing.Del(name)
	}
}

// tombLocked remembers for a while which version of name this mount
// removed (or renamed away), so the late event of its creation is
// recognised as history instead of dropping the listing. d.mu is held.
func (d *dirNode) tombLocked(name, etag string) {
	now := time.Now()
	if d.tombs == nil {
		d.tombs = map[string]tomb{}
	}
	if len(d.tombs) >= maxTombs {
		for k, t := range d.tombs {
			if now.Sub(t.at) > tombTTL || len(d.tombs) >= maxTombs {
				delete(d.tombs, k)
			}
		}
	}
	d.tombs[name] = tomb{etag: etag, at: now}
}

// removedVersionLocked says whether an event of the version etag of name
// made at `at` (zero: unknown) is older than this mount's removal of that
// version. d.mu is held.
func (d *dirNode) removedVersionLocked(name, etag string, at time.Time) bool {
	t, ok := d.tombs[name]
	return ok && etag != "" && t.etag == etag && time.Since(t.at) <= tombTTL && !at.After(t.at)
}

// incoming marks name as being stored by this mount (the copy of a
// rename): its event is this mount's own, whatever it says. The returned
// func unmarks it.
func (d *dirNode) incoming(name string) func() {
	d.mu.Lock()
	if d.arriving == nil {
		d.arriving = map[string]int{}
	}
	d.arriving[name]++
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		if d.arriving[name]--; d.arriving[name] <= 0 {
			delete(d.arriving, name)
		}
		d.mu.Unlock()
	}
}

// A tomb is a version of a name this mount removed.
type tomb struct {
	etag string
	at   time.Time
}

const (
	tombTTL  = 30 * time.Second // events come within milliseconds, or seconds from the listen API
	maxTombs = 1000
)

// forget makes the listing say nothing about name any more (an outside
// change): lookups of it ask the store, re-listings list again.
func (d *dirNode) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changedLocked()
	if d.listing != nil {
		d.listing.Del(name)
		d.listing.Complete = false
	}
	d.listedAt = time.Time{}
}

// forgetAll drops the listing.
func (d *dirNode) forgetAll() {
	d.mu.Lock()
	d.changedLocked()
	d.listing, d.listedAt = nil, time.Time{}
	d.mu.Unlock()
}

// changedLocked notes that an entry changed now: a listing under way
// (started before) no longer says what the directory holds.
func (d *dirNode) changedLocked() {
	d.changed = time.Now()
	d.fsys.ahead.Drop(d.bucket, d.prefix)
}

// installLocked makes l the directory's listing unless a newer one is
// there or an entry changed after l started (l would bring back a removed
// name or hide a created one). It says whether l was installed.
func (d *dirNode) installLocked(l *listing.Listing) bool {
	if l.At.Before(d.changed) || (d.listing != nil && d.listing.At.After(l.At)) {
		return false
	}
	d.listing = l
	return true
}

// cachedLocked answers a lookup from the last listing: a name in it for
// the entry TTL, a name missing from a complete one for the negative TTL.
// known is false when the listing cannot tell.
func (d *dirNode) cachedLocked(name string, now time.Time, l *listing.Listing, fetched bool) (e listing.Entry, found, known bool) {
	if l == nil {
		return listing.Entry{}, false, false
	}
	age := now.Sub(l.At)
	if i, ok := l.Index(name); ok {
		if fetched || age <= d.fsys.cfg.EntryTTL {
			return l.Entries[i], true, true
		}
		return listing.Entry{}, false, false // listed, but too long ago: ask again (never "absent")
	}
	return listing.Entry{}, false, l.Complete && (fetched || age <= d.fsys.negativeTTL(d.bucket))
}

// verifyMissLocked says whether a name missing from a listing should be
// looked up in the store before answering "no such name": yes when no
// event source covers the bucket, for the first missesVerified misses a
// second in this directory (a tool that stats what another client just
// uploaded sees it at once); a burst past that (a cp -r creating many
// names, a Python import scanning) is answered by the listing, which is
// at most Revalidate old. A directory this mount made, while its listing
// (empty at mkdir, kept by this mount's changes) is fresh, is not asked
// (git, tar and make look up each name they are about to create).
func (d *dirNode) verifyMissLocked(now time.Time) bool {
	if d.fsys.eventsCover(d.bucket) {
		return false
	}
	if now.Sub(d.missWindow) >= time.Second {
		d.missWindow, d.misses = now, 0
	}
	d.misses++
	return d.misses <= missesVerified
}

// missesVerified is how many misses a second a directory verifies with a
// targeted lookup when no event source covers its bucket.
const missesVerified = 8

// lookupEntry finds name in this directory. The first lookup in a directory
// not listed recently lists it (one page): many lookups usually follow (a
// shell glob, `stat` of many files), and a page of 1,000 names costs about
// as much as one HEAD. A directory larger than a page falls back to one
// targeted lookup per name. A listing made for this lookup answers it
// whatever the TTLs (a TTL of 0 means "always ask").
func (d *dirNode) lookupEntry(ctx context.Context, name string) (listing.Entry, error) {
	if e, ok := d.localEntry(name); ok {
		return e, nil // being created or written back: the store cannot know it yet
	}
	d.adoptAhead(ctx)
	for {
		now := time.Now()
		d.mu.Lock()
		if e, found, known := d.cachedLocked(name, now, d.listing, false); known {
			verify := !found && !d.listing.Own && d.verifyMissLocked(now)
			d.mu.Unlock()
			return d.answer(ctx, name, e, found, verify)
		}
		if w := d.listWait; w != nil {
			d.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return listing.Entry{}, ctx.Err()
			}
		}
		if now.Sub(d.listedAt) <= min(d.fsys.cfg.EntryTTL, d.fsys.negativeTTL(d.bucket)) && !d.listedAt.IsZero() {
			// Listed a moment ago (and the name was not in the first
			// page): ask about the one name.
			d.mu.Unlock()
			return d.targetedLookup(ctx, name)
		}
		w := make(chan struct{})
		d.listWait, d.listedAt = w, now
		d.mu.Unlock()
		e, found, known, verify, err := d.listForLookup(ctx, name, now, w)
		if err != nil {
			return listing.Entry{}, err
		}
		if !known {
			return d.targetedLookup(ctx, name)
		}
		return d.answer(ctx, name, e, found, verify)
	}
}

// listForLookup lists the first page of the directory for a lookup of
// name, installs it and says what it knows of name; it ends the wait w
// other lookups meanwhile block on.
func (d *dirNode) listForLookup(ctx context.Context, name string, now time.Time, w chan struct{}) (e listing.Entry, found, known, verify bool, err error) {
	l, err := d.listFirstPage(ctx, now)
	d.mu.Lock()
	if err == nil {
		d.installLocked(l)
		e, found, known = d.cachedLocked(name, now, l, true) // l is shared from here: under mu
		// Even a listing made now can lack a name: MinIO does not list
		// the keys under an object of the same name (s3fs's "dir").
		verify = known && !found && d.verifyMissLocked(now)
	}
	d.listWait = nil
	d.mu.Unlock()
	close(w)
	return e, found, known, verify, err
}

// answer turns what a listing says of name into the lookup's answer: the
// entry, a targeted lookup when a miss must be verified, else not found.
func (d *dirNode) answer(ctx context.Context, name string, e listing.Entry, found, verify bool) (listing.Entry, error) {
	switch {
	case found:
		return e, nil
	case verify:
		return d.targetedLookup(ctx, name)
	}
	return listing.Entry{}, fmt.Errorf("%s: %w", d.path(name), store.ErrNotFound)
}

// adoptAhead takes the listing a tree walk made of this directory ahead
// of time (waiting for it if it is under way).
func (d *dirNode) adoptAhead(ctx context.Context) {
	l := d.fsys.ahead.Claim(ctx, d.bucket, d.pfx())
	if l == nil {
		return
	}
	d.mu.Lock()
	ok := d.installLocked(l)
	d.mu.Unlock()
	if ok {
		d.setMarker(l.Marker, l.At)
	}
}

// listFirstPage lists one page of the directory.
func (d *dirNode) listFirstPage(ctx context.Context, now time.Time) (*listing.Listing, error) {
	l, err := listing.NewLister(d.fsys.listerConfig(), d.bucket, d.pfx()).FirstPage(ctx, now)
	if err != nil {
		return nil, err
	}
	d.setMarker(l.Marker, now) // the first page holds the marker if there is one: it sorts first
	return l, nil
}

// targetedLookup asks the store about one name: a HEAD for the object and a
// one-key listing for the prefix, in parallel. A prefix wins over an object.
func (d *dirNode) targetedLookup(ctx context.Context, name string) (listing.Entry, error) {
	if reason := listing.CheckName(name); reason != "" {
		return listing.Entry{}, fmt.Errorf("%s: %s: %w", d.path(name), reason, store.ErrNotFound)
	}
	key := d.pfx() + name
	if len(key) > store.MaxKeyLen {
		return listing.Entry{}, fmt.Errorf("%s: longer than a key can be: %w", d.path(name), store.ErrNotFound)
	}
	seen := time.Now()
	var info store.ObjectInfo
	var statErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		info, statErr = d.fsys.store.Stat(ctx, store.ObjectRef{Bucket: d.bucket, Key: key})
	}()
	var page store.ListPage
	var listErr error
	if len(key)+1 <= store.MaxKeyLen { // else nothing can be under it
		page, listErr = d.fsys.store.List(ctx, store.ListRequest{Bucket: d.bucket, Prefix: key + "/", Max: 1})
	}
	<-done
	if listErr == nil && (len(page.Objects) > 0 || len(page.Prefixes) > 0) {
		if statErr == nil {
			d.fsys.logOnce("a key is both an object and a prefix: showing the directory, hiding the object", "bucket", d.bucket, "key", key)
		}
		e := listing.Entry{Name: name, IsDir: true, Seen: seen}
		if len(page.Objects) > 0 && page.Objects[0].Key == key+"/" {
			e.Info = page.Objects[0]
		}
		return e, nil
	}
	if statErr == nil {
		return listing.Entry{Name: name, Info: info, Seen: seen, IsDir: isDirObject(info)}, nil
	}
	if listErr != nil && !errors.Is(listErr, store.ErrNotFound) {
		return listing.Entry{}, listErr
	}
	return listing.Entry{}, statErr
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	d.fsys.setRoot(d.EmbeddedInode())
	if len(name) > listing.MaxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	e, err := d.lookupEntry(ctx, name)
	if err == nil && !e.IsDir && d.fsys.del.isPending(d.bucket, e.Info.Key) {
		err = fmt.Errorf("%s: deleted: %w", d.path(name), store.ErrNotFound)
	}
	if err != nil {
		return nil, d.fsys.errno("lookup", d.path(name), err)
	}
	ch, err := d.child(ctx, e, out)
	if err != nil {
		return nil, d.fsys.errno("lookup", d.path(name), err)
	}
	return ch, 0
}

// child returns the inode for e, reusing the existing one when the type
// matches so the kernel keeps its caches, and fills out.
func (d *dirNode) child(ctx context.Context, e listing.Entry, out *fuse.EntryOut) (*fusefs.Inode, error) {
	at := e.Seen
	existing := d.GetChild(e.Name)
	if e.IsDir {
		known := e.Marker || e.Info.Key != ""
		if existing != nil {
			if n, ok := existing.Operations().(*dirNode); ok {
				if known {
					n.setMarker(e.Info, at)
				}
				return existing, n.fillAttr(ctx, &out.Attr)
			}
		}
		n := newDirNode(d.fsys, d.bucket, d.pfx()+e.Name+"/")
		if known {
			n.setMarker(e.Info, at)
		}
		if err := n.fillAttr(ctx, &out.Attr); err != nil {
			return nil, err
		}
		return d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFDIR}), nil
	}
	typ := parsePosix(e.Info.Meta).fileType()
	if existing != nil && existing.Mode()&syscall.S_IFMT == typ {
		if f, ok := existing.Operations().(*fileNode); ok && f.sameObject(e.Info.Key) {
			f.setInfo(e.Info, at)
			f.fillAttr(&out.Attr)
			return existing, nil
		}
	}
	n := newFileNode(d.fsys, d.bucket, e.Info.Key, typ, e.Info, true)
	n.fillAttr(&out.Attr)
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: typ}), nil
}

// OpendirHandle starts a listing. A directory listed completely within the
// entry and negative TTLs is served from memory (so a name created
// elsewhere shows within the negative TTL); otherwise the handle streams
// pages.
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	d.walkFrom()
	d.adoptAhead(ctx)
	now := time.Now()
	h := &dirHandle{dir: d}
	d.mu.Lock()
	if l := d.listing; l != nil && l.Complete && now.Sub(l.At) <= d.fsys.listingTTLOf(d.bucket) {
		l.Readdir = true
		h.fromMem, h.cached, h.listedAt = true, append([]listing.Entry(nil), l.Entries...), l.At // a copy: the listing changes under mu
	}
	d.mu.Unlock()
	if !h.fromMem {
		h.reset(now)
	}
	return h, 0, 0
}

// localEntry is the entry of a file that exists only here so far (being
// created, or written back and not uploaded).
func (d *dirNode) localEntry(name string) (listing.Entry, bool) {
	ch := d.GetChild(name)
	if ch == nil {
		return listing.Entry{}, false
	}
	n, ok := ch.Operations().(*fileNode)
	if !ok || !n.localOnly() {
		return listing.Entry{}, false
	}
	n.mu.Lock()
	info := n.info
	info.Key, info.Size = n.key, n.size
	n.mu.Unlock()
	return listing.Entry{Name: name, Info: info, Seen: time.Now()}, true
}

// localEntries are the files of the directory that exist only here so
// far, for a listing read from the store (which cannot know them).
func (d *dirNode) localEntries() []listing.Entry {
	var out []listing.Entry
	for name := range d.Children() {
		if e, ok := d.localEntry(name); ok {
			out = append(out, e)
		}
	}
	return out
}
