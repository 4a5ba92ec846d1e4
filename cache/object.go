package cache

import (
	"context"
	"fmt"
	"io"
)

// The read path of one object version through the blocks: the block
// geometry is the cache's alone (BlockSize); callers speak in bytes.

// BlockSize is the size of every block but an object's last.
func (b *Blocks) BlockSize() int64 { return int64(b.blockSize) }

// Readahead is a fresh readahead state for one open file over this cache:
// windows of up to max bytes, in this cache's blocks, sharing shared's
// budget (nil: not shared).
func (b *Blocks) Readahead(max int64, shared *Streams) Readahead {
	bs := b.BlockSize()
	return Readahead{BlockSize: bs, Max: max, Slack: min(bs, 1<<20), Shared: shared}
}

// Object is one version of an object as the cache reads it.
type Object struct {
	Bucket, Key, ETag string
	Size              int64
	// ReadAt reads len(p) bytes at off of this version (fewer only at its
	// end), failing once the object no longer has ETag.
	ReadAt func(ctx context.Context, p []byte, off int64) (int, error)
}

// Sink takes the blocks of a version as they are fetched (the disk
// cache's fill of it).
type Sink interface {
	Has(b int64) bool
	Add(b int64, p []byte)
	Missing() []int64
}

// Read is one read of an object: Len bytes at Off into Dest, as Decision
// (from the file's Readahead) classified it. Sink, when not nil, gets every
// block fetched or found on the way.
type Read struct {
	Object   Object
	Decision Decision
	Sink     Sink
	Dest     []byte
	Off      int64
}

// Reply is what a read returns: Data, which may point into a cached block
// held until Release (call it once the data has been sent).
type Reply struct {
	Data []byte
	blk  *Block
}

// Release lets the block the data points into go.
func (r Reply) Release() {
	if r.blk != nil {
		r.blk.Release()
	}
}

// ReadObject serves r. Sequential reads come from the blocks, prefetching
// Decision's window; random reads fetch just the bytes asked for unless
// their block is cached, or unless a fill under way needs their blocks (the
// kernel sends a sequential stream's reads slightly out of order). Every
// fetch goes through Object.ReadAt, conditioned on the ETag, so a replaced
// object fails the read rather than mixing versions.
func (b *Blocks) ReadObject(ctx context.Context, r Read) (Reply, error) {
	o := r.Object
	off := r.Off
	if off >= o.Size || len(r.Dest) == 0 {
		return Reply{}, nil
	}
	n := min(int64(len(r.Dest)), o.Size-off)
	v := version{b: b, o: o, sink: r.Sink}
	bs := b.BlockSize()
	first, last := off/bs, (off+n-1)/bs
	if !r.Decision.Sequential {
		if first == last {
			if blk, ok := b.Peek(v.key(first)); ok {
				return blockReply(blk, off-first*bs, n), nil
			}
		}
		if r.Sink == nil || r.Sink.Has(first) && r.Sink.Has(last) {
			m, err := o.ReadAt(ctx, r.Dest[:n], off)
			return Reply{Data: r.Dest[:m]}, err
		}
	}
	for blk := r.Decision.From / bs; blk*bs < r.Decision.To; blk++ {
		if blk > last { // the blocks this read needs are fetched on demand below
			b.Prefetch(v.key(blk), v.blockLen(blk), v.fetch(blk))
		}
	}
	if r.Sink != nil && off+n == o.Size {
		v.completeSink()
	}
	if first == last {
		blk, err := b.Get(ctx, v.key(first), v.blockLen(first), v.fetch(first))
		if err != nil {
			return Reply{}, err
		}
		v.keep(first, blk)
		return blockReply(blk, off-first*bs, n), nil
	}
	out := r.Dest[:0]
	for i := first; i <= last; i++ {
		blk, err := b.Get(ctx, v.key(i), v.blockLen(i), v.fetch(i))
		if err != nil {
			return Reply{}, err
		}
		v.keep(i, blk)
		lo := max(off, i*bs) - i*bs
		hi := min(off+n, (i+1)*bs) - i*bs
		out = append(out, sliceBlock(blk.Bytes(), lo, hi-lo)...)
		blk.Release()
	}
	return Reply{Data: out}, nil
}

// version reads the blocks of one object version.
type version struct {
	b    *Blocks
	o    Object
	sink Sink // where fetched blocks also go (nil: nowhere)
}

// completeSink fetches, when a sequential reader reaches the end, the few
// blocks its sink lacks (reads the kernel sent out of order went around
// the blocks): at most an eighth of the file, else the sink is left to
// age out.
func (v version) completeSink() {
	miss := v.sink.Missing()
	bs := v.b.BlockSize()
	blocks := (v.o.Size + bs - 1) / bs
	if len(miss) == 0 || int64(len(miss)) > max(2, blocks/8) {
		return
	}
	for _, i := range miss {
		if blk, ok := v.b.Peek(v.key(i)); ok {
			v.keep(i, blk)
			blk.Release()
			continue
		}
		v.b.Prefetch(v.key(i), v.blockLen(i), v.fetch(i))
	}
}

// keep gives a block that came from memory (fetched before the sink
// started) to the sink, unless it has it.
func (v version) keep(i int64, blk *Block) {
	if v.sink != nil && !v.sink.Has(i) {
		v.sink.Add(i, blk.Bytes())
	}
}

func (v version) key(i int64) Key {
	return Key{Bucket: v.o.Bucket, Object: v.o.Key, ETag: v.o.ETag, Block: i}
}

func (v version) blockLen(i int64) int {
	bs := v.b.BlockSize()
	return int(min(bs, v.o.Size-i*bs))
}

func (v version) fetch(i int64) FetchFunc {
	return func(ctx context.Context, buf []byte) (int, error) {
		n, err := v.o.ReadAt(ctx, buf, i*v.b.BlockSize())
		if err != nil {
			return 0, err
		}
		if n < len(buf) {
			return 0, fmt.Errorf("%s/%s block %d: %d of %d bytes: %w", v.o.Bucket, v.o.Key, i, n, len(buf), io.ErrUnexpectedEOF)
		}
		if v.sink != nil {
			v.sink.Add(i, buf[:n])
		}
		return n, nil
	}
}

// blockReply points a reply into a held block.
func blockReply(blk *Block, lo, n int64) Reply {
	return Reply{Data: sliceBlock(blk.Bytes(), lo, n), blk: blk}
}

func sliceBlock(blk []byte, lo, n int64) []byte {
	if lo >= int64(len(blk)) {
		return nil
	}
	return blk[lo:min(lo+n, int64(len(blk)))]
}
