package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/xattr"

	"kfs/fs/posixtest"
	"kfs/fs/store"
	"kfs/fs/store/s3store"
	"kfs/fs/store/storetest"
)

// One SeaweedFS server for the package, started by the first test that
// needs it and stopped by TestMain.
var (
	seaweedOnce sync.Once
	seaweedSrv  *Seaweed
	seaweedErr  error
	seaweedDir  string
)

func seaweed(t *testing.T) *Seaweed {
	t.Helper()
	seaweedOnce.Do(func() {
		seaweedDir, seaweedErr = os.MkdirTemp("", "kfs-weed-")
		if seaweedErr == nil {
			seaweedSrv, seaweedErr = StartSeaweed(seaweedDir)
		}
	})
	if seaweedErr != nil {
		t.Fatal(seaweedErr)
	}
	return seaweedSrv
}

// stopSeaweed ends the package's server, if one was started.
func stopSeaweed() {
	if seaweedSrv != nil {
		seaweedSrv.Stop()
	}
	if seaweedDir != "" {
		os.RemoveAll(seaweedDir)
	}
}

func seaweedStore(t *testing.T) *s3store.Store {
	st, err := seaweed(t).Store()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func seaweedBucket(t *testing.T) string {
	t.Helper()
	b := "t-" + randomHex(6)
	if err := seaweedStore(t).MakeBucket(context.Background(), b, store.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func seaweedMount(t *testing.T, args ...string) *mounted {
	t.Helper()
	s := seaweed(t)
	env := append(os.Environ(), "KFS_ENDPOINT="+s.Endpoint, "KFS_ACCESS_KEY="+s.AccessKey, "KFS_SECRET_KEY="+s.SecretKey)
	return mountBinEnv(t, kfsBin, env, args...)
}

func seaweedGet(t *testing.T, bucket, key string) ([]byte, store.ObjectInfo) {
	t.Helper()
	r, info, err := seaweedStore(t).Get(context.Background(), store.GetRequest{ObjectRef: store.ObjectRef{Bucket: bucket, Key: key}})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer r.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), info
}

// The adapter passes the conformance suite on SeaweedFS too; where the
// server differs from S3, the subtest pins what it does instead.
func TestSeaweedStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		b := seaweedBucket(t)
		st := seaweedStore(t)
		return storetest.Env{Store: st, Bucket: b,
			Put: func(k string, d []byte) {
				if _, err := st.Put(context.Background(), store.PutRequest{Bucket: b, Key: k, Body: bytes.NewReader(d), Size: int64(len(d))}); err != nil {
					t.Fatal(err)
				}
			},
			NewBucketName: func() string { return "t-" + randomHex(6) },
			Limits: storetest.Limits{NoMetaLimit: true, EmptiedBucketNotEmpty: true, NoRetentionClear: true,
				NoSelect: true, NoListen: true, NoNotificationConfig: true}}
	})
}

// The POSIX bodies on a SeaweedFS mount: all of them but those that
// store directory attributes (TestSeaweedNoDirectoryMetadata).
func TestPosixOnSeaweedMount(t *testing.T) {
	m := seaweedMount(t, "--allow-other", seaweedBucket(t))
	for d := filepath.Dir(m.dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	posixtest.RunAllExcept(t, m.dir, posixtest.DirMetadataBodies)
}

// SeaweedFS keeps no metadata on directory objects: kfs shows every
// directory with the mount's --dir-mode, owner and times of its own, and
// refuses changes it could not keep with ENOTSUP (said once in the log),
// while files keep everything.
func TestSeaweedNoDirectoryMetadata(t *testing.T) {
	b := seaweedBucket(t)
	m := seaweedMount(t, "--dir-mode", "0750", b)
	d := m.path("d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d)
	if err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("mkdir -m 700 on SeaweedFS: %v %v, want the mount's --dir-mode 0750", st.Mode(), err)
	}
	for what, err := range map[string]error{
		"chmod":    os.Chmod(d, 0o700),
		"chown":    os.Chown(d, 1000, 1000),
		"setxattr": xattr.Set(d, "user.note", []byte("x")),
	} {
		if !errors.Is(err, syscall.ENOTSUP) {
			t.Errorf("%s on a directory: %v, want ENOTSUP", what, err)
		}
	}
	// Times (rsync -a and tar set them on every directory) show until
	// the mount ends.
	sh(t, "touch", "-d", "2005-01-01 00:00:00 UTC", d)
	if st, err := os.Stat(d); err != nil || st.ModTime().Unix() != 1104537600 {
		t.Fatalf("touch -d of a directory: %v %v", st.ModTime(), err)
	}
	if !strings.Contains(m.logText(), "keeps no metadata on directory objects") {
		t.Errorf("the log does not say why:\n%s", m.logText())
	}
	f := filepath.Join(d, "f")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatalf("chmod of a file: %v", err)
	}
	if err := xattr.Set(f, "user.note", []byte("x")); err != nil {
		t.Fatalf("setxattr on a file: %v", err)
	}
	// After a remount: the file's attributes; the directory's times are
	// gone (its mode never changed).
	m2 := seaweedMount(t, "--dir-mode", "0750", b)
	if st, err := os.Stat(m2.path("d", "f")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the file after a remount: %v %v", st.Mode(), err)
	}
	if v, err := xattr.Get(m2.path("d", "f"), "user.note"); err != nil || string(v) != "x" {
		t.Fatalf("the file's xattr after a remount: %q %v", v, err)
	}
	if st, err := os.Stat(m2.path("d")); err != nil || st.Mode().Perm() != 0o750 || st.ModTime().Unix() == 1104537600 {
		t.Fatalf("the directory after a remount: %v %v %v", st.Mode(), st.ModTime(), err)
	}
}

// What a user does, on SeaweedFS: cp in and out with checksums, mv of a
// tree, chmod, mtime and symlinks across a remount, rsync -a twice (the
// second copies nothing), tags and metadata through xattrs, each checked
// on the server.
func TestSeaweedUserJourney(t *testing.T) {
	b := seaweedBucket(t)
	m := seaweedMount(t, b)
	src := t.TempDir()
	data := randBytes(9<<20 + 123)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", filepath.Join(src, "big.bin"), m.path("big.bin"))
	if got, _ := seaweedGet(t, b, "big.bin"); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("big.bin on the server differs")
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	sh(t, "cp", m.path("big.bin"), out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("cp out differs")
	}

	// A tree: made, moved, found whole under the new name only.
	for _, p := range []string{"tree/a/x", "tree/a/y", "tree/b/z", "tree/top"} {
		if err := os.MkdirAll(filepath.Dir(m.path(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.path(p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, "mv", m.path("tree"), m.path("moved"))
	if _, err := os.Stat(m.path("tree")); !os.IsNotExist(err) {
		t.Fatalf("the old tree after mv: %v", err)
	}
	page, err := seaweedStore(t).List(context.Background(), store.ListRequest{Bucket: b})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(page.Prefixes, ",") != "moved/" {
		t.Fatalf("the server lists %v at the top after mv tree moved", page.Prefixes)
	}
	for _, p := range []string{"a/x", "a/y", "b/z", "top"} {
		if got, _ := seaweedGet(t, b, "moved/"+p); string(got) != "tree/"+p {
			t.Fatalf("moved/%s: %q", p, got)
		}
	}

	// An emptied directory stays, empty (the server keeps the folder).
	if err := os.Remove(m.path("moved/b/z")); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(m.path("moved/b")); err != nil || len(ents) != 0 {
		t.Fatalf("the emptied directory: %v %v", ents, err)
	}

	// Modes, times and symlinks survive a remount.
	if err := os.Chmod(m.path("moved/top"), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "touch", "-d", "2005-01-01 00:00:00 UTC", m.path("moved/top"))
	if err := os.Symlink("moved/top", m.path("link")); err != nil {
		t.Fatal(err)
	}
	m2 := seaweedMount(t, b)
	st, err := os.Stat(m2.path("moved/top"))
	if err != nil || st.Mode().Perm() != 0o600 || st.ModTime().Unix() != 1104537600 {
		t.Fatalf("after a remount: %v %v %v", st.Mode(), st.ModTime(), err)
	}
	if target, err := os.Readlink(m2.path("link")); err != nil || target != "moved/top" {
		t.Fatalf("symlink after a remount: %q %v", target, err)
	}
	if st, err := os.Stat(m2.path("moved/b")); err != nil || !st.IsDir() {
		t.Fatalf("the emptied directory after a remount: %v", err)
	}

	// rsync -a twice: the second run transfers nothing.
	tree := t.TempDir()
	for i := 0; i < 30; i++ {
		p := filepath.Join(tree, "s", string(rune('a'+i%5)), "f"+string(rune('a'+i)))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, randBytes(1000+i), 0o640)
	}
	os.Symlink("a", filepath.Join(tree, "s", "ln"))
	sh(t, "rsync", "-a", tree+"/s/", m2.path("synced")+"/")
	second := sh(t, "rsync", "-a", "--itemize-changes", tree+"/s/", m2.path("synced")+"/")
	for _, line := range strings.Split(strings.TrimSpace(second), "\n") {
		if line != "" {
			t.Fatalf("the second rsync -a transferred: %q", second)
		}
	}

	// Tags and metadata through xattrs, seen on the server.
	f := m2.path("moved/a/x")
	if err := xattr.Set(f, "user.s3.tags", []byte("project=kfs&stage=raw")); err != nil {
		t.Fatal(err)
	}
	if err := xattr.Set(f, "user.s3.meta.owner", []byte("data-team")); err != nil {
		t.Fatal(err)
	}
	tags, err := seaweedStore(t).GetTags(context.Background(), store.ObjectRef{Bucket: b, Key: "moved/a/x"})
	if err != nil || tags["project"] != "kfs" || tags["stage"] != "raw" {
		t.Fatalf("tags on the server: %v %v", tags, err)
	}
	if _, info := seaweedGet(t, b, "moved/a/x"); info.Meta["owner"] != "data-team" {
		t.Fatalf("metadata on the server: %v", info.Meta)
	}
	if got, err := xattr.Get(f, "user.s3.meta.owner"); err != nil || string(got) != "data-team" {
		t.Fatalf("getfattr: %q %v", got, err)
	}
}

// What SeaweedFS does not offer is named, never silently wrong: S3 Select
// is refused as unsupported (kfs select exits with ENOTSUP's message),
// and the listen API (change events) answers an error, so the mount
// falls back to its TTLs.
func TestSeaweedMissingFeatures(t *testing.T) {
	b := seaweedBucket(t)
	st := seaweedStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := st.Put(ctx, store.PutRequest{Bucket: b, Key: "t.csv", Body: strings.NewReader("a,b\n1,2\n"), Size: 8}); err != nil {
		t.Fatal(err)
	}
	sel, err := st.Select(ctx, store.ObjectRef{Bucket: b, Key: "t.csv"}, store.SelectOptions{SQL: "select * from s3object", Input: "csv", CSVHeader: "use", Output: "csv"})
	if err == nil {
		_, err = io.ReadAll(sel)
		sel.Close()
	}
	if !errors.Is(err, store.ErrUnsupported) {
		t.Errorf("S3 Select on SeaweedFS: %v, want ErrUnsupported", err)
	}
	ev, ok := <-st.Listen(ctx, store.ListenRequest{Bucket: b})
	if !ok || ev.Err == nil {
		t.Errorf("the listen API on SeaweedFS: %+v %v, want an error", ev, ok)
	}
	t.Logf("select: %v; listen: %v", err, ev.Err)

	// A mount stops asking for events at once (no retry loop) and says so.
	m := seaweedMount(t, b)
	waitFor(t, 10*time.Second, "the listen source to be off", func() bool {
		out, _ := exec.Command(kfsBin, "status", m.dir).Output()
		return strings.Contains(string(out), `"state": "off"`)
	})
	if n := strings.Count(m.logText(), "does not offer the listen API"); n != 1 {
		t.Fatalf("the log says %d times that the listen API is missing:\n%s", n, m.logText())
	}
}
