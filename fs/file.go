package fs

import (
	"context"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fileNode is one object.
type fileNode struct {
	fusefs.Inode
	fsys   *FS
	bucket string
	key    string

	mu            sync.Mutex // protects the fields below
	info          ObjectInfo // GUARDED_BY(mu)
	infoAt        time.Time  // GUARDED_BY(mu): when info was learnt
	pageCacheETag string     // GUARDED_BY(mu): version whose bytes the kernel may hold in its page cache
}

var (
	_ = (fusefs.NodeGetattrer)((*fileNode)(nil))
	_ = (fusefs.NodeOpener)((*fileNode)(nil))
	_ = (fusefs.NodeStatfser)((*fileNode)(nil))
)

func (f *fileNode) setInfo(info ObjectInfo) {
	f.mu.Lock()
	f.info, f.infoAt = info, time.Now()
	f.mu.Unlock()
}

func (f *fileNode) snapshot() (ObjectInfo, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info, f.infoAt
}

// Getattr answers from what kfs knows, asking the store again only when
// that is older than the attribute TTL.
func (f *fileNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	info, at := f.snapshot()
	if time.Since(at) > f.fsys.cfg.AttrTTL {
		fresh, err := f.fsys.store.Stat(ctx, f.bucket, f.key)
		if err != nil {
			return toErrno(f.fsys.cfg.Log, "getattr "+f.bucket+"/"+f.key, err)
		}
		f.setInfo(fresh)
		info = fresh
	}
	f.fsys.fileAttr(&out.Attr, info)
	return 0
}

func (f *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// Open snapshots (key, ETag, size) for the handle. The kernel keeps its page
// cache across opens while the ETag it was filled from is unchanged.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	f.mu.Lock()
	info := f.info
	keep := f.pageCacheETag == info.ETag
	f.pageCacheETag = info.ETag
	f.mu.Unlock()
	var fuseFlags uint32
	if keep {
		fuseFlags = fuse.FOPEN_KEEP_CACHE
	}
	return newReadHandle(f.fsys, f.bucket, info), fuseFlags, 0
}
