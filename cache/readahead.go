package cache

import "sync/atomic"

// Readahead decides, for one open file, whether a read is part of a
// sequential stream and how far ahead to prefetch. The window starts at one
// block on a sequential read, doubles with every further sequential read up
// to the maximum, and collapses to zero on a seek, so random readers fetch
// only what they ask for.
//
// Reads may arrive slightly out of order (the kernel issues several
// readahead requests at once), so a read that starts within Slack bytes of
// the expected offset still counts as sequential.
//
// Sequential readers of one cache share its prefetch budget (Streams):
// each window is at most the budget divided by the readers streaming at
// that moment, so four readers get a quarter each instead of the first
// one taking it all and the blocks of the others being evicted before
// they are read.
//
// Readahead is not safe for concurrent use; the caller serialises Observe
// and Close.
type Readahead struct {
	BlockSize int64
	Max       int64 // largest window in bytes (0 = no readahead)
	Slack     int64
	Shared    *Streams // the readers sharing the budget (nil: not shared)

	next      int64 // offset just past the last read; -1 before the first
	window    int64 // current window in bytes
	seen      bool
	streaming bool // counted in Shared
}

// Streams counts the sequential readers sharing a prefetch budget.
type Streams struct {
	Budget int64 // bytes all readers together may have ahead
	n      atomic.Int64
}

// Active is the number of readers streaming now.
func (s *Streams) Active() int64 { return s.n.Load() }

func (r *Readahead) setStreaming(on bool) {
	if r.Shared == nil || r.streaming == on {
		return
	}
	r.streaming = on
	if on {
		r.Shared.n.Add(1)
	} else {
		r.Shared.n.Add(-1)
	}
}

// Close ends the reader's share (the file is closed).
func (r *Readahead) Close() { r.setStreaming(false) }

// limit is the largest window this reader may have now.
func (r *Readahead) limit() int64 {
	m := r.Max
	if r.Shared != nil {
		if n := r.Shared.n.Load(); n > 0 {
			m = min(m, max(r.Shared.Budget/n, r.BlockSize))
		}
	}
	return m
}

// Decision is what Observe says about one read.
type Decision struct {
	Sequential bool
	// Prefetch [From, To) (byte offsets, clipped to the file size); empty
	// when From >= To.
	From, To int64
}

// Observe records a read of n bytes at off in a file of size bytes.
func (r *Readahead) Observe(off, n, size int64) Decision {
	seq := (!r.seen && off == 0) || (r.seen && off >= r.next-r.Slack && off <= r.next+r.Slack)
	r.seen = true
	prevBlock := r.next / r.BlockSize
	if end := off + n; end > r.next || !seq {
		r.next = end
	}
	if !seq {
		r.window = 0
		r.setStreaming(false)
		return Decision{}
	}
	switch {
	case r.window == 0:
		r.window = r.BlockSize
	case r.next/r.BlockSize > prevBlock: // grow once per block consumed
		r.window *= 2
	}
	if r.Max > 0 {
		r.setStreaming(true)
	}
	r.window = min(r.window, r.limit())
	from := r.next
	to := min(from+r.window, size)
	return Decision{Sequential: true, From: from, To: to}
}
