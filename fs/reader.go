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
	data, err := h.read(ctx, dest, off)
	if err != nil {
		return nil, toErrno(h.fsys.cfg.Log, fmt.Sprintf("read %s/%s at %d", h.bucket, h.info.Key, off), err)
	}
	return fuse.ReadResultData(data), 0
}

// read returns the bytes at off: a slice of a cached block when the read
// lies in one block (no copy), else dest.
func (h *readHandle) read(ctx context.Context, dest []byte, off int64) ([]byte, error) {
	size := h.info.Size
	if off >= size || len(dest) == 0 {
		return nil, nil
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
				return sliceBlock(blk, off-first*bs, n), nil
			}
		}
		m, err := h.fsys.store.ReadAt(ctx, h.bucket, h.info.Key, h.info.ETag, dest[:n], off)
		return dest[:m], err
	}
	for b := d.From / bs; b*bs < d.To; b++ {
		if b > last { // the blocks this read needs are fetched on demand below
			h.fsys.blocks.Prefetch(h.key(b), h.blockLen(b), h.fetcher(b))
		}
	}
	if first == last {
		blk, err := h.fsys.blocks.Get(ctx, h.key(first), h.fetcher(first))
		if err != nil {
			return nil, err
		}
		return sliceBlock(blk, off-first*bs, n), nil
	}
	out := dest[:0]
	for b := first; b <= last; b++ {
		blk, err := h.fsys.blocks.Get(ctx, h.key(b), h.fetcher(b))
		if err != nil {
			return nil, err
		}
		lo := max(off, b*bs) - b*bs
		hi := min(off+n, (b+1)*bs) - b*bs
		out = append(out, sliceBlock(blk, lo, hi-lo)...)
	}
	return out, nil
}

func sliceBlock(blk []byte, lo, n int64) []byte {
	if lo >= int64(len(blk)) {
		return nil
	}
	return blk[lo:min(lo+n, int64(len(blk)))]
}

func (h *readHandle) key(b int64) cache.Key {
	return cache.Key{Bucket: h.bucket, Object: h.info.Key, ETag: h.info.ETag, Block: b}
}

func (h *readHandle) blockLen(b int64) int64 {
	bs := h.fsys.cfg.BlockSize
	return min(bs, h.info.Size-b*bs)
}

func (h *readHandle) fetcher(b int64) cache.FetchFunc {
	return func(ctx context.Context) ([]byte, error) {
		buf := make([]byte, h.blockLen(b))
		n, err := h.fsys.store.ReadAt(ctx, h.bucket, h.info.Key, h.info.ETag, buf, b*h.fsys.cfg.BlockSize)
		if err != nil {
			return nil, err
		}
		if n < len(buf) {
			return nil, fmt.Errorf("%s/%s block %d: %d of %d bytes: %w", h.bucket, h.info.Key, b, n, len(buf), io.ErrUnexpectedEOF)
		}
		return buf, nil
	}
}
