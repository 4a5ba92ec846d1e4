// Package cache holds object bytes in memory for the read path: a
// byte-bounded LRU of fixed-size blocks keyed by content version (bucket,
// key, ETag, block index), with de-duplication of concurrent fetches of the
// same block and a bounded budget for speculative (readahead) fetches.
//
// Because keys include the ETag, a block can never be served for a newer
// version of an object: new content means new keys, and the old blocks age
// out of the LRU.
//
// Locking: Blocks.mu protects the LRU, the byte count, the in-flight table
// and the counters. It is never held while a fetch runs.
package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Key names one block of one version of one object.
type Key struct {
	Bucket, Object, ETag string
	Block                int64
}

// FetchFunc fills buf with the block's bytes and returns how many it read.
type FetchFunc func(ctx context.Context, buf []byte) (int, error)

// Block is a counted reference to cached bytes. Whoever gets a Block from
// the cache must Release it exactly once; the bytes stay valid until then.
// Full-size buffers are recycled when the last reference goes.
type Block struct {
	buf  *[]byte
	n    int
	refs atomic.Int32
	pool *sync.Pool // nil for buffers that are not recycled
}

// Bytes returns the block's data.
func (b *Block) Bytes() []byte { return (*b.buf)[:b.n] }

// Release drops one reference.
func (b *Block) Release() {
	if r := b.refs.Add(-1); r == 0 && b.pool != nil {
		b.pool.Put(b.buf)
	} else if r < 0 {
		panic("cache: Block released more often than referenced")
	}
}

// Stats are cumulative counters.
type Stats struct {
	Hits, Misses, Prefetches, PrefetchSkipped, Evictions int64
	Bytes, MaxBytes                                      int64
}

// Blocks is the block cache. The zero value is not usable: use New.
type Blocks struct {
	maxBytes      int64
	blockSize     int
	prefetchLimit int64
	fetchTimeout  time.Duration
	pool          sync.Pool // *[]byte of blockSize bytes

	mu            sync.Mutex                  // protects the fields below
	lru           *simplelru.LRU[Key, *Block] // GUARDED_BY(mu); holds one reference per block
	bytes         int64                       // GUARDED_BY(mu): bytes of the blocks in the LRU
	inflight      map[Key]*call               // GUARDED_BY(mu)
	prefetchBytes int64                       // GUARDED_BY(mu): bytes of speculative fetches under way
	stats         Stats                       // GUARDED_BY(mu)
}

type call struct {
	done    chan struct{}
	waiters int    // GUARDED_BY(Blocks.mu): callers that will each own one reference
	blk     *Block // set before done is closed
	err     error  // set before done is closed
}

// New returns a cache holding at most maxBytes of block data, plus at most
// maxBytes/2 being prefetched. Buffers of blockSize bytes are recycled.
// fetchTimeout bounds one fetch.
func New(maxBytes int64, blockSize int, fetchTimeout time.Duration) *Blocks {
	b := &Blocks{
		maxBytes:      maxBytes,
		blockSize:     blockSize,
		prefetchLimit: maxBytes / 2,
		fetchTimeout:  fetchTimeout,
		inflight:      map[Key]*call{},
	}
	b.pool.New = func() any { buf := make([]byte, blockSize); return &buf }
	// Entries are bounded by bytes (see addLocked), not by count.
	b.lru, _ = simplelru.NewLRU[Key, *Block](1<<30, nil)
	return b
}

// PrefetchLimit is the most bytes being prefetched at once.
func (b *Blocks) PrefetchLimit() int64 { return b.prefetchLimit }

// Get returns block k (size bytes at most), from memory or by calling
// fetch. Concurrent callers for the same key share one fetch. A fetch is not
// tied to the first caller's ctx (others may be waiting on it), but each
// caller stops waiting when its own ctx ends. The caller must Release the
// Block.
func (b *Blocks) Get(ctx context.Context, k Key, size int, fetch FetchFunc) (*Block, error) {
	b.mu.Lock()
	if blk, ok := b.lru.Get(k); ok {
		blk.refs.Add(1)
		b.stats.Hits++
		b.mu.Unlock()
		return blk, nil
	}
	b.stats.Misses++
	c, ok := b.inflight[k]
	if !ok {
		c = b.startLocked(k, size, fetch)
	}
	c.waiters++
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.blk, c.err
	case <-ctx.Done():
		go func() { // the reference reserved for us must still be dropped
			<-c.done
			if c.blk != nil {
				c.blk.Release()
			}
		}()
		return nil, ctx.Err()
	}
}

// Peek returns block k if it is cached, without fetching. The caller must
// Release it.
func (b *Blocks) Peek(k Key) (*Block, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	blk, ok := b.lru.Get(k)
	if ok {
		blk.refs.Add(1)
		b.stats.Hits++
	}
	return blk, ok
}

// Prefetch starts fetching block k in the background unless it is cached,
// already being fetched, or the prefetch budget is spent. It reports whether
// a fetch was started.
func (b *Blocks) Prefetch(k Key, size int, fetch FetchFunc) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lru.Contains(k) || b.inflight[k] != nil {
		return false
	}
	if b.prefetchBytes+int64(size) > b.prefetchLimit {
		b.stats.PrefetchSkipped++
		return false
	}
	b.prefetchBytes += int64(size)
	b.stats.Prefetches++
	c := b.startLocked(k, size, fetch)
	go func() {
		<-c.done
		b.mu.Lock()
		b.prefetchBytes -= int64(size)
		b.mu.Unlock()
	}()
	return true
}

// Contains reports whether k is cached or being fetched.
func (b *Blocks) Contains(k Key) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Contains(k) || b.inflight[k] != nil
}

func (b *Blocks) newBlock(size int) *Block {
	if size == b.blockSize {
		return &Block{buf: b.pool.Get().(*[]byte), pool: &b.pool}
	}
	buf := make([]byte, size)
	return &Block{buf: &buf}
}

func (b *Blocks) startLocked(k Key, size int, fetch FetchFunc) *call {
	c := &call{done: make(chan struct{})}
	b.inflight[k] = c
	go func() {
		blk := b.newBlock(size)
		ctx, cancel := context.WithTimeout(context.Background(), b.fetchTimeout)
		n, err := fetch(ctx, (*blk.buf)[:size])
		cancel()
		b.mu.Lock()
		delete(b.inflight, k)
		if err == nil {
			blk.n = n
			blk.refs.Store(int32(c.waiters) + 1) // the waiters' and the LRU's
			b.addLocked(k, blk)
			c.blk = blk
		} else {
			if blk.pool != nil {
				blk.pool.Put(blk.buf)
			}
			c.err = err
		}
		b.mu.Unlock()
		close(c.done)
	}()
	return c
}

func (b *Blocks) addLocked(k Key, blk *Block) {
	if old, ok := b.lru.Peek(k); ok {
		b.bytes -= int64(cap(*old.buf))
		old.Release()
	}
	b.lru.Add(k, blk)
	b.bytes += int64(cap(*blk.buf))
	for b.bytes > b.maxBytes {
		_, old, ok := b.lru.RemoveOldest()
		if !ok {
			break
		}
		b.bytes -= int64(cap(*old.buf))
		old.Release()
		b.stats.Evictions++
	}
}

// Alias makes block from also block to (the same bytes under another key:
// an object copied server side), unless to is cached already or from is
// not. The bytes are shared, not copied.
func (b *Blocks) Alias(from, to Key) {
	b.mu.Lock()
	defer b.mu.Unlock()
	blk, ok := b.lru.Peek(from)
	if !ok || b.lru.Contains(to) {
		return
	}
	blk.refs.Add(1) // the LRU's reference under to
	b.addLocked(to, blk)
}

// Stats returns a snapshot of the counters.
func (b *Blocks) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Bytes, s.MaxBytes = b.bytes, b.maxBytes
	return s
}
