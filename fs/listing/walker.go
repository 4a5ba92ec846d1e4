package listing

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
	l       *Listing
	err     error
	dropped bool // GUARDED_BY(walker.mu): a change came after it started
}

// Walker lists subdirectories ahead of a tree walk.
type Walker struct {
	cfg WalkerConfig
	sem chan struct{} // walkParallel slots

	mu    sync.Mutex               // protects ahead
	ahead map[walkKey]*walkListing // GUARDED_BY(mu)
	// size is len(ahead), stored under mu after every change: lookups and
	// changes (every LOOKUP, create and unlink) skip the lock while no walk
	// is under way.
	size atomic.Int32
}

// WalkerConfig is what a walker needs of the mount.
type WalkerConfig struct {
	// List makes the first page of a listing of bucket/prefix.
	List func(ctx context.Context, bucket, prefix string) (*Listing, error)
	// TTL is how long a complete listing may answer from memory (0: never,
	// and nothing is listed ahead).
	TTL        func() time.Duration
	Background func() (context.Context, context.CancelFunc)
	Stop       <-chan struct{} // closed when the mount ends
}

// NewWalker is a walker with nothing listed ahead.
func NewWalker(cfg WalkerConfig) *Walker {
	return &Walker{cfg: cfg, sem: make(chan struct{}, walkParallel), ahead: map[walkKey]*walkListing{}}
}

// Start lists bucket/prefix in the background unless it is already; false
// when the window is full.
func (w *Walker) Start(bucket, prefix string) bool {
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
		ctx, cancel := w.cfg.Background()
		defer cancel()
		select {
		case w.sem <- struct{}{}:
		case <-w.cfg.Stop:
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
		wl.l, wl.err = w.cfg.List(ctx, bucket, prefix)
	}()
	return true
}

// sweepLocked forgets listings nobody opened within the listing TTL.
func (w *Walker) sweepLocked() {
	for k, wl := range w.ahead {
		select {
		case <-wl.done:
			if wl.err != nil || wl.dropped || time.Since(wl.l.At) > w.cfg.TTL() {
				delete(w.ahead, k)
			}
		default:
		}
	}
	w.size.Store(int32(len(w.ahead)))
}

// Claim takes the listing made ahead for bucket/prefix, waiting for it
// when it is under way; nil when there is none or it cannot be used.
func (w *Walker) Claim(ctx context.Context, bucket, prefix string) *Listing {
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
	if wl.dropped || wl.err != nil || !wl.l.Complete || time.Since(wl.l.At) > w.cfg.TTL() {
		return nil
	}
	return wl.l
}

// Drop forgets what was listed of bucket/prefix (something changed there).
func (w *Walker) Drop(bucket, prefix string) {
	w.dropWhere(func(k walkKey) bool { return k.bucket == bucket && k.prefix == prefix })
}

// DropUnder forgets every listing of bucket under prefix ("" for all).
func (w *Walker) DropUnder(bucket, prefix string) {
	w.dropWhere(func(k walkKey) bool { return k.bucket == bucket && strings.HasPrefix(k.prefix, prefix) })
}

// dropWhere forgets the listings whose key matches (at most walkWindow
// to look at). A listing that started before the change lands here too
// (the change may have reached the store after the listing read it), so
// even a fetch still under way is marked and never used.
func (w *Walker) dropWhere(match func(walkKey) bool) {
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

// Following are the subdirectories after name in l, a parent's complete
// listing made by a readdir within the TTL, to list ahead when name is
// opened (at most walkWindow of them, among the next walkScan entries).
// The caller holds whatever guards l.
func (w *Walker) Following(l *Listing, name string) []string {
	if l == nil || !l.Readdir || !l.Complete || time.Since(l.At) > w.cfg.TTL() {
		return nil
	}
	i, ok := l.Index(name)
	if !ok {
		return nil
	}
	var next []string
	for k, e := range l.Entries[i+1:] {
		if len(next) == walkWindow || k == walkScan {
			break
		}
		if e.IsDir {
			next = append(next, e.Name)
		}
	}
	return next
}
