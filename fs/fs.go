// Package fs is the kfs filesystem: a go-fuse node tree over an object
// store. Buckets and prefixes are directories, objects are files.
//
// Node methods are thin adapters: they decode the request, call a plain
// function returning error, and map it once with errno. The content of a
// file open for writing lives in an upload.File shared by all its handles
// (per-inode state); handles hold only their flags and read position.
//
// LOCK ORDERING (every lock is taken in this order, none held across a
// network call except where said):
//
//  1. fileNode.xattrMu / dirNode.xattrMu: serialise attribute
//     read-modify-writes of one node; held across its store calls.
//  2. fileNode.opMu: serialises content changes of one file (open for
//     writing, commit, truncate, rename of it); held across its store calls.
//  3. upload.File.mu (inside package upload): held across that file's
//     fetches and commits.
//  4. fileNode.mu, dirNode.mu, bucketsNode.mu, handle.mu: leaves
//     protecting fields; never held across store calls or Inode.Notify*.
//  5. deleter.flushMu: serialises delete batches; held across their
//     store calls, taken before deleter.mu.
//  6. FS-wide leaves: deleter.mu, listing.Walker.mu, deferred.mu (files
//     holding attributes back), writeBack.mu (files written back: no
//     fileNode.mu is taken while it is held), dirTimes.mu,
//     notifier.mu, dirMetaSupport.mu, FS.rootMu, FS.logMu; never held
//     across store calls (the directory-metadata check makes its HEAD
//     with none held).
//  7. journal.Journal.mu: the innermost leaf (deletions are recorded
//     under deleter.mu; held-back attributes and write-back records under
//     opMu, no leaf held).
//
// A node's lock is never taken while another node's is held, except a
// directory's mu after a file's mu is released. Kernel notifications are
// sent from their own goroutine, never from inside a FUSE request.
package fs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/cache"
	"kfs/cache/disk"
	"kfs/fs/listing"
	"kfs/fs/upload"
)

// Config is what the filesystem layer needs to know.
type Config struct {
	UID, GID          uint32
	FileMode, DirMode uint32 // permission bits shown when an object says none
	AttrTTL           time.Duration
	EntryTTL          time.Duration // also how long kfs trusts its own listings
	NegativeTTL       time.Duration // how long "no such name" is trusted
	ReadOnly          bool
	MaxReadahead      int64
	ACL               bool          // store POSIX ACLs (the kernel enforces them)
	Mountpoint        string        // where the filesystem is mounted (to recognise descriptors of it)
	Timeout           time.Duration // bound on work done without a caller (release, background deletes)
	Renames           RenameJournal // records directory renames under way (nil: not recorded)
	Deletes           DeleteJournal // records deletions waiting in the batch (nil: not recorded)
	Log               *slog.Logger

	// Freshness without events. EventsLive says whether a push event
	// source (the webhook receiver) is up; a bucket counts as covered once
	// an event of it arrived through it (EventSeen). For a bucket not
	// covered, a listing older than Revalidate answers neither "no such
	// name" nor readdir: the store is asked again (0: always). nil
	// EventsLive: listings are trusted for the TTLs (the in-process tier).
	EventsLive func() bool
	Revalidate time.Duration

	// Disk is the dataset cache (nil: none): files read sequentially are
	// kept whole, and read from it while their version is current;
	// Passthrough hands those to the kernel.
	Disk        *disk.Cache
	Passthrough bool

	// Attrs journals attribute changes held back for a moment after an
	// upload (nil: none are: every change is a copy at once).
	Attrs AttrsJournal

	// WriteBack: close() of a small file this mount created returns once
	// it is durable on local disk (its staging file and a record in
	// Writes); uploads follow in the background (writeback.go). The
	// pipeline must keep named staging files. Writes must be set.
	WriteBack bool
	Writes    WritesJournal
	// WriteBackDelay is how long a closed file waits before its upload
	// (0: one second; tests shorten it to race uploads with changes).
	WriteBackDelay time.Duration
}

// RenameJournal records directory renames under way, so one a crash cuts
// short is finished by the next mount (journal.Journal is one).
type RenameJournal interface {
	BeginRename(bucket, from, to string) string // on disk before it returns
	EndRename(id string)
}

// DeleteJournal records the deletions unlink hands to the batch, so a
// process killed before the batch went out does not bring the files back
// (journal.Journal is one).
type DeleteJournal interface {
	BeginDelete(bucket, key string) string
	EndDelete(ids ...string)
}

// FS is the state shared by every node of one mount.
type FS struct {
	store   Store
	blocks  *cache.Blocks
	up      *upload.Pipeline
	cfg     Config
	mounted time.Time
	del     *deleter
	ahead   *listing.Walker // lists subdirectories ahead of tree walks
	dirt    *dirTimes       // directory times waiting to be stored
	streams *cache.Streams  // sequential readers sharing the prefetch budget

	rootMu sync.Mutex    // protects root
	root   *fusefs.Inode // GUARDED_BY(rootMu): set when the root is first used

	logMu  sync.Mutex          // protects logged
	logged map[string]struct{} // GUARDED_BY(logMu): messages already logged once

	dirMeta dirMetaSupport // whether the server keeps metadata on directory markers

	covered sync.Map // bucket -> true: events of it arrived through a push source

	deferred deferred    // nodes holding attribute changes back
	wb       *writeBack  // files closed and not uploaded yet (nil: no write-back)
	ptOff    atomic.Bool // passthrough found unavailable (noPassthrough)

	notes *notifier // kernel notifications, sent by one goroutine
	stop  chan struct{}
	viaFH chan struct{} // never closed: marks a GETATTR sent through a descriptor (served.GetAttr)
	wg    sync.WaitGroup
}

// New returns the shared state of a mount.
func New(st Store, blocks *cache.Blocks, up *upload.Pipeline, cfg Config) *FS {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	f := &FS{store: st, blocks: blocks, up: up, cfg: cfg, mounted: time.Now(), logged: map[string]struct{}{},
		notes: newNotifier(), stop: make(chan struct{}), viaFH: make(chan struct{})}
	f.del = newDeleter(f)
	f.ahead = listing.NewWalker(listing.WalkerConfig{TTL: f.listingTTL, Background: f.background, Stop: f.stop,
		List: func(ctx context.Context, bucket, prefix string) (*listing.Listing, error) {
			d := newDirNode(f, bucket, prefix) // only to list: the listing is adopted by the real node
			return d.listFirstPage(ctx, time.Now())
		}})
	f.dirt = newDirTimes(f)
	if blocks != nil {
		f.streams = &cache.Streams{Budget: blocks.PrefetchLimit()}
	}
	if cfg.WriteBack && cfg.Writes != nil {
		f.wb = newWriteBack(f)
	}
	f.wg.Add(1)
	go f.notes.run(f.stop, &f.wg)
	return f
}

// WaitSpace waits until a write-back upload ends (staging space freed):
// upload.Config.WaitSpace. False when nothing is pending.
func (f *FS) WaitSpace(ctx context.Context) bool {
	if f.wb == nil {
		return false
	}
	return f.wb.waitChange(ctx)
}

// Close finishes what the mount deferred (write-back uploads, batched
// deletions); call it once the filesystem is unmounted.
func (f *FS) Close() error {
	if f.wb != nil {
		f.wb.drain()
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
	defer cancel()
	err := f.flushAllDeferred(ctx, "", "", true)
	if derr := f.del.flush(ctx); err == nil {
		err = derr
	}
	f.dirt.flush(ctx, nil)
	close(f.stop)
	f.wg.Wait()
	return err
}

func (f *FS) now() time.Time { return time.Now() }

// background is the context of work no caller waits for.
func (f *FS) background() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), f.cfg.Timeout)
}

// logOnce logs msg with args at warning level the first time the pair is
// seen (bounded memory).
func (f *FS) logOnce(msg string, args ...any) {
	id := fmt.Sprint(append([]any{msg}, args...)...)
	f.logMu.Lock()
	_, seen := f.logged[id]
	if !seen && len(f.logged) < 10000 {
		f.logged[id] = struct{}{}
	}
	f.logMu.Unlock()
	if !seen {
		f.cfg.Log.Warn(msg, args...)
	}
}

// BucketRoot returns the root node of a mount of one bucket (or prefix).
func (f *FS) BucketRoot(bucket, prefix string) fusefs.InodeEmbedder {
	d := newDirNode(f, bucket, prefix)
	d.isRoot = true
	return d
}

func (f *FS) setRoot(n *fusefs.Inode) {
	f.rootMu.Lock()
	if f.root == nil {
		f.root = n.Root()
	}
	f.rootMu.Unlock()
}

func (f *FS) rootInode() *fusefs.Inode {
	f.rootMu.Lock()
	defer f.rootMu.Unlock()
	return f.root
}

// EventSeen notes that an event of bucket arrived through a push source:
// the bucket's notification configuration reaches this mount.
func (f *FS) EventSeen(bucket string) { f.covered.Store(bucket, true) }

// eventsCover says whether changes made elsewhere in bucket reach this
// mount as events (so its listings may be trusted for the TTLs).
func (f *FS) eventsCover(bucket string) bool {
	if f.cfg.EventsLive == nil {
		return true
	}
	_, seen := f.covered.Load(bucket)
	return seen && f.cfg.EventsLive()
}

// negativeTTL is how long a listing may answer "no such name" in bucket.
func (f *FS) negativeTTL(bucket string) time.Duration {
	if f.eventsCover(bucket) {
		return f.cfg.NegativeTTL
	}
	return min(f.cfg.NegativeTTL, f.cfg.Revalidate)
}

// listingTTLOf is how long a listing of bucket may serve readdir.
func (f *FS) listingTTLOf(bucket string) time.Duration {
	return min(f.listingTTL(), f.negativeTTL(bucket))
}
