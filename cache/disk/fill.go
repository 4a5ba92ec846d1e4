package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
