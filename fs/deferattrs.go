package fs

// Attribute changes right after this mount stored a hidden file are held
// back for a moment, so the next ones, and a rename, travel in the same copy:
// rsync writes ".f.XXXX", closes it (the PUT), sets its mode and times and
// renames it: one copy (to the final name, with the final metadata) and
// one delete instead of three copies and a delete. close() still means
// the bytes are in the bucket; a chmod or utime is durable at fsync (as
// POSIX asks), the next upload of the file, unmount, a control-socket
// request about it, or within deferDelay; it is journaled before the call
// returns, so a kfs killed meanwhile has the next mount store it.

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync"
	"time"

	"kfs/fs/journal"
	"kfs/fs/store"
)

const (
	deferWindow = 2 * time.Second        // after the upload, changes are held back ...
	deferDelay  = 500 * time.Millisecond // ... at most this long
)

// AttrsJournal records metadata held back (journal.Journal is one).
type AttrsJournal interface {
	BeginAttrs(a journal.Attrs) string
	EndAttrs(id string)
}

// deferred is the set of nodes holding changes back, for Close and Settle.
type deferred struct {
	mu    sync.Mutex             // protects nodes
	nodes map[*fileNode]struct{} // GUARDED_BY(mu)
}

func (d *deferred) add(n *fileNode) {
	d.mu.Lock()
	if d.nodes == nil {
		d.nodes = map[*fileNode]struct{}{}
	}
	d.nodes[n] = struct{}{}
	d.mu.Unlock()
}

func (d *deferred) remove(n *fileNode) {
	d.mu.Lock()
	delete(d.nodes, n)
	d.mu.Unlock()
}

func (d *deferred) list() []*fileNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*fileNode, 0, len(d.nodes))
	for n := range d.nodes {
		out = append(out, n)
	}
	return out
}

// deferMeta holds the node's pending attributes back instead of copying
// now, when it may: a hidden file (".name...": the temporaries rsync,
// editors and installers write and rename into place) this mount uploaded
// within deferWindow, no writer on it, nothing else pending, and a
// journal. Other files' attributes are stored before the call returns, as
// tools reading them through the store expect. opMu is held (it keeps the
// content as it is). It reports whether it did.
func (n *fileNode) deferMeta() bool {
	j := n.fsys.cfg.Attrs
	if j == nil {
		return false
	}
	n.mu.Lock()
	c, key := n.content, n.key
	n.mu.Unlock()
	if c != nil && c.Dirty() || !strings.HasPrefix(path.Base(key), ".") {
		return false
	}
	n.mu.Lock()
	if !n.stored || n.unlinked || n.writers > 0 || n.info.ETag == "" || !n.pendingX.empty() ||
		n.fsys.now().Sub(n.uploadedAt) > deferWindow {
		n.mu.Unlock()
		return false
	}
	opts := n.metaOptionsLocked()
	rec := journal.Attrs{Bucket: n.bucket, Key: n.key, ETag: n.info.ETag, ContentType: opts.ContentType, Meta: opts.Meta}
	old := n.deferID
	n.mu.Unlock()
	id := j.BeginAttrs(rec) // opMu keeps other changes of the node out meanwhile
	if old != "" {
		j.EndAttrs(old)
	}
	n.mu.Lock()
	n.deferID = id
	if n.deferTimer == nil {
		n.deferTimer = time.AfterFunc(deferDelay, func() {
			ctx, cancel := n.fsys.background()
			defer cancel()
			if err := n.flushDeferred(ctx); err != nil {
				n.fsys.cfg.Log.Warn("storing held-back attributes failed; the next mount tries again", "path", n.path(), "err", err)
			}
		})
	}
	n.mu.Unlock()
	n.fsys.deferred.add(n)
	return true
}

// flushDeferred stores attributes held back, if any.
func (n *fileNode) flushDeferred(ctx context.Context) error {
	n.mu.Lock()
	held := n.deferID != ""
	n.mu.Unlock()
	if !held {
		return nil
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	held = n.deferID != ""
	n.mu.Unlock()
	if !held {
		return nil
	}
	err := n.rewriteMeta(ctx, func(*store.PutOptions) error { return nil })
	if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrNotFound) {
		n.endDeferred() // changed or removed elsewhere meanwhile: that write wins
		return nil
	}
	return err // on success committed() ended it
}

// endDeferred forgets held-back attributes (stored, carried by a copy, or
// moot): their journal record ends.
func (n *fileNode) endDeferred() {
	n.mu.Lock()
	id, t := n.deferID, n.deferTimer
	n.deferID, n.deferTimer = "", nil
	n.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if id != "" {
		n.fsys.cfg.Attrs.EndAttrs(id)
	}
	n.fsys.deferred.remove(n)
}

// flushAllDeferred stores every held-back change (unmount), or those of
// bucket under key (a control-socket request: it must see them).
func (f *FS) flushAllDeferred(ctx context.Context, bucket, key string, all bool) error {
	var first error
	for _, n := range f.deferred.list() {
		if k := n.objKey(); !all && (n.bucket != bucket || key != "" && k != key && !strings.HasPrefix(k, strings.TrimSuffix(key, "/")+"/")) {
			continue
		}
		if err := n.flushDeferred(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// FinishAttrs stores attribute changes a killed run held back: a copy
// onto the object conditioned on the version they were for (an object
// changed since keeps its state). It reports whether they were stored.
func (f *FS) FinishAttrs(ctx context.Context, bucket, key, etag, contentType string, meta map[string]string) (bool, error) {
	ref := store.ObjectRef{Bucket: bucket, Key: key}
	opts := store.PutOptions{ContentType: contentType, Meta: meta}
	_, err := f.store.Copy(ctx, store.CopyRequest{Src: ref, Dst: ref, Options: store.CopyOptions{IfMatch: etag, Replace: &opts}})
	if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
