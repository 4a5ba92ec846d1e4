package mountproc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"kfs/fs/store"
	"kfs/fs/store/memstore"
	"kfs/mountopts"
)

func TestHelpListsEveryOption(t *testing.T) {
	var b bytes.Buffer
	PrintHelp(&b)
	for _, want := range []string{"--endpoint", "--cache-size", "--disk-cache-size", "--read-only", "Examples:", "-o name=value"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("mount help lacks %q", want)
		}
	}
	c := Command()
	if c.Name != "mount" || c.Help == nil || c.Run == nil {
		t.Fatalf("command %+v", c)
	}
}

// Bad flags and missing arguments end before anything is mounted: exit 2
// and one line on stderr.
func TestRunRefusesBadInvocations(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cache-size", "lots", "b", "/mnt"}, "cache-size"},
		{[]string{"--entry-tl", "1s", "b", "/mnt"}, "did you mean --entry-ttl?"},
		{[]string{"-o", "bogus=1", "b", "/mnt"}, "bogus"},
	} {
		var out, errb bytes.Buffer
		code := Run(c.args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) || out.Len() != 0 {
			t.Errorf("mount %v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out.String(), errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := Run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "kfs mount [flags] BUCKET") {
		t.Errorf("--help: exit %d, %q", code, out.String())
	}
}

func TestCheckMountpoint(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	full := filepath.Join(dir, "full")
	file := filepath.Join(dir, "file")
	must(t, os.Mkdir(empty, 0o755))
	must(t, os.Mkdir(full, 0o755))
	must(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	must(t, os.WriteFile(file, nil, 0o644))
	if err := checkMountpoint(empty); err != nil {
		t.Errorf("an empty directory: %v", err)
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "does not exist (mkdir -p",
		full:                          "is not empty",
		file:                          "is not a directory",
	} {
		if err := checkMountpoint(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

func TestCheckPrivateDir(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	open := filepath.Join(dir, "open")
	link := filepath.Join(dir, "link")
	must(t, os.Mkdir(ok, 0o700))
	must(t, os.Mkdir(open, 0o700))
	must(t, os.Chmod(open, 0o777))
	must(t, os.Symlink(ok, link))
	if err := checkPrivateDir(ok); err != nil {
		t.Errorf("a private directory: %v", err)
	}
	if err := checkPrivateDir(open); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("mode 0777: %v", err)
	}
	if err := checkPrivateDir(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a symlink: %v", err)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other")
		must(t, os.Mkdir(other, 0o700))
		must(t, os.Chown(other, 1000, 1000))
		if err := checkPrivateDir(other); err == nil || !strings.Contains(err.Error(), "owned by uid 1000") {
			t.Errorf("another user's directory: %v", err)
		}
	}
}

// A crashed mount's journal is replayed by the next one: its multipart
// upload aborted, the file gone, and a second live mount of the same
// bucket gets a slot of its own.
func TestCacheDirAdoptsAnOrphanJournal(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	o := mountopts.Options{CacheDir: base, Endpoint: "http://127.0.0.1:1"}
	m := mountopts.Mount{Bucket: "b"}
	st := memstore.New()
	must(t, st.MakeBucket(ctx, "b", store.MakeBucketOptions{}))
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))

	dir, j1, _, err := prepareCacheDir(o, m, st, log)
	must(t, err)
	up, err := st.NewUpload(ctx, store.ObjectRef{Bucket: "b", Key: "half"}, store.PutOptions{})
	must(t, err)
	j1.Record(up, true)
	// A second live mount of the same bucket: its own slot.
	dir2, j2, _, err := prepareCacheDir(o, m, st, log)
	must(t, err)
	if dir2 != dir || j2.Path() == j1.Path() {
		t.Fatalf("second mount: dir %s journal %s; want %s and another journal than %s", dir2, j2.Path(), dir, j1.Path())
	}
	j2.Close()
	j1.Close() // the first "crashes": its journal stays behind
	ups, _ := st.ListUploads(ctx, store.PrefixRequest{Bucket: "b"})
	if len(ups) != 1 {
		t.Fatalf("uploads before the replay: %v", ups)
	}
	_, j3, _, err := prepareCacheDir(o, m, st, log)
	must(t, err)
	defer j3.Close()
	if ups, _ := st.ListUploads(ctx, store.PrefixRequest{Bucket: "b"}); len(ups) != 0 {
		t.Errorf("the orphan's upload was not aborted: %v", ups)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v %v", fi, err)
	}
	// A read-only mount takes no journal.
	o.ReadOnly = true
	if _, j, _, err := prepareCacheDir(o, m, st, log); err != nil || j != nil {
		t.Errorf("read-only: journal %v, %v", j, err)
	}
}

func TestCacheBase(t *testing.T) {
	if got := cacheBase(mountopts.Options{CacheDir: "/x"}); got != "/x" {
		t.Errorf("--cache-dir: %s", got)
	}
	if got := cacheBase(mountopts.Options{}); !strings.HasSuffix(got, "/kfs-"+strconv.Itoa(os.Getuid())) {
		t.Errorf("default: %s", got)
	}
}

func TestPreflightNamesTheProblem(t *testing.T) {
	st := memstore.New()
	must(t, st.MakeBucket(context.Background(), "here", store.MakeBucketOptions{}))
	if err := preflight(st, mountopts.Mount{Bucket: "here"}); err != nil {
		t.Errorf("an existing bucket: %v", err)
	}
	if err := preflight(st, mountopts.Mount{}); err != nil {
		t.Errorf("all buckets: %v", err)
	}
	if err := preflight(st, mountopts.Mount{Bucket: "gone"}); err == nil || err.Error() != "bucket gone does not exist" {
		t.Errorf("a missing bucket: %v", err)
	}
	st.SetHook(func(method, _, _ string) error {
		if method == "StatBucket" {
			return store.ErrAccessDenied
		}
		return nil
	})
	if err := preflight(st, mountopts.Mount{Bucket: "here"}); err == nil || !strings.Contains(err.Error(), "credentials refused") {
		t.Errorf("refused credentials: %v", err)
	}
}

// The logger counts warnings and errors for kfs status, keeping the last
// ten, and writes where it is told, in the format asked.
func TestLoggerCountsProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "kfs.log")
	l, p, err := newLogger(mountopts.Options{LogFile: path, LogLevel: "info", LogFormat: "json"}, nil, false)
	must(t, err)
	l.Debug("hidden")
	l.Info("fine")
	for i := 0; i < 12; i++ {
		l.With("mount", "/m").Warn("trouble", "n", i)
	}
	l.WithGroup("g").Error("broken", "k", "v")
	n, last := p.snapshot()
	if n != 13 || len(last) != 10 || !strings.HasPrefix(last[9], "broken") || !strings.Contains(last[8], "n=11") {
		t.Errorf("counted %d, kept %q", n, last)
	}
	b, err := os.ReadFile(path)
	must(t, err)
	if strings.Contains(string(b), "hidden") || !strings.Contains(string(b), `"msg":"fine"`) {
		t.Errorf("log file:\n%s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v", fi.Mode())
	}
	var buf bytes.Buffer
	l, _, err = newLogger(mountopts.Options{Debug: true}, &buf, false)
	must(t, err)
	l.Debug("shown")
	if !strings.Contains(buf.String(), "msg=shown") {
		t.Errorf("stderr, text, debug: %q", buf.String())
	}
	if _, _, err := newLogger(mountopts.Options{LogFile: "/proc/no/such/kfs.log"}, nil, false); err == nil {
		t.Error("an unwritable log file was accepted")
	} else if ee := (exitError{}); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("an unwritable log file: %v, want exit code 2", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
