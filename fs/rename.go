package fs

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/listing"
	"kfs/fs/store"
)

var _ = (fusefs.NodeRenamer)((*dirNode)(nil))

const renameNoreplace = 1 // RENAME_NOREPLACE

// Rename moves a file (server-side copy keeping its mtime, then delete of
// the source: a reader of the target sees the old or the new object, never
// a mix) or a directory (every object under it copied first, then all
// deleted, so an interruption loses nothing). Every cache of this mount
// describes the new names when it returns.
func (d *dirNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := d.writable(newName); e != 0 {
		return e
	}
	nd, ok := newParent.(*dirNode)
	if !ok || nd.bucket != d.bucket {
		return syscall.EXDEV // mv falls back to copy and delete
	}
	if flags&^uint32(renameNoreplace) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	if err := d.rename(ctx, name, nd, newName, flags&renameNoreplace != 0); err != nil {
		return d.fsys.errno("rename", d.path(name)+" -> "+nd.path(newName), err)
	}
	return 0
}

func (d *dirNode) rename(ctx context.Context, name string, nd *dirNode, newName string, noReplace bool) error {
	srcKey, dstKey := d.pfx()+name, nd.pfx()+newName
	if err := d.fsys.del.flushPrefix(ctx, d.bucket, srcKey); err != nil {
		return err
	}
	if err := d.fsys.del.flushPrefix(ctx, d.bucket, dstKey); err != nil {
		return err
	}
	src, err := d.lookupEntry(ctx, name)
	if err != nil {
		return err
	}
	dst, derr := nd.lookupEntry(ctx, newName)
	exists := derr == nil
	if derr != nil && !errors.Is(derr, store.ErrNotFound) {
		return derr
	}
	if exists && noReplace {
		return syscall.EEXIST
	}
	var moved listing.Entry
	if src.IsDir {
		if exists && dst.IsDir && nd.holdsLocal(newName) {
			return syscall.ENOTEMPTY // files not in the store yet
		}
		if err := d.renameDir(ctx, name, srcKey, dstKey, exists, dst); err != nil {
			return err
		}
		moved = listing.Entry{Name: newName, IsDir: true}
	} else {
		if exists && dst.IsDir {
			return syscall.EISDIR
		}
		expect := dst.Info.ETag // what a file not yet uploaded replaces there
		if exists {
			if ch := nd.GetChild(newName); ch != nil {
				if t, ok := ch.Operations().(*fileNode); ok {
					if err := t.replaced(ctx); err != nil {
						return err
					}
					expect = t.underneath(dst.Info.ETag) // after: an upload of it under way has ended

				}
			}
		}
		done := nd.incoming(newName)
		info, err := d.moveFile(ctx, name, src, dstKey, exists, expect)
		if err != nil {
			done()
			return err
		}
		moved = listing.Entry{Name: newName, Info: info}
		defer done() // after the listing says what was stored
	}
	d.listingDel(name)
	nd.listingPut(moved)
	d.touch()
	nd.touch()
	return nil
}

// renameDir moves the tree of directory name (srcKey) to dstKey, over an
// empty directory dst when exists.
func (d *dirNode) renameDir(ctx context.Context, name, srcKey, dstKey string, exists bool, dst listing.Entry) error {
	if exists && !dst.IsDir {
		return syscall.ENOTDIR
	}
	if exists {
		if err := d.fsys.checkEmpty(ctx, d.bucket, dstKey+"/"); err != nil {
			return err
		}
	}
	if strings.HasPrefix(dstKey+"/", srcKey+"/") {
		return syscall.EINVAL // into itself
	}
	if ch := d.GetChild(name); ch != nil {
		if cd, ok := ch.Operations().(*dirNode); ok {
			d.fsys.dirt.flush(ctx, cd) // its marker is copied as it is stored
		}
	}
	s3fsDir := d.s3fsDirObject(ctx, name)
	if err := d.fsys.flushAllDeferred(ctx, d.bucket, srcKey+"/", false); err != nil {
		return err // held-back attributes go before the objects are copied
	}
	err := d.fsys.moveTree(ctx, d.bucket, srcKey+"/", dstKey+"/")
	if err == nil && s3fsDir {
		err = d.moveDirObject(ctx, srcKey, dstKey)
	}
	d.fsys.ahead.DropUnder(d.bucket, srcKey+"/") // listings made ahead during the move saw it half-way
	d.fsys.ahead.DropUnder(d.bucket, dstKey+"/")
	if err != nil {
		// What the failed move made and undid (or left, to be undone
		// in the background) under the target is asked of the store
		// again: a target name cached meanwhile must not outlive the
		// undo (mv, on EIO, moves into a target it finds a directory).
		d.fsys.ChangedPrefix(d.bucket, dstKey+"/")
		return err
	}
	if ch := d.GetChild(name); ch != nil {
		d.fsys.repoint(ctx, ch, srcKey+"/", dstKey+"/")
	}
	return nil
}

// repoint rewrites the prefixes and keys of a renamed subtree's nodes; their
// listings are dropped (the entries named the old keys).
func (f *FS) repoint(ctx context.Context, n *fusefs.Inode, from, to string) {
	switch op := n.Operations().(type) {
	case *dirNode:
		op.mu.Lock()
		op.prefix = to + strings.TrimPrefix(op.prefix, from)
		op.listing, op.listedAt, op.attrAt, op.changed = nil, time.Time{}, time.Time{}, time.Now()
		op.mu.Unlock()
	case *fileNode:
		op.opMu.Lock()
		op.mu.Lock()
		key := to + strings.TrimPrefix(op.key, from)
		op.key, op.info.Key, op.infoAt = key, key, time.Time{}
		c := op.content
		if !op.stored {
			op.wbExpect = "" // nothing was under its new name (the target was empty)
		}
		op.mu.Unlock()
		if c != nil {
			if err := c.Rekey(ctx, key, store.ObjectInfo{}); err != nil {
				f.cfg.Log.Warn("a file open while its directory was renamed", "key", key, "err", err)
			}
		}
		op.rerecord() // a written-back file goes to its new name
		op.opMu.Unlock()
	}
	for _, ch := range n.Children() {
		f.repoint(ctx, ch, from, to)
	}
}

// moveTree copies every object under from to the same name under to
// (keeping each one's mtime), then deletes the sources. Copies run 8 at a
// time; progress is logged. The rename is in the journal from before the
// first copy until the last source is gone, so one cut short by a crash
// is finished by the next mount (FinishRename); one that fails here is
// undone (its copies deleted) and the sources stay.
func (f *FS) moveTree(ctx context.Context, bucket, from, to string) error {
	var objs []store.ObjectInfo
	if err := f.walk(ctx, bucket, from, func(o store.ObjectInfo) { objs = append(objs, o) }); err != nil {
		return err
	}
	id := ""
	if j := f.cfg.Renames; j != nil {
		id = j.BeginRename(bucket, from, to)
	}
	start := time.Now()
	f.cfg.Log.Info("directory rename: copying", "bucket", bucket, "from", from, "to", to, "objects", len(objs))
	if err := f.copyTree(ctx, bucket, objs, from, to); err != nil {
		f.cfg.Log.Error("directory rename stopped; undoing its copies, the sources are kept", "bucket", bucket, "from", from, "to", to, "err", err)
		if uerr := f.undoCopies(ctx, bucket, from, to); uerr == nil {
			f.endRename(id)
		} else {
			f.cfg.Log.Error("directory rename: could not undo its copies; retrying in the background (or the next mount finishes the rename)",
				"bucket", bucket, "from", from, "to", to, "err", uerr)
			f.repairLater("undo directory rename "+from+" -> "+to, func(ctx context.Context) error {
				if err := f.undoCopies(ctx, bucket, from, to); err != nil {
					return err
				}
				f.endRename(id)
				f.ChangedPrefix(bucket, to)
				return nil
			})
		}
		return err
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	if failed, err := f.store.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: keys}); err != nil || len(failed) > 0 {
		if err == nil {
			err = failed[0].Err
		}
		// Every copy is made: what is left is deleting sources, here in the
		// background, or by the next mount from the journal.
		f.cfg.Log.Error("directory rename: copies made but sources not all deleted; finishing in the background",
			"bucket", bucket, "from", from, "to", to, "err", err)
		f.repairLater("finish directory rename "+from+" -> "+to, func(ctx context.Context) error {
			if err := f.FinishRename(ctx, id, bucket, from, to); err != nil {
				return err
			}
			f.ChangedPrefix(bucket, from)
			f.ChangedPrefix(bucket, to)
			return nil
		})
		return err
	}
	f.endRename(id)
	f.removeFolders(ctx, bucket, from, keys)
	f.cfg.Log.Info("directory rename: done", "bucket", bucket, "from", from, "to", to, "objects", len(objs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// removeFolders deletes the directory keys of a moved tree (from and
// every directory under it), deepest first, once its objects are gone:
// servers that keep folders of their own (SeaweedFS) would otherwise list
// the emptied source (and ignore the delete of a folder not yet empty).
// Where the store is known to keep no folders (MinIO) nothing is sent;
// elsewhere (AWS S3) these are deletes of absent keys. A failure leaves
// an empty directory, logged.
func (f *FS) removeFolders(ctx context.Context, bucket, from string, keys []string) {
	if s, ok := f.store.(interface{ FoldersVanish() bool }); ok && s.FoldersVanish() {
		return // nothing left behind: no request
	}
	seen := map[string]bool{}
	var dirs []string
	for _, k := range keys {
		if strings.HasSuffix(k, "/") && !seen[k] { // a marker: deleted with the rest, maybe before its folder emptied
			seen[k] = true
			dirs = append(dirs, k)
		}
		for d := path.Dir(strings.TrimSuffix(k, "/")); len(d)+1 >= len(from); d = path.Dir(d) {
			if !seen[d+"/"] {
				seen[d+"/"] = true
				dirs = append(dirs, d+"/")
			}
			if d == "." || d == "/" {
				break
			}
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	if len(dirs) == 0 {
		return
	}
	if failed, err := f.store.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: dirs}); err != nil || len(failed) > 0 {
		f.cfg.Log.Warn("directory rename: the emptied source directories could not all be removed", "bucket", bucket, "from", from, "err", err, "failed", len(failed))
	}
}

func (f *FS) endRename(id string) {
	if j := f.cfg.Renames; j != nil && id != "" {
		j.EndRename(id)
	}
}

// copyTree copies objs (under from) to the same names under to, 8 at a
// time; it stops at the first error.
func (f *FS) copyTree(ctx context.Context, bucket string, objs []store.ObjectInfo, from, to string) error {
	var (
		mu    sync.Mutex
		first error
		done  int
		wg    sync.WaitGroup
	)
	work := make(chan store.ObjectInfo)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				dst := to + strings.TrimPrefix(o.Key, from)
				err := f.copyOne(ctx, bucket, o, dst)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				done++
				if done%1000 == 0 {
					f.cfg.Log.Info("directory rename: progress", "bucket", bucket, "from", from, "copied", done, "of", len(objs))
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range objs {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop {
			break
		}
		work <- o
	}
	close(work)
	wg.Wait()
	return first
}

// copyOne copies one object of a tree (a directory marker is made anew,
// keeping the directory's atime and mtime: a new marker's LastModified is
// the rename's time; its ctime is the rename's, as for files).
func (f *FS) copyOne(ctx context.Context, bucket string, o store.ObjectInfo, dst string) error {
	if strings.HasSuffix(o.Key, "/") {
		a := parsePosix(o.Meta)
		t := objectTimes(o, a)
		a.atime, a.mtime, a.ctime = t.atime, t.mtime, f.now()
		_, err := f.putMarker(ctx, bucket, dst, a.toMeta(o.Meta))
		if errors.Is(err, errNoDirMeta) {
			return nil // the directory moves; the server keeps no attributes on it anyway
		}
		return err
	}
	_, err := f.copyKeepingTimes(ctx, bucket, o, dst)
	return err
}

// FinishRename completes a directory rename a crashed process left in its
// journal (id): every object still under from is copied to its name under
// to unless a copy of it is there already (same size and mtime), then the
// sources are deleted. An object under to that is not such a copy (written
// there since) is never replaced: its source is kept too, and logged.
func (f *FS) FinishRename(ctx context.Context, id, bucket, from, to string) error {
	dests := map[string]store.ObjectInfo{}
	if err := f.walk(ctx, bucket, to, func(o store.ObjectInfo) { dests[o.Key] = o }); err != nil {
		return err
	}
	var srcs []store.ObjectInfo
	if err := f.walk(ctx, bucket, from, func(o store.ObjectInfo) { srcs = append(srcs, o) }); err != nil {
		return err
	}
	var done []string
	kept := 0
	for _, o := range srcs {
		dst := to + strings.TrimPrefix(o.Key, from)
		if d, ok := dests[dst]; ok {
			if !sameCopy(o, d) {
				kept++
				f.cfg.Log.Warn("finishing a directory rename: a different object has the new name; both kept", "bucket", bucket, "source", o.Key, "target", dst)
				continue
			}
		} else if err := f.copyOne(ctx, bucket, o, dst); err != nil {
			return err
		}
		done = append(done, o.Key)
	}
	if failed, err := f.store.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: done}); err != nil || len(failed) > 0 {
		if err == nil {
			err = failed[0].Err
		}
		return err
	}
	f.endRename(id)
	f.cfg.Log.Info("finished a directory rename an earlier run left half done", "bucket", bucket, "from", from, "to", to,
		"moved", len(done), "kept_both", kept)
	return nil
}

// undoCopies deletes the copies a failed directory rename made: every
// object under to that is a copy of its source under from (the target was
// empty when the rename began). Found by listing, not from what the copies
// answered: a copy whose answer was lost is undone too, and an object
// written under the new name since is kept.
func (f *FS) undoCopies(ctx context.Context, bucket, from, to string) error {
	srcs := map[string]store.ObjectInfo{}
	if err := f.walk(ctx, bucket, from, func(o store.ObjectInfo) { srcs[to+strings.TrimPrefix(o.Key, from)] = o }); err != nil {
		return err
	}
	var drop []string
	if err := f.walk(ctx, bucket, to, func(o store.ObjectInfo) {
		if s, ok := srcs[o.Key]; ok && sameCopy(s, o) {
			drop = append(drop, o.Key)
		}
	}); err != nil {
		return err
	}
	if failed, err := f.store.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: drop}); err != nil || len(failed) > 0 {
		if err == nil {
			err = failed[0].Err
		}
		return err
	}
	f.cfg.Log.Info("undid the copies of a failed directory rename", "bucket", bucket, "from", from, "to", to, "removed", len(drop))
	return nil
}

// repairLater retries fn in the background (backoff from 1 s to 30 s)
// until it succeeds or the mount ends: work that must not be left half
// done when the store was unreachable at the time.
func (f *FS) repairLater(what string, fn func(ctx context.Context) error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		wait := time.Second
		for attempt := 1; ; attempt++ {
			select {
			case <-f.stop:
				f.cfg.Log.Warn("unmounted before a repair was done; the next mount does it from the journal", "what", what)
				return
			case <-time.After(wait):
			}
			ctx, cancel := f.background()
			go func() {
				select {
				case <-f.stop: // unmounting: do not hold Close up
					cancel()
				case <-ctx.Done():
				}
			}()
			err := fn(ctx)
			cancel()
			if err == nil {
				f.cfg.Log.Info("repaired", "what", what, "attempts", attempt)
				return
			}
			f.cfg.Log.Warn("repair failed; retrying", "what", what, "attempt", attempt, "err", err)
			wait = min(2*wait, 30*time.Second)
		}
	}()
}

// sameCopy says whether d is what copying s made: the same size and mtime
// (a copy stores its source's mtime), or both directory markers.
func sameCopy(s, d store.ObjectInfo) bool {
	if strings.HasSuffix(s.Key, "/") && strings.HasSuffix(d.Key, "/") {
		return true
	}
	return s.Size == d.Size && objectTimes(s, parsePosix(s.Meta)).mtime.Equal(objectTimes(d, parsePosix(d.Meta)).mtime)
}

// walk calls fn for every object under prefix (with its metadata), in key
// order, with one recursive listing.
func (f *FS) walk(ctx context.Context, bucket, prefix string, fn func(store.ObjectInfo)) error {
	r := store.ListRequest{Bucket: bucket, Prefix: prefix, Recursive: true, Meta: true}
	for {
		p, err := f.store.List(ctx, r)
		if err != nil {
			return err
		}
		for _, o := range p.Objects {
			fn(o)
		}
		if r.Token = p.NextToken; r.Token == "" {
			return nil
		}
	}
}
