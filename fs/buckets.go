package fs

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/fs/store"
)

// bucketsNode is the root of a mount of every bucket: one directory each,
// with the bucket's creation date as its times. mkdir makes a bucket and
// rmdir removes an empty one.
type bucketsNode struct {
	fusefs.Inode
	fsys *FS

	mu     sync.Mutex         // protects the fields below
	list   []store.BucketInfo // GUARDED_BY(mu)
	listAt time.Time          // GUARDED_BY(mu)
}

var (
	_ = (fusefs.NodeLookuper)((*bucketsNode)(nil))
	_ = (fusefs.NodeReaddirer)((*bucketsNode)(nil))
	_ = (fusefs.NodeGetattrer)((*bucketsNode)(nil))
	_ = (fusefs.NodeStatfser)((*bucketsNode)(nil))
	_ = (fusefs.NodeMkdirer)((*bucketsNode)(nil))
	_ = (fusefs.NodeRmdirer)((*bucketsNode)(nil))
	_ = (fusefs.NodeGetxattrer)((*bucketsNode)(nil))
	_ = (fusefs.NodeListxattrer)((*bucketsNode)(nil))
	_ = (fusefs.NodeCreater)((*bucketsNode)(nil))
	_ = (fusefs.NodeMknoder)((*bucketsNode)(nil))
	_ = (fusefs.NodeSymlinker)((*bucketsNode)(nil))
)

// AllBucketsRoot returns the root node of a mount of every bucket.
func (f *FS) AllBucketsRoot() fusefs.InodeEmbedder { return &bucketsNode{fsys: f} }

func (r *bucketsNode) buckets(ctx context.Context, fresh bool) ([]store.BucketInfo, error) {
	r.mu.Lock()
	// The list answers "no such bucket" too, so it is trusted no longer
	// than either TTL (a bucket made elsewhere shows within negative-ttl).
	if !fresh && r.list != nil && time.Since(r.listAt) <= min(r.fsys.cfg.EntryTTL, r.fsys.cfg.NegativeTTL) {
		defer r.mu.Unlock()
		return r.list, nil
	}
	r.mu.Unlock()
	bs, err := r.fsys.store.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.list, r.listAt = bs, time.Now()
	r.mu.Unlock()
	return bs, nil
}

func (r *bucketsNode) forget() {
	r.mu.Lock()
	r.list = nil
	r.mu.Unlock()
}

func (r *bucketsNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fsys.setRoot(r.EmbeddedInode())
	r.fsys.ownerAndMode(&out.Attr, posix{}, syscall.S_IFDIR)
	out.Nlink = 2
	setTimes(&out.Attr, times{r.fsys.mounted, r.fsys.mounted, r.fsys.mounted})
	return 0
}

func (r *bucketsNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

func (r *bucketsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	r.fsys.setRoot(r.EmbeddedInode())
	for attempt := 0; attempt < 2; attempt++ {
		bs, err := r.buckets(ctx, attempt > 0)
		if err != nil {
			return nil, r.fsys.errno("list buckets", "", err)
		}
		for _, b := range bs {
			if b.Name == name {
				return r.child(ctx, b, out), 0
			}
		}
		if r.fsys.cfg.NegativeTTL <= 0 {
			continue // ask again: a TTL of 0 trusts nothing
		}
		break
	}
	return nil, syscall.ENOENT
}

func (r *bucketsNode) child(ctx context.Context, b store.BucketInfo, out *fuse.EntryOut) *fusefs.Inode {
	if ch := r.GetChild(b.Name); ch != nil {
		if d, ok := ch.Operations().(*dirNode); ok {
			d.mu.Lock()
			d.attrLocked(&out.Attr)
			d.mu.Unlock()
			return ch
		}
	}
	d := newDirNode(r.fsys, b.Name, "")
	d.created = b.Created
	d.mu.Lock()
	d.attrLocked(&out.Attr)
	d.mu.Unlock()
	return r.NewInode(ctx, d, fusefs.StableAttr{Mode: syscall.S_IFDIR})
}

func (r *bucketsNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	bs, err := r.buckets(ctx, false)
	if err != nil {
		return nil, r.fsys.errno("list buckets", "", err)
	}
	ents := []fuse.DirEntry{{Name: ".", Mode: syscall.S_IFDIR}, {Name: "..", Mode: syscall.S_IFDIR}}
	for _, b := range bs {
		ents = append(ents, fuse.DirEntry{Name: b.Name, Mode: syscall.S_IFDIR})
	}
	return fusefs.NewListDirStream(ents), 0
}

// notABucket answers a create of anything but a directory at the root of
// an all-buckets mount, where only buckets live: EPERM, and the log says
// why (mkdir makes a bucket).
func (r *bucketsNode) notABucket(op, name string) syscall.Errno {
	if r.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	r.fsys.cfg.Log.Warn(op+" refused: only buckets live at the root of an all-buckets mount (mkdir makes a bucket; files go inside one)",
		"name", name, "errno", "EPERM")
	return syscall.EPERM
}

func (r *bucketsNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, r.notABucket("create", name)
}

func (r *bucketsNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, r.notABucket("mknod", name)
}

func (r *bucketsNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, r.notABucket("symlink", name)
}

// Mkdir makes a bucket (S3's naming rules apply; `kfs mb` makes one with
// object lock or versioning).
func (r *bucketsNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if r.fsys.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	if err := store.CheckBucketName(name); err != nil {
		return nil, r.fsys.errno("mkdir", name, err)
	}
	if err := r.fsys.store.MakeBucket(ctx, name, store.MakeBucketOptions{}); err != nil {
		return nil, r.fsys.errno("make bucket", name, err)
	}
	r.forget()
	return r.child(ctx, store.BucketInfo{Name: name, Created: time.Now()}, out), 0
}

// Rmdir removes an empty bucket.
func (r *bucketsNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if r.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := r.fsys.del.flush(ctx); err != nil {
		return r.fsys.errno("rmdir", name, err)
	}
	err := r.fsys.store.RemoveBucket(ctx, name)
	if errors.Is(err, store.ErrNotEmpty) {
		return syscall.ENOTEMPTY
	}
	if err != nil {
		return r.fsys.errno("remove bucket", name, err)
	}
	r.forget()
	return 0
}

func (r *bucketsNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if _, class := r.fsys.classify(attr); class == xattrNone {
		return 0, syscall.EOPNOTSUPP
	}
	return 0, syscall.ENODATA
}

func (r *bucketsNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}
