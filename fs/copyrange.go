package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/store"
)

var _ = (fusefs.NodeCopyFileRanger)((*fileNode)(nil))

// CopyFileRange makes a whole-file copy_file_range(2) between two files of
// one mount (what coreutils cp does) a server-side copy, within a bucket
// or across buckets of an all-buckets mount: no bytes pass through kfs.
// Any other range answers EOPNOTSUPP, and the caller falls back to reading
// and writing.
func (n *fileNode) CopyFileRange(ctx context.Context, fhIn fusefs.FileHandle, offIn uint64, out *fusefs.Inode,
	fhOut fusefs.FileHandle, offOut uint64, size uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok1 := out.Operations().(*fileNode)
	h, ok2 := fhOut.(*handle)
	if !ok1 || !ok2 || flags != 0 || dst == n {
		return 0, syscall.EOPNOTSUPP
	}
	n.mu.Lock()
	src, stored, busy := n.info, n.stored, n.content != nil
	n.mu.Unlock()
	if !stored || busy {
		return 0, syscall.EOPNOTSUPP // the source's bytes are not (all) in the store
	}
	dst.mu.Lock()
	c, dsize, copied := dst.content, dst.size, dst.copiedFrom
	dst.mu.Unlock()
	total := uint64(src.Size)
	if copied == src.ETag && offIn == offOut && offIn <= total {
		// cp asking for the rest after the whole copy (one call moves at
		// most maxRW bytes): it is there already; at the end, end of file.
		return uint32(min(total-offIn, size)), 0
	}
	if offIn != 0 || offOut != 0 || size < min(total, maxRW) || c == nil || dsize != 0 || !c.Dirty() || !h.write {
		return 0, syscall.EOPNOTSUPP
	}
	info, err := dst.copyFrom(ctx, n.bucket, src)
	if err != nil {
		return 0, n.fsys.errno("copy", n.path()+" -> "+dst.path(), err)
	}
	return uint32(min(uint64(info.Size), size)), 0
}

// maxRW is the most bytes the kernel asks one copy_file_range for
// (MAX_RW_COUNT): a larger file comes in several calls, the first of
// which copies it all.
const maxRW = (1<<31 - 1) &^ 4095

// copyFrom makes this (new, empty) file a server-side copy of src with
// this file's own metadata, and drops its content: the object is complete.
func (n *fileNode) copyFrom(ctx context.Context, bucket string, src store.ObjectInfo) (store.ObjectInfo, error) {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.busy.Add(1)
	defer n.busy.Add(-1)
	opts := n.uploadOptions()
	opts.Tags = nil
	info, err := n.fsys.store.Copy(ctx, store.ObjectRef{Bucket: bucket, Key: src.Key}, store.ObjectRef{Bucket: n.bucket, Key: n.objKey()},
		store.CopyOptions{IfMatch: src.ETag, Replace: &opts})
	if err != nil {
		return store.ObjectInfo{}, err
	}
	n.mu.Lock()
	c := n.content
	n.content, n.copiedFrom = nil, src.ETag
	n.mu.Unlock()
	if c != nil {
		c.Close()
	}
	n.committed(info, opts)
	return info, nil
}
