package fs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
	"kfs/cache/disk"
	"kfs/fs/store"
)

// readObject reads one version (ETag) of an object through the block
// cache (which owns the block geometry, the prefetching and the block
// loop): ra, guarded by mu, classifies the read; a sequential reader fills
// the disk cache as it goes, a read out of order inside a sequential
// stream goes through the blocks while the file fills it. Every fetch is
// conditioned on the ETag, so a replaced object gives ErrStale, never a
// mix of versions.
func (f *FS) readObject(ctx context.Context, bucket string, o store.ObjectInfo, mu *sync.Mutex, ra *cache.Readahead,
	dest []byte, off int64) (fuse.ReadResult, error) {
	if off >= o.Size || len(dest) == 0 {
		return fuse.ReadResultData(nil), nil
	}
	mu.Lock()
	d := ra.Observe(off, min(int64(len(dest)), o.Size-off), o.Size)
	mu.Unlock()
	r := cache.Read{Decision: d, Dest: dest, Off: off, Object: cache.Object{Bucket: bucket, Key: o.Key, ETag: o.ETag, Size: o.Size,
		ReadAt: func(ctx context.Context, p []byte, off int64) (int, error) {
			return f.store.ReadAt(ctx, store.ReadRequest{Bucket: bucket, Key: o.Key, ETag: o.ETag, Offset: off}, p)
		}}}
	var fill *disk.Fill
	if d.Sequential {
		fill = f.fillFor(bucket, o) // a sequential reader fills the disk cache as it goes
	} else {
		fill = f.fillingFor(bucket, o) // an out-of-order read feeds a fill under way
	}
	if fill != nil { // a nil *disk.Fill must not become a non-nil Sink
		r.Sink = fill
	}
	reply, err := f.blocks.ReadObject(ctx, r)
	if err != nil {
		return nil, err
	}
	return blockResult{reply}, nil
}

// blockResult hands go-fuse a read's data without copying; the block it
// may point into is released once the reply has been written to the
// kernel.
type blockResult struct{ r cache.Reply }

func (r blockResult) Bytes(buf []byte) ([]byte, fuse.Status) { return r.r.Data, fuse.OK }
func (r blockResult) Slices() ([][]byte, fuse.Status)        { return [][]byte{r.r.Data}, fuse.OK }
func (r blockResult) Size() int                              { return len(r.r.Data) }
func (r blockResult) Done()                                  { r.r.Release() }
