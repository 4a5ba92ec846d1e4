package fs

import (
	"context"
	"time"

	"kfs/cache"
	"kfs/fs/listing"
	"kfs/fs/store"
	"kfs/fs/upload"
)

// Renaming one file: its object copied to the new key and deleted.

// replaced makes an open target of a rename anonymous, as an unlink does,
// without deleting the key (the renamed object takes it).
func (n *fileNode) replaced(ctx context.Context) error {
	n.mu.Lock()
	open := len(n.handles) > 0
	n.mu.Unlock()
	if !open {
		// opMu: an upload of it under way (write-back) ends first, and
		// none starts after: its content stores nothing any more.
		n.opMu.Lock()
		n.endDeferred()
		n.dropPending()
		n.mu.Lock()
		n.unlinked = true
		c := n.content
		n.mu.Unlock()
		if c != nil {
			c.Detach()
		}
		n.opMu.Unlock()
		n.settled()
		return nil
	}
	return n.detach(ctx, false)
}

// moveFile renames one object; a file still being created (no object yet)
// just changes the key its upload will use.
// With over, the rename replaces a file at dstKey: one not yet stored
// then shadows the object there until its upload replaces it.
//
// expect is the ETag of the object a file not yet uploaded may replace
// at dstKey ("": none), which its write-back upload is conditioned on.
func (d *dirNode) moveFile(ctx context.Context, name string, src listing.Entry, dstKey string, over bool, expect string) (store.ObjectInfo, error) {
	var n *fileNode
	if ch := d.GetChild(name); ch != nil {
		n, _ = ch.Operations().(*fileNode)
	}
	if n == nil {
		info, err := d.fsys.copyKeepingTimes(ctx, d.bucket, src.Info, dstKey)
		if err != nil {
			return store.ObjectInfo{}, err
		}
		return info, d.fsys.store.Remove(ctx, store.ObjectRef{Bucket: d.bucket, Key: src.Info.Key})
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.busy.Add(1)
	defer n.busy.Add(-1)
	n.mu.Lock()
	stored, info, c, oldKey, shadowed := n.stored, n.info, n.content, n.key, n.shadows
	held := n.deferID != ""
	if held { // the copy carries what was held back
		o := n.metaOptionsLocked()
		info.Meta, info.ContentType = o.Meta, o.ContentType
	}
	n.mu.Unlock()
	fresh, err := d.moveContent(ctx, info, stored, c, oldKey, dstKey)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	if stored {
		d.fsys.aliasBlocks(d.bucket, info, fresh) // what was cached of it is what the copy holds
	}
	if shadowed {
		d.fsys.del.add(d.bucket, oldKey) // the object it replaced there goes with the name
	}
	n.movedTo(dstKey, fresh, stored, held, over)
	if !stored {
		n.mu.Lock()
		n.wbExpect = expect
		n.mu.Unlock()
		n.rerecord() // a written-back file goes to its new name
	}
	return fresh, nil
}

// moveContent moves a file's stored object (when stored) to dstKey, and
// its open content's upload (c, when not nil) with it.
func (d *dirNode) moveContent(ctx context.Context, info store.ObjectInfo, stored bool, c *upload.File, oldKey, dstKey string) (store.ObjectInfo, error) {
	fresh := store.ObjectInfo{Key: dstKey, LastModified: info.LastModified, Meta: info.Meta}
	if stored {
		var err error
		if fresh, err = d.fsys.copyKeepingTimes(ctx, d.bucket, info, dstKey); err != nil {
			return store.ObjectInfo{}, err
		}
	}
	if c != nil {
		if err := c.Rekey(ctx, dstKey, fresh); err != nil {
			if stored {
				_ = d.fsys.store.Remove(ctx, store.ObjectRef{Bucket: d.bucket, Key: dstKey})
			}
			return store.ObjectInfo{}, err
		}
	}
	if stored {
		if err := d.fsys.store.Remove(ctx, store.ObjectRef{Bucket: d.bucket, Key: oldKey}); err != nil {
			return store.ObjectInfo{}, err
		}
	}
	return fresh, nil
}

// movedTo points the node and its handles at dstKey once its content moved
// there; with held, the attributes held back travelled with the copy.
func (n *fileNode) movedTo(dstKey string, fresh store.ObjectInfo, stored, held, over bool) {
	n.mu.Lock()
	n.key, n.shadows = dstKey, !stored && over
	if stored {
		n.info, n.infoAt, n.wbExpect = fresh, time.Now(), fresh.ETag
	} else {
		n.info.Key = dstKey
	}
	if held {
		n.pending = posix{}
	}
	for h := range n.handles {
		h.mu.Lock()
		h.pin = n.info
		h.mu.Unlock()
	}
	n.mu.Unlock()
	if held {
		n.endDeferred()
	}
}

// copyKeepingTimes copies an object to dstKey with its metadata, tags and
// Content-Type, storing its mtime (a copy gets a new LastModified) and a
// new ctime.
func (f *FS) copyKeepingTimes(ctx context.Context, bucket string, src store.ObjectInfo, dstKey string) (store.ObjectInfo, error) {
	ref := store.ObjectRef{Bucket: bucket, Key: src.Key}
	if src.ContentType == "" || src.Meta == nil {
		st, err := f.store.Stat(ctx, ref)
		if err != nil {
			return store.ObjectInfo{}, err
		}
		src = st
	}
	a := parsePosix(src.Meta)
	a.mtime = objectTimes(src, a).mtime
	a.ctime = f.now()
	opts := store.PutOptions{ContentType: src.ContentType, Meta: a.toMeta(src.Meta)}
	info, err := f.store.Copy(ctx, store.CopyRequest{Src: ref, Dst: store.ObjectRef{Bucket: bucket, Key: dstKey}, Options: store.CopyOptions{IfMatch: src.ETag, Replace: &opts,
		SrcSize: src.Size, SrcSizeKnown: true}})
	if err != nil {
		return store.ObjectInfo{}, err
	}
	info.Meta, info.ContentType = opts.Meta, opts.ContentType
	return info, nil
}

// aliasBlocks makes the cached blocks of from (an object version) also
// those of to, its server-side copy: the same bytes.
func (f *FS) aliasBlocks(bucket string, from, to store.ObjectInfo) {
	if f.blocks == nil || from.ETag == "" || to.ETag == "" || from.Size != to.Size {
		return
	}
	bs := f.blocks.BlockSize()
	for i := int64(0); i*bs < from.Size; i++ {
		f.blocks.Alias(cache.Key{Bucket: bucket, Object: from.Key, ETag: from.ETag, Block: i},
			cache.Key{Bucket: bucket, Object: to.Key, ETag: to.ETag, Block: i})
	}
}
