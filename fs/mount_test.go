package fs_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"kfs/cache"
	kfs "kfs/fs"
	"kfs/fs/posixtest"
	"kfs/fs/store/memstore"
	"kfs/fs/upload"
)

// fakeMount is the in-process tier: the node tree over the fake store,
// mounted with FUSE in this test process.
type fakeMount struct {
	dir   string
	store *memstore.Store
	fsys  *kfs.FS
	logs  *bytes.Buffer
}

type mountOpt func(*kfs.Config, *upload.Config)

func mountFake(t *testing.T, opts ...mountOpt) *fakeMount {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the in-process mount tests need root and /dev/fuse (CI runs as root)")
	}
	m := memstore.New()
	m.MakeBucketNow("bkt")
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(syncWriter{logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	base := t.TempDir()
	os.Chmod(filepath.Dir(base), 0o755) // other users reach the mount (permission tests)
	os.Chmod(base, 0o755)
	dir := filepath.Join(base, "mnt")
	os.Mkdir(dir, 0o755)
	cfg := kfs.Config{UID: 0, GID: 0, FileMode: 0o644, DirMode: 0o755, AttrTTL: time.Minute, EntryTTL: time.Minute,
		NegativeTTL: 5 * time.Second, MaxReadahead: 4 << 20, Mountpoint: dir, Log: log}
	ucfg := upload.Config{Store: m, Dir: t.TempDir(), PartSize: 5 << 20, DiskLimit: 1 << 30, Log: log}
	for _, o := range opts {
		o(&cfg, &ucfg)
	}
	fsys := kfs.New(m, cache.New(16<<20, 1<<20, time.Minute), upload.New(ucfg), cfg)
	srv, err := fsys.Mount(dir, fsys.BucketRoot("bkt", ""), kfs.MountConfig{Name: "kfs:test", AllowOther: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		fsys.Close()
		if t.Failed() {
			t.Logf("kfs log:\n%s", logs.String())
		}
	})
	return &fakeMount{dir: dir, store: m, fsys: fsys, logs: logs}
}

func TestPosixOnFakeMount(t *testing.T) {
	m := mountFake(t)
	posixtest.RunAll(t, m.dir)
}
