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
	"sync"
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
}

// FS is the state shared by every node of one mount.
type FS struct {
	store   Store
	blocks  *cache.Blocks
	cfg     Config
	mounted time.Time

	logMu  sync.Mutex          // protects logged
	logged map[string]struct{} // GUARDED_BY(logMu): messages already logged once
}

// New returns the shared state of a mount.
func New(store Store, blocks *cache.Blocks, cfg Config) *FS {
	if cfg.Log == nil {
		cfg.Log = log.Default()
	}
	return &FS{store: store, blocks: blocks, cfg: cfg, mounted: time.Now(), logged: map[string]struct{}{}}
}

// BucketRoot returns the root node of a mount of one bucket (or prefix).
func (f *FS) BucketRoot(bucket, prefix string) fusefs.InodeEmbedder {
	return &dirNode{fsys: f, bucket: bucket, prefix: prefix, mtime: f.mounted}
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

func (f *FS) fileAttr(out *fuse.Attr, info ObjectInfo) {
	out.Mode = syscall.S_IFREG | f.cfg.FileMode
	out.Nlink = 1
	out.Size = uint64(info.Size)
	out.Blocks = (uint64(info.Size) + 511) / 512
	out.Uid, out.Gid = f.cfg.UID, f.cfg.GID
	out.Blksize = 1 << 20
	setTimes(out, info.LastModified)
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

// opCtx bounds one FUSE operation's store calls.
func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 5*time.Minute)
}
