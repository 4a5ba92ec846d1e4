package disk

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

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
