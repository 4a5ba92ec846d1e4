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
	src, stored, busy := n.info, n.stored, n.content != nil && n.dirty // committed content not yet released is what the store holds
	n.mu.Unlock()
	if !stored || busy {
		return 0, syscall.EOPNOTSUPP // the source's bytes are not (all) in the store
	}
	if h.copiedRest(src, offIn, offOut) {
		// cp asking for the rest after the whole copy (one call moves at
		// most maxRW bytes): it is there already; at the end, end of file.
		return uint32(min(uint64(src.Size)-offIn, size)), 0
	}
	dst.mu.Lock()
	c, dsize := dst.content, dst.size
	dst.mu.Unlock()
	if offIn != 0 || offOut != 0 || size < min(uint64(src.Size), maxRW) || c == nil || dsize != 0 || !c.Dirty() || !h.write {
		return 0, syscall.EOPNOTSUPP
	}
	info, err := dst.copyFrom(ctx, n.bucket, src)
	if err != nil {
		return 0, n.fsys.errno("copy", n.path()+" -> "+dst.path(), err)
	}
	h.mu.Lock()
	h.copied = copyMark{src: src.ETag, dst: info.ETag, size: info.Size}
	h.mu.Unlock()
	return uint32(min(uint64(info.Size), size)), 0
}

// copyMark remembers the server-side copy a handle made of a whole file.
type copyMark struct {
	src, dst string // the source's ETag and the copy's
	size     int64
}

// copiedRest says whether a copy_file_range at offIn is the rest of a
// whole-file copy this very handle made: proven from the state it acts on,
// not from memory alone. The destination must still be exactly that copy
// (no content written or truncated since, same object version and size)
// and the source the version copied, and the offsets those of a
// continuation. Any doubt answers false, and the caller takes the
// ordinary path (a server-side copy of an empty file, or EOPNOTSUPP and
// cp's own reading and writing).
func (h *handle) copiedRest(src store.ObjectInfo, offIn, offOut uint64) bool {
	h.mu.Lock()
	mark := h.copied
	h.mu.Unlock()
	if mark.src == "" || mark.src != src.ETag || offIn != offOut || offIn == 0 || offIn > uint64(mark.size) {
		return false
	}
	dst := h.node
	dst.mu.Lock()
	defer dst.mu.Unlock()
	return dst.content == nil && dst.stored && !dst.unlinked && dst.info.ETag == mark.dst && dst.info.Size == mark.size
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
	info, err := n.fsys.store.Copy(ctx, store.CopyRequest{Src: store.ObjectRef{Bucket: bucket, Key: src.Key}, Dst: store.ObjectRef{Bucket: n.bucket, Key: n.objKey()}, Options: store.CopyOptions{IfMatch: src.ETag, Replace: &opts, SrcSize: src.Size, SrcSizeKnown: true}})
	if err != nil {
		return store.ObjectInfo{}, err
	}
	n.mu.Lock()
	c := n.content
	n.content = nil
	n.mu.Unlock()
	if c != nil {
		c.Close()
	}
	n.committed(info, opts)
	return info, nil
}
