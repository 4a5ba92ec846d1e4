package fs

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A tree walk (find, du, rsync, tar, ls -R) reads a directory and then
// opens its subdirectories one after another, each open waiting for a
// listing. When a directory is opened soon after its parent was read,
// kfs takes it for a walk and lists the subdirectories that follow it in
// the parent (in the order readdir gave them) in the background, a few at
// once, so that each is in memory when the walker gets there. One
// listing per directory is still what it costs; what the walk saves is
// waiting for them one at a time.
//
// Bounds: at most walkParallel listings at once, at most walkWindow
// directories listed ahead and not yet opened, each at most one page
// (1,000 entries). A listing is used only if it is complete, not older
// than the entry and negative TTLs (with either at 0 nothing is listed
// ahead), and nothing changed in the directory since it started (a change
// through this mount or an event drops it).
const (
	walkParallel = 4
	walkWindow   = 32
	walkScan     = 4096 // entries after the opened directory looked at for the next subdirectories
)

type walkKey struct{ bucket, prefix string }

// walkListing is one directory listed ahead.
type walkListing struct {
	done    chan struct{} // closed when l and err are set
	l       *listing
	err     error
	dropped bool // GUARDED_BY(walker.mu): a change came after it started
}

// walker lists subdirectories ahead of a tree walk.
type walker struct {
	fsys *FS
	sem  chan struct{} // walkParallel slots

	mu    sync.Mutex               // protects ahead
	ahead map[walkKey]*walkListing // GUARDED_BY(mu)
	// size is len(ahead), stored under mu after every change: lookups and
	// changes (every LOOKUP, create and unlink) skip the lock while no walk
	// is under way.
	size atomic.Int32
}

func newWalker(f *FS) *walker {
	return &walker{fsys: f, sem: make(chan struct{}, walkParallel), ahead: map[walkKey]*walkListing{}}
}

// start lists bucket/prefix in the background unless it is already; false
// when the window is full.
func (w *walker) start(bucket, prefix string) bool {
	k := walkKey{bucket, prefix}
	w.mu.Lock()
	if _, ok := w.ahead[k]; ok {
		w.mu.Unlock()
		return true
	}
	if len(w.ahead) >= walkWindow {
		w.sweepLocked()
		if len(w.ahead) >= walkWindow {
			w.mu.Unlock()
			return false
		}
	}
	wl := &walkListing{done: make(chan struct{})}
	w.ahead[k] = wl
	w.size.Store(int32(len(w.ahead)))
	w.mu.Unlock()
	go func() {
		defer close(wl.done)
		ctx, cancel := w.fsys.background()
		defer cancel()
		select {
		case w.sem <- struct{}{}:
		case <-w.fsys.stop:
			wl.err = context.Canceled
			return
		}
		defer func() { <-w.sem }()
		w.mu.Lock()
		dropped := wl.dropped
		w.mu.Unlock()
		if dropped {
			return
		}
		d := newDirNode(w.fsys, bucket, prefix) // only to list: the listing is adopted by the real node
		wl.l, wl.err = d.listFirstPage(ctx, time.Now())
	}()
	return true
}

// listingTTL is how long a complete listing answers a readdir from memory.
func (f *FS) listingTTL() time.Duration { return min(f.cfg.EntryTTL, f.cfg.NegativeTTL) }

// sweepLocked forgets listings nobody opened within the listing TTL.
func (w *walker) sweepLocked() {
	for k, wl := range w.ahead {
		select {
		case <-wl.done:
			if wl.err != nil || wl.dropped || time.Since(wl.l.at) > w.fsys.listingTTL() {
				delete(w.ahead, k)
			}
		default:
		}
	}
	w.size.Store(int32(len(w.ahead)))
}

// claim takes the listing made ahead for bucket/prefix, waiting for it
// when it is under way; nil when there is none or it cannot be used.
func (w *walker) claim(ctx context.Context, bucket, prefix string) *listing {
	if w.size.Load() == 0 {
		return nil
	}
	k := walkKey{bucket, prefix}
	w.mu.Lock()
	wl, ok := w.ahead[k]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-wl.done:
	case <-ctx.Done():
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ahead[k] == wl {
		delete(w.ahead, k)
		w.size.Store(int32(len(w.ahead)))
	}
	if wl.dropped || wl.err != nil || !wl.l.complete || time.Since(wl.l.at) > w.fsys.listingTTL() {
		return nil
	}
	return wl.l
}

// drop forgets what was listed of bucket/prefix (something changed there).
func (w *walker) drop(bucket, prefix string) {
	w.dropWhere(func(k walkKey) bool { return k.bucket == bucket && k.prefix == prefix })
}

// dropUnder forgets every listing of bucket under prefix ("" for all).
func (w *walker) dropUnder(bucket, prefix string) {
	w.dropWhere(func(k walkKey) bool { return k.bucket == bucket && strings.HasPrefix(k.prefix, prefix) })
}

// dropWhere forgets the listings whose key matches (at most walkWindow
// to look at). A listing that started before the change lands here too
// (the change may have reached the store after the listing read it), so
// even a fetch still under way is marked and never used.
func (w *walker) dropWhere(match func(walkKey) bool) {
	if w.size.Load() == 0 {
		return
	}
	w.mu.Lock()
	for k, wl := range w.ahead {
		if match(k) {
			wl.dropped = true
			delete(w.ahead, k)
		}
	}
	w.size.Store(int32(len(w.ahead)))
	w.mu.Unlock()
}

// walkFrom is called when d is opened: if its parent was read shortly
// before, the parent's subdirectories after d are listed ahead.
func (d *dirNode) walkFrom() {
	if d.fsys.listingTTL() <= 0 {
		return
	}
	name, p := d.Parent()
	if p == nil {
		return
	}
	parent, ok := p.Operations().(*dirNode)
	if !ok {
		return
	}
	var next []string
	parent.mu.Lock()
	l, pfx := parent.listing, parent.prefix
	if l != nil && l.readdir && l.complete && time.Since(l.at) <= d.fsys.listingTTL() {
		if i, ok := l.byName[name]; ok {
			for k, e := range l.entries[i+1:] {
				if len(next) == walkWindow || k == walkScan {
					break
				}
				if e.isDir {
					next = append(next, e.name)
				}
			}
		}
	}
	parent.mu.Unlock()
	for _, n := range next {
		if !d.fsys.ahead.start(d.bucket, pfx+n+"/") {
			return
		}
	}
}
