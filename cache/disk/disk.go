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
	"context"
	"crypto/md5"
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
	"unsafe"

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

// Durability. Entries are not fsync'd one by one (a cold read filling the
// cache would pay for it); instead the syncer calls syncfs on the cache's
// filesystem every 30s when something was published, and at Close, and
// then records the boot and the time it started in "synced". In the same
// boot (kfs killed, the machine not) the page cache holds every byte
// written; an entry of an earlier boot published after that boot's last
// sync may have lost its bytes and kept its record in the crash, so it is
// discarded at the next start.

const syncEvery = 30 * time.Second

// marks are the last sync of recent boots: boot id -> unix ns.
type marks map[string]int64

func (m marks) durable(rec record, boot string) bool {
	return rec.Boot == "" || rec.Boot == boot || m[rec.Boot] >= rec.Published
}

func (c *Cache) marksPath() string { return filepath.Join(c.cfg.Dir, "synced") }

func (c *Cache) readMarks() marks {
	m := marks{}
	if b, err := os.ReadFile(c.marksPath()); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func (c *Cache) syncer() {
	defer close(c.done)
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.sync()
		}
	}
}

// sync makes what was published durable, then says so in the marks (kept
// for the last 8 boots).
func (c *Cache) sync() {
	if !c.unsynced.Swap(false) {
		return
	}
	start := time.Now().UnixNano()
	d, err := os.Open(c.cfg.Dir)
	if err == nil {
		err = unix.Syncfs(int(d.Fd()))
		d.Close()
	}
	if err != nil {
		c.unsynced.Store(true)
		c.cfg.Log.Warn("disk cache: sync failed", "err", err)
		return
	}
	m := c.readMarks()
	m[c.boot] = start
	for len(m) > 8 {
		oldest := ""
		for b, t := range m {
			if oldest == "" || t < m[oldest] {
				oldest = b
			}
		}
		delete(m, oldest)
	}
	b, _ := json.Marshal(m)
	tmp := c.marksPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, c.marksPath())
	}
	if err != nil {
		c.cfg.Log.Warn("disk cache: recording a sync failed", "err", err)
	}
}

// bootID names this boot of the kernel.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
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

// Fill is an entry being written. Blocks arrive in any order, each at most
// once counted; the entry is published when the last one arrives.
type Fill struct {
	c    *Cache
	id   ID
	name string

	reserved int64 // GUARDED_BY(Cache.mu): bytes written so far, counted in Cache.used

	mu      sync.Mutex     // protects the fields below
	f       *os.File       // GUARDED_BY(mu): the temporary file; nil once finished or abandoned
	direct  *os.File       // GUARDED_BY(mu): the same file opened O_DIRECT, for aligned blocks (nil: none)
	have    []bool         // GUARDED_BY(mu): blocks written or queued
	alloc   map[int64]bool // GUARDED_BY(mu): chunks of the file allocated
	missing int            // GUARDED_BY(mu)
	fed     atomic.Int64   // unix nanoseconds of the last block written
}

// Fill returns the fill of id, starting one. nil: id is cached already,
// empty, or too large for the cache (over a quarter of it). Room is made
// as blocks arrive (evicting entries no one uses), so a reader that stops
// early (head, file) holds only what it read, until a newer fill takes
// its place.
func (c *Cache) Fill(id ID) *Fill {
	if id.ETag == "" || id.Size <= 0 || id.Size > c.cfg.MaxBytes/4 {
		return nil
	}
	name := c.name(id)
	c.mu.Lock()
	if f := c.fills[name]; f != nil {
		c.mu.Unlock()
		return f
	}
	if c.entries[name] != nil {
		c.mu.Unlock()
		return nil
	}
	var victim *Fill
	if len(c.fills) >= maxFills {
		for _, f := range c.fills {
			if victim == nil || f.fed.Load() < victim.fed.Load() {
				victim = f
			}
		}
		delete(c.fills, victim.name)
	}
	blocks := (id.Size + c.cfg.BlockSize - 1) / c.cfg.BlockSize
	f := &Fill{c: c, id: id, name: name, have: make([]bool, blocks), missing: int(blocks), alloc: map[int64]bool{}}
	f.fed.Store(time.Now().UnixNano())
	c.fills[name] = f
	c.mu.Unlock()
	if victim != nil {
		victim.abandon()
	}
	return f
}

// Filling returns the fill of id under way, or nil (it starts none).
func (c *Cache) Filling(id ID) *Fill {
	name := c.name(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fills[name]
}

// Missing lists the blocks neither written nor queued.
func (f *Fill) Missing() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for b, ok := range f.have {
		if !ok {
			out = append(out, int64(b))
		}
	}
	return out
}

// Has says whether block b is written or queued.
func (f *Fill) Has(b int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return b >= 0 && b < int64(len(f.have)) && f.have[b]
}

// Add queues block b (all of its bytes: BlockSize, or the rest of the
// object for the last one) for the cache's writer, copying it: the caller
// keeps p. It waits only when the writer is a queue behind (the disk is
// slower than the network), so a reader never waits for the disk
// otherwise. A failure to write abandons the fill, with a log line; the
// reader is never affected.
func (f *Fill) Add(b int64, p []byte) {
	c := f.c
	bs := c.cfg.BlockSize
	if b < 0 || b*bs >= f.id.Size || int64(len(p)) != min(bs, f.id.Size-b*bs) {
		return
	}
	f.mu.Lock()
	if f.have == nil || f.have[b] {
		f.mu.Unlock()
		return
	}
	c.mu.Lock()
	room := c.fills[f.name] == f && c.evictLocked(int64(len(p)))
	if room {
		c.used += int64(len(p))
		f.reserved += int64(len(p))
	}
	c.mu.Unlock()
	if !room { // no room left (entries in use), or dropped: not an error of the disk
		f.mu.Unlock()
		c.mu.Lock()
		if c.fills[f.name] == f {
			delete(c.fills, f.name)
		}
		c.mu.Unlock()
		f.abandon()
		return
	}
	f.have[b] = true // queued: counted once
	f.fed.Store(time.Now().UnixNano())
	f.mu.Unlock()
	buf := c.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], p...)
	select {
	case c.queue <- write{f, b, buf}:
	case <-c.stop:
		c.bufs.Put(buf)
	}
}

// queueBytes bounds the memory of blocks waiting for the writer.
const queueBytes = 32 << 20

// directAlign is what O_DIRECT writes must be aligned to (buffer, offset
// and length); block sizes are multiples of it.
const directAlign = 4096

// write is a block on its way to a fill's file.
type write struct {
	f    *Fill
	b    int64
	data *[]byte
}

// writer writes queued blocks, and publishes fills as they complete.
func (c *Cache) writer() {
	defer close(c.wdone)
	for {
		select {
		case <-c.stop:
			return
		case w := <-c.queue:
			w.f.write(w.b, *w.data)
			c.bufs.Put(w.data)
		}
	}
}

func (f *Fill) write(b int64, p []byte) {
	f.mu.Lock()
	if f.have == nil { // abandoned meanwhile
		f.mu.Unlock()
		return
	}
	if f.f == nil {
		tmp, err := f.c.createTemp(f.name)
		if err != nil {
			f.mu.Unlock()
			f.fail(err)
			return
		}
		f.f = tmp
		// Whole blocks go around the page cache: on a 2-core machine
		// copying them into it cost the cold read half its speed (kernel
		// time in pwrite, measured), DMA costs next to nothing. Where the
		// filesystem refuses O_DIRECT, every write is buffered.
		if d, err := os.OpenFile(tmp.Name(), os.O_WRONLY|syscall.O_DIRECT, 0); err == nil {
			f.direct = d
		}
	}
	off := b * f.c.cfg.BlockSize
	if err := f.allocate(off, int64(len(p))); err != nil {
		f.mu.Unlock()
		f.fail(err)
		return
	}
	w := f.f
	if f.direct != nil && len(p)%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 {
		w = f.direct
	}
	if _, err := w.WriteAt(p, off); err != nil {
		f.mu.Unlock()
		f.fail(err)
		return
	}
	f.missing--
	done := f.missing == 0
	f.mu.Unlock()
	if done {
		f.finish()
	}
}

// createTemp makes a file for an entry being written, making the cache's
// directories again if they were deleted under the running mount.
func (c *Cache) createTemp(name string) (*os.File, error) {
	dir := filepath.Join(c.cfg.Dir, "tmp")
	f, err := os.CreateTemp(dir, name+".*")
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.CreateTemp(dir, name+".*")
		}
	}
	return f, err
}

// allocChunk is the unit a fill's file is allocated in ahead of its
// writes: writing into allocated space costs the kernel half the CPU of
// growing a file page by page (measured on ext4), and a reader that stops
// early leaves at most one chunk allocated beyond what it read.
const allocChunk = 32 << 20

// allocate allocates the chunks [off, off+n) falls in. f.mu is held.
func (f *Fill) allocate(off, n int64) error {
	for c := off / allocChunk; c*allocChunk < off+n; c++ {
		if f.alloc[c] {
			continue
		}
		start := c * allocChunk
		if err := unix.Fallocate(int(f.f.Fd()), 0, start, min(allocChunk, f.id.Size-start)); err != nil {
			if errors.Is(err, syscall.EOPNOTSUPP) {
				return nil // the filesystem cannot: the writes allocate
			}
			return err
		}
		f.alloc[c] = true
	}
	return nil
}

// fail abandons the fill after an error of the cache's disk.
func (f *Fill) fail(err error) {
	f.c.fillFailures.Add(1)
	what := "disk cache: could not cache a file (it is read from the store as usual)"
	if errors.Is(err, syscall.ENOSPC) {
		what = "disk cache: the cache's disk is full (the file is read from the store as usual)"
	}
	f.c.cfg.Log.Warn(what, "bucket", f.id.Bucket, "key", f.id.Key, "err", err)
	f.c.mu.Lock()
	if f.c.fills[f.name] == f {
		delete(f.c.fills, f.name)
	}
	f.c.mu.Unlock()
	f.abandon()
}

// abandon removes the temporary file and gives back the reservation; the
// fill must be out of the index.
func (f *Fill) abandon() {
	f.mu.Lock()
	tmp, direct := f.f, f.direct
	f.f, f.direct, f.have = nil, nil, nil
	f.mu.Unlock()
	if direct != nil {
		direct.Close()
	}
	if tmp != nil {
		os.Remove(tmp.Name())
		tmp.Close()
	}
	f.c.mu.Lock()
	f.c.used -= f.reserved
	f.reserved = 0
	f.c.mu.Unlock()
}

// finish checks the complete file and publishes it as an entry.
func (f *Fill) finish() {
	f.mu.Lock()
	tmp, direct := f.f, f.direct
	f.direct = nil
	f.mu.Unlock()
	if direct != nil {
		direct.Close() // every block is written: finish runs after the last write
	}
	if tmp == nil {
		return // abandoned meanwhile
	}
	err := f.verify(tmp)
	var rec record
	if err == nil {
		rec, err = f.publish(tmp)
	}
	c := f.c
	if err != nil {
		f.fail(err)
		return
	}
	c.mu.Lock()
	mine := c.fills[f.name] == f
	if mine {
		delete(c.fills, f.name)
		c.used -= f.reserved // the reservation becomes the entry
		f.reserved = 0
		c.addLocked(&entry{name: f.name, rec: rec}, true)
	}
	c.mu.Unlock()
	f.mu.Lock()
	f.f, f.have = nil, nil
	f.mu.Unlock()
	tmp.Close()
	if !mine { // dropped (the object changed) meanwhile
		os.Remove(c.path(f.name))
		os.Remove(c.path(f.name) + ".meta")
		return
	}
	c.filled.Add(1)
}

var plainMD5 = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// verify checks the complete file's size. Its bytes were all fetched for
// one ETag (every GET of a fill is conditioned on it) and placed by block
// number; hashing them again here would cost the cold read a third of its
// speed on a small machine (measured), so the MD5 is checked where it is
// free: in Warm, while the bytes stream in. Durability is the syncer's
// (see sync).
func (f *Fill) verify(tmp *os.File) error {
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	if st.Size() != f.id.Size {
		return fmt.Errorf("filled %d bytes of %d", st.Size(), f.id.Size)
	}
	return nil
}

// publish renames the data into place and writes its record.
func (f *Fill) publish(tmp *os.File) (record, error) { return f.c.publish(f.name, f.id, tmp) }

func (c *Cache) publish(name string, id ID, tmp *os.File) (record, error) {
	p := c.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return record{}, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return record{}, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return record{}, err
	}
	rec := record{Endpoint: c.cfg.Endpoint, Bucket: id.Bucket, Key: id.Key, ETag: id.ETag, Size: id.Size,
		Ino: st.Ino, Ctime: st.Ctim.Nano(), Boot: c.boot, Published: time.Now().UnixNano()}
	b, _ := json.Marshal(rec)
	mt, err := os.CreateTemp(filepath.Dir(p), name+".meta.*")
	if err == nil {
		_, err = mt.Write(b)
		mt.Close()
		if err == nil {
			err = os.Rename(mt.Name(), p+".meta")
		}
		if err != nil {
			os.Remove(mt.Name())
		}
	}
	if err != nil {
		os.Remove(p)
		return record{}, err
	}
	c.unsynced.Store(true)
	return rec, nil
}

// Warm stores id whole from body (the object's bytes from the start),
// unless it is cached already: it reports whether it stored anything. The
// size is checked, and the MD5 where the ETag is one, as the bytes stream
// in; nothing is published otherwise.
func (c *Cache) Warm(ctx context.Context, id ID, body io.Reader) (bool, error) {
	if id.Size <= 0 || id.ETag == "" {
		return false, nil
	}
	name := c.name(id)
	c.mu.Lock()
	if c.entries[name] != nil {
		c.mu.Unlock()
		return false, nil
	}
	if id.Size > c.cfg.MaxBytes/4 || !c.evictLocked(id.Size) {
		c.mu.Unlock()
		return false, fmt.Errorf("no room in the disk cache for %s (%d bytes; the cache holds %d, in use or not, and one object may take a quarter of it)",
			id.Key, id.Size, c.cfg.MaxBytes)
	}
	c.used += id.Size // reserved
	c.mu.Unlock()
	published := false
	defer func() {
		if !published {
			c.mu.Lock()
			c.used -= id.Size
			c.mu.Unlock()
		}
	}()
	tmp, err := c.createTemp(name)
	if err != nil {
		return false, c.warmFailed(id, err)
	}
	defer func() {
		tmp.Close()
		if !published {
			os.Remove(tmp.Name())
		}
	}()
	h := md5.New()
	n, err := c.copyIn(tmp, io.MultiWriter(h), &ctxReader{ctx, io.LimitReader(body, id.Size+1)})
	if err != nil {
		return false, err
	}
	if n != id.Size {
		return false, fmt.Errorf("%s: %d bytes of %d: %w", id.Key, n, id.Size, io.ErrUnexpectedEOF)
	}
	if plainMD5.MatchString(id.ETag) {
		if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, id.ETag) {
			return false, c.warmFailed(id, fmt.Errorf("MD5 %s of the bytes is not the ETag %s", got, id.ETag))
		}
	}
	rec, err := c.publish(name, id, tmp)
	if err != nil {
		return false, c.warmFailed(id, err)
	}
	c.mu.Lock()
	c.used -= id.Size // the reservation becomes the entry
	c.addLocked(&entry{name: name, rec: rec}, true)
	c.mu.Unlock()
	published = true
	c.filled.Add(1)
	return true, nil
}

// copyIn writes r into tmp and into also, whole aligned blocks with
// O_DIRECT where the filesystem allows (see write), the rest buffered.
func (c *Cache) copyIn(tmp *os.File, also io.Writer, r io.Reader) (int64, error) {
	direct, err := os.OpenFile(tmp.Name(), os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		direct = nil
	} else {
		defer direct.Close()
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := (*bp)[:cap(*bp)]
	var off int64
	for {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			p := buf[:m]
			also.Write(p)
			w := tmp
			if direct != nil && m%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 {
				w = direct
			}
			if _, err := w.WriteAt(p, off); err != nil {
				return off, err
			}
			off += int64(m)
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return off, nil
		case rerr != nil:
			return off, rerr
		}
	}
}

func (c *Cache) warmFailed(id ID, err error) error {
	c.fillFailures.Add(1)
	c.cfg.Log.Warn("disk cache: could not cache a file", "bucket", id.Bucket, "key", id.Key, "err", err)
	return fmt.Errorf("disk cache: %v", err)
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// wait returns once f was published (or failed).
func (c *Cache) wait(ctx context.Context, id ID, f *Fill) error {
	for {
		c.mu.Lock()
		busy := c.fills[f.name] == f
		done := c.entries[f.name] != nil
		c.mu.Unlock()
		if done {
			return nil
		}
		if !busy {
			return fmt.Errorf("%s: could not be cached (see the log)", id.Key)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
