package disk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

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
