package fs

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// bucketsNode is the root of a mount of every bucket: one directory each,
// with the bucket's creation date as mtime.
type bucketsNode struct {
	fusefs.Inode
	fsys *FS

	mu     sync.Mutex   // protects the fields below
	list   []BucketInfo // GUARDED_BY(mu)
	listAt time.Time    // GUARDED_BY(mu)
}

var (
	_ = (fusefs.NodeLookuper)((*bucketsNode)(nil))
	_ = (fusefs.NodeReaddirer)((*bucketsNode)(nil))
	_ = (fusefs.NodeGetattrer)((*bucketsNode)(nil))
	_ = (fusefs.NodeStatfser)((*bucketsNode)(nil))
)

// AllBucketsRoot returns the root node of a mount of every bucket.
func (f *FS) AllBucketsRoot() fusefs.InodeEmbedder { return &bucketsNode{fsys: f} }

func (r *bucketsNode) buckets(ctx context.Context) ([]BucketInfo, error) {
	r.mu.Lock()
	if r.list != nil && time.Since(r.listAt) <= r.fsys.cfg.EntryTTL {
		defer r.mu.Unlock()
		return r.list, nil
	}
	r.mu.Unlock()
	bs, err := r.fsys.store.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	if bs == nil {
		bs = []BucketInfo{}
	}
	r.mu.Lock()
	r.list, r.listAt = bs, time.Now()
	r.mu.Unlock()
	return bs, nil
}

func (r *bucketsNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fsys.dirAttr(&out.Attr, r.fsys.mounted)
	return 0
}

func (r *bucketsNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

func (r *bucketsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	bs, err := r.buckets(ctx)
	if err != nil {
		return nil, toErrno(r.fsys.cfg.Log, "list buckets", err)
	}
	for _, b := range bs {
		if b.Name != name {
			continue
		}
		r.fsys.dirAttr(&out.Attr, b.Created)
		if ch := r.GetChild(name); ch != nil {
			return ch, 0
		}
		return r.NewInode(ctx, newDirNode(r.fsys, name, "", b.Created), fusefs.StableAttr{Mode: syscall.S_IFDIR}), 0
	}
	return nil, toErrno(nil, "", fmt.Errorf("bucket %s: %w", name, os.ErrNotExist))
}

func (r *bucketsNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	bs, err := r.buckets(ctx)
	if err != nil {
		return nil, toErrno(r.fsys.cfg.Log, "list buckets", err)
	}
	ents := make([]fuse.DirEntry, len(bs))
	for i, b := range bs {
		ents[i] = fuse.DirEntry{Name: b.Name, Mode: syscall.S_IFDIR}
	}
	return fusefs.NewListDirStream(ents), 0
}
