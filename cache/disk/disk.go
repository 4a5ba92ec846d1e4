// Package disk is the dataset cache: whole objects kept on local disk, so
// a file read once is read again after a remount without the network, and
// (through FUSE passthrough, in package fs) without kfs at all.
//
// An entry is one version of one object: its bytes in a file named by a
// hash of the endpoint, bucket, key, ETag and size, and beside it a record
// (<name>.meta) of what it is and of the data file as it was when the
// entry was completed (inode, size, change time). A file whose inode, size
// or ctime differ from the record was changed behind kfs's back (ctime
// cannot be set by a user) and is deleted, never served.
//
// Entries are filled block by block while a file is read sequentially
// (Fill.Add), in a temporary file, and published only once every block is
// there: synced, its size checked, its MD5 compared with the ETag where
// the ETag is one, then renamed into place. Nothing partial is ever read.
//
// LOCKING: Cache.mu protects the index, the LRU list, the fills and the
// byte counts; Fill.mu protects one fill's file and block map. Cache.mu is
// never held across disk I/O of object bytes, and Fill.mu is never taken
// while Cache.mu is held.
package disk

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ID names one version of one object.
type ID struct {
	Bucket, Key, ETag string
	Size              int64
}

// Config is what a cache needs.
type Config struct {
	Dir       string        // the cache's own directory (made 0700)
	MaxBytes  int64         // most bytes of entries and fills together
	BlockSize int64         // the unit fills arrive in
	Endpoint  string        // part of every entry's name: two stores never share an entry
	LockWait  time.Duration // how long Open waits for another process to let go of Dir (a remount right after an unmount)
	Log       *slog.Logger
}

// Stats are the cache's counters.
type Stats struct {
	MaxBytes     int64 `json:"max_bytes"`
	Bytes        int64 `json:"bytes"` // entries and fills in progress
	Entries      int   `json:"entries"`
	Fills        int   `json:"fills_in_progress"`
	Hits         int64 `json:"hits"`
	Misses       int64 `json:"misses"`
	Filled       int64 `json:"filled"`
	FillFailures int64 `json:"fill_failures"`
	Evictions    int64 `json:"evictions"`
	Discarded    int64 `json:"discarded"` // entries found changed or torn on disk
	Passthrough  int64 `json:"passthrough_opens"`
}

// Cache is the dataset cache of one process.
type Cache struct {
	cfg  Config
	lock *os.File // held (flock) while the process runs: one process per directory

	mu      sync.Mutex          // protects the fields below
	entries map[string]*entry   // GUARDED_BY(mu): complete entries by name
	byKey   map[string][]string // GUARDED_BY(mu): bucket\x00key -> entry names
	lru     *list.List          // GUARDED_BY(mu): of *entry, most recently used first
	fills   map[string]*Fill    // GUARDED_BY(mu): fills in progress by name
	used    int64               // GUARDED_BY(mu): bytes of entries plus fill reservations

	hits, misses, filled, fillFailures, evictions, discarded, passthrough atomic.Int64

	boot      string        // this boot of the kernel (bootID)
	unsynced  atomic.Bool   // entries were published since the last sync
	stop      chan struct{} // ends the syncer and the writer
	queue     chan write    // blocks for the writer
	wdone     chan struct{}
	bufs      sync.Pool // of *[]byte, BlockSize each
	closeOnce sync.Once
	done      chan struct{}
}

type entry struct {
	name  string
	rec   record
	users int // GUARDED_BY(Cache.mu): open Handles
	elem  *list.Element
}

// record is the .meta file of an entry.
type record struct {
	Endpoint  string `json:"endpoint"`
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	ETag      string `json:"etag"`
	Size      int64  `json:"size"`
	Ino       uint64 `json:"ino"`
	Ctime     int64  `json:"ctime_ns"`
	Boot      string `json:"boot_id"`      // the kernel's boot the entry was written in
	Published int64  `json:"published_ns"` // when (unix ns)
}

// maxFills bounds the fills in progress (each holds a temporary file and
// its reservation); the least recently fed one gives way.
const maxFills = 16

// ErrBusy is a cache directory another live process uses.
var ErrBusy = errors.New("in use by another kfs process")

// Open opens (creating) the cache in cfg.Dir: it takes the directory's
// lock, removes what a killed process left half-written, checks every
// entry against its record (deleting changed or torn ones) and evicts
// down to MaxBytes.
func Open(cfg Config) (*Cache, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.BlockSize <= 0 {
		return nil, fmt.Errorf("disk cache: block size %d", cfg.BlockSize)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("disk cache: %v", err)
	}
	lf, err := os.OpenFile(filepath.Join(cfg.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("disk cache: %v", err)
	}
	deadline := time.Now().Add(cfg.LockWait)
	err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	for errors.Is(err, syscall.EWOULDBLOCK) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		b, _ := io.ReadAll(io.LimitReader(lf, 32))
		lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("disk cache %s: %w (pid %s): give this mount its own --cache-dir, or --disk-cache-size 0", cfg.Dir, ErrBusy, strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("disk cache: lock: %v", err)
	}
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	c := &Cache{cfg: cfg, lock: lf, entries: map[string]*entry{}, byKey: map[string][]string{}, lru: list.New(),
		fills: map[string]*Fill{}, stop: make(chan struct{}), done: make(chan struct{}), boot: bootID()}
	c.clearTmp()
	c.load()
	c.queue, c.wdone = make(chan write, max(2, queueBytes/cfg.BlockSize)), make(chan struct{})
	c.bufs.New = func() any { b := make([]byte, 0, cfg.BlockSize); return &b }
	go c.syncer()
	go c.writer()
	return c, nil
}

// Close makes the entries durable and releases the directory. Fills in
// progress are abandoned.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		<-c.wdone
		c.sync()
		c.mu.Lock()
		fills := c.fills
		c.fills = map[string]*Fill{}
		c.mu.Unlock()
		for _, f := range fills {
			f.abandon()
		}
		c.lock.Close()
	})
}

func (c *Cache) clearTmp() {
	tmp := filepath.Join(c.cfg.Dir, "tmp")
	des, _ := os.ReadDir(tmp)
	for _, de := range des {
		os.Remove(filepath.Join(tmp, de.Name()))
	}
	if len(des) > 0 {
		c.cfg.Log.Info("disk cache: removed fills an earlier run left unfinished", "files", len(des))
	}
}

var entryName = regexp.MustCompile(`^[0-9a-f]{40}$`)

// load indexes the entries on disk, the most recently used first, and
// removes records without data and half-written records.
func (c *Cache) load() {
	type found struct {
		e    *entry
		used time.Time
	}
	var all []found
	marks := c.readMarks()
	subs, _ := os.ReadDir(c.cfg.Dir)
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		dir := filepath.Join(c.cfg.Dir, sub.Name())
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			name := de.Name()
			if data, ok := strings.CutSuffix(name, ".meta"); ok || strings.Contains(name, ".meta.") {
				if _, err := os.Lstat(filepath.Join(dir, data)); !ok || err != nil {
					os.Remove(filepath.Join(dir, name)) // half-written, or its data is gone
				}
				continue
			}
			if !entryName.MatchString(name) {
				continue
			}
			rec, mtime, err := c.readRecord(name)
			if err == nil {
				err = c.check(name, rec)
			}
			if err == nil && !marks.durable(rec, c.boot) {
				err = errors.New("written shortly before the machine stopped, never synced to disk")
			}
			if err != nil {
				c.discard(name, err)
				continue
			}
			all = append(all, found{&entry{name: name, rec: rec}, mtime})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.After(all[j].used) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range all {
		c.addLocked(f.e, false)
	}
	c.evictLocked(0)
}

func (c *Cache) path(name string) string { return filepath.Join(c.cfg.Dir, name[:2], name) }

func (c *Cache) readRecord(name string) (record, time.Time, error) {
	p := c.path(name) + ".meta"
	b, err := os.ReadFile(p)
	if err != nil {
		return record{}, time.Time{}, fmt.Errorf("no record: %v", err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, time.Time{}, fmt.Errorf("torn record: %v", err)
	}
	if c.name(ID{rec.Bucket, rec.Key, rec.ETag, rec.Size}) != name || rec.Endpoint != c.cfg.Endpoint {
		if rec.Endpoint != c.cfg.Endpoint {
			return record{}, time.Time{}, errOtherEndpoint
		}
		return record{}, time.Time{}, fmt.Errorf("record does not match its name")
	}
	st, err := os.Stat(p)
	if err != nil {
		return record{}, time.Time{}, err
	}
	return rec, st.ModTime(), nil
}

// errOtherEndpoint is an entry of another store: kept, not indexed.
var errOtherEndpoint = errors.New("entry of another endpoint")

// check compares the data file with its record.
func (c *Cache) check(name string, rec record) error {
	var st syscall.Stat_t
	if err := syscall.Stat(c.path(name), &st); err != nil {
		return err
	}
	return sameFile(&st, rec)
}

func sameFile(st *syscall.Stat_t, rec record) error {
	if st.Size != rec.Size {
		return fmt.Errorf("size %d, recorded %d (truncated or overwritten)", st.Size, rec.Size)
	}
	if st.Ino != rec.Ino || st.Ctim.Nano() != rec.Ctime {
		return fmt.Errorf("changed on disk since it was cached")
	}
	return nil
}

// discard deletes an entry found wrong on disk (an entry of another
// endpoint sharing the directory is left alone).
func (c *Cache) discard(name string, why error) {
	if errors.Is(why, errOtherEndpoint) {
		return
	}
	c.discarded.Add(1)
	c.cfg.Log.Warn("disk cache: entry discarded, the object will be fetched again", "entry", name, "why", why)
	os.Remove(c.path(name))
	os.Remove(c.path(name) + ".meta")
}

func (c *Cache) name(id ID) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d", c.cfg.Endpoint, id.Bucket, id.Key, id.ETag, id.Size)
	return hex.EncodeToString(h.Sum(nil))[:40]
}

func objKey(bucket, key string) string { return bucket + "\x00" + key }

// addLocked indexes e as the most (front) or least recently used entry.
func (c *Cache) addLocked(e *entry, front bool) {
	if old := c.entries[e.name]; old != nil {
		c.removeLocked(old)
	}
	c.entries[e.name] = e
	if front {
		e.elem = c.lru.PushFront(e)
	} else {
		e.elem = c.lru.PushBack(e)
	}
	k := objKey(e.rec.Bucket, e.rec.Key)
	c.byKey[k] = append(c.byKey[k], e.name)
	c.used += e.rec.Size
}

func (c *Cache) removeLocked(e *entry) {
	if c.entries[e.name] != e {
		return
	}
	delete(c.entries, e.name)
	c.lru.Remove(e.elem)
	k := objKey(e.rec.Bucket, e.rec.Key)
	names := c.byKey[k]
	for i, n := range names {
		if n == e.name {
			names = append(names[:i], names[i+1:]...)
			break
		}
	}
	if len(names) == 0 {
		delete(c.byKey, k)
	} else {
		c.byKey[k] = names
	}
	c.used -= e.rec.Size
}

// evictLocked removes least recently used entries no one has open until
// need more bytes fit; it reports whether they do.
func (c *Cache) evictLocked(need int64) bool {
	for el := c.lru.Back(); el != nil && c.used+need > c.cfg.MaxBytes; {
		e := el.Value.(*entry)
		el = el.Prev()
		if e.users > 0 {
			continue
		}
		c.removeLocked(e)
		c.evictions.Add(1)
		os.Remove(c.path(e.name))
		os.Remove(c.path(e.name) + ".meta")
	}
	return c.used+need <= c.cfg.MaxBytes
}

// Handle is an open entry: its file holds exactly the object's bytes.
type Handle struct {
	c    *Cache
	e    *entry
	File *os.File
	once sync.Once
}

// Dup returns another handle of the same entry (its own descriptor).
func (h *Handle) Dup() (*Handle, error) {
	fd, err := unix.Dup(int(h.File.Fd()))
	if err != nil {
		return nil, err
	}
	h.c.mu.Lock()
	h.e.users++
	h.c.mu.Unlock()
	return &Handle{c: h.c, e: h.e, File: os.NewFile(uintptr(fd), h.File.Name())}, nil
}

// Close releases the entry (it may then be evicted).
func (h *Handle) Close() {
	h.once.Do(func() {
		h.File.Close()
		h.c.mu.Lock()
		h.e.users--
		h.c.mu.Unlock()
	})
}

// CountPassthrough counts an open handed to the kernel as passthrough.
func (c *Cache) CountPassthrough() { c.passthrough.Add(1) }

// Open returns the complete entry of id, checked against its record, or
// false (a miss). An entry found changed on disk is deleted.
func (c *Cache) Open(id ID) (*Handle, bool) {
	if id.ETag == "" || id.Size <= 0 {
		return nil, false
	}
	name := c.name(id)
	c.mu.Lock()
	e := c.entries[name]
	if e != nil {
		e.users++
		c.lru.MoveToFront(e.elem)
	}
	c.mu.Unlock()
	if e == nil {
		c.misses.Add(1)
		return nil, false
	}
	f, err := os.Open(c.path(name))
	if err == nil {
		var st syscall.Stat_t
		if err = syscall.Fstat(int(f.Fd()), &st); err == nil {
			err = sameFile(&st, e.rec)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		c.mu.Lock()
		e.users--
		c.removeLocked(e)
		c.mu.Unlock()
		c.discard(name, err)
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	now := time.Now()
	_ = os.Chtimes(c.path(name)+".meta", now, now) // the order of use survives a restart
	return &Handle{c: c, e: e, File: f}, true
}

// Has says whether id has a complete entry (without checking it).
func (c *Cache) Has(id ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[c.name(id)] != nil
}

// Drop deletes the entries of bucket/key other than the version etag (""
// drops them all): the object changed or went. Open handles keep reading
// the bytes they have.
func (c *Cache) Drop(bucket, key, etag string) {
	c.mu.Lock()
	var gone []string
	for _, n := range append([]string(nil), c.byKey[objKey(bucket, key)]...) {
		e := c.entries[n]
		if e != nil && (etag == "" || e.rec.ETag != etag) {
			c.removeLocked(e)
			gone = append(gone, n)
		}
	}
	var fills []*Fill
	for n, f := range c.fills {
		if f.id.Bucket == bucket && f.id.Key == key && (etag == "" || f.id.ETag != etag) {
			delete(c.fills, n)
			fills = append(fills, f)
		}
	}
	c.mu.Unlock()
	for _, n := range gone {
		os.Remove(c.path(n))
		os.Remove(c.path(n) + ".meta")
	}
	for _, f := range fills {
		f.abandon()
	}
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	s := Stats{MaxBytes: c.cfg.MaxBytes, Bytes: c.used, Entries: len(c.entries), Fills: len(c.fills)}
	c.mu.Unlock()
	s.Hits, s.Misses, s.Filled, s.FillFailures = c.hits.Load(), c.misses.Load(), c.filled.Load(), c.fillFailures.Load()
	s.Evictions, s.Discarded, s.Passthrough = c.evictions.Load(), c.discarded.Load(), c.passthrough.Load()
	return s
}
