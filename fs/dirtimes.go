package fs

import (
	"context"
	"errors"
	"sync"
	"time"

	"kfs/fs/journal"
	"kfs/fs/store"
)

// dirTimes stores the times that creating, removing and renaming entries
// give a directory (its mtime and ctime) on the directory's marker object,
// so a remount shows them too. The write waits a moment (dirTimesDelay) to
// take many changes in one request, and happens at unmount and at a
// directory fsync at the latest. It is a conditional self-copy of the
// marker (If-Match on the ETag kfs knows): a directory removed or renamed
// meanwhile (no marker under that name any more), or changed by another
// client, is left as it is, never brought back. Directories without a
// marker (only a prefix) and bucket roots keep such times in memory only:
// making a marker for each would add an object per directory.
type dirTimes struct {
	fsys *FS

	mu      sync.Mutex             // protects the fields below
	pending map[*dirNode]time.Time // GUARDED_BY(mu): directories with times to store, and since when
	timer   *time.Timer            // GUARDED_BY(mu)
}

// dirTimesDelay is how long a directory's new times wait to be stored.
const dirTimesDelay = time.Second

func newDirTimes(f *FS) *dirTimes { return &dirTimes{fsys: f, pending: map[*dirNode]time.Time{}} }

// add schedules d's times to be stored.
func (w *dirTimes) add(d *dirNode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pending[d]; !ok {
		w.pending[d] = time.Now()
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(dirTimesDelay, func() {
			ctx, cancel := w.fsys.background()
			defer cancel()
			w.flush(ctx, nil)
		})
	}
}

// flush stores the pending times of only (every directory when nil).
func (w *dirTimes) flush(ctx context.Context, only *dirNode) {
	w.mu.Lock()
	var ds []*dirNode
	for d := range w.pending {
		if only == nil || d == only {
			ds = append(ds, d)
			delete(w.pending, d)
		}
	}
	if only == nil && w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.mu.Unlock()
	for _, d := range ds {
		d.storeTimes(ctx)
	}
}

// storeTimes writes the directory's times changed through this mount onto
// its marker.
func (d *dirNode) storeTimes(ctx context.Context) {
	d.xattrMu.Lock()
	defer d.xattrMu.Unlock()
	d.mu.Lock()
	marker, prefix, local := d.marker, d.prefix, d.local
	d.mu.Unlock()
	if marker.Key == "" || marker.Key != prefix || marker.ETag == "" || local.mtime.IsZero() && local.ctime.IsZero() {
		return
	}
	a := parsePosix(marker.Meta)
	shown := objectTimes(marker, a)
	a.atime = shown.atime
	a.mtime, a.ctime = shown.mtime, shown.ctime
	if local.mtime.After(a.mtime) {
		a.mtime = local.mtime
	}
	if local.ctime.After(a.ctime) {
		a.ctime = local.ctime
	}
	opts := store.PutOptions{ContentType: marker.ContentType, Meta: a.toMeta(marker.Meta)}
	if opts.ContentType == "" {
		opts.ContentType = "application/x-directory"
	}
	if d.fsys.dirMeta.keepsNone(d.bucket) {
		return // nowhere to store them: they show until the mount ends
	}
	ref := store.ObjectRef{Bucket: d.bucket, Key: prefix}
	fresh, err := d.fsys.store.Copy(ctx, store.CopyRequest{Src: ref, Dst: ref, Options: store.CopyOptions{IfMatch: marker.ETag, Replace: &opts, SrcSize: marker.Size, SrcSizeKnown: true}})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrStale) {
			d.fsys.cfg.Log.Warn("could not store a directory's times (they show until the mount ends)", "path", d.path(""), "err", err)
			return
		}
		d.endHeld() // removed or changed elsewhere: that wins
		d.mu.Lock()
		d.attrAt = time.Time{} // what it holds now is asked again, not the attributes held here
		d.mu.Unlock()
		return
	}
	defer d.endHeld() // attributes held back travelled with this copy
	fresh.Meta, fresh.ContentType = opts.Meta, opts.ContentType
	d.mu.Lock()
	if d.prefix == prefix {
		d.marker, d.attrAt = fresh, time.Now()
		d.markerStored = d.attrAt
		if d.local == local {
			d.local, d.localExact = times{}, false
		}
	}
	d.mu.Unlock()
}

// holdAttrs keeps a directory's new mode, owner and times in memory on a
// write-back mount (journaled, so a kill -9 loses nothing: the next mount
// stores them), to be stored with its times a moment later in one copy:
// tar and rsync set owner, mode and times on every directory they make.
// It reports whether it did.
func (d *dirNode) holdAttrs(prefix string, marker store.ObjectInfo, a posix, now time.Time) bool {
	f := d.fsys
	if f.wb == nil || f.cfg.Attrs == nil || marker.Key != prefix || marker.ETag == "" {
		return false
	}
	meta := a.toMeta(marker.Meta)
	ct := marker.ContentType
	if ct == "" {
		ct = "application/x-directory"
	}
	id := f.cfg.Attrs.BeginAttrs(journal.Attrs{Bucket: d.bucket, Key: prefix, ETag: marker.ETag, ContentType: ct, Meta: meta})
	d.mu.Lock()
	old := d.deferID
	d.deferID = id
	d.marker.Meta, d.marker.ContentType, d.attrAt = meta, ct, now
	d.local, d.localExact = times{ctime: now}, false // the times set are in meta; entries made later move mtime again
	d.mu.Unlock()
	if old != "" {
		f.cfg.Attrs.EndAttrs(old)
	}
	f.dirt.add(d)
	return true
}

// endHeld ends the journal record of attributes held back (stored, or
// moot).
func (d *dirNode) endHeld() {
	d.mu.Lock()
	id := d.deferID
	d.deferID = ""
	d.mu.Unlock()
	if id != "" {
		d.fsys.cfg.Attrs.EndAttrs(id)
	}
}
