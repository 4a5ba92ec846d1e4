package fs

// A file's part in write-back (writeback.go): made durable at close,
// re-recorded when renamed or changed, uploaded, forgotten.

import (
	"context"
	"path"
	"strings"
	"time"

	"kfs/fs/journal"
	"kfs/fs/store"
	"kfs/fs/upload"
)

// persistClose makes a closed file durable on local disk and queues its
// upload, when write-back applies to it: a file this mount created (its
// inode persistent), small enough to be held whole. It reports false when
// the caller must commit as usual.
func (n *fileNode) persistClose(ctx context.Context) bool {
	wb := n.fsys.wb
	if wb == nil {
		return false
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	c, unlinked, persistent, inlined := n.content, n.unlinked, n.persistent, n.inlineLocked()
	n.mu.Unlock()
	if !persistent || c == nil || unlinked || !c.Dirty() {
		return false
	}
	inline := int64(0)
	if size := c.Size(); size <= wbInlineMax && wb.inline.Load()-inlined+size <= wbInlineBudget {
		inline = wbInlineMax
	}
	p, ok, err := c.Persist(inline)
	if err != nil {
		n.fsys.cfg.Log.Warn("write-back: could not keep the file on local disk; uploading it now", "path", n.path(), "err", err)
	}
	if !ok {
		return false
	}
	if err := n.record(p, true); err != nil {
		n.fsys.cfg.Log.Warn("write-back: could not journal the file; uploading it now", "path", n.path(), "err", err)
		return false
	}
	wb.add(n)
	return true
}

// record journals the file as it stands (its key, bytes or staging file,
// metadata and the object it may replace), superseding its earlier record.
func (n *fileNode) record(p upload.Persisted, sync bool) error {
	opts := n.uploadOptions()
	n.mu.Lock()
	rec := journal.Write{Replaces: n.wbID, Bucket: n.bucket, Key: n.key, File: p.Path, Data: p.Data, Size: p.Size, Expect: n.wbExpect,
		ContentType: opts.ContentType, Meta: opts.Meta, Tags: opts.Tags, Closed: n.fsys.now().UTC()}
	n.mu.Unlock()
	id, err := n.fsys.cfg.Writes.BeginWrite(rec, sync)
	if err != nil {
		return err
	}
	n.mu.Lock()
	old := n.inlineLocked()
	n.wbID, n.wbFile, n.wbSize = id, p.Path, p.Size
	n.fsys.wb.inline.Add(n.inlineLocked() - old)
	n.mu.Unlock()
	return nil
}

// inlineLocked is how many bytes of the file's record are in memory (the
// record holds them inline). n.mu is held.
func (n *fileNode) inlineLocked() int64 {
	if n.wbID != "" && n.wbFile == "" {
		return n.wbSize
	}
	return 0
}

// rerecord journals a pending file's new key or attributes (a rename, a
// chmod after close), without a sync: like a local disk's metadata, they
// are durable at the next fsync or sync.
func (n *fileNode) rerecord() {
	n.mu.Lock()
	id, p, c := n.wbID, upload.Persisted{Path: n.wbFile, Size: n.wbSize}, n.content
	n.mu.Unlock()
	if id == "" || c == nil {
		return
	}
	if p.Path == "" { // inline: the bytes go again (they are in memory)
		p.Data = make([]byte, p.Size)
		if _, err := c.ReadAt(context.Background(), p.Data, 0); err != nil {
			n.fsys.cfg.Log.Warn("write-back: could not journal a change of a pending file", "path", n.path(), "err", err)
			return
		}
	}
	if err := n.record(p, false); err != nil {
		n.fsys.cfg.Log.Warn("write-back: could not journal a change of a pending file", "path", n.path(), "err", err)
	}
}

// underneath is the ETag of the object a rename over this file replaces
// in the store (etag, from the listing, when the file is stored; else
// what the file itself was to replace).
func (n *fileNode) underneath(etag string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stored && n.info.ETag != "":
		return n.info.ETag // what this mount stored last (the listing may be older)
	case n.stored:
		return etag
	}
	return n.wbExpect
}

// pendingWrite says whether the file waits for its write-back upload.
func (n *fileNode) pendingWrite() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wbID != ""
}

// writeBackOne is a worker's attempt: the file's commit, unless it was
// uploaded meanwhile or is open for writing again (its close queues it).
func (n *fileNode) writeBackOne(ctx context.Context) error {
	n.mu.Lock()
	writers := n.writers
	n.mu.Unlock()
	if writers > 0 {
		return nil
	}
	return n.uploadNow(ctx)
}

// uploadNow uploads a pending file at once (fsync, kfs sync, a control
// request about it).
func (n *fileNode) uploadNow(ctx context.Context) error {
	if !n.pendingWrite() {
		return nil
	}
	if err := n.commit(ctx); err != nil {
		return err
	}
	n.settled()
	return nil
}

// settled frees what a file no longer needs once uploaded (or gone):
// its content when no handle writes, and its inode's persistence.
func (n *fileNode) settled() {
	if n.pendingWrite() {
		return
	}
	n.dropContent()
	n.mu.Lock()
	drop := n.persistent && n.writers == 0 && n.content == nil
	if drop {
		n.persistent = false
	}
	n.mu.Unlock()
	if drop {
		n.ForgetPersistent()
	}
}

// uploadConditions are what a write-back upload goes over: the object
// this mount last knew under the key, or none.
func (n *fileNode) uploadConditions(o *store.PutOptions) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wbID == "" {
		return false
	}
	if n.wbExpect == "" {
		o.IfAbsent = true
	} else {
		o.IfMatch = n.wbExpect
	}
	return true
}

// uploaded ends a file's record once its bytes are in the bucket (the
// version etag, which a later upload of it goes over).
func (n *fileNode) uploaded(etag string) {
	if n.endRecord(func() { n.wbExpect = etag }) {
		n.fsys.wb.uploaded.Add(1)
	}
}

// dropPending forgets a pending upload (the file was unlinked or replaced
// before it went): nothing is sent.
func (n *fileNode) dropPending() { n.endRecord(nil) }

// endRecord ends the file's write-back record and its place in the queue,
// running locked (if any) under n.mu; false when it had none.
func (n *fileNode) endRecord(locked func()) bool {
	n.mu.Lock()
	if wb := n.fsys.wb; wb != nil {
		wb.inline.Add(-n.inlineLocked())
	}
	id := n.wbID
	n.wbID = ""
	if locked != nil {
		locked()
	}
	n.mu.Unlock()
	if id == "" {
		return false
	}
	n.fsys.cfg.Writes.EndWrite(id)
	n.fsys.wb.remove(n)
	return true
}

// keepBoth stores a pending file whose name another client wrote since
// our close under a conflict name, and lets the name show theirs.
func (n *fileNode) keepBoth(ctx context.Context, opts store.PutOptions) error {
	n.mu.Lock()
	c, key := n.content, n.key
	n.mu.Unlock()
	alt := conflictKey(key, n.fsys.now())
	if err := c.Rekey(ctx, alt, store.ObjectInfo{}); err != nil {
		return err
	}
	opts.IfMatch, opts.IfAbsent = "", true
	if _, _, err := c.Commit(ctx, opts); err != nil {
		_ = c.Rekey(ctx, key, store.ObjectInfo{})
		return err
	}
	n.fsys.wb.conflicts.Add(1)
	n.fsys.cfg.Log.Warn("write-back: another client wrote the file after it was closed here; both are kept, ours under another name",
		"path", n.bucket+"/"+key, "ours", n.bucket+"/"+alt)
	c.Detach()
	n.mu.Lock()
	n.unlinked = true
	n.mu.Unlock()
	n.dropPending()
	n.fsys.Changed(n.bucket, key)
	n.fsys.Changed(n.bucket, alt)
	return nil
}

// conflictKey names our copy of a file another client overwrote:
// "dir/name.kfs-conflict-20261205T104157Z.ext".
func conflictKey(key string, at time.Time) string {
	dir, base := path.Split(key)
	ext := path.Ext(base)
	if ext == base || strings.HasPrefix(ext, ".") && len(ext) == len(base) {
		ext = ""
	}
	return dir + strings.TrimSuffix(base, ext) + ".kfs-conflict-" + at.UTC().Format("20060102T150405Z") + ext
}
