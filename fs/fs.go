// Package fs is the kfs filesystem: a go-fuse node tree over a Store.
// Buckets and prefixes are directories, objects are regular files.
//
// Node methods are thin adapters: they decode the request, call a plain
// function returning error, and map it once with toErrno.
//
// LOCK ORDERING: a dirNode's mu and a fileNode's mu are leaves: no other
// lock is taken while holding one, and none is held across Store calls or
// Inode.Notify*. FS.logMu is a leaf too.
package fs

import (
	"context"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
)

// Config is what the filesystem layer needs to know.
type Config struct {
	UID, GID          uint32
	FileMode, DirMode uint32 // permission bits
	AttrTTL           time.Duration
	EntryTTL          time.Duration // also how long kfs trusts its own directory listings
	NegativeTTL       time.Duration
	ReadOnly          bool
	BlockSize         int64
	MaxReadahead      int64
	Log               *log.Logger

	// Write path.
	CacheDir       string        // staging files (must exist)
	CacheDirSize   int64         // most bytes of staging files at once
	PartSize       int64         // first multipart part size (grows after 1,000 parts)
	UploadParallel int           // parts in flight per file
	WriteBuffer    int64         // most bytes of part buffers, all files together
	UploadTimeout  time.Duration // bound on one part upload / completion
	Journal        *Journal      // records multipart uploads in flight (nil: none)
}

// FS is the state shared by every node of one mount.
type FS struct {
	store   Store
	blocks  *cache.Blocks
	cfg     Config
	mounted time.Time

	del       *deleter     // batches deletions
	writeMem  *memBudget   // bounds part buffers
	partPool  sync.Pool    // *[]byte of cfg.PartSize bytes
	stageUsed atomic.Int64 // bytes charged to staging files

	problems *problemLog // counts what cfg.Log logs

	activeMu sync.Mutex                 // protects active
	active   map[*writeHandle]time.Time // GUARDED_BY(activeMu): open write handles, for status

	logMu  sync.Mutex          // protects logged
	logged map[string]struct{} // GUARDED_BY(logMu): messages already logged once
}

// New returns the shared state of a mount.
func New(store Store, blocks *cache.Blocks, cfg Config) *FS {
	if cfg.Log == nil {
		cfg.Log = log.Default()
	}
	if cfg.PartSize < MinPartSize {
		cfg.PartSize = 16 << 20
	}
	if cfg.UploadParallel <= 0 {
		cfg.UploadParallel = 4
	}
	if cfg.WriteBuffer < cfg.PartSize {
		cfg.WriteBuffer = 6 * cfg.PartSize
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = 10 * time.Minute
	}
	if cfg.CacheDirSize <= 0 {
		cfg.CacheDirSize = 10 << 30
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = os.TempDir()
	}
	var problems *problemLog
	cfg.Log, problems = wrapLogger(cfg.Log)
	f := &FS{store: store, blocks: blocks, cfg: cfg, mounted: time.Now(), logged: map[string]struct{}{},
		writeMem: newMemBudget(cfg.WriteBuffer), problems: problems, active: map[*writeHandle]time.Time{}}
	f.del = newDeleter(f)
	return f
}

// Close finishes what the mount deferred (batched deletions); call it once
// the filesystem is unmounted.
func (f *FS) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return f.del.flush(ctx)
}

// partBuf returns an empty buffer with room for n bytes.
func (f *FS) partBuf(n int) []byte {
	if int64(n) == f.cfg.PartSize {
		if b, ok := f.partPool.Get().(*[]byte); ok {
			return (*b)[:0]
		}
	}
	return make([]byte, 0, n)
}

func (f *FS) putPartBuf(b []byte) {
	if int64(cap(b)) == f.cfg.PartSize {
		b = b[:0]
		f.partPool.Put(&b)
	}
}

// trackUpload records a multipart upload starting or ending, so one left
// behind by a crash is aborted at the next mount.
func (f *FS) trackUpload(bucket, key, id string, start bool) {
	if f.cfg.Journal != nil {
		f.cfg.Journal.record(bucket, key, id, start)
	}
}

// BucketRoot returns the root node of a mount of one bucket (or prefix).
func (f *FS) BucketRoot(bucket, prefix string) fusefs.InodeEmbedder {
	return newDirNode(f, bucket, prefix, f.mounted)
}

// logOnce logs msg the first time it is seen (bounded memory).
func (f *FS) logOnce(msg string) {
	f.logMu.Lock()
	_, seen := f.logged[msg]
	if !seen && len(f.logged) < 10000 {
		f.logged[msg] = struct{}{}
	}
	f.logMu.Unlock()
	if !seen {
		f.cfg.Log.Print(msg)
	}
}

func (f *FS) dirAttr(out *fuse.Attr, mtime time.Time) {
	out.Mode = syscall.S_IFDIR | f.cfg.DirMode
	out.Nlink = 2
	out.Uid, out.Gid = f.cfg.UID, f.cfg.GID
	out.Blksize = 4096
	setTimes(out, mtime)
}

// fileAttr fills attributes from an object: mode, owner and mtime from its
// metadata when it has them (s3fs names), else from the mount options and
// LastModified.
func (f *FS) fileAttr(out *fuse.Attr, info ObjectInfo) {
	a := parseAttrs(info.Meta)
	out.Mode = syscall.S_IFREG | f.cfg.FileMode
	if a.mode != 0 {
		out.Mode = syscall.S_IFREG | a.mode&0o7777
		if a.isSymlink() {
			out.Mode = syscall.S_IFLNK | 0o777
		}
	}
	out.Nlink = 1
	out.Size = uint64(info.Size)
	out.Blocks = (uint64(info.Size) + 511) / 512
	out.Uid, out.Gid = f.cfg.UID, f.cfg.GID
	if a.uid != nil {
		out.Uid = *a.uid
	}
	if a.gid != nil {
		out.Gid = *a.gid
	}
	out.Blksize = 1 << 20
	mtime := info.LastModified
	if !a.mtime.IsZero() {
		mtime = a.mtime
	}
	setTimes(out, mtime)
}

func setTimes(out *fuse.Attr, t time.Time) {
	out.SetTimes(&t, &t, &t)
}

// statfs answers df: object stores have no fixed capacity, so report a
// large, constant one (1 PiB in 4 KiB blocks) and plenty of inodes.
func statfs(out *fuse.StatfsOut) {
	const bsize = 4096
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = (1 << 50) / bsize
	out.Bfree = out.Blocks
	out.Bavail = out.Blocks
	out.Files = 1 << 40
	out.Ffree = 1 << 40
	out.NameLen = 255
}
