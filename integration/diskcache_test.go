package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// diskStats is the disk cache part of kfs status.
type diskStats struct {
	Bytes        int64 `json:"bytes"`
	Entries      int   `json:"entries"`
	Hits         int64 `json:"hits"`
	Filled       int64 `json:"filled"`
	FillFailures int64 `json:"fill_failures"`
	Discarded    int64 `json:"discarded"`
	Passthrough  int64 `json:"passthrough_opens"`
}

func diskStatus(t *testing.T, m *mounted) diskStats {
	t.Helper()
	var st struct {
		Stats struct {
			Disk *diskStats `json:"disk_cache"`
		} `json:"stats"`
	}
	raw := kfsOut(t, "status", m.dir)
	if err := json.Unmarshal([]byte(raw), &st); err != nil || st.Stats.Disk == nil {
		t.Fatalf("kfs status has no disk_cache: %v\n%s", err, raw)
	}
	return *st.Stats.Disk
}

// waitFilled waits until the mount's disk cache holds n entries.
func waitFilled(t *testing.T, m *mounted, n int) diskStats {
	t.Helper()
	var s diskStats
	for i := 0; i < 200; i++ {
		if s = diskStatus(t, m); s.Entries >= n {
			return s
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("disk cache did not reach %d entries: %+v", n, s)
	return s
}

// gets counts the GETs the mount sent.
func gets(t *testing.T, m *mounted) float64 {
	t.Helper()
	_, out, _ := kfsRun(t, "metrics", m.dir)
	v, _ := metricValue(parseMetrics(t, out), "kfs_s3_requests_total", map[string]string{"op": "GetObject"})
	return v
}

// unmountAndWait unmounts m and waits for its process to exit (it lets go
// of the disk cache then).
func unmountAndWait(t *testing.T, m *mounted) {
	t.Helper()
	if code, _, e := kfsRun(t, "unmount", m.dir); code != 0 {
		t.Fatalf("unmount: %s", e)
	}
	for i := 0; i < 500 && syscall.Kill(m.cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Epoch 2 after a remount: every byte from the disk cache (zero GETs),
// the big file through passthrough, bytes exact; a directory warmed with
// kfs warm reads the same way.
func TestDiskCacheAcrossRemount(t *testing.T) {
	b := newBucket(t)
	files := map[string][]byte{"big.bin": randBytes(9<<20 + 123), "small.txt": []byte("hello\n"), "d/mid.bin": randBytes(700 << 10)}
	for k, v := range files {
		put(t, b, k, v)
	}
	put(t, b, "w/one.bin", randBytes(3<<20))
	put(t, b, "w/sub/two.bin", randBytes(1<<20+1))
	cacheDir := t.TempDir()
	opts := []string{b, "--disk-cache-size", "256MiB", "--cache-dir", cacheDir}
	m := mountKFS(t, opts...)
	for k := range files {
		if _, err := os.ReadFile(m.path(k)); err != nil {
			t.Fatal(err)
		}
	}
	waitFilled(t, m, 3)
	// kfs warm: a directory, recursively; a second run fetches nothing.
	code, out, errOut := kfsRun(t, "warm", m.path("w"))
	if code != 0 || !strings.Contains(out, "warmed 2 files") {
		t.Fatalf("kfs warm: exit %d: %s %s", code, out, errOut)
	}
	if code, out, _ = kfsRun(t, "warm", m.path("w")); code != 0 || !strings.Contains(out, "2 already cached") {
		t.Fatalf("second kfs warm: exit %d: %s", code, out)
	}
	unmountAndWait(t, m)

	m2 := mountKFS(t, opts...)
	if s := diskStatus(t, m2); s.Entries != 5 {
		t.Fatalf("after a remount: %+v", s)
	}
	before := gets(t, m2)
	for k, v := range files {
		got, err := os.ReadFile(m2.path(k))
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s: %v (%d bytes of %d)", k, err, len(got), len(v))
		}
	}
	for _, k := range []string{"w/one.bin", "w/sub/two.bin"} {
		if _, err := os.ReadFile(m2.path(k)); err != nil {
			t.Fatal(err)
		}
	}
	if after := gets(t, m2); after != before {
		t.Fatalf("epoch 2 sent %v GETs", after-before)
	}
	if s := diskStatus(t, m2); s.Hits < 5 || s.Passthrough < 5 {
		t.Fatalf("not served from the cache by passthrough: %+v", s)
	}
	if strings.Contains(m2.logText(), "FUSE passthrough off") {
		t.Fatalf("passthrough was not taken:\n%s", m2.logText())
	}
}

// An object changed by another client is never read from the cache (the
// open learns the new version: attr-ttl 0), nor a removed one.
func TestDiskCacheNeverServesAnOldVersion(t *testing.T) {
	b := newBucket(t)
	put(t, b, "f.bin", randBytes(2<<20))
	m := mountKFS(t, b, "--disk-cache-size", "128MiB", "--cache-dir", t.TempDir(), "--attr-ttl", "0", "--entry-ttl", "0", "--negative-ttl", "0")
	if _, err := os.ReadFile(m.path("f.bin")); err != nil {
		t.Fatal(err)
	}
	waitFilled(t, m, 1)
	v2 := randBytes(2 << 20)
	put(t, b, "f.bin", v2)
	got, err := os.ReadFile(m.path("f.bin"))
	if err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("read after another client's change: %v, new bytes: %v", err, bytes.Equal(got, v2))
	}
	if err := client(t).RemoveObject(context.Background(), b, "f.bin", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(m.path("f.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read of a removed object: %v", err)
	}
}

// An entry changed on disk while nothing ran (truncated, or overwritten
// with other bytes of the same size) is found, deleted and fetched again:
// the reader gets the object's bytes.
func TestDiskCacheEntryChangedOnDisk(t *testing.T) {
	b := newBucket(t)
	a, c := randBytes(1<<20), randBytes(1<<20+5)
	put(t, b, "a.bin", a)
	put(t, b, "c.bin", c)
	cacheDir := t.TempDir()
	opts := []string{b, "--disk-cache-size", "128MiB", "--cache-dir", cacheDir}
	m := mountKFS(t, opts...)
	os.ReadFile(m.path("a.bin"))
	os.ReadFile(m.path("c.bin"))
	waitFilled(t, m, 2)
	unmountAndWait(t, m)
	var entries []string
	filepath.WalkDir(filepath.Join(cacheDir, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(d.Name()) == 40 {
			entries = append(entries, p)
		}
		return nil
	})
	if len(entries) != 2 {
		t.Fatalf("entries on disk: %v", entries)
	}
	for _, e := range entries {
		st, _ := os.Stat(e)
		if st.Size() == int64(len(a)) {
			os.WriteFile(e, bytes.Repeat([]byte{'x'}, len(a)), 0o600) // same size, other bytes
		} else if err := os.Truncate(e, 10); err != nil {
			t.Fatal(err)
		}
	}
	m2 := mountKFS(t, opts...)
	for k, v := range map[string][]byte{"a.bin": a, "c.bin": c} {
		if got, err := os.ReadFile(m2.path(k)); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s after its entry was changed on disk: %v", k, err)
		}
	}
	if s := diskStatus(t, m2); s.Discarded != 2 {
		t.Fatalf("changed entries not discarded: %+v", s)
	}
}

// While a reader holds a file open through passthrough, opening it for
// writing fails with ETXTBSY and changes nothing; once the reader closes,
// the write works and reaches the bucket.
func TestDiskCachePassthroughAndWriters(t *testing.T) {
	b := newBucket(t)
	data := randBytes(2 << 20)
	put(t, b, "f.bin", data)
	m := mountKFS(t, b, "--disk-cache-size", "128MiB", "--cache-dir", t.TempDir())
	os.ReadFile(m.path("f.bin"))
	waitFilled(t, m, 1)
	r, err := os.Open(m.path("f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// A reader that stays: after 5 s, ETXTBSY, and nothing changed.
	if err := os.WriteFile(m.path("f.bin"), []byte("new"), 0o644); !errors.Is(err, syscall.ETXTBSY) {
		t.Fatalf("write while a passthrough reader is open: %v", err)
	}
	if err := os.Truncate(m.path("f.bin"), 0); !errors.Is(err, syscall.ETXTBSY) {
		t.Fatalf("truncate while a passthrough reader is open: %v", err)
	}
	// A second reader shares the passthrough; both read the whole file.
	r2, err := os.Open(m.path("f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{r, r2} {
		got := make([]byte, len(data))
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("reader: %v", err)
		}
	}
	if got := sdkBytes(t, b, "f.bin"); !bytes.Equal(got, data) {
		t.Fatal("the object changed")
	}
	// A writer waits for the readers to close (new readers meanwhile wait
	// too, so readers coming and going do not starve it), then writes.
	go func(r, r2 *os.File) {
		time.Sleep(time.Second)
		r.Close()
		r2.Close()
	}(r, r2)
	start := time.Now()
	if err := os.WriteFile(m.path("f.bin"), []byte("new"), 0o644); err != nil {
		t.Fatalf("write once the readers closed: %v", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("the writer did not wait for the readers: %v", waited)
	}
	if got := sdkBytes(t, b, "f.bin"); string(got) != "new" {
		t.Fatalf("object after the write: %q", got)
	}
	if got, _ := os.ReadFile(m.path("f.bin")); string(got) != "new" {
		t.Fatalf("read after the write: %q", got)
	}
	// Renamed while a passthrough reader holds it: new readers of the new
	// name share the same entry (the kernel allows no other).
	put(t, b, "h.bin", data)
	os.ReadFile(m.path("h.bin"))
	waitFilled(t, m, 2)
	r3, err := os.Open(m.path("h.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if err := os.Rename(m.path("h.bin"), m.path("h2.bin")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(m.path("h2.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("renamed file beside its passthrough reader: %v", err)
	}
	r3.Close()
	// With --passthrough=false nothing is refused: kfs serves the entry.
	b2 := newBucket(t)
	put(t, b2, "f.bin", data)
	m2 := mountKFS(t, b2, "--disk-cache-size", "128MiB", "--cache-dir", t.TempDir(), "--passthrough=false")
	os.ReadFile(m2.path("f.bin"))
	waitFilled(t, m2, 1)
	r, err = os.Open(m2.path("f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, len(data))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached read without passthrough: %v", err)
	}
	if err := os.WriteFile(m2.path("f.bin"), []byte("new"), 0o644); err != nil {
		t.Fatalf("write beside a cached reader without passthrough: %v", err)
	}
	if s := diskStatus(t, m2); s.Passthrough != 0 || s.Hits < 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// A cache directory on a full disk: the file is read from the store,
// bytes exact, a log line says why, no error reaches the reader.
func TestDiskCacheFullDisk(t *testing.T) {
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "kfs-test", small).CombinedOutput(); err != nil {
		t.Skipf("no tmpfs: %v %s", err, out)
	}
	defer syscall.Unmount(small, syscall.MNT_DETACH)
	b := newBucket(t)
	data := randBytes(8 << 20)
	put(t, b, "big.bin", data)
	m := mountKFS(t, b, "--disk-cache-size", "1GiB", "--cache-dir", small)
	for i := 0; i < 2; i++ {
		got, err := os.ReadFile(m.path("big.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d with the cache's disk full: %v", i, err)
		}
	}
	if s := diskStatus(t, m); s.FillFailures < 1 || s.Entries != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if !strings.Contains(m.logText(), "disk is full") {
		t.Fatalf("no log line about the full disk:\n%s", m.logText())
	}
}

// kill -9 in the middle of a fill: the next mount removes the half-written
// file and fills again; nothing partial is ever served.
func TestDiskCacheKilledMidFill(t *testing.T) {
	b := newBucket(t)
	data := randBytes(12 << 20)
	put(t, b, "big.bin", data)
	cacheDir := t.TempDir()
	opts := []string{b, "--disk-cache-size", "256MiB", "--cache-dir", cacheDir}
	m := mountKFS(t, opts...)
	f, err := os.Open(m.path("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	// The fill's file is made by its writer goroutine, a moment after the
	// first blocks were read (seen once in CI: not yet there).
	var tmp []os.DirEntry
	for deadline := time.Now().Add(5 * time.Second); len(tmp) != 1 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		tmp, _ = os.ReadDir(filepath.Join(cacheDir, "objects", "0", "tmp"))
	}
	if len(tmp) != 1 {
		t.Fatalf("no fill under way: %v", tmp)
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	f.Close()
	for i := 0; i < 100 && isMounted(m.dir); i++ {
		_ = syscall.Unmount(m.dir, syscall.MNT_DETACH)
		time.Sleep(20 * time.Millisecond)
	}
	m2 := mountKFS(t, opts...)
	if tmp, _ := os.ReadDir(filepath.Join(cacheDir, "objects", "0", "tmp")); len(tmp) != 0 {
		t.Fatalf("half-written fill left: %v", tmp)
	}
	if s := diskStatus(t, m2); s.Entries != 0 {
		t.Fatalf("a partial entry is indexed: %+v", s)
	}
	if got, err := os.ReadFile(m2.path("big.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	waitFilled(t, m2, 1)
	if got, err := os.ReadFile(m2.path("big.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read from the cache: %v", err)
	}
}

// Two kfs processes on one cache directory (two fstab lines): each gets a
// slot of its own at once, and both cache; a remount of the first takes
// its slot back (TestDiskCacheAcrossRemount).
func TestDiskCacheTwoProcesses(t *testing.T) {
	b1, b2 := newBucket(t), newBucket(t)
	d1, d2 := randBytes(1<<20), randBytes(1<<20+7)
	put(t, b1, "a.bin", d1)
	put(t, b2, "a.bin", d2)
	cacheDir := t.TempDir()
	start := time.Now()
	m1 := mountKFS(t, b1, "--disk-cache-size", "128MiB", "--cache-dir", cacheDir)
	m2 := mountKFS(t, b2, "--disk-cache-size", "128MiB", "--cache-dir", cacheDir)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the second process waited for the first: %v", took)
	}
	for _, c := range []struct {
		m    *mounted
		want []byte
	}{{m1, d1}, {m2, d2}} {
		for i := 0; i < 2; i++ {
			if got, err := os.ReadFile(c.m.path("a.bin")); err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("%s read %d: %v", c.m.dir, i, err)
			}
			if i == 0 {
				waitFilled(t, c.m, 1)
			}
		}
		if s := diskStatus(t, c.m); s.Hits < 1 || s.Passthrough < 1 {
			t.Fatalf("%s not served from its cache: %+v", c.m.dir, s)
		}
	}
	for _, slot := range []string{"0", "1"} {
		if _, err := os.Stat(filepath.Join(cacheDir, "objects", slot, "owner")); err != nil {
			t.Fatalf("slot %s: %v", slot, err)
		}
	}
}

// The cache directory deleted under a running mount: reads go on with the
// right bytes, and the cache makes its directories again for the next fill.
func TestDiskCacheDirDeletedUnderTheMount(t *testing.T) {
	b := newBucket(t)
	a, c := randBytes(1<<20), randBytes(2<<20)
	put(t, b, "a.bin", a)
	put(t, b, "c.bin", c)
	cacheDir := t.TempDir()
	m := mountKFS(t, b, "--disk-cache-size", "128MiB", "--cache-dir", cacheDir)
	os.ReadFile(m.path("a.bin"))
	waitFilled(t, m, 1)
	if err := os.RemoveAll(filepath.Join(cacheDir, "objects")); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string][]byte{"a.bin": a, "c.bin": c} {
		if got, err := os.ReadFile(m.path(k)); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s with the cache directory gone: %v", k, err)
		}
	}
	for i := 0; i < 200; i++ {
		if s := diskStatus(t, m); s.Entries >= 1 && s.Filled >= 2 {
			if got, err := os.ReadFile(m.path("c.bin")); err != nil || !bytes.Equal(got, c) {
				t.Fatalf("c.bin from the remade cache: %v", err)
			}
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("nothing cached after the directory was deleted: %+v", diskStatus(t, m))
}

// An object replaced by another client while a reader fills the cache
// with it: the old version's fill never completes (its GETs are
// conditioned on the old ETag), the reader gets ESTALE rather than a mix,
// and the next open reads and caches the new version.
func TestDiskCacheObjectChangedMidFill(t *testing.T) {
	b := newBucket(t)
	v1, v2 := randBytes(24<<20), randBytes(24<<20)
	put(t, b, "f.bin", v1)
	m := mountKFS(t, b, "--disk-cache-size", "256MiB", "--cache-dir", t.TempDir(), "--attr-ttl", "0",
		"--max-readahead", "8MiB")
	f, err := os.Open(m.path("f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	put(t, b, "f.bin", v2)
	rest, err := io.ReadAll(f)
	if err == nil && !bytes.Equal(rest, v1[4<<20:]) {
		t.Fatal("a reader got bytes of two versions")
	}
	f.Close()
	got, err := os.ReadFile(m.path("f.bin"))
	if err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("the new version: %v", err)
	}
	waitFilled(t, m, 1)
	for i := 0; i < 2; i++ {
		if got, err := os.ReadFile(m.path("f.bin")); err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("the new version, read %d: %v", i, err)
		}
	}
}
