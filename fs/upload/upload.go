// Package upload is the write pipeline of kfs: the content of a file being
// changed, shared by every handle of that file, and how it reaches the
// store.
//
// A File is a sparse local staging file (unlinked at creation, so nothing is
// left behind whatever happens to the process) over a base object: ranges
// of the base are fetched when first needed (a read, a partial write), and
// written ranges are kept locally until committed. A writer that goes front
// to back (cp, dd, pandas) does not wait for the end: every part of the
// multipart upload it has passed is sent in the background, streamed from
// the staging file, at most Parallel per file and InFlight bytes for all
// files together (a fast writer waits rather than running ahead). Commit
// makes the store hold exactly the File's content: one PutObject for a
// small file, else the multipart upload whose parts are the ones already
// sent and unchanged, the untouched ranges of the base copied server side
// (UploadPartCopy) and the rest uploaded. Nothing is visible under the key
// before Commit returns nil; a failed commit aborts its upload, keeps the
// content, and can be retried.
//
// Staging bytes are bounded by DiskLimit for all files together; past it,
// parts already sent and unchanged are dropped from the staging file (hole
// punched). Reading or rewriting such a dropped range first completes the
// upload so far into the object (the one case where a partial object
// becomes visible before the final commit; it needs a file larger than
// DiskLimit written and then read back or rewritten while still open).
//
// LOCK ORDER: File.mu, then the pipeline's budgets and a multipart's mu
// (leaves). File.mu is held across the file's own store calls (fetches and
// commits), never across another File's.
package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"kfs/fs/store"
)

// Store is what the pipeline needs of the object store: reads of the
// base object, whole-object PUTs and multipart uploads.
type Store interface {
	store.Objects
	store.Multipart
}

// Recorder records the multipart uploads in flight (package journal), so
// the next mount aborts those a crash left.
type Recorder interface {
	Record(u store.UploadRef, start bool)
}

// Config configures a pipeline (one per mount).
type Config struct {
	Store     Store
	Dir       string        // where staging files live (must exist)
	DiskLimit int64         // most staging bytes held, all files together
	InFlight  int64         // most bytes of parts being sent, all files together
	PartSize  int64         // first part size; doubles every 1,000 parts
	Parallel  int           // parts in flight per file
	Timeout   time.Duration // bound on one store request of a commit or a part
	Journal   Recorder      // records multipart uploads in flight (nil: none)
	// Named keeps staging files under a name (write-back: Persist), removed
	// at Close; else they are unlinked as they are made.
	Named bool
	// WaitSpace, when set, is asked to wait for staging space before a
	// write gets ENOSPC (write-back: uploads under way free it). It reports
	// whether waiting again may help.
	WaitSpace func(ctx context.Context) bool
	SpaceWait time.Duration // how long a write waits for space with WaitSpace (default 30s), then ENOSPC
	Log       *slog.Logger
}

// ErrDiskFull is ENOSPC: the staging budget is spent.
var ErrDiskFull = fmt.Errorf("staging directory full (raise --cache-dir-size): %w", syscall.ENOSPC)

// ErrTooLarge is EFBIG: past S3's 5 TiB object size.
var ErrTooLarge = fmt.Errorf("file larger than S3's 5 TiB object limit: %w", syscall.EFBIG)

// Pipeline is the state shared by every File of one mount.
type Pipeline struct {
	cfg      Config
	disk     atomic.Int64 // staging bytes charged
	inflight *budget      // bytes of parts being sent

	pool sync.Pool // *[]byte buffers of PartSize bytes

	mu    sync.Mutex        // protects files
	files map[*File]*status // GUARDED_BY(mu): live files, for Status
}

// getBuf returns an empty buffer with room for n bytes (pooled when n is
// the part size).
func (p *Pipeline) getBuf(n int64) []byte {
	if n == p.cfg.PartSize {
		if b, ok := p.pool.Get().(*[]byte); ok {
			return (*b)[:0]
		}
	}
	return make([]byte, 0, n)
}

func (p *Pipeline) putBuf(b []byte) {
	if int64(cap(b)) == p.cfg.PartSize {
		b = b[:0]
		p.pool.Put(&b)
	}
}

type status struct {
	bucket  string
	started time.Time
}

// New returns a pipeline; zero fields get defaults.
func New(cfg Config) *Pipeline {
	if cfg.PartSize < store.MinPartSize {
		cfg.PartSize = 16 << 20
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.InFlight < cfg.PartSize {
		cfg.InFlight = int64(cfg.Parallel) * cfg.PartSize
	}
	if cfg.DiskLimit <= 0 {
		cfg.DiskLimit = 10 << 30
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.SpaceWait <= 0 {
		cfg.SpaceWait = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{cfg: cfg, inflight: newBudget(cfg.InFlight), files: map[*File]*status{}}
}

// DiskUsed reports the staging bytes held now.
func (p *Pipeline) DiskUsed() int64 { return p.disk.Load() }

// FileStatus is one file with unsaved changes.
type FileStatus struct {
	Bucket, Key string
	Bytes       int64
	PartsSent   int
	Started     time.Time
}

// Status lists the files with unsaved changes.
func (p *Pipeline) Status() []FileStatus {
	p.mu.Lock()
	files := make(map[*File]status, len(p.files))
	for f, s := range p.files {
		files[f] = *s
	}
	p.mu.Unlock()
	var out []FileStatus
	for f, s := range files {
		if st, ok := f.status(); ok {
			st.Bucket, st.Started = s.bucket, s.started
			out = append(out, st)
		}
	}
	return out
}

// budget is a counting semaphore of bytes in MiB units; acquirers queue in
// order, so two never hold half of it each.
type budget struct {
	acqMu  sync.Mutex    // serialises acquirers
	tokens chan struct{} // one per MiB available
}

const unit = 1 << 20

func newBudget(bytes int64) *budget {
	n := max(int(bytes/unit), 1)
	b := &budget{tokens: make(chan struct{}, n)}
	for i := 0; i < n; i++ {
		b.tokens <- struct{}{}
	}
	return b
}

// acquire takes n bytes (whole MiB, at most the whole budget) and returns
// the units to release.
func (b *budget) acquire(ctx context.Context, n int64) (int, error) {
	units := min(int((n+unit-1)/unit), cap(b.tokens))
	b.acqMu.Lock()
	defer b.acqMu.Unlock()
	for i := 0; i < units; i++ {
		select {
		case <-b.tokens:
		case <-ctx.Done():
			b.release(i)
			return 0, ctx.Err()
		}
	}
	return units, nil
}

// tryAcquire takes n bytes if they are free now.
func (b *budget) tryAcquire(n int64) (int, bool) {
	units := min(int((n+unit-1)/unit), cap(b.tokens))
	if !b.acqMu.TryLock() {
		return 0, false
	}
	defer b.acqMu.Unlock()
	for i := 0; i < units; i++ {
		select {
		case <-b.tokens:
		default:
			b.release(i)
			return 0, false
		}
	}
	return units, true
}

func (b *budget) release(units int) {
	for i := 0; i < units; i++ {
		b.tokens <- struct{}{}
	}
}

// layout is where the parts of an object lie: part n (1-based) is
// base << ((n-1)/1000) bytes, at most 5 GiB, so 10,000 parts reach past
// S3's 5 TiB limit whatever the first part size.
type layout struct{ base int64 }

func (l layout) size(n int) int64 { return min(l.base<<((n-1)/1000), store.MaxPartSize) }

// start returns the offset of part n.
func (l layout) start(n int) int64 {
	var off int64
	for k := 1; k < n; k += 1000 {
		cnt := min(1000, n-k)
		off += int64(cnt) * l.size(k)
	}
	return off
}

// part returns the part holding offset off.
func (l layout) part(off int64) int {
	n := 1
	for {
		sz := l.size(n)
		span := 1000 * sz
		if off < span || n+1000 > store.MaxParts {
			return n + int(off/sz)
		}
		off -= span
		n += 1000
	}
}

// count returns how many parts an object of size bytes has (at least 1).
func (l layout) count(size int64) int {
	if size <= 0 {
		return 1
	}
	return l.part(size - 1)
}

var errClosed = errors.New("file already released")
