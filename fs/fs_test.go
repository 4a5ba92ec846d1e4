package fs_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kfs/cache"
	kfs "kfs/fs"
	"kfs/fs/store"
	"kfs/fs/store/memstore"
	"kfs/fs/upload"
)

func getx(t *testing.T, p, name string) (string, error) {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// user.s3.* on files of the fake: tags (with a pending upload too),
// metadata, Content-Type, read-only facts; the store sees each change.
func TestObjectAttributesOnFake(t *testing.T) {
	m := mountFake(t)
	p := filepath.Join(m.dir, "data.csv")
	f, _ := os.Create(p)
	if err := unix.Fsetxattr(int(f.Fd()), "user.s3.tag.stage", []byte("raw"), 0); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("a,b\n"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := getx(t, p, "user.s3.tags"); err != nil || v != "stage=raw" {
		t.Fatalf("tags set while open: %q %v", v, err)
	}
	if err := unix.Setxattr(p, "user.s3.meta.owner", []byte("team"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.s3.content-type", []byte("text/csv"), 0); err != nil {
		t.Fatal(err)
	}
	info, err := m.store.Stat(t.Context(), store.ObjectRef{Bucket: "bkt", Key: "data.csv"})
	if err != nil || info.Meta["owner"] != "team" || info.ContentType != "text/csv" || info.TagCount != 1 {
		t.Fatalf("in the store: %+v %v", info, err)
	}
	if v, _ := getx(t, p, "user.s3.etag"); v != info.ETag {
		t.Fatalf("etag %q, want %q", v, info.ETag)
	}
	if err := unix.Setxattr(p, "user.s3.etag", []byte("other"), 0); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("setting the etag: %v", err)
	}
	if err := unix.Setxattr(p, "user.s3.etag", []byte(info.ETag), 0); err != nil {
		t.Fatalf("setting the etag to itself (cp -a does): %v", err)
	}
	for _, bad := range []string{"user.s3.meta.bad name", "user.s3.meta.café"} {
		if err := unix.Setxattr(p, bad, []byte("x"), 0); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("%s: %v, want EINVAL", bad, err)
		}
		if !strings.Contains(m.logText(), "HTTP headers") {
			t.Fatalf("%s: no log line says why:\n%s", bad, m.logText())
		}
		if _, err := getx(t, p, bad); !errors.Is(err, syscall.ENODATA) {
			t.Fatalf("get %s: %v, want ENODATA", bad, err)
		}
	}
	if err := unix.Setxattr(p, "user.s3.tags", []byte("bad;key=x"), 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("a bad tag set: %v", err)
	}
	if err := unix.Setxattr(p, "user.s3.retention", []byte("GOVERNANCE 2030-01-01T00:00:00Z"), 0); !errors.Is(err, syscall.ENOTSUP) {
		t.Fatalf("retention on a bucket without lock: %v", err)
	}
	if err := unix.Removexattr(p, "user.s3.tag.stage"); err != nil {
		t.Fatal(err)
	}
	if _, err := getx(t, p, "user.s3.tags"); !errors.Is(err, syscall.ENODATA) {
		t.Fatalf("tags after removal: %v", err)
	}
	if _, err := getx(t, p, "security.selinux"); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Fatalf("security label: %v", err)
	}
	buf := make([]byte, 4096)
	n, _ := unix.Listxattr(p, buf)
	if l := string(buf[:n]); strings.Contains(l, "user.s3.") {
		t.Fatalf("listxattr names S3 state (copies would carry it): %q", l)
	}
}

// Bucket settings on the bucket's directory of the fake.
func TestBucketAttributesOnFake(t *testing.T) {
	m := mountFake(t)
	set := func(name, v string) error { return unix.Setxattr(m.dir, name, []byte(v), 0) }
	for _, c := range []struct{ name, value string }{
		{"user.s3.versioning", "Enabled"},
		{"user.s3.encryption", "SSE-S3"},
		{"user.s3.lifecycle", `{"Rules":[{"ID":"tmp","Status":"Enabled","Filter":{"Prefix":"tmp/"},"Expiration":{"Days":7}}]}`},
		{"user.s3.tag.team", "ds"},
		{"user.s3.tag.empty", ""}, // a tag may have an empty value: it reads back as one
		{"user.s3.policy", `{"Version":"2012-10-17","Statement":[]}`},
		{"user.s3.notification", `{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFS:webhook","Events":["s3:ObjectCreated:*"]}]}`},
	} {
		if err := set(c.name, c.value); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if v, err := getx(t, m.dir, c.name); err != nil || v != c.value {
			t.Fatalf("%s read back %q %v, want %q", c.name, v, err, c.value)
		}
	}
	for _, bad := range []struct{ name, value string }{
		{"user.s3.versioning", "Sometimes"},
		{"user.s3.lifecycle", `{"Rules":[{"Status":"Maybe"}]}`},
		{"user.s3.lifecycle", `{"Rulez":[]}`},
		{"user.s3.notification", `{"QueueConfigurations":[{"QueueArn":"not-an-arn","Events":["s3:ObjectCreated:*"]}]}`},
		{"user.s3.policy", `not json`},
		{"user.s3.encryption", "ROT13"},
	} {
		if err := set(bad.name, bad.value); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s = %q: %v, want EINVAL", bad.name, bad.value, err)
		}
	}
	if err := set("user.s3.object-lock", "Enabled GOVERNANCE 30d"); !errors.Is(err, syscall.ENOTSUP) {
		t.Fatalf("object lock on a bucket made without it: %v", err)
	}
	if err := unix.Removexattr(m.dir, "user.s3.notification"); err != nil {
		t.Fatal(err)
	}
	if _, err := getx(t, m.dir, "user.s3.notification"); !errors.Is(err, syscall.ENODATA) {
		t.Fatalf("notification after removal: %v", err)
	}
	if _, err := getx(t, m.dir, "user.s3.tag.absent"); !errors.Is(err, syscall.ENODATA) {
		t.Fatalf("a tag that is not there: %v", err)
	}
}

// Changes made behind the mount's back and announced with Changed show at
// once, TTLs of a minute notwithstanding.
func TestChangedInvalidates(t *testing.T) {
	m := mountFake(t, func(c *kfs.Config, u *upload.Config) { c.NegativeTTL = time.Minute })
	os.Mkdir(filepath.Join(m.dir, "d"), 0o755)
	os.WriteFile(filepath.Join(m.dir, "d", "f"), []byte("one"), 0o644)
	if _, err := os.Stat(filepath.Join(m.dir, "d", "new")); !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m.store.PutBytes("bkt", "d/new", []byte("made elsewhere"))
	m.store.PutBytes("bkt", "d/f", []byte("changed elsewhere"))
	m.fsys.Changed("bkt", "d/new")
	m.fsys.Changed("bkt", "d/f")
	deadline := time.Now().Add(2 * time.Second)
	for {
		a, err1 := os.ReadFile(filepath.Join(m.dir, "d", "new"))
		b, err2 := os.ReadFile(filepath.Join(m.dir, "d", "f"))
		if err1 == nil && err2 == nil && string(a) == "made elsewhere" && string(b) == "changed elsewhere" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Changed: %q %v / %q %v", a, err1, b, err2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.store.Remove(t.Context(), store.ObjectRef{Bucket: "bkt", Key: "d/new"})
	m.fsys.ChangedPrefix("bkt", "d/")
	for time.Now().Before(deadline.Add(2 * time.Second)) {
		if _, err := os.Stat(filepath.Join(m.dir, "d", "new")); os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a removal announced with ChangedPrefix still shows")
}

// An all-buckets mount: one directory per bucket, mkdir and rmdir make and
// remove buckets, copy_file_range across buckets is server side.
func TestAllBucketsRootOnFake(t *testing.T) {
	m := memstore.New()
	m.MakeBucketNow("first")
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	cfg := kfs.Config{FileMode: 0o644, DirMode: 0o755, AttrTTL: time.Minute, EntryTTL: time.Minute, NegativeTTL: time.Second,
		Mountpoint: dir}
	fsys := kfs.New(m, cache.New(8<<20, 1<<20, time.Minute), upload.New(upload.Config{Store: m, Dir: t.TempDir()}), cfg)
	srv, err := fsys.Mount(dir, fsys.AllBucketsRoot(), kfs.MountConfig{Name: "kfs:all"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Unmount(); fsys.Close() }()
	if err := os.Mkdir(filepath.Join(dir, "second"), 0o755); err != nil {
		t.Fatalf("mkdir of a bucket: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "Bad_Name"), 0o755); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("a bad bucket name: %v", err)
	}
	// Only buckets live at the root: a file there is EPERM (the log says
	// why), not "read-only file system"; the listing has . and ..
	if err := os.WriteFile(filepath.Join(dir, "stray.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("a file at the root of an all-buckets mount: %v, want EPERM", err)
	}
	if err := os.Symlink("first", filepath.Join(dir, "link")); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("a symlink at the root: %v, want EPERM", err)
	}
	if out, err := exec.Command("ls", "-a", dir).Output(); err != nil || !strings.HasPrefix(string(out), ".\n..\nfirst\n") {
		t.Fatalf("ls -a of the root: %q %v", out, err)
	}
	os.WriteFile(filepath.Join(dir, "first", "a.txt"), []byte("copy me"), 0o644)
	if out, err := exec.Command("cp", filepath.Join(dir, "first", "a.txt"), filepath.Join(dir, "second", "a.txt")).CombinedOutput(); err != nil {
		t.Fatalf("cp across buckets: %v %s", err, out)
	}
	if got, _ := m.Data("second", "a.txt"); string(got) != "copy me" || m.Calls("Copy") != 1 {
		t.Fatalf("copy across buckets: %q, %d server-side copies", got, m.Calls("Copy"))
	}
	if err := syscall.Rmdir(filepath.Join(dir, "second")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a non-empty bucket: %v", err)
	}
	os.Remove(filepath.Join(dir, "second", "a.txt"))
	if err := syscall.Rmdir(filepath.Join(dir, "second")); err != nil {
		t.Fatalf("rmdir of an empty bucket: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "first" {
		t.Fatalf("buckets: %v", ents)
	}
}

// A failing store: close reports the error, nothing is stored, and the
// mount keeps serving.
func TestFailingStoreOnClose(t *testing.T) {
	m := mountFake(t)
	var failing atomic.Bool
	m.store.SetHook(func(method, bucket, key string) error {
		if failing.Load() && (method == "Put" || method == "CompleteUpload") {
			return store.ErrUnavailable
		}
		return nil
	})
	failing.Store(true)
	p := filepath.Join(m.dir, "f")
	f, _ := os.Create(p)
	f.Write([]byte("lost"))
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("close with the store failing: %v, want EIO", err)
	}
	if _, ok := m.store.Data("bkt", "f"); ok {
		t.Fatal("a failed upload is visible")
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, err := os.Stat(p); err == nil; _, err = os.Stat(p) {
		if time.Now().After(deadline) {
			t.Fatal("the name of a file whose upload failed stays in the mount")
		}
		time.Sleep(10 * time.Millisecond)
	}
	failing.Store(false)
	if err := os.WriteFile(filepath.Join(m.dir, "g"), []byte("fine"), 0o644); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
	if st := m.fsys.Status(); len(st.Uploads) != 0 {
		t.Fatalf("status after the writers closed: %+v", st)
	}
}

// signalThread sends SIGUSR1 to the calling test's thread (locked to it)
// every period until stop is called or the test ends; the channel receives
// them.
func signalThread(t *testing.T, every time.Duration) (sigs <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, syscall.SIGUSR1)
	runtime.LockOSThread()
	pid, tid := unix.Getpid(), unix.Gettid()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
				unix.Tgkill(pid, tid, syscall.SIGUSR1)
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done) }) }
	t.Cleanup(func() {
		stop()
		signal.Stop(ch)
		runtime.UnlockOSThread()
	})
	return ch, stop
}

// A signal to a process in close(2) (Go's preemption, a Python handler)
// makes the kernel send FUSE an interrupt; the upload goes on and close
// returns 0, never EINTR with the bytes half-stored.
func TestCloseIsNotInterrupted(t *testing.T) {
	m := mountFake(t)
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "Put" {
			time.Sleep(400 * time.Millisecond)
		}
		return nil
	})
	fd, err := unix.Open(filepath.Join(m.dir, "sig"), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte("every byte")); err != nil {
		t.Fatal(err)
	}
	sigs, stop := signalThread(t, 50*time.Millisecond)
	err = unix.Close(fd)
	stop()
	if err != nil {
		t.Fatalf("close while signalled: %v", err)
	}
	if got, ok := m.store.Data("bkt", "sig"); !ok || string(got) != "every byte" {
		t.Fatalf("stored %q (%v)", got, ok)
	}
	select {
	case <-sigs:
	case <-time.After(time.Second):
		t.Fatal("no signal arrived during close: the test proves nothing")
	}
}

// cp of a file larger than one copy_file_range call (2 GiB) is still one
// server-side copy: the later calls find the bytes there.
func TestCopyLargerThanOneCopyCall(t *testing.T) {
	m := mountFake(t)
	size := int64(2<<30 + 5<<20)
	m.store.PutOwned("bkt", "big", make([]byte, size)) // zero pages, not copied
	sh := exec.Command("cp", filepath.Join(m.dir, "big"), filepath.Join(m.dir, "copy"))
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if st, err := os.Stat(filepath.Join(m.dir, "copy")); err != nil || st.Size() != size {
		t.Fatalf("copy: %v %v", st, err)
	}
	if info, err := m.store.Stat(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "copy"}); err != nil || info.Size != size {
		t.Fatalf("stored copy: %+v %v", info, err)
	}
	if c, p, u, r := m.store.Calls("Copy"), m.store.Calls("Put"), m.store.Calls("NewUpload"), m.store.Calls("ReadAt"); c != 1 || p != 0 || u != 0 || r != 0 {
		t.Fatalf("copies %d, puts %d, uploads %d, reads %d: not one server-side copy", c, p, u, r)
	}
}

// A listing read by a process that keeps getting signals (each one makes
// the kernel interrupt the request in flight) has every entry.
func TestListingUnderSignalsIsComplete(t *testing.T) {
	m := mountFake(t, func(c *kfs.Config, _ *upload.Config) { c.EntryTTL, c.AttrTTL, c.NegativeTTL = 0, 0, 0 })
	for i := 0; i < 2500; i++ {
		m.store.PutBytes("bkt", fmt.Sprintf("dir/f%04d", i), []byte("x"))
	}
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "ListWithMeta" {
			time.Sleep(30 * time.Millisecond)
		}
		return nil
	})
	signalThread(t, 7*time.Millisecond)
	for round := 0; round < 5; round++ {
		ents, err := os.ReadDir(filepath.Join(m.dir, "dir"))
		if err != nil || len(ents) != 2500 {
			t.Fatalf("round %d: %d entries, %v", round, len(ents), err)
		}
	}
}

// renameLog is a rename journal in memory.
type renameLog struct {
	mu   sync.Mutex
	open map[string]string
	n    int
}

func (r *renameLog) BeginRename(bucket, from, to string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	id := fmt.Sprint(r.n)
	if r.open == nil {
		r.open = map[string]string{}
	}
	r.open[id] = from + " -> " + to
	return id
}

func (r *renameLog) EndRename(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, id)
}

// pending is what the journal holds now (the FUSE reply passes through the
// kernel, so the race detector needs the lock to see the mount's writes).
func (r *renameLog) pending() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.open)
}

func keysUnder(m *memstore.Store, prefix string) []string {
	var out []string
	for _, k := range m.Keys("bkt") {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// A directory rename that fails half-way undoes its copies: every file is
// under its old name only, and the journal holds nothing.
func TestFailedDirectoryRenameIsUndone(t *testing.T) {
	log := &renameLog{}
	m := mountFake(t, func(c *kfs.Config, _ *upload.Config) { c.Renames = log })
	for i := 0; i < 30; i++ {
		m.store.PutBytes("bkt", fmt.Sprintf("d1/f%02d", i), []byte("x"))
	}
	var copies atomic.Int32
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "Copy" && copies.Add(1) > 12 {
			return store.ErrUnavailable
		}
		return nil
	})
	if err := os.Rename(filepath.Join(m.dir, "d1"), filepath.Join(m.dir, "d2")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename with failing copies: %v, want EIO", err)
	}
	if left := keysUnder(m.store, "d2/"); len(left) != 0 {
		t.Fatalf("copies left under the new name: %v", left)
	}
	if n := len(keysUnder(m.store, "d1/")); n != 30 {
		t.Fatalf("%d of 30 sources left", n)
	}
	if p := log.pending(); len(p) != 0 {
		t.Fatalf("journal: %v", p)
	}
	m.store.SetHook(nil)
	if err := os.Rename(filepath.Join(m.dir, "d1"), filepath.Join(m.dir, "d2")); err != nil {
		t.Fatal(err)
	}
	if len(keysUnder(m.store, "d1/")) != 0 || len(keysUnder(m.store, "d2/")) != 30 || len(log.pending()) != 0 {
		t.Fatalf("after a rename that worked: %v / %v, journal %v", keysUnder(m.store, "d1/"), keysUnder(m.store, "d2/"), log.pending())
	}
}

// A directory rename that fails while the store is unreachable (its undo
// failing too) is undone by the running mount once the store is back, with
// no remount: every file ends up once, under its old name.
func TestUnreachableRenameIsRepairedInTheBackground(t *testing.T) {
	log := &renameLog{}
	m := mountFake(t, func(c *kfs.Config, _ *upload.Config) { c.Renames = log })
	for i := 0; i < 20; i++ {
		m.store.PutBytes("bkt", fmt.Sprintf("d1/f%02d", i), []byte("x"))
	}
	var copies atomic.Int32
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "Copy" && copies.Add(1) > 5 || method == "RemoveMany" || strings.HasPrefix(method, "List") && copies.Load() > 5 {
			return store.ErrUnavailable
		}
		return nil
	})
	if err := os.Rename(filepath.Join(m.dir, "d1"), filepath.Join(m.dir, "d2")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename with the store going away: %v, want EIO", err)
	}
	if len(keysUnder(m.store, "d2/")) == 0 || len(log.pending()) != 1 {
		t.Fatalf("expected copies left and the rename in the journal: %v, %v", keysUnder(m.store, "d2/"), log.pending())
	}
	m.store.SetHook(nil)
	deadline := time.Now().Add(10 * time.Second)
	for len(keysUnder(m.store, "d2/")) != 0 || len(log.pending()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not repaired: %v, journal %v; log:\n%s", keysUnder(m.store, "d2/"), log.pending(), m.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(keysUnder(m.store, "d1/")); n != 20 {
		t.Fatalf("%d of 20 sources left", n)
	}
	if ents, err := os.ReadDir(filepath.Join(m.dir, "d1")); err != nil || len(ents) != 20 {
		t.Fatalf("d1 through the mount: %d entries, %v", len(ents), err)
	}
}

// Finishing a rename a crash cut short: copies made are kept, missing ones
// made, sources deleted; an object written under the new name since is
// never replaced and its source stays.
func TestFinishRenameAfterACrash(t *testing.T) {
	log := &renameLog{}
	m := mountFake(t, func(c *kfs.Config, _ *upload.Config) { c.Renames = log })
	ctx := context.Background()
	meta := map[string]string{"mtime": "1700000000"}
	for _, k := range []string{"a", "b", "c", "sub/d"} {
		m.store.Put(ctx, store.PutRequest{Bucket: "bkt", Key: "old/" + k, Body: strings.NewReader("data " + k), Size: int64(len("data " + k)), Options: store.PutOptions{Meta: meta}})
	}
	m.store.Put(ctx, store.PutRequest{Bucket: "bkt", Key: "new/a", Body: strings.NewReader("data a"), Size: 6, Options: store.PutOptions{Meta: meta}}) // copied before the crash
	m.store.Put(ctx, store.PutRequest{Bucket: "bkt", Key: "new/c", Body: strings.NewReader("written since"), Size: 13})                                // not a copy
	id := log.BeginRename("bkt", "old/", "new/")
	if err := m.fsys.FinishRename(ctx, id, "bkt", "old/", "new/"); err != nil {
		t.Fatal(err)
	}
	if got := keysUnder(m.store, "old/"); len(got) != 1 || got[0] != "old/c" {
		t.Fatalf("sources left: %v (want only old/c, whose new name holds another object)", got)
	}
	for k, want := range map[string]string{"new/a": "data a", "new/b": "data b", "new/c": "written since", "new/sub/d": "data sub/d"} {
		if got, _ := m.store.Data("bkt", k); string(got) != want {
			t.Fatalf("%s = %q, want %q", k, got, want)
		}
	}
	if len(log.pending()) != 0 || !strings.Contains(m.logText(), "both kept") {
		t.Fatalf("journal %v; log:\n%s", log.pending(), m.logText())
	}
}

// Any combination of TTLs: a name in a listing is never answered "absent"
// because the listing is older than entry-ttl but younger than
// negative-ttl (entry-ttl 0 with the default negative-ttl made every file
// of a listed directory ENOENT).
func TestTTLCombinationsNeverHideListedFiles(t *testing.T) {
	for _, ttl := range [][3]time.Duration{{0, 0, 5 * time.Second}, {0, time.Millisecond, time.Minute}, {time.Minute, 0, 0}, {0, 0, 0}} {
		t.Run(fmt.Sprint(ttl), func(t *testing.T) {
			m := mountFake(t, func(c *kfs.Config, _ *upload.Config) { c.AttrTTL, c.EntryTTL, c.NegativeTTL = ttl[0], ttl[1], ttl[2] })
			for i := 0; i < 5; i++ {
				m.store.PutBytes("bkt", fmt.Sprintf("d/f%d", i), []byte("x"))
			}
			for round := 0; round < 3; round++ {
				ents, err := os.ReadDir(filepath.Join(m.dir, "d"))
				if err != nil || len(ents) != 5 {
					t.Fatalf("readdir: %d, %v", len(ents), err)
				}
				time.Sleep(2 * time.Millisecond)
				for _, e := range ents {
					if _, err := os.Stat(filepath.Join(m.dir, "d", e.Name())); err != nil {
						t.Fatalf("round %d: listed %s but stat: %v", round, e.Name(), err)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(m.dir, "d", "nope")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a missing name: %v", err)
			}
		})
	}
}

// At attr-ttl 0 the kernel asks for attributes before every read of an
// open file; those are answered without a HEAD (the descriptor reads the
// version it opened), while stat by name still asks the store.
func TestReadingAtAttrTTLZeroSendsNoHeadPerRead(t *testing.T) {
	m := mountFake(t, func(c *kfs.Config, _ *upload.Config) { c.AttrTTL = 0 })
	data := make([]byte, 32<<20)
	m.store.PutBytes("bkt", "f", data)
	if _, err := os.Stat(filepath.Join(m.dir, "f")); err != nil {
		t.Fatal(err)
	}
	var stats atomic.Int32
	m.store.SetHook(func(method, bucket, key string) error {
		if method == "Stat" {
			stats.Add(1)
		}
		return nil
	})
	got, err := os.ReadFile(filepath.Join(m.dir, "f"))
	if err != nil || len(got) != len(data) {
		t.Fatalf("read: %d, %v", len(got), err)
	}
	if n := stats.Load(); n > 3 { // lookup, open, getattr by name
		t.Fatalf("%d HEADs for one read of 32 MiB at attr-ttl 0", n)
	}
	held, err := os.Open(filepath.Join(m.dir, "f")) // open while stat by name asks
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	m.store.PutBytes("bkt", "f", []byte("short"))
	if st, err := os.Stat(filepath.Join(m.dir, "f")); err != nil || st.Size() != 5 {
		t.Fatalf("stat by name after a remote change, with a descriptor open: %v, %v", st, err)
	}
}
