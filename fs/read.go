package fs

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
	"kfs/cache/disk"
	"kfs/fs/store"
)

// readObject reads one version (ETag) of an object. Sequential reads come
// from the block cache with growing readahead (ra, guarded by mu); random
// reads fetch just the bytes asked for unless their block is cached. Every
// fetch is conditioned on the ETag, so a replaced object gives ErrStale,
// never a mix of versions.
func (f *FS) readObject(ctx context.Context, bucket string, o store.ObjectInfo, mu *sync.Mutex, ra *cache.Readahead,
	dest []byte, off int64) (fuse.ReadResult, error) {
	size := o.Size
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), nil
	}
	n := min(int64(len(dest)), size-off)
	mu.Lock()
	d := ra.Observe(off, n, size)
	mu.Unlock()

	r := objReader{f: f, bucket: bucket, o: o}
	bs := f.cfg.BlockSize
	first, last := off/bs, (off+n-1)/bs
	if !d.Sequential {
		if first == last {
			if blk, ok := f.blocks.Peek(r.key(first)); ok {
				return newBlockResult(blk, off-first*bs, n), nil
			}
		}
		// A read out of order inside a sequential stream (the kernel has
		// several in flight) goes through the blocks while the file fills
		// the disk cache, so the fill does not miss its blocks.
		if r.fill = f.fillingFor(bucket, o); r.fill == nil || r.fill.Has(first) && r.fill.Has(last) {
			m, err := f.store.ReadAt(ctx, store.ReadRequest{Bucket: bucket, Key: o.Key, ETag: o.ETag, Offset: off}, dest[:n])
			return fuse.ReadResultData(dest[:m]), err
		}
	} else {
		r.fill = f.fillFor(bucket, o) // a sequential reader fills the disk cache as it goes
	}
	for b := d.From / bs; b*bs < d.To; b++ {
		if b > last { // the blocks this read needs are fetched on demand below
			f.blocks.Prefetch(r.key(b), r.blockLen(b), r.fetch(b))
		}
	}
	if r.fill != nil && off+n == size {
		r.completeFill()
	}
	if first == last {
		blk, err := f.blocks.Get(ctx, r.key(first), r.blockLen(first), r.fetch(first))
		if err != nil {
			return nil, err
		}
		r.keep(first, blk)
		return newBlockResult(blk, off-first*bs, n), nil
	}
	out := dest[:0]
	for b := first; b <= last; b++ {
		blk, err := f.blocks.Get(ctx, r.key(b), r.blockLen(b), r.fetch(b))
		if err != nil {
			return nil, err
		}
		r.keep(b, blk)
		lo := max(off, b*bs) - b*bs
		hi := min(off+n, (b+1)*bs) - b*bs
		out = append(out, sliceBlock(blk.Bytes(), lo, hi-lo)...)
		blk.Release()
	}
	return fuse.ReadResultData(out), nil
}

type objReader struct {
	f      *FS
	bucket string
	o      store.ObjectInfo
	fill   *disk.Fill // where fetched blocks also go (nil: nowhere)
}

// completeFill fetches, when a sequential reader reaches the end, the few
// blocks its fill lacks (reads the kernel sent out of order went around
// the blocks): at most an eighth of the file, else the fill is left to
// age out.
func (r objReader) completeFill() {
	miss := r.fill.Missing()
	blocks := (r.o.Size + r.f.cfg.BlockSize - 1) / r.f.cfg.BlockSize
	if len(miss) == 0 || int64(len(miss)) > max(2, blocks/8) {
		return
	}
	for _, b := range miss {
		if blk, ok := r.f.blocks.Peek(r.key(b)); ok {
			r.keep(b, blk)
			blk.Release()
			continue
		}
		r.f.blocks.Prefetch(r.key(b), r.blockLen(b), r.fetch(b))
	}
}

// keep gives a block that came from memory (fetched before the fill
// started) to the fill, unless it has it.
func (r objReader) keep(b int64, blk *cache.Block) {
	if r.fill != nil && !r.fill.Has(b) {
		r.fill.Add(b, blk.Bytes())
	}
}

func (r objReader) key(b int64) cache.Key {
	return cache.Key{Bucket: r.bucket, Object: r.o.Key, ETag: r.o.ETag, Block: b}
}

func (r objReader) blockLen(b int64) int {
	bs := r.f.cfg.BlockSize
	return int(min(bs, r.o.Size-b*bs))
}

func (r objReader) fetch(b int64) cache.FetchFunc {
	return func(ctx context.Context, buf []byte) (int, error) {
		n, err := r.f.store.ReadAt(ctx, store.ReadRequest{Bucket: r.bucket, Key: r.o.Key, ETag: r.o.ETag, Offset: b * r.f.cfg.BlockSize}, buf)
		if err != nil {
			return 0, err
		}
		if n < len(buf) {
			return 0, fmt.Errorf("%s/%s block %d: %d of %d bytes: %w", r.bucket, r.o.Key, b, n, len(buf), io.ErrUnexpectedEOF)
		}
		if r.fill != nil {
			r.fill.Add(b, buf[:n])
		}
		return n, nil
	}
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
