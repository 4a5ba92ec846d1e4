package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

var _ = (fusefs.NodeCopyFileRanger)((*fileNode)(nil))

// CopyFileRange makes a whole-file copy_file_range(2) between two files of
// one bucket (what coreutils cp does) a server-side copy: no bytes pass
// through kfs. Any other range answers EOPNOTSUPP, and the caller falls
// back to reading and writing.
func (f *fileNode) CopyFileRange(ctx context.Context, fhIn fusefs.FileHandle, offIn uint64, out *fusefs.Inode,
	fhOut fusefs.FileHandle, offOut uint64, n uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok1 := out.Operations().(*fileNode)
	h, ok2 := fhOut.(*writeHandle)
	if !ok1 || !ok2 || dst.bucket != f.bucket || flags != 0 {
		return 0, syscall.EOPNOTSUPP
	}
	f.mu.Lock()
	src, stored, writing := f.info, f.stored, len(f.writers) > 0
	f.mu.Unlock()
	if !stored || writing {
		return 0, syscall.EOPNOTSUPP // the source's bytes are not (all) in the store
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if offIn == uint64(src.Size) && offOut == uint64(h.size) && h.copiedFrom == src.ETag {
		return 0, 0 // cp asking for more after the whole copy: end of file
	}
	if offIn != 0 || offOut != 0 || n < uint64(src.Size) || !h.streaming || h.size != 0 || h.mp != nil || len(h.buf) != 0 {
		return 0, syscall.EOPNOTSUPP
	}
	info, err := f.fsys.store.Copy(ctx, f.bucket, src.Key, src.ETag, dst.objKey(), &PutOptions{
		ContentType: contentType(dst.objKey()), Meta: dst.putOptions().Meta})
	if err != nil {
		return 0, toErrno(f.fsys.cfg.Log, "copy "+f.bucket+"/"+src.Key+" to "+dst.objKey(), err)
	}
	if err := h.adoptLocked(info); err != nil {
		return 0, toErrno(f.fsys.cfg.Log, "copy "+f.bucket+"/"+src.Key+" to "+dst.objKey(), err)
	}
	h.copiedFrom = src.ETag
	return uint32(min(uint64(info.Size), 1<<31)), 0
}
