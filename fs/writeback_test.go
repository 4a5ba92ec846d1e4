package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kfs "kfs/fs"
	"kfs/fs/journal"
	"kfs/fs/posixtest"
	"kfs/fs/store"
	"kfs/fs/upload"
)

// writeBackMount is a wired fake mount with --write-back (and, when
// given, uploads due that long after close).
func writeBackMount(t *testing.T, delay ...time.Duration) (*fakeMount, *journal.Journal) {
	t.Helper()
	opt, j, _ := wired(t)
	m := mountFake(t, opt, func(c *kfs.Config, u *upload.Config) {
		c.WriteBack, c.Writes = true, j
		if len(delay) > 0 {
			c.WriteBackDelay = delay[0]
		}
		u.Named = true
	})
	return m, j
}

func syncMount(t *testing.T, m *fakeMount) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.fsys.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// The POSIX bodies on a write-back mount: what they check through the
// mount holds whether or not the uploads have happened yet.
func TestPosixOnWriteBackFakeMount(t *testing.T) {
	m, _ := writeBackMount(t)
	posixtest.RunAll(t, m.dir)
	syncMount(t, m)
	if st := m.fsys.Status().WriteBack; st.Conflicts != 0 || st.Failing != 0 || st.Pending != 0 {
		t.Errorf("write-back after the bodies: %+v (a conflict here is one with this mount itself)", st)
	}
}

// close() returns before the upload; the mount shows the file at once
// (even after the kernel dropped its caches); sync uploads it, once.
func TestWriteBackCloseIsLocal(t *testing.T) {
	m, _ := writeBackMount(t)
	var block atomic.Bool
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "Put" && block.Load() {
			return store.ErrUnavailable
		}
		return nil
	})
	data := bytes.Repeat([]byte("wb"), 3000)
	p := filepath.Join(m.dir, "sub", "a.csv")
	if err := os.Mkdir(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	block.Store(true) // the directory's marker went; files wait
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatalf("close on a write-back mount with the store refusing: %v", err)
	}
	if _, ok := m.store.Data("bkt", "sub/a.csv"); ok {
		t.Fatal("uploaded while the store refused")
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("pending file read through the mount: %d bytes, %v", len(got), err)
	}
	ents, err := os.ReadDir(filepath.Dir(p))
	if err != nil || len(ents) != 1 || ents[0].Name() != "a.csv" {
		t.Fatalf("listing with a pending file: %v %v", ents, err)
	}
	st := m.fsys.Status().WriteBack
	if st == nil || st.Pending != 1 || st.Bytes != int64(len(data)) {
		t.Fatalf("status: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = m.fsys.Sync(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "sub/a.csv") {
		t.Fatalf("sync with the store refusing: %v, want an error naming the file", err)
	}
	block.Store(false)
	puts := m.store.Calls("Put")
	syncMount(t, m)
	if got, ok := m.store.Data("bkt", "sub/a.csv"); !ok || !bytes.Equal(got, data) {
		t.Fatalf("after sync the store holds %d bytes (%v)", len(got), ok)
	}
	if n := m.store.Calls("Put") - puts; n != 1 {
		t.Errorf("%d PUTs for one file", n)
	}
	if st := m.fsys.Status().WriteBack; st.Pending != 0 || st.Uploaded != 1 {
		t.Errorf("status after sync: %+v", st)
	}
}

// What tools do right after close rewrites the queued upload: rsync's
// chmod, utime and rename into place travel in one PUT under the final
// name; a temporary unlinked before its upload costs nothing; a directory
// rename moves pending files with it.
func TestWriteBackRewritesTheQueue(t *testing.T) {
	m, _ := writeBackMount(t)
	d := m.dir
	tmp := filepath.Join(d, ".f.XXXX")
	if err := os.WriteFile(tmp, []byte("rsync"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "gone"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d, "d1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "d1", "in"), []byte("moved"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d, "d1"), filepath.Join(d, "d2")); err != nil {
		t.Fatal(err)
	}
	puts, copies, removes := m.store.Calls("Put"), m.store.Calls("Copy"), m.store.Calls("Remove")+m.store.Calls("RemoveMany")
	syncMount(t, m)
	if n := m.store.Calls("Put") - puts; n != 2 {
		t.Errorf("%d PUTs, want 2 (f and d2/in)", n)
	}
	if n := m.store.Calls("Copy") - copies; n != 0 {
		t.Errorf("%d copies of files not uploaded yet", n)
	}
	if n := m.store.Calls("Remove") + m.store.Calls("RemoveMany") - removes; n != 0 {
		t.Errorf("%d deletes of files never uploaded", n)
	}
	keys := strings.Join(m.store.Keys("bkt"), " ")
	for _, k := range []string{"f", "d2/in"} {
		if !strings.Contains(" "+keys+" ", " "+k+" ") {
			t.Errorf("%s missing from %s", k, keys)
		}
	}
	for _, k := range []string{".f.XXXX", "gone", "d1/in"} {
		if strings.Contains(" "+keys+" ", " "+k+" ") {
			t.Errorf("%s stored: %s", k, keys)
		}
	}
	st, err := m.store.Stat(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "f"})
	if err != nil || st.Meta["mode"] != "33184" || !strings.HasPrefix(st.Meta["mtime"], "1577934245") {
		t.Errorf("f's metadata: %v %v", st.Meta, err)
	}
}

// fsync waits for the upload.
func TestWriteBackFsyncUploads(t *testing.T) {
	m, _ := writeBackMount(t)
	f, err := os.Create(filepath.Join(m.dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("durable")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, ok := m.store.Data("bkt", "s"); !ok || string(got) != "durable" {
		t.Fatalf("after fsync the store holds %q (%v)", got, ok)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st := m.fsys.Status().WriteBack; st.Pending != 0 {
		t.Errorf("pending after fsync and close: %+v", st)
	}
}

// A name another client wrote after our close keeps theirs; ours is kept
// under a conflict name, and the mount shows both.
func TestWriteBackConflictKeepsBoth(t *testing.T) {
	m, _ := writeBackMount(t)
	p := filepath.Join(m.dir, "c.txt")
	if err := os.WriteFile(p, []byte("ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.store.PutBytes("bkt", "c.txt", []byte("theirs"))
	syncMount(t, m)
	if got, _ := m.store.Data("bkt", "c.txt"); string(got) != "theirs" {
		t.Fatalf("the other client's object was overwritten: %q", got)
	}
	var alt string
	for _, k := range m.store.Keys("bkt") {
		if strings.HasPrefix(k, "c.kfs-conflict-") && strings.HasSuffix(k, ".txt") {
			alt = k
		}
	}
	if got, _ := m.store.Data("bkt", alt); alt == "" || string(got) != "ours" {
		t.Fatalf("our bytes not kept (%q): %v", alt, m.store.Keys("bkt"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.ReadFile(p)
		if string(got) == "theirs" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount shows %q under the name", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(m.dir, alt)); err != nil {
		t.Errorf("the conflict copy is not shown: %v", err)
	}
	if st := m.fsys.Status().WriteBack; st.Conflicts != 1 {
		t.Errorf("status: %+v", st)
	}
}

// A run killed with files written back: the next mount uploads them from
// the journal (inline bytes, or the staging file), over what they knew,
// else both are kept; a record whose file is gone is moot.
func TestFinishWrite(t *testing.T) {
	m := mountFake(t)
	ctx := context.Background()
	dir := t.TempDir()
	staged := filepath.Join(dir, "wb-1-x")
	if err := os.WriteFile(staged, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.store.PutBytes("bkt", "theirs", []byte("other"))
	prev := m.store.PutBytes("bkt", "over", []byte("v1"))
	m.store.PutBytes("bkt", "done", []byte("same"))
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		w    journal.Write
		want string
	}{
		{journal.Write{Bucket: "bkt", Key: "inline", Data: []byte("inline bytes"), Size: 12, Meta: map[string]string{"mode": "33188"}}, "uploaded"},
		{journal.Write{Bucket: "bkt", Key: "file", File: staged, Size: 11}, "uploaded"},
		{journal.Write{Bucket: "bkt", Key: "over", Data: []byte("v2"), Size: 2, Expect: prev.ETag}, "uploaded"},
		{journal.Write{Bucket: "bkt", Key: "theirs", Data: []byte("ours"), Size: 4, Closed: at}, "conflict"},
		{journal.Write{Bucket: "bkt", Key: "done", Data: []byte("same"), Size: 4}, "uploaded"},
		{journal.Write{Bucket: "bkt", Key: "gone", File: filepath.Join(dir, "wb-1-missing"), Size: 3}, "missing"},
	} {
		got, err := m.fsys.FinishWrite(ctx, c.w)
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v, want %q", c.w.Key, got, err, c.want)
		}
	}
	for key, want := range map[string]string{"inline": "inline bytes", "file": "from a file", "over": "v2", "theirs": "other",
		"theirs.kfs-conflict-20261205T100000Z": "ours", "done": "same"} {
		if got, _ := m.store.Data("bkt", key); string(got) != want {
			t.Errorf("%s holds %q, want %q", key, got, want)
		}
	}
	if _, ok := m.store.Data("bkt", "gone"); ok {
		t.Error("a record without its file stored something")
	}
	if keys := m.store.Keys("bkt"); len(keys) != 6 {
		t.Errorf("keys: %v", keys)
	}
}

// Writers get ENOSPC, never lost bytes, when the staging budget is spent
// by pending files whose uploads cannot go; once they can, writers go on.
func TestWriteBackWaitsForSpace(t *testing.T) {
	opt, j, _ := wired(t)
	var fsys *kfs.FS
	var block atomic.Bool
	block.Store(true)
	m := mountFake(t, opt, func(c *kfs.Config, u *upload.Config) {
		c.WriteBack, c.Writes = true, j
		u.Named, u.DiskLimit, u.SpaceWait = true, 4<<20, time.Second
		u.WaitSpace = func(ctx context.Context) bool { return fsys.WaitSpace(ctx) }
	})
	fsys = m.fsys
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "Put" && block.Load() {
			return store.ErrUnavailable
		}
		return nil
	})
	big := bytes.Repeat([]byte("s"), 3<<20) // over the inline size: staged on disk
	if err := os.WriteFile(filepath.Join(m.dir, "one"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	// The store down: nothing can be freed; a write that needs the space
	// waits SpaceWait, then gets ENOSPC, and what was written stays.
	f, err := os.Create(filepath.Join(m.dir, "seeks"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(big, 1<<20); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a write past the budget with the store down: %v, want ENOSPC", err)
	}
	f.Close()
	os.Remove(filepath.Join(m.dir, "seeks"))
	go func() {
		time.Sleep(time.Second)
		block.Store(false)
	}()
	if err := os.WriteFile(filepath.Join(m.dir, "two"), big, 0o644); err != nil {
		t.Fatalf("second file once the first could be uploaded: %v", err)
	}
	syncMount(t, m)
	for _, k := range []string{"one", "two"} {
		if got, _ := m.store.Data("bkt", k); !bytes.Equal(got, big) {
			t.Errorf("%s: %d bytes", k, len(got))
		}
	}
}

// A pending file renamed over a stored one, which another client then
// deletes: the name is free, ours takes it (no conflict copy).
func TestWriteBackReplacedObjectDeletedElsewhere(t *testing.T) {
	m, _ := writeBackMount(t)
	m.store.PutBytes("bkt", "target", []byte("old"))
	if _, err := os.Stat(filepath.Join(m.dir, "target")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(m.dir, ".target.tmp")
	if err := os.WriteFile(tmp, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "target")); err != nil {
		t.Fatal(err)
	}
	if err := m.store.Remove(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "target"}); err != nil {
		t.Fatal(err)
	}
	syncMount(t, m)
	if got, _ := m.store.Data("bkt", "target"); string(got) != "new" {
		t.Fatalf("target holds %q", got)
	}
	if keys := m.store.Keys("bkt"); len(keys) != 1 {
		t.Errorf("keys: %v", keys)
	}
}

// Random operations on a write-back mount match the model through the
// mount (RandomOps checks that); after a sync the store holds exactly
// what the mount shows, and nothing else.
func TestWriteBackRandomOpsReachTheStore(t *testing.T) {
	for round, delay := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} { // short: uploads race the operations
		m, _ := writeBackMount(t, delay)
		dir := filepath.Join(m.dir, fmt.Sprintf("r%d", round))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		posixtest.RandomOps(t, dir)
		syncMount(t, m)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		shown := map[string]bool{}
		for _, e := range ents {
			key := fmt.Sprintf("r%d/%s", round, e.Name())
			shown[key] = true
			want, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := m.store.Data("bkt", key); !ok || !bytes.Equal(got, want) {
				t.Errorf("%s: the store holds %d bytes (%v), the mount shows %d", key, len(got), ok, len(want))
			}
		}
		for _, k := range m.store.Keys("bkt") {
			if strings.HasPrefix(k, fmt.Sprintf("r%d/", round)) && k != fmt.Sprintf("r%d/", round) && !shown[k] {
				t.Errorf("%s is in the store but not in the mount", k)
			}
		}
	}
}
