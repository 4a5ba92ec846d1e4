package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kfs/cache"
	"kfs/ctl"
	kfs "kfs/fs"
	"kfs/fs/store"
	"kfs/fs/store/memstore"
	"kfs/fs/upload"
)

// liveMount is a real FUSE mount of the fake store in this process, with
// its control socket: what the subcommands find through /proc and dial.
type liveMount struct {
	dir   string
	store *memstore.Store
}

func mountLive(t *testing.T, bucket string) *liveMount {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: the subcommands' tests mount with FUSE and need root (CI runs as root)")
	}
	t.Setenv("KFS_RUNTIME_DIR", t.TempDir())
	m := memstore.New()
	m.MakeBucketNow("bkt")
	m.MakeBucketNow("other")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	fsys := kfs.New(m, cache.New(16<<20, 1<<20, time.Minute), upload.New(upload.Config{Store: m, Dir: t.TempDir(), Log: log}),
		kfs.Config{FileMode: 0o644, DirMode: 0o755, AttrTTL: time.Second, EntryTTL: time.Second, NegativeTTL: time.Second,
			Mountpoint: dir, Log: log})
	root := fsys.BucketRoot(bucket, "")
	if bucket == "" {
		root = fsys.AllBucketsRoot()
	}
	hub := ctl.NewHub()
	sock, err := ctl.Listen(ctl.Config{Mountpoint: dir, Bucket: bucket, Endpoint: "http://fake", MountedAt: time.Now(), Log: log, Hub: hub,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kfs_up 1\n") }),
		Stats:   func() any { return map[string]any{"event_sources": []ctl.SourceState{{State: "live"}}} },
		Changed: fsys.Changed, ChangedPrefix: fsys.ChangedPrefix, Settle: fsys.Settle, Sync: fsys.Sync, Owner: uint32(os.Geteuid())}, m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fsys.Mount(dir, root, kfs.MountConfig{Name: "kfs:" + bucket}, nil)
	if err != nil {
		sock.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		sock.Close()
		fsys.Close()
	})
	return &liveMount{dir: dir, store: m}
}

// run runs a subcommand, returning its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	c := Commands().Lookup(args[0])
	if c == nil {
		t.Fatalf("no command %s", args[0])
	}
	var out, errb bytes.Buffer
	code := c.Run(args[1:], &out, &errb)
	return code, out.String(), errb.String()
}

// The subcommands against a live mount: what each prints, and the store
// changed as asked.
func TestSubcommandsOnALiveMount(t *testing.T) {
	m := mountLive(t, "bkt")
	p := func(name string) string { return filepath.Join(m.dir, name) }
	if err := m.store.SetVersioning(context.Background(), "bkt", "Enabled"); err != nil {
		t.Fatal(err)
	}
	m.store.PutBytes("bkt", "a.csv", []byte("name,n\nx,1\n"))
	m.store.PutBytes("bkt", "dir/one", []byte("1"))
	m.store.PutBytes("bkt", "dir/two", []byte("22"))
	big := bytes.Repeat([]byte("p"), 5<<20)
	m.store.PutBytes("bkt", "part1", big)

	must := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := run(t, args...)
		if code != want {
			t.Fatalf("kfs %v: exit %d, want %d\nstdout %s\nstderr %s", args, code, want, out, errs)
		}
		return out + errs
	}
	if out := must(0, "presign", "--expires", "1h", p("a.csv")); !strings.Contains(out, "http://memstore/bkt/a.csv") {
		t.Errorf("presign: %s", out)
	}
	var st ctl.ObjectStat
	if err := json.Unmarshal([]byte(must(0, "stat", p("a.csv"))), &st); err != nil || st.Key != "a.csv" || st.Size != 11 {
		t.Errorf("stat: %+v %v", st, err)
	}
	if out := must(0, "ls", "-l", p("dir")); !strings.Contains(out, "one") || !strings.Contains(out, "two") {
		t.Errorf("ls: %s", out)
	}
	if out := must(0, "ls", "-r", m.dir); !strings.Contains(out, "dir/two") {
		t.Errorf("ls -r: %s", out)
	}
	if out := must(0, "cat", "--offset", "7", "--length", "3", p("a.csv")); out != "x,1" {
		t.Errorf("cat a range: %q", out)
	}
	if out := must(0, "versions", p("a.csv")); !strings.Contains(out, "LATEST") || !strings.Contains(out, "true") {
		t.Errorf("versions: %s", out)
	}
	must(0, "cp", "--server-side", "--metadata", "owner=me", p("a.csv"), p("copy.csv"))
	if info, err := m.store.Stat(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "copy.csv"}); err != nil || info.Meta["owner"] != "me" {
		t.Errorf("server-side copy: %+v %v", info, err)
	}
	must(0, "compose", p("all.bin"), p("part1"), p("a.csv"))
	if info, err := m.store.Stat(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "all.bin"}); err != nil || info.Size != 5<<20+11 {
		t.Errorf("compose: %+v %v", info, err)
	}
	if out := must(1, "select", "--sql", "select * from s3object", p("a.csv")); !strings.Contains(out, "not supported") {
		t.Errorf("select on a store without it: %s", out)
	}
	must(0, "rm", p("copy.csv"))
	must(0, "rm", "-r", p("dir"))
	if _, err := m.store.Stat(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "dir/one"}); err == nil {
		t.Error("rm -r left dir/one")
	}
	if out := must(0, "buckets", m.dir); !strings.Contains(out, "other") {
		t.Errorf("buckets: %s", out)
	}
	if out := must(0, "status", m.dir); !strings.Contains(out, `"bucket": "bkt"`) {
		t.Errorf("status: %s", out)
	}
	must(0, "sync", m.dir) // nothing written back: nothing to wait for
	if out := must(2, "sync"); !strings.Contains(out, "PATH") {
		t.Errorf("sync without a path: %s", out)
	}
	if out := must(0, "metrics", m.dir); !strings.Contains(out, "kfs_up 1") {
		t.Errorf("metrics: %s", out)
	}
	if out := must(1, "warm", p("a.csv")); !strings.Contains(out, "disk cache") {
		t.Errorf("warm without a disk cache: %s", out)
	}
	must(1, "restore", p("a.csv")) // not deleted
	must(1, "stat", p("none"))
	// kfs cp through the mount, with attributes in the upload.
	src := filepath.Join(t.TempDir(), "local.txt")
	os.WriteFile(src, []byte("from local"), 0o644)
	must(0, "cp", "--metadata", "k=v", "--content-type", "text/plain", "--tags", "t=1", src, p("up.txt"))
	info, err := m.store.Stat(context.Background(), store.ObjectRef{Bucket: "bkt", Key: "up.txt"})
	if err != nil || info.Meta["k"] != "v" || info.ContentType != "text/plain" {
		t.Errorf("cp into the mount: %+v %v", info, err)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	must(0, "cp", p("up.txt"), back)
	if b, _ := os.ReadFile(back); string(b) != "from local" {
		t.Errorf("cp out of the mount: %q", b)
	}
}

// Bucket management on an all-buckets mount.
func TestBucketCommandsOnALiveMount(t *testing.T) {
	m := mountLive(t, "")
	code, out, errs := run(t, "mb", "--versioning", filepath.Join(m.dir, "made-here"))
	if code != 0 {
		t.Fatalf("mb: %d %s %s", code, out, errs)
	}
	if v, _ := m.store.GetVersioning(context.Background(), "made-here"); v != "Enabled" {
		t.Errorf("versioning of the new bucket: %q", v)
	}
	if code, out, errs := run(t, "rb", filepath.Join(m.dir, "made-here")); code != 0 {
		t.Fatalf("rb: %d %s %s", code, out, errs)
	}
	if code, _, _ := run(t, "rb", filepath.Join(m.dir, "never-was")); code == 0 {
		t.Error("rb of a bucket that does not exist succeeded")
	}
}

// status and metrics without a path cover every kfs mount; the progress
// line counts, rates and finishes.
func TestEveryMountAndProgress(t *testing.T) {
	m := mountLive(t, "bkt")
	// Other kfs mounts of this machine (other tests' among them, some on
	// their way out) are listed too: only this one's presence is checked.
	code, out, errs := run(t, "status")
	if !strings.Contains(out, m.dir) {
		t.Errorf("status of every mount: %d %s %s", code, out, errs)
	}
	code, out, errs = run(t, "metrics")
	if !strings.Contains(out, "kfs_up 1") {
		t.Errorf("metrics of every mount: %d %s %s", code, out, errs)
	}
	var b bytes.Buffer
	p := &progress{total: 3 << 20, start: time.Now().Add(-time.Second), out: &b}
	p.Write(make([]byte, 1<<20))
	p.finish(true)
	if !strings.Contains(b.String(), "1.0 MiB / 3.0 MiB") || !strings.Contains(b.String(), "done in") {
		t.Errorf("progress: %q", b.String())
	}
	b.Reset()
	p = &progress{total: -1, start: time.Now(), out: &b}
	p.Write(make([]byte, 10))
	p.finish(false)
	if !strings.Contains(b.String(), "10 B") {
		t.Errorf("progress of stdin: %q", b.String())
	}
	if err := UnmountDir(t.TempDir(), false); err == nil {
		t.Error("unmounting a directory that is no mount succeeded")
	}
}
