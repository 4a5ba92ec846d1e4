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
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Key names one block of one version of one object.
type Key struct {
	Bucket, Object, ETag string
	Block                int64
}

// FetchFunc reads block k; it returns the block's bytes (shorter than the
// block size only for the object's last block).
type FetchFunc func(ctx context.Context) ([]byte, error)

// Stats are cumulative counters.
type Stats struct {
	Hits, Misses, Prefetches, PrefetchSkipped, Evictions int64
	Bytes, MaxBytes                                      int64
}

// Blocks is the block cache. The zero value is not usable: use New.
type Blocks struct {
	maxBytes      int64
	prefetchLimit int64
	fetchTimeout  time.Duration

	mu            sync.Mutex                  // protects the fields below
	lru           *simplelru.LRU[Key, []byte] // GUARDED_BY(mu)
	bytes         int64                       // GUARDED_BY(mu): sum of len() of the LRU's values
	inflight      map[Key]*call               // GUARDED_BY(mu)
	prefetchBytes int64                       // GUARDED_BY(mu): bytes of speculative fetches under way
	stats         Stats                       // GUARDED_BY(mu)
}

type call struct {
	done chan struct{}
	data []byte // set before done is closed
	err  error  // set before done is closed
}

// New returns a cache holding at most maxBytes of block data, plus at most
// maxBytes/2 being prefetched. fetchTimeout bounds one fetch.
func New(maxBytes int64, fetchTimeout time.Duration) *Blocks {
	b := &Blocks{
		maxBytes:      maxBytes,
		prefetchLimit: maxBytes / 2,
		fetchTimeout:  fetchTimeout,
		inflight:      map[Key]*call{},
	}
	// Entries are bounded by bytes (see addLocked), not by count.
	b.lru, _ = simplelru.NewLRU[Key, []byte](1<<30, nil)
	return b
}

// Get returns block k, from memory or by calling fetch. Concurrent callers
// for the same key share one fetch. A fetch is not tied to the first
// caller's ctx (others may be waiting on it), but each caller stops waiting
// when its own ctx ends.
func (b *Blocks) Get(ctx context.Context, k Key, fetch FetchFunc) ([]byte, error) {
	b.mu.Lock()
	if data, ok := b.lru.Get(k); ok {
		b.stats.Hits++
		b.mu.Unlock()
		return data, nil
	}
	b.stats.Misses++
	c, ok := b.inflight[k]
	if !ok {
		c = b.startLocked(k, fetch)
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.data, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Prefetch starts fetching block k in the background unless it is cached,
// already being fetched, or the prefetch budget is spent. size is the
// expected block size, charged to the budget while the fetch runs. It
// reports whether a fetch was started.
func (b *Blocks) Prefetch(k Key, size int64, fetch FetchFunc) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lru.Contains(k) || b.inflight[k] != nil {
		return false
	}
	if b.prefetchBytes+size > b.prefetchLimit {
		b.stats.PrefetchSkipped++
		return false
	}
	b.prefetchBytes += size
	b.stats.Prefetches++
	c := b.startLocked(k, fetch)
	go func() {
		<-c.done
		b.mu.Lock()
		b.prefetchBytes -= size
		b.mu.Unlock()
	}()
	return true
}

// Peek returns block k if it is cached, without fetching.
func (b *Blocks) Peek(k Key) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.lru.Get(k)
	if ok {
		b.stats.Hits++
	}
	return data, ok
}

// Contains reports whether k is cached or being fetched.
func (b *Blocks) Contains(k Key) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Contains(k) || b.inflight[k] != nil
}

func (b *Blocks) startLocked(k Key, fetch FetchFunc) *call {
	c := &call{done: make(chan struct{})}
	b.inflight[k] = c
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.fetchTimeout)
		data, err := fetch(ctx)
		cancel()
		b.mu.Lock()
		delete(b.inflight, k)
		if err == nil {
			b.addLocked(k, data)
		}
		c.data, c.err = data, err
		b.mu.Unlock()
		close(c.done)
	}()
	return c
}

func (b *Blocks) addLocked(k Key, data []byte) {
	if old, ok := b.lru.Peek(k); ok {
		b.bytes -= int64(len(old))
	}
	b.lru.Add(k, data)
	b.bytes += int64(len(data))
	for b.bytes > b.maxBytes {
		_, old, ok := b.lru.RemoveOldest()
		if !ok {
			break
		}
		b.bytes -= int64(len(old))
		b.stats.Evictions++
	}
}

// Stats returns a snapshot of the counters.
func (b *Blocks) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Bytes, s.MaxBytes = b.bytes, b.maxBytes
	return s
}
