package fs

import (
	"context"
	"errors"
	"maps"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
	"kfs/fs/listing"
	"kfs/fs/store"
	"kfs/fs/upload"
	"kfs/xattrs"
)

// uploadOptions are what an upload of this file gets: the stored object's
// metadata with pending attribute changes applied, the Content-Type its
// name implies unless one was set, and tags and lock settings set while it
// was pending. Times: a write makes the object's LastModified its mtime
// and ctime, so stored times go, except an mtime set after the last write
// (cp -p, touch -d on an open file) and a stored atime.
func (n *fileNode) uploadOptions() store.PutOptions {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.uploadOptionsLocked()
}

func (n *fileNode) uploadOptionsLocked() store.PutOptions {
	base := map[string]string{}
	if n.stored {
		base = n.info.Meta
	}
	a := parsePosix(base).merge(n.pending)
	a.ctime = time.Time{}
	if n.pending.mtime.IsZero() || n.pendingAt.Before(n.wtime) {
		a.mtime = time.Time{}
	} else {
		a.ctime = n.pendingAt
	}
	meta := a.toMeta(base)
	for k, v := range n.pendingX.meta {
		if v == "" {
			delete(meta, k)
		} else {
			meta[k] = v
		}
	}
	if n.pendingX.xattrs != nil {
		setXattrMeta(meta, n.pendingX.xattrs)
	}
	if metaSize(meta) > metaLimit && meta[metaXattr] != "" {
		// setxattr refuses what does not fit; should the set still be too
		// large (attributes a copy brought along), the bytes are stored
		// without it rather than not at all.
		delete(meta, metaXattr)
		n.fsys.logOnce("storing the file without its extended attributes: they are over the store's metadata limit",
			"path", n.bucket+"/"+n.key, "limit", metaLimit)
	}
	o := store.PutOptions{ContentType: contentType(n.key), Meta: meta, Tags: n.pendingX.tags,
		LockMode: n.pendingX.lockMode, LockUntil: n.pendingX.lockUntil, LegalHold: n.pendingX.legalHold}
	if n.stored && n.info.ContentType != "" {
		o.ContentType = n.info.ContentType
	}
	if n.pendingX.contentType != "" {
		o.ContentType = n.pendingX.contentType
	}
	return o
}

// commit makes the store hold the file as its handles wrote it. It returns
// only once the object is complete, with its metadata, tags and lock
// settings. An unlinked file commits nothing.
func (n *fileNode) commit(ctx context.Context) error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.busy.Add(1)
	defer n.busy.Add(-1)
	n.mu.Lock()
	c, stored, baseKey := n.content, n.stored, n.info.Key
	n.mu.Unlock()
	if c == nil || !c.Dirty() {
		return nil
	}
	opts := n.uploadOptions()
	wb := n.uploadConditions(&opts)
	if opts.Tags == nil && stored && baseKey != "" {
		// A modified object keeps its tags (a new upload would drop them).
		if t, err := n.fsys.store.GetTags(ctx, store.ObjectRef{Bucket: n.bucket, Key: baseKey}); err == nil && len(t) > 0 {
			opts.Tags = t
		}
	}
	info, applied, err := c.Commit(ctx, opts)
	if wb && opts.IfMatch != "" && n.fsys.deletedSince(ctx, n.bucket, n.objKey(), err) {
		// The object ours was to replace was deleted elsewhere: the name
		// is free, ours takes it (unless someone took it meanwhile).
		opts.IfMatch, opts.IfAbsent = "", true
		info, applied, err = c.Commit(ctx, opts)
	}
	if wb && errors.Is(err, store.ErrStale) {
		return n.keepBoth(ctx, opts) // another client wrote the name since our close
	}
	if err == nil {
		info, err = n.fixUp(ctx, info, applied, opts)
	}
	n.mu.Lock()
	n.commitFailed = err != nil
	unlinked := n.unlinked
	n.mu.Unlock()
	if err != nil || unlinked {
		return err
	}
	n.committed(info, opts)
	n.mu.Lock()
	n.uploadedAt = n.fsys.now()
	n.mu.Unlock()
	n.keepWritten(ctx, c, info)
	if wb {
		n.uploaded(info.ETag)
	}
	return nil
}

// keepWritten puts a small file's committed bytes in the block cache under
// the version just stored, so reading back what was just written (git,
// make, a script) costs no GET: the kernel keeps only the whole pages it
// was written, never a file's last partial page. The bytes are those of
// the upload, so the version cannot differ.
func (n *fileNode) keepWritten(ctx context.Context, c *upload.File, info store.ObjectInfo) {
	b := n.fsys.blocks
	if b == nil || info.Key == "" || info.ETag == "" || info.Size == 0 || info.Size > min(upload.KeepMax, b.BlockSize()) {
		return
	}
	k := cache.Key{Bucket: n.bucket, Object: info.Key, ETag: info.ETag}
	if b.Contains(k) {
		return
	}
	buf := c.Kept()
	if int64(len(buf)) != info.Size {
		return // not all held here: a read fetches it as it would anyway
	}
	blk, err := b.Get(ctx, k, len(buf), func(ctx context.Context, dst []byte) (int, error) { return copy(dst, buf), nil })
	if err == nil {
		blk.Release()
	}
}

// fixUp applies what a multipart upload started in the background could
// not carry any more: metadata or Content-Type changed since (a self-copy),
// tags and lock settings set since (their own calls).
func (n *fileNode) fixUp(ctx context.Context, info store.ObjectInfo, applied, want store.PutOptions) (store.ObjectInfo, error) {
	if info.Key == "" {
		return info, nil // anonymous: nothing stored
	}
	if !upload.SameMeta(applied, want) {
		ref := store.ObjectRef{Bucket: n.bucket, Key: info.Key}
		w := want
		fresh, err := n.fsys.store.Copy(ctx, store.CopyRequest{Src: ref, Dst: ref, Options: store.CopyOptions{IfMatch: info.ETag, Replace: &w, SrcSize: info.Size, SrcSizeKnown: true}})
		if err != nil {
			return info, err
		}
		fresh.Size = info.Size
		info = fresh
	}
	if want.Tags != nil && !maps.Equal(want.Tags, applied.Tags) {
		if err := n.fsys.store.PutTags(ctx, store.ObjectRef{Bucket: n.bucket, Key: info.Key}, want.Tags); err != nil {
			return info, err
		}
	}
	if want.LockMode != "" && (want.LockMode != applied.LockMode || !want.LockUntil.Equal(applied.LockUntil)) {
		if err := n.fsys.store.PutRetention(ctx, store.RetentionRequest{ObjectRef: store.ObjectRef{Bucket: n.bucket, Key: info.Key}, Retention: store.Retention{Mode: want.LockMode, Until: want.LockUntil}}); err != nil {
			return info, err
		}
	}
	if want.LegalHold != nil && (applied.LegalHold == nil || *applied.LegalHold != *want.LegalHold) {
		if err := n.fsys.store.PutLegalHold(ctx, store.ObjectRef{Bucket: n.bucket, Key: info.Key}, *want.LegalHold); err != nil {
			return info, err
		}
	}
	return info, nil
}

// committed records a stored object, here, in the parent's listing and in
// the handles reading it.
func (n *fileNode) committed(info store.ObjectInfo, opts store.PutOptions) {
	if info.Meta == nil {
		info.Meta = opts.Meta
	}
	if info.ContentType == "" {
		info.ContentType = opts.ContentType
	}
	n.mu.Lock()
	n.info, n.infoAt, n.stored, n.dirty, n.shadows = info, n.fsys.now(), true, false, false
	n.wbExpect = info.ETag      // what a later write-back upload goes over
	n.pageCacheETag = info.ETag // the kernel's pages hold what was just written
	n.pending, n.pendingX = posix{}, pendingXattrs{}
	for h := range n.handles {
		h.mu.Lock()
		h.pin, h.served = info, false
		h.mu.Unlock()
	}
	held := n.deferID != ""
	n.mu.Unlock()
	if held {
		n.endDeferred() // what was held back is in this version
	}
	if name, parent := n.Parent(); parent != nil {
		if d, ok := parent.Operations().(*dirNode); ok {
			d.listingPut(listing.Entry{Name: name, Info: info})
		}
	}
}

func (n *fileNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := n.setattr(ctx, in); err != nil {
		return n.fsys.errno("setattr", n.path(), err)
	}
	n.fillAttr(&out.Attr)
	return 0
}

// setattr changes size, mode, owner and times. Attributes go with the
// pending upload when there is one, otherwise into the stored object by a
// server-side copy onto itself (which keeps its mtime: only ctime moves).
func (n *fileNode) setattr(ctx context.Context, in *fuse.SetAttrIn) error {
	if size, ok := in.GetSize(); ok {
		if n.typ != syscall.S_IFREG {
			return syscall.EINVAL
		}
		if err := n.truncateBeside(ctx, int64(size)); err != nil {
			return err
		}
	}
	change := setattrPosix(in, n.typ)
	if change.mode == 0 && change.uid == nil && change.gid == nil && change.mtime.IsZero() && change.atime.IsZero() {
		return nil
	}
	if n.typ == syscall.S_IFLNK {
		change.mode = 0 // a link's mode is always 0777
	}
	return n.setPosix(ctx, change)
}

func (n *fileNode) setPosix(ctx context.Context, change posix) error {
	var acl map[string][]byte // the stored set, when a chmod must change the access ACL too
	if change.mode != 0 && n.fsys.cfg.ACL {
		set, err := n.storedSet(ctx)
		if err != nil {
			return err
		}
		if v, ok := set[xattrs.ACLAccess]; ok {
			if w, ok := xattrs.ACLChmod(v, change.mode&0o777); ok {
				acl = maps.Clone(set)
				acl[xattrs.ACLAccess] = w
			}
		}
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	now := n.fsys.now()
	n.mu.Lock()
	n.pending = n.pending.merge(change)
	if !change.mtime.IsZero() {
		n.pendingAt = now
	}
	n.pending.ctime = now
	c, stored, unlinked := n.content, n.stored, n.unlinked
	if acl != nil {
		n.pendingX.xattrs = acl
	}
	n.mu.Unlock()
	if c != nil && c.Dirty() || !stored || unlinked {
		n.rerecord() // a written-back file's record carries its attributes
		return nil   // stored with the pending upload
	}
	if acl == nil && n.deferMeta() {
		return nil // journaled; stored with the next change, a rename, or soon
	}
	return n.rewriteMeta(ctx, func(o *store.PutOptions) error {
		if acl != nil {
			setXattrMeta(o.Meta, acl)
		}
		return nil
	})
}

// rewriteMeta stores the node's metadata (pending attributes applied, and
// whatever edit changes) by a server-side copy of the object onto itself,
// keeping its mtime.
func (n *fileNode) rewriteMeta(ctx context.Context, edit func(o *store.PutOptions) error) error {
	n.mu.Lock()
	key, info := n.key, n.info
	opts := n.metaOptionsLocked()
	n.mu.Unlock()
	if err := edit(&opts); err != nil {
		return err
	}
	n.busy.Add(1)
	defer n.busy.Add(-1)
	ref := store.ObjectRef{Bucket: n.bucket, Key: key}
	fresh, err := n.fsys.store.Copy(ctx, store.CopyRequest{Src: ref, Dst: ref, Options: store.CopyOptions{IfMatch: info.ETag, Replace: &opts, SrcSize: info.Size, SrcSizeKnown: true}})
	if errors.Is(err, store.ErrStale) {
		return err // changed by someone else meanwhile: nothing changed here
	}
	if err != nil {
		return err
	}
	n.committed(fresh, opts)
	return nil
}

// metaOptionsLocked is the stored object's metadata with the pending
// attributes applied (its mtime kept unless one is pending). n.mu is held.
func (n *fileNode) metaOptionsLocked() store.PutOptions {
	info := n.info
	a := parsePosix(info.Meta)
	shown := objectTimes(info, a)
	p := a.merge(n.pending)
	if n.pending.mtime.IsZero() {
		p.mtime = shown.mtime
	}
	if p.ctime.IsZero() {
		p.ctime = n.fsys.now()
	}
	opts := store.PutOptions{ContentType: info.ContentType, Meta: p.toMeta(info.Meta)}
	if opts.ContentType == "" {
		opts.ContentType = contentType(n.key)
	}
	return opts
}

// truncate resizes the file: the shared content when handles write it,
// else a content made for this and committed at once.
func (n *fileNode) truncate(ctx context.Context, size int64) error {
	n.opMu.Lock()
	n.mu.Lock()
	open := n.writers > 0
	n.mu.Unlock()
	c, err := n.contentFor(size == 0)
	if err != nil {
		n.opMu.Unlock()
		return err
	}
	if err := c.Truncate(ctx, size); err != nil {
		n.opMu.Unlock()
		return err
	}
	n.mu.Lock()
	n.size, n.wtime, n.dirty = size, n.fsys.now(), true
	n.mu.Unlock()
	n.opMu.Unlock()
	if open {
		return nil // stored when the writers close
	}
	if n.persistClose(ctx) {
		return nil // written back, like a close
	}
	err = n.commit(ctx)
	if n.pendingWrite() {
		return err // its upload failed: the content stays, queued
	}
	n.dropContent()
	n.settled()
	return err
}
