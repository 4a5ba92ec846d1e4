package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kfs/cache/disk"
	kfs "kfs/fs"
	"kfs/fs/journal"
	"kfs/fs/posixtest"
	"kfs/fs/store"
	"kfs/fs/upload"

	"golang.org/x/sys/unix"
)

// wired gives a fake mount what kfs mount gives a real one: the journal
// (held-back attributes, batched deletions, directory renames) and the
// dataset cache with passthrough.
func wired(t *testing.T) (mountOpt, *journal.Journal, *disk.Cache) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "uploads.journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	dc, err := disk.Open(disk.Config{Dir: filepath.Join(t.TempDir(), "objects"), MaxBytes: 256 << 20, BlockSize: 1 << 20,
		Endpoint: "fake", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	return func(c *kfs.Config, u *upload.Config) {
		c.Renames, c.Deletes, c.Attrs = j, j, j
		u.Journal = j
		c.Disk, c.Passthrough = dc, true
	}, j, dc
}

// The POSIX bodies on a fully wired fake mount.
func TestPosixOnWiredFakeMount(t *testing.T) {
	opt, _, _ := wired(t)
	m := mountFake(t, opt)
	posixtest.RunAll(t, m.dir)
}

// A file read through once is whole in the dataset cache; the next open
// reads it from there (passthrough), bytes unchanged; kfs warm fills it
// without a read; a changed object is fetched again.
func TestDatasetCacheOnFake(t *testing.T) {
	opt, _, dc := wired(t)
	m := mountFake(t, opt)
	data := bytes.Repeat([]byte("0123456789abcdef"), 200<<10) // 3.2 MiB
	m.store.PutBytes("bkt", "big.bin", data)
	p := filepath.Join(m.dir, "big.bin")
	for i := 0; i < 2; i++ {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d: %d bytes, %v", i, len(got), err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for dc.Stats().Entries == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if dc.Stats().Entries != 1 {
		t.Fatalf("no entry after a sequential read: %+v", dc.Stats())
	}
	reads := m.store.Calls("ReadAt")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read from the cache: %d bytes, %v", len(got), err)
	}
	if n := m.store.Calls("ReadAt"); n != reads {
		t.Errorf("a cached file was fetched again: %d reads", n-reads)
	}

	info := m.store.PutBytes("bkt", "warm.bin", data[:1<<20])
	got, err := m.fsys.Warm(context.Background(), "bkt", info, bytes.NewReader(data[:1<<20]))
	if err != nil || !got {
		t.Fatalf("warm: %v %v", got, err)
	}
	if got, _ := m.fsys.Warm(context.Background(), "bkt", info, bytes.NewReader(data[:1<<20])); got {
		t.Error("warming a cached file fetched it again")
	}
	// The object changes behind the mount: the new bytes, never the cached.
	m.store.PutBytes("bkt", "big.bin", []byte("changed"))
	m.fsys.Changed("bkt", "big.bin")
	if got, err := os.ReadFile(p); err != nil || string(got) != "changed" {
		t.Fatalf("after a change: %q %v", got, err)
	}
}

// What a crash left in the journal is finished by the next mount: a
// deletion whose object is still there, held-back attributes.
func TestFinishJournaledWork(t *testing.T) {
	m := mountFake(t)
	ctx := context.Background()
	info := m.store.PutBytes("bkt", "gone", []byte("x"))
	if ok, err := m.fsys.FinishDelete(ctx, "bkt", "gone", info.LastModified.Add(time.Second)); err != nil || !ok {
		t.Fatalf("finish a deletion: %v %v", ok, err)
	}
	if _, err := m.store.Stat(ctx, store.ObjectRef{Bucket: "bkt", Key: "gone"}); err == nil {
		t.Error("the object is still there")
	}
	if ok, err := m.fsys.FinishDelete(ctx, "bkt", "gone", time.Now()); err != nil || ok {
		t.Errorf("a deletion already done: %v %v", ok, err)
	}
	newer := m.store.PutBytes("bkt", "rewritten", []byte("new"))
	if ok, _ := m.fsys.FinishDelete(ctx, "bkt", "rewritten", newer.LastModified.Add(-time.Hour)); ok {
		t.Error("an object written after the deletion was deleted")
	}
	a := m.store.PutBytes("bkt", "attrs", []byte("x"))
	if ok, err := m.fsys.FinishAttrs(ctx, "bkt", "attrs", a.ETag, "text/plain", map[string]string{"mode": "100600"}); err != nil || !ok {
		t.Fatalf("finish attributes: %v %v", ok, err)
	}
	st, _ := m.store.Stat(ctx, store.ObjectRef{Bucket: "bkt", Key: "attrs"})
	if st.Meta["mode"] != "100600" || st.ContentType != "text/plain" {
		t.Errorf("attributes not stored: %+v", st)
	}
	m.store.PutBytes("bkt", "attrs", []byte("rewritten"))
	if ok, _ := m.fsys.FinishAttrs(ctx, "bkt", "attrs", a.ETag, "", nil); ok {
		t.Error("attributes for a version since replaced were stored")
	}
	m.fsys.EventSeen("bkt")
	if err := m.fsys.Settle(ctx, "bkt", ""); err != nil {
		t.Error(err)
	}
}

// Read-only facts a HEAD gives, statfs, fallocate and bucket attributes
// listed on the bucket's root.
func TestFactsAndStatfsOnFake(t *testing.T) {
	m := mountFake(t)
	if err := m.store.SetVersioning(context.Background(), "bkt", "Enabled"); err != nil {
		t.Fatal(err)
	}
	info := m.store.PutBytes("bkt", "f", []byte("x"))
	p := filepath.Join(m.dir, "f")
	if v, err := getx(t, p, "user.s3.version-id"); err != nil || v != info.VersionID {
		t.Errorf("version-id %q %v, want %q", v, err, info.VersionID)
	}
	if v, err := getx(t, p, "user.s3.storage-class"); err != nil || v != "STANDARD" {
		t.Errorf("storage-class %q %v", v, err)
	}
	if v, err := getx(t, m.dir, "user.s3.versioning"); err != nil || v != "Enabled" {
		t.Errorf("bucket versioning %q %v", v, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(m.dir, &sfs); err != nil || sfs.Bsize == 0 {
		t.Errorf("statfs: %+v %v", sfs, err)
	}
	f, err := os.OpenFile(filepath.Join(m.dir, "alloc"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 4096); err != nil {
		t.Errorf("fallocate: %v", err)
	}
	if v, err := getx(t, filepath.Join(m.dir, "alloc"), "user.s3.etag"); err == nil {
		t.Errorf("a file not yet uploaded has an ETag: %q", v)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(m.dir, "alloc")); err != nil || st.Size() != 4096 {
		t.Errorf("after fallocate: %v %v", st, err)
	}
}

// A small file read back right after it was written costs no GET: its
// bytes stay in the block cache under the version just stored (the
// kernel keeps no partial page); a file changed elsewhere since is read
// from the store.
func TestReadBackWithoutGet(t *testing.T) {
	m := mountFake(t)
	p := filepath.Join(m.dir, "w")
	data := bytes.Repeat([]byte("abc"), 1000) // 3,000 bytes: less than a page at its end
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	reads := m.store.Calls("ReadAt") + m.store.Calls("Get")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	if n := m.store.Calls("ReadAt") + m.store.Calls("Get") - reads; n != 0 {
		t.Errorf("reading back what was just written made %d store reads", n)
	}
	// Written under a temporary name and renamed (git's objects, rsync):
	// the copy's bytes are the same, still no GET.
	tmp, final := filepath.Join(m.dir, ".tmp-obj"), filepath.Join(m.dir, "obj")
	if err := os.WriteFile(tmp, data[:1234], 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	reads = m.store.Calls("ReadAt") + m.store.Calls("Get")
	if got, err := os.ReadFile(final); err != nil || !bytes.Equal(got, data[:1234]) {
		t.Fatalf("read back after a rename: %d bytes, %v", len(got), err)
	}
	if n := m.store.Calls("ReadAt") + m.store.Calls("Get") - reads; n != 0 {
		t.Errorf("reading back a renamed new file made %d store reads", n)
	}
	m.store.PutBytes("bkt", "w", []byte("changed elsewhere"))
	m.fsys.Changed("bkt", "w")
	if got, err := os.ReadFile(p); err != nil || string(got) != "changed elsewhere" {
		t.Fatalf("after a change elsewhere: %q %v", got, err)
	}
}

// Names looked up in a directory this mount just made are answered by its
// listing (empty at mkdir, kept by this mount's changes): no HEAD or LIST
// per name a tool is about to create, even without bucket events.
func TestLookupsInANewDirectoryAskNothing(t *testing.T) {
	m := mountFake(t, func(c *kfs.Config, u *upload.Config) {
		c.EventsLive = func() bool { return false } // no event source: misses are otherwise verified
		c.Revalidate = time.Minute
	})
	d := filepath.Join(m.dir, "fresh")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	stats, lists := m.store.Calls("Stat"), m.store.Calls("List")
	for i := 0; i < 20; i++ {
		if _, err := os.Lstat(filepath.Join(d, fmt.Sprintf("n%d", i))); !os.IsNotExist(err) {
			t.Fatalf("a name in a new directory: %v", err)
		}
	}
	if s, l := m.store.Calls("Stat")-stats, m.store.Calls("List")-lists; s+l != 0 {
		t.Errorf("20 lookups in a new directory made %d HEADs and %d LISTs", s, l)
	}
	// A directory listed from the store still has its first misses checked.
	if err := os.Mkdir(filepath.Join(m.dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.store.PutBytes("bkt", "listed/x", []byte("x"))
	if _, err := os.ReadDir(filepath.Join(m.dir, "listed")); err != nil {
		t.Fatal(err)
	}
	stats = m.store.Calls("Stat")
	os.Lstat(filepath.Join(m.dir, "listed", "y"))
	if m.store.Calls("Stat") == stats {
		t.Error("a miss in a listed directory was not checked with the store")
	}
}
