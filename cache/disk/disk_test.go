package disk

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const bs = 1 << 10

func open(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(Config{Dir: dir, MaxBytes: max, BlockSize: bs, Endpoint: "http://s"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func object(n int, seed int64) ([]byte, ID) {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	sum := md5.Sum(b)
	return b, ID{Bucket: "b", Key: "k" + hex.EncodeToString(sum[:2]), ETag: hex.EncodeToString(sum[:]), Size: int64(n)}
}

// fill feeds every block, in an order that is not sequential, and waits.
func fill(t *testing.T, c *Cache, data []byte, id ID) {
	t.Helper()
	f := c.Fill(id)
	if f == nil {
		t.Fatalf("no fill for %s", id.Key)
	}
	blocks := (len(data) + bs - 1) / bs
	for _, b := range rand.Perm(blocks) {
		f.Add(int64(b), data[b*bs:min((b+1)*bs, len(data))])
		f.Add(int64(b), data[b*bs:min((b+1)*bs, len(data))]) // twice: counted once
	}
	if err := c.wait(context.Background(), id, f); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, c *Cache, id ID) []byte {
	t.Helper()
	h, ok := c.Open(id)
	if !ok {
		t.Fatalf("miss for %s", id.Key)
	}
	defer h.Close()
	b, err := os.ReadFile(h.File.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFillPublishesOnlyWhole(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	data, id := object(5*bs+17, 1)
	f := c.Fill(id)
	f.Add(0, data[:bs])
	f.Add(5, data[5*bs:])
	f.Add(2, data[2*bs:2*bs+10]) // short: ignored
	if _, ok := c.Open(id); ok {
		t.Fatal("a partial entry was served")
	}
	for b := 1; b < 5; b++ {
		f.Add(int64(b), data[b*bs:(b+1)*bs])
	}
	if err := c.wait(context.Background(), id, f); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c, id); !bytes.Equal(got, data) {
		t.Fatal("cached bytes differ")
	}
	c.Close()
	// Survives a restart.
	c = open(t, dir, 1<<20)
	defer c.Close()
	if got := read(t, c, id); !bytes.Equal(got, data) {
		t.Fatal("cached bytes differ after a restart")
	}
	if s := c.Stats(); s.Entries != 1 || s.Bytes != id.Size || s.Hits != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestWarmChecksTheMD5(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	defer c.Close()
	data, id := object(3*bs, 2)
	bad := append([]byte(nil), data...)
	bad[bs+3] ^= 1
	if _, err := c.Warm(context.Background(), id, bytes.NewReader(bad)); err == nil {
		t.Fatal("bytes not matching the ETag were published")
	}
	if _, err := c.Warm(context.Background(), id, bytes.NewReader(data[:len(data)-1])); err == nil {
		t.Fatal("a short body was published")
	}
	if _, ok := c.Open(id); ok {
		t.Fatal("served")
	}
	if s := c.Stats(); s.Bytes != 0 || s.FillFailures != 1 {
		t.Fatalf("stats: %+v", s)
	}
	if left, _ := os.ReadDir(filepath.Join(c.cfg.Dir, "tmp")); len(left) != 0 {
		t.Fatalf("left over: %v", left)
	}
}

// An entry written in another boot after that boot's last sync is
// discarded (the crash may have kept its record and lost its bytes); one
// the sync covered, or of this boot, is kept.
func TestUnsyncedEntriesOfACrashedBootAreDiscarded(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	d1, id1 := object(2*bs, 40)
	d2, id2 := object(2*bs, 41)
	fill(t, c, d1, id1)
	fill(t, c, d2, id2)
	c.Close()
	rewrite := func(id ID, published int64) {
		p := c.path(c.name(id)) + ".meta"
		b, _ := os.ReadFile(p)
		var rec record
		json.Unmarshal(b, &rec)
		rec.Boot, rec.Published = "earlier-boot", published
		b, _ = json.Marshal(rec)
		os.WriteFile(p, b, 0o600)
	}
	rewrite(id1, 100) // before the sync below
	rewrite(id2, 300) // after it
	os.WriteFile(filepath.Join(dir, "synced"), []byte(`{"earlier-boot":200}`), 0o600)
	c = open(t, dir, 1<<20)
	defer c.Close()
	if !c.Has(id1) || c.Has(id2) {
		t.Fatalf("synced entry kept: %v, unsynced entry kept: %v", c.Has(id1), c.Has(id2))
	}
	// Close syncs and records this boot.
	fill(t, c, d2, id2)
	c.Close()
	if m := c.readMarks(); m[c.boot] == 0 || m["earlier-boot"] != 200 {
		t.Fatalf("marks: %v", m)
	}
	c = open(t, dir, 1<<20)
	if !c.Has(id1) || !c.Has(id2) {
		t.Fatal("entries lost across a clean restart")
	}
}

func TestChangedOnDiskIsDiscarded(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	d1, id1 := object(4*bs, 3)
	d2, id2 := object(4*bs, 4)
	fill(t, c, d1, id1)
	fill(t, c, d2, id2)
	c.Close()
	// Truncated and overwritten (same size) while no kfs runs.
	if err := os.Truncate(c.path(c.name(id1)), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path(c.name(id2)), bytes.Repeat([]byte("x"), 4*bs), 0o600); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir, 1<<20)
	defer c.Close()
	for _, id := range []ID{id1, id2} {
		if _, ok := c.Open(id); ok {
			t.Fatalf("%s changed on disk and was served", id.Key)
		}
	}
	if s := c.Stats(); s.Discarded != 2 || s.Entries != 0 {
		t.Fatalf("stats: %+v", s)
	}
	// And while running: overwritten in place after the check at start.
	fill(t, c, d1, id1)
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(c.path(c.name(id1)), d2, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Open(id1); ok {
		t.Fatal("an entry overwritten on disk was served")
	}
}

func TestEvictionSparesEntriesInUse(t *testing.T) {
	c := open(t, t.TempDir(), 16*bs)
	defer c.Close()
	d1, id1 := object(4*bs, 5)
	fill(t, c, d1, id1)
	h, ok := c.Open(id1)
	if !ok {
		t.Fatal("miss")
	}
	for i := int64(0); i < 6; i++ {
		d, id := object(4*bs, 10+i)
		fill(t, c, d, id)
	}
	if !c.Has(id1) {
		t.Fatal("an entry in use was evicted")
	}
	h.Close()
	d, id := object(4*bs, 30)
	fill(t, c, d, id)
	if c.Has(id1) {
		t.Fatal("the least recently used entry, no longer in use, was kept past the budget")
	}
	if s := c.Stats(); s.Bytes > 16*bs || s.Evictions == 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestDropKeepsOpenReaders(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	defer c.Close()
	data, id := object(2*bs, 6)
	fill(t, c, data, id)
	h, _ := c.Open(id)
	defer h.Close()
	c.Drop("b", id.Key, "another-etag")
	if c.Has(id) {
		t.Fatal("dropped entry still indexed")
	}
	got := make([]byte, len(data))
	if _, err := h.File.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("an open reader lost its bytes: %v", err)
	}
	if s := c.Stats(); s.Bytes != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	defer c.Close()
	// flock is per open file description: a second Open in this process
	// conflicts as another process's would.
	if _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, BlockSize: bs}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second user of the directory: %v", err)
	}
}

func TestKilledFillIsCleanedUp(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	data, id := object(3*bs, 7)
	f := c.Fill(id)
	f.Add(0, data[:bs])
	for i := 0; i < 100; i++ { // written by the writer
		if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(c.stop) // as if killed: the goroutines stop, nothing is cleaned up
	<-c.wdone
	<-c.done
	c.lock.Close()
	c = open(t, dir, 1<<20)
	defer c.Close()
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("left over: %v", left)
	}
	if s := c.Stats(); s.Bytes != 0 || s.Entries != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestWarm(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	defer c.Close()
	data, id := object(7*bs+1, 8)
	fetched, err := c.Warm(context.Background(), id, bytes.NewReader(data))
	if err != nil || !fetched {
		t.Fatalf("warm: %v %v", fetched, err)
	}
	if fetched, err = c.Warm(context.Background(), id, bytes.NewReader(data)); err != nil || fetched {
		t.Fatalf("second warm stored again: %v %v", fetched, err)
	}
	if got := read(t, c, id); !bytes.Equal(got, data) {
		t.Fatal("warmed bytes differ")
	}
	big := ID{Bucket: "b", Key: "big", ETag: "x", Size: 1 << 20}
	if _, err := c.Warm(context.Background(), big, bytes.NewReader(make([]byte, 1<<20))); err == nil {
		t.Fatal("an object larger than a quarter of the cache was taken")
	}
}
