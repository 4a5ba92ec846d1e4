package cache

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
// Readahead is not safe for concurrent use; the caller serialises Observe.
type Readahead struct {
	BlockSize int64
	Max       int64 // largest window in bytes (0 = no readahead)
	Slack     int64

	next   int64 // offset just past the last read; -1 before the first
	window int64 // current window in bytes
	seen   bool
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
		return Decision{}
	}
	switch {
	case r.window == 0:
		r.window = r.BlockSize
	case r.next/r.BlockSize > prevBlock: // grow once per block consumed
		r.window *= 2
	}
	if r.window > r.Max {
		r.window = r.Max
	}
	from := r.next
	to := min(from+r.window, size)
	return Decision{Sequential: true, From: from, To: to}
}
