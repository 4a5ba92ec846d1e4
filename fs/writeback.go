package fs

// Write-back (Config.WriteBack, opt-in): close() of a small file this mount
// created returns once its bytes (the named staging file, synced) and its
// attributes (a journal record, synced) are durable on local disk; the
// upload follows in the background, in order of close, a few at a time.
// Until then the file lives here: it keeps a persistent inode (the kernel
// cannot forget it), so lookups, listings, stats and reads through this
// mount see it; other clients see it once uploaded. Work queued is
// rewritten rather than sent: a rename changes the key the upload will use
// (and re-records it), an unlink before the upload costs nothing, a
// directory rename moves its pending files with it. An upload goes only
// over the object this mount last knew under the name (a conditional PUT:
// If-None-Match or If-Match); when another client wrote there since, both
// are kept, ours under a name that says so. fsync, `kfs sync`, a control
// request about the file and unmount upload at once; after a crash the
// next mount uploads what the journal names.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kfs/fs/journal"
)

// WritesJournal records files closed and not yet uploaded
// (journal.Journal is one).
type WritesJournal interface {
	BeginWrite(w journal.Write, sync bool) (string, error)
	EndWrite(id string)
}

const (
	wbParallel  = 4 // uploads at once
	wbRetryMin  = 500 * time.Millisecond
	wbRetryMax  = 30 * time.Second
	wbStallStop = time.Minute // unmount gives up waiting after this long without progress
	// wbDelay is how long a closed file waits before its upload, so what
	// tools do right after close (tar's utime and chmod, rsync's and
	// editors' rename into place, a temporary's unlink) rewrites the
	// queued upload instead of costing requests of its own.
	wbDelay = time.Second

	wbInlineMax    = 256 << 10 // files up to this size are journaled with their bytes (one sync) ...
	wbInlineBudget = 64 << 20  // ... while those pending hold at most this much memory
)

// writeBack is the queue of files closed and not uploaded yet.
type writeBack struct {
	fsys *FS

	mu      sync.Mutex               // protects the fields below
	cond    *sync.Cond               // the queue grew, or the writer stops
	queue   []*fileNode              // GUARDED_BY(mu): waiting for a worker, in order of close
	nodes   map[*fileNode]*wbPending // GUARDED_BY(mu): every file with a record
	changed chan struct{}            // GUARDED_BY(mu): closed (and replaced) when an upload ends
	stopped bool                     // GUARDED_BY(mu)
	rush    int                      // GUARDED_BY(mu): syncs waiting, or unmount: nothing waits for wbDelay meanwhile

	inline    atomic.Int64 // bytes of pending files journaled inline (held in memory)
	uploaded  atomic.Int64 // files uploaded
	conflicts atomic.Int64 // files kept under a conflict name
	failures  atomic.Int64 // failed attempts
	wg        sync.WaitGroup
}

// wbPending is one file's place in the queue.
type wbPending struct {
	since   time.Time // closed (first, since its last upload)
	due     time.Time // not uploaded before (wbDelay after its last close)
	queued  bool      // in queue
	running bool      // a worker uploads it
	again   bool      // closed again while running
	tries   int       // failed attempts in a row
	lastErr error
	started int         // attempts begun
	failed  int         // the attempt (by started) that failed last
	timer   *time.Timer // the retry waiting
}

func newWriteBack(f *FS) *writeBack {
	w := &writeBack{fsys: f, nodes: map[*fileNode]*wbPending{}, changed: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	for i := 0; i < wbParallel; i++ {
		w.wg.Add(1)
		go w.work()
	}
	return w
}

// add queues n (closed): at the end, unless it waits already.
func (w *writeBack) add(n *fileNode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.nodes[n]
	if p == nil {
		p = &wbPending{since: time.Now()}
		w.nodes[n] = p
	}
	switch {
	case p.running:
		p.again = true
	case !p.queued:
		w.enqueueLocked(n, p, w.delay())
	}
}

// delay is how long a closed file waits for its upload.
func (w *writeBack) delay() time.Duration {
	if d := w.fsys.cfg.WriteBackDelay; d > 0 {
		return d
	}
	return wbDelay
}

// enqueueLocked puts n at the end of the queue, due after delay.
func (w *writeBack) enqueueLocked(n *fileNode, p *wbPending, delay time.Duration) {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.queued, p.due = true, time.Now().Add(delay)
	w.queue = append(w.queue, n)
	w.cond.Signal()
}

// remove forgets n (uploaded by another path, or unlinked before its upload).
func (w *writeBack) remove(n *fileNode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.nodes[n]
	if p == nil {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	delete(w.nodes, n)
	if p.queued {
		kept := w.queue[:0]
		for _, q := range w.queue {
			if q != n {
				kept = append(kept, q)
			}
		}
		w.queue = kept
	}
	w.signalLocked()
}

func (w *writeBack) signalLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// next waits for a file due for its upload (nil: stopped). The queue is
// in order of close, so its head is due first (a retry put at the end
// while due at once waits for those before it: the order of close).
func (w *writeBack) next() (*fileNode, *wbPending) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.stopped {
		if len(w.queue) == 0 {
			w.cond.Wait()
			continue
		}
		p := w.nodes[w.queue[0]]
		if p == nil || !p.queued {
			w.queue = w.queue[1:] // removed meanwhile
			continue
		}
		wait := time.Until(p.due)
		if wait <= 0 || w.rush > 0 {
			break
		}
		t := time.AfterFunc(wait, func() {
			w.mu.Lock()
			w.cond.Broadcast()
			w.mu.Unlock()
		})
		w.cond.Wait()
		t.Stop()
	}
	if w.stopped {
		return nil, nil
	}
	n := w.queue[0]
	w.queue = w.queue[1:]
	p := w.nodes[n]
	p.queued, p.running = false, true
	p.started++
	return n, p
}

func (w *writeBack) work() {
	defer w.wg.Done()
	for {
		n, p := w.next()
		if n == nil {
			return
		}
		ctx, cancel := w.fsys.background()
		err := n.writeBackOne(ctx)
		cancel()
		w.finish(n, p, err)
	}
}

// finish ends an attempt: the file is done, queued again (closed again
// meanwhile), or retried after a backoff (never dropped).
func (w *writeBack) finish(n *fileNode, p *wbPending, err error) {
	n.mu.Lock()
	recorded, path := n.wbID != "", n.bucket+"/"+n.key
	n.mu.Unlock()
	w.mu.Lock() // after n.mu: writeBack.mu is never held while taking a node's
	defer w.mu.Unlock()
	defer w.signalLocked()
	if w.nodes[n] != p {
		return // uploaded or removed meanwhile (and maybe closed again: queued anew)
	}
	p.running = false
	switch {
	case !recorded:
		delete(w.nodes, n)
		return
	case err == nil || p.again:
		p.again, p.tries, p.lastErr = false, 0, nil
		w.enqueueLocked(n, p, w.delay())
		return
	}
	p.tries++
	p.lastErr, p.failed = err, p.started
	w.failures.Add(1)
	delay := min(wbRetryMin<<min(p.tries-1, 10), wbRetryMax)
	if p.tries == 1 || p.tries%10 == 0 {
		w.fsys.cfg.Log.Warn("write-back upload failed; it is kept on local disk and tried again", "path", path, "attempt", p.tries, "retry_in", delay, "err", err)
	}
	p.timer = time.AfterFunc(delay, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if q := w.nodes[n]; q == p && !p.queued && !p.running {
			w.enqueueLocked(n, p, 0)
		}
	})
}

// pendingUnder lists the files waiting under bucket/prefix (all with
// all).
func (w *writeBack) pendingUnder(bucket, prefix string, all bool) []*fileNode {
	w.mu.Lock()
	nodes := make([]*fileNode, 0, len(w.nodes))
	for n := range w.nodes {
		nodes = append(nodes, n)
	}
	w.mu.Unlock()
	var out []*fileNode
	for _, n := range nodes {
		if all || n.bucket == bucket && underKey(n.objKey(), prefix) {
			out = append(out, n)
		}
	}
	return out
}

func underKey(k, prefix string) bool {
	return prefix == "" || k == prefix || strings.HasPrefix(k, strings.TrimSuffix(prefix, "/")+"/")
}

// syncUnder uploads now, and waits for, every file waiting under
// bucket/prefix (everything with all). It returns the first upload that
// failed, naming the file.
//
// The workers upload them (4 at a time), due at once while a sync waits
// (retries too); a file open for writing is uploaded here, as fsync would.
// It returns at the first failure of one of them since it began, so a
// store that is down makes it fail after one attempt, not one per file.
func (w *writeBack) syncUnder(ctx context.Context, bucket, prefix string, all bool) error {
	nodes := w.pendingUnder(bucket, prefix, all)
	if len(nodes) == 0 {
		return nil
	}
	for _, n := range nodes {
		n.mu.Lock()
		open := n.writers > 0
		n.mu.Unlock()
		if open {
			if err := n.uploadNow(ctx); err != nil {
				return fmt.Errorf("%s: %w", n.path(), err)
			}
		}
	}
	w.mu.Lock()
	w.rush++
	began := map[*fileNode]int{} // attempts begun before the sync: their failures do not count
	for _, n := range nodes {
		if p := w.nodes[n]; p != nil {
			began[n] = p.started
			if !p.queued && !p.running {
				w.enqueueLocked(n, p, 0) // a retry waiting for its backoff goes now
			}
		}
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.rush--
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		ch, left := w.changed, 0
		var failed *fileNode
		var why error
		for n, start := range began {
			p := w.nodes[n]
			switch {
			case p == nil:
			case p.failed > start && failed == nil:
				failed, why = n, p.lastErr
			default:
				left++
			}
		}
		w.mu.Unlock()
		if failed != nil {
			return fmt.Errorf("%s: %w", failed.path(), why) // n.mu after w.mu is released
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d files still uploading: %w", left, ctx.Err())
		}
	}
}

// waitChange waits until some upload ends (or ctx ends); false when
// nothing is pending (waiting cannot free anything).
func (w *writeBack) waitChange(ctx context.Context) bool {
	w.mu.Lock()
	ch, pending := w.changed, len(w.nodes)
	w.mu.Unlock()
	if pending == 0 {
		return false
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// drain uploads what is pending at unmount, logging progress; it gives
// up (the journal keeps the rest for the next mount) after wbStallStop
// without an upload ending.
func (w *writeBack) drain() {
	last, lastAt := -1, time.Now()
	w.mu.Lock()
	w.rush++ // for good: the mount is ending
	w.mu.Unlock()
	for {
		w.mu.Lock()
		w.cond.Broadcast()
		left := len(w.nodes)
		for n, p := range w.nodes {
			if !p.queued && !p.running {
				w.enqueueLocked(n, p, 0) // retries now, not after their backoff
			}
		}
		w.mu.Unlock()
		if left == 0 {
			break
		}
		if left != last {
			w.fsys.cfg.Log.Info("unmount: uploading files written back", "pending", left)
			last, lastAt = left, time.Now()
		}
		if time.Since(lastAt) > wbStallStop {
			w.fsys.cfg.Log.Error("unmount: uploads make no progress; the journal keeps the files for the next mount", "pending", left)
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w.waitChange(ctx)
		cancel()
	}
	w.mu.Lock()
	w.stopped = true
	for _, p := range w.nodes {
		if p.timer != nil {
			p.timer.Stop()
		}
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	w.wg.Wait()
}

// WriteBackStatus is what `kfs status` shows of write-back.
type WriteBackStatus struct {
	Pending   int     `json:"pending_files"`
	Bytes     int64   `json:"pending_bytes"`
	OldestAge float64 `json:"oldest_pending_seconds"`
	Failing   int     `json:"failing"`
	LastError string  `json:"last_error,omitempty"`
	Uploaded  int64   `json:"uploaded"`
	Conflicts int64   `json:"conflicts"`
}

func (w *writeBack) status() WriteBackStatus {
	w.mu.Lock()
	nodes := make(map[*fileNode]wbPending, len(w.nodes))
	for n, p := range w.nodes {
		nodes[n] = *p
	}
	w.mu.Unlock()
	s := WriteBackStatus{Pending: len(nodes), Uploaded: w.uploaded.Load(), Conflicts: w.conflicts.Load()}
	for n, p := range nodes {
		s.OldestAge = max(s.OldestAge, time.Since(p.since).Seconds())
		n.mu.Lock()
		s.Bytes += n.size
		n.mu.Unlock()
		if p.lastErr != nil {
			s.Failing++
			s.LastError = n.path() + ": " + p.lastErr.Error()
		}
	}
	return s
}

// Sync uploads everything written back and not yet uploaded, and sends
// what else the mount holds back (attributes, batched deletions), and
// waits for it (kfs sync): the first failure, naming its file, when one
// cannot be uploaded now.
func (f *FS) Sync(ctx context.Context) error {
	if f.wb != nil {
		if err := f.wb.syncUnder(ctx, "", "", true); err != nil {
			return err
		}
	}
	f.dirt.flush(ctx, nil)
	if err := f.flushAllDeferred(ctx, "", "", true); err != nil {
		return err
	}
	return f.del.flush(ctx) // unlinks waiting in the batch: the bucket then is what the mount shows
}
