package fs

import (
	"context"
	"errors"
	"sync"
	"time"

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
		}
		return
	}
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
