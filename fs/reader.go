package fs

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
)

// readHandle reads one version (ETag) of one object. Sequential reads come
// from the block cache with growing readahead; random reads fetch just the
// bytes asked for (unless their block is cached already). Every fetch is
// conditioned on the ETag, so a replaced object gives ESTALE, never a mix.
type readHandle struct {
	fsys   *FS
	bucket string
	info   ObjectInfo // immutable snapshot taken at open

	mu sync.Mutex      // protects ra
	ra cache.Readahead // GUARDED_BY(mu)
}

var _ = (fusefs.FileReader)((*readHandle)(nil))

func newReadHandle(f *FS, bucket string, info ObjectInfo) *readHandle {
	return &readHandle{fsys: f, bucket: bucket, info: info, ra: cache.Readahead{
		BlockSize: f.cfg.BlockSize, Max: f.cfg.MaxReadahead, Slack: min(f.cfg.BlockSize, 1<<20)}}
}

func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	res, err := h.read(ctx, dest, off)
	if err != nil {
		return nil, toErrno(h.fsys.cfg.Log, fmt.Sprintf("read %s/%s at %d", h.bucket, h.info.Key, off), err)
	}
	return res, 0
}

// read returns the bytes at off: a reference to a cached block when the read
// lies in one block (no copy; released when go-fuse has sent it), else dest.
func (h *readHandle) read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, error) {
	size := h.info.Size
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), nil
	}
	n := min(int64(len(dest)), size-off)
	h.mu.Lock()
	d := h.ra.Observe(off, n, size)
	h.mu.Unlock()

	bs := h.fsys.cfg.BlockSize
	first, last := off/bs, (off+n-1)/bs
	if !d.Sequential {
		if first == last {
			if blk, ok := h.fsys.blocks.Peek(h.key(first)); ok {
				return newBlockResult(blk, off-first*bs, n), nil
			}
		}
		m, err := h.fsys.store.ReadAt(ctx, h.bucket, h.info.Key, h.info.ETag, dest[:n], off)
		return fuse.ReadResultData(dest[:m]), err
	}
	for b := d.From / bs; b*bs < d.To; b++ {
		if b > last { // the blocks this read needs are fetched on demand below
			h.fsys.blocks.Prefetch(h.key(b), h.blockLen(b), h.fetch(b))
		}
	}
	if first == last {
		blk, err := h.fsys.blocks.Get(ctx, h.key(first), h.blockLen(first), h.fetch(first))
		if err != nil {
			return nil, err
		}
		return newBlockResult(blk, off-first*bs, n), nil
	}
	out := dest[:0]
	for b := first; b <= last; b++ {
		blk, err := h.fsys.blocks.Get(ctx, h.key(b), h.blockLen(b), h.fetch(b))
		if err != nil {
			return nil, err
		}
		lo := max(off, b*bs) - b*bs
		hi := min(off+n, (b+1)*bs) - b*bs
		out = append(out, sliceBlock(blk.Bytes(), lo, hi-lo)...)
		blk.Release()
	}
	return fuse.ReadResultData(out), nil
}

// blockResult hands go-fuse a slice of a cached block without copying; the
// block is released once the reply has been written to the kernel.
type blockResult struct {
	blk  *cache.Block
	data []byte
}

func newBlockResult(blk *cache.Block, lo, n int64) *blockResult {
	return &blockResult{blk: blk, data: sliceBlock(blk.Bytes(), lo, n)}
}

func (r *blockResult) Bytes(buf []byte) ([]byte, fuse.Status) { return r.data, fuse.OK }
func (r *blockResult) Slices() ([][]byte, fuse.Status)        { return [][]byte{r.data}, fuse.OK }
func (r *blockResult) Size() int                              { return len(r.data) }
func (r *blockResult) Done()                                  { r.blk.Release() }

func sliceBlock(blk []byte, lo, n int64) []byte {
	if lo >= int64(len(blk)) {
		return nil
	}
	return blk[lo:min(lo+n, int64(len(blk)))]
}

func (h *readHandle) key(b int64) cache.Key {
	return cache.Key{Bucket: h.bucket, Object: h.info.Key, ETag: h.info.ETag, Block: b}
}

func (h *readHandle) blockLen(b int64) int {
	bs := h.fsys.cfg.BlockSize
	return int(min(bs, h.info.Size-b*bs))
}

func (h *readHandle) fetch(b int64) cache.FetchFunc {
	return func(ctx context.Context, buf []byte) (int, error) {
		n, err := h.fsys.store.ReadAt(ctx, h.bucket, h.info.Key, h.info.ETag, buf, b*h.fsys.cfg.BlockSize)
		if err != nil {
			return 0, err
		}
		if n < len(buf) {
			return 0, fmt.Errorf("%s/%s block %d: %d of %d bytes: %w", h.bucket, h.info.Key, b, n, len(buf), io.ErrUnexpectedEOF)
		}
		return n, nil
	}
}
