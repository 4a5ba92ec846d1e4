package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"kfs/fs/posixtest"
)

// The write-back mode's guarantees, on a real mount over MinIO: close() is
// durable on local disk, the bucket gets every byte and attribute (kfs
// sync, fsync, unmount, the next mount after a kill), another client's
// write is never overwritten.

// sdkObject is an object's bytes, and whether it exists.
func sdkObject(t *testing.T, b, key string) ([]byte, bool) {
	t.Helper()
	o, err := client(t).GetObject(context.Background(), b, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, false
	}
	defer o.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(o); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

func sdkKeys(t *testing.T, b, prefix string) []string {
	t.Helper()
	var out []string
	for o := range client(t).ListObjects(context.Background(), b, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err == nil {
			out = append(out, o.Key)
		}
	}
	return out
}

func kfsSync(t *testing.T, path string) (int, string) {
	t.Helper()
	return runKFS(t, kfsEnv(), "sync", path)
}

// killMount kills kfs with SIGKILL and detaches its mount.
func killMount(m *mounted) {
	m.cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 100 && isMounted(m.dir); i++ {
		syscall.Unmount(m.dir, syscall.MNT_DETACH)
		time.Sleep(20 * time.Millisecond)
	}
}

// remount mounts b again through the same proxy (the same endpoint: the
// same cache directory and journal).
func remount(t *testing.T, b string, p *FaultProxy, extra ...string) *mounted {
	t.Helper()
	return mountKFS(t, append([]string{b, "--endpoint", "http://" + p.Addr}, extra...)...)
}

// The POSIX bodies on a write-back mount over MinIO.
func TestPosixOnMinioMountWithWriteBack(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, "--allow-other", "--write-back", "--cache-dir", t.TempDir(), b)
	for d := filepath.Dir(m.dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	posixtest.RunAll(t, m.dir)
	t.Run("RandomOperationsReachTheBucket", func(t *testing.T) {
		for round := 0; round < 3; round++ {
			dir := fmt.Sprintf("random%d", round)
			os.Mkdir(m.path(dir), 0o755)
			posixtest.RandomOps(t, m.path(dir))
			if code, errs := kfsSync(t, m.dir); code != 0 {
				t.Fatalf("kfs sync: %d %s", code, errs)
			}
			shown := map[string]bool{}
			ents, _ := os.ReadDir(m.path(dir))
			for _, e := range ents {
				key := dir + "/" + e.Name()
				shown[key] = true
				want, _ := os.ReadFile(m.path(key))
				if got, ok := sdkObject(t, b, key); !ok || !bytes.Equal(got, want) {
					t.Errorf("%s: the bucket holds %d bytes (%v), the mount shows %d", key, len(got), ok, len(want))
				}
			}
			for _, k := range sdkKeys(t, b, dir+"/") {
				if k != dir+"/" && !shown[k] {
					t.Errorf("%s is in the bucket, not in the mount", k)
				}
			}
		}
	})
	if code, errs := kfsSync(t, m.dir); code != 0 {
		t.Fatalf("kfs sync: %d %s", code, errs)
	}
	if strings.Contains(m.logText(), "kfs-conflict") {
		t.Errorf("a conflict with the mount itself:\n%s", m.logText())
	}
}

// tar x and rsync -a into a write-back mount, as root and as another user:
// after kfs sync every byte, mode, owner and mtime is in the bucket.
func TestWriteBackTools(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, "--allow-other", "--write-back", "--cache-dir", t.TempDir(), b)
	for d := filepath.Dir(m.dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	src := filepath.Join(t.TempDir(), "src")
	want := map[string][]byte{}
	for i := 0; i < 60; i++ {
		rel := fmt.Sprintf("d%d/f%02d.txt", i%4, i)
		data := randBytes(100 + i*997)
		if i == 7 {
			data = randBytes(600 << 10) // over the inline size: a staging file
		}
		os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755)
		if err := os.WriteFile(filepath.Join(src, rel), data, 0o640); err != nil {
			t.Fatal(err)
		}
		want[rel] = data
	}
	old := time.Date(2011, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "d1/f01.txt"), old, old)
	tarball := filepath.Join(t.TempDir(), "t.tar")
	sh(t, "tar", "cf", tarball, "-C", src, ".")
	os.Mkdir(m.path("tar"), 0o755)
	sh(t, "tar", "xf", tarball, "-C", m.path("tar"))
	sh(t, "rsync", "-a", src+"/", m.path("rsync")+"/")
	os.Mkdir(m.path("shared"), 0o777)
	os.Chmod(m.path("shared"), 0o1777)
	if out, err := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "sh", "-c",
		"echo nobody > "+m.path("shared", "n.txt")).CombinedOutput(); err != nil {
		t.Fatalf("another user writing: %v %s", err, out)
	}
	if code, errs := kfsSync(t, m.dir); code != 0 {
		t.Fatalf("kfs sync: %d %s", code, errs)
	}
	for _, top := range []string{"tar", "rsync"} {
		for rel, data := range want {
			got, ok := sdkObject(t, b, top+"/"+rel)
			if !ok || !bytes.Equal(got, data) {
				t.Fatalf("%s/%s in the bucket: %d bytes (%v), want %d", top, rel, len(got), ok, len(data))
			}
		}
		meta := sdkMeta(t, b, top+"/d1/f01.txt")
		if meta["mode"] != fmt.Sprint(syscall.S_IFREG|0o640) || !strings.HasPrefix(meta["mtime"], fmt.Sprint(old.Unix())) {
			t.Errorf("%s: metadata %v", top, meta)
		}
	}
	if meta := sdkMeta(t, b, "shared/n.txt"); meta["uid"] != "65534" || meta["gid"] != "65534" {
		t.Errorf("another user's file: %v", meta)
	}
	for _, k := range sdkKeys(t, b, "rsync/") {
		if strings.Contains(k, "/.") {
			t.Errorf("rsync's temporary reached the bucket: %s", k)
		}
	}
	// A second rsync finds nothing to copy (times and sizes as stored).
	out := sh(t, "rsync", "-a", "--itemize-changes", src+"/", m.path("rsync")+"/")
	if strings.Contains(out, ">f") {
		t.Errorf("the second rsync copied again:\n%s", out)
	}
}

// The store failing: close() still returns at once, kfs sync says which
// file cannot be uploaded, status and the log report it; once the store
// answers, the uploads resume and sync succeeds.
func TestWriteBackStoreDown(t *testing.T) {
	b := newBucket(t)
	m, p := faultMount(t, b, "--write-back", "--cache-dir", t.TempDir())
	p.Set(Fault{Kind: FaultInternal, Match: IsMethod(http.MethodPut)})
	start := time.Now()
	for i := 0; i < 5; i++ {
		if err := os.WriteFile(m.path(fmt.Sprintf("f%d", i)), []byte(fmt.Sprint("data ", i)), 0o644); err != nil {
			t.Fatalf("close with the store down: %v", err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("5 closes took %v with the store down (they must not wait for it)", d)
	}
	code, errs := kfsSync(t, m.dir)
	if code == 0 || !strings.Contains(errs, "/f") {
		t.Fatalf("kfs sync with the store down: exit %d, %q (want non-zero naming a file)", code, errs)
	}
	_, status := runKFSOut(t, "status", m.dir)
	if !strings.Contains(status, `"failing"`) || !strings.Contains(status, `"pending_files": 5`) {
		t.Errorf("status: %s", status)
	}
	if !strings.Contains(m.logText(), "write-back upload failed") {
		t.Errorf("no log line of the failing upload:\n%s", m.logText())
	}
	p.Set(Fault{})
	if code, errs := kfsSync(t, m.dir); code != 0 {
		t.Fatalf("kfs sync once the store answers: %d %s", code, errs)
	}
	for i := 0; i < 5; i++ {
		if got, ok := sdkObject(t, b, fmt.Sprintf("f%d", i)); !ok || string(got) != fmt.Sprint("data ", i) {
			t.Errorf("f%d: %q %v", i, got, ok)
		}
	}
}

// runKFSOut runs kfs and returns its exit code and stdout.
func runKFSOut(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(kfsBin, args...)
	cmd.Env = kfsEnv()
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	return 0, string(out)
}

// kill -9 with files written back and not uploaded (the store refusing
// them): the next mount uploads each under its last name with its last
// attributes, never brings back one deleted or renamed away, and keeps
// both where another client wrote the name meanwhile.
func TestWriteBackKillAndReplay(t *testing.T) {
	b := newBucket(t)
	cache := t.TempDir()
	m, p := faultMount(t, b, "--write-back", "--cache-dir", cache)
	if err := os.Mkdir(m.path("tmp"), 0o755); err != nil { // directories are stored at once
		t.Fatal(err)
	}
	p.Set(Fault{Kind: FaultInternal, Match: IsMethod(http.MethodPut)})
	big := randBytes(700 << 10) // staged in a file, not inline
	files := map[string][]byte{"small.csv": []byte("a,b\n1,2\n"), "big.bin": big, "tmp/.x.part": []byte("renamed"), "gone.txt": []byte("x"), "theirs.txt": []byte("ours")}
	for k, v := range files {
		if err := os.WriteFile(m.path(k), v, 0o644); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	os.Chmod(m.path("small.csv"), 0o600)
	if err := os.Rename(m.path("tmp/.x.part"), m.path("final.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path("gone.txt")); err != nil {
		t.Fatal(err)
	}
	killMount(m)
	put(t, b, "theirs.txt", []byte("theirs")) // another client, after our close
	p.Set(Fault{})
	m2 := remount(t, b, p, "--write-back", "--cache-dir", cache)
	for k, want := range map[string][]byte{"small.csv": files["small.csv"], "big.bin": big, "final.txt": []byte("renamed"), "theirs.txt": []byte("theirs")} {
		got, ok := sdkObject(t, b, k)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("%s after the replay: %d bytes (%v)\n%s", k, len(got), ok, m2.logText())
		}
	}
	if meta := sdkMeta(t, b, "small.csv"); meta["mode"] != fmt.Sprint(syscall.S_IFREG|0o600) {
		t.Errorf("the chmod after close was not replayed: %v", meta)
	}
	keys := strings.Join(sdkKeys(t, b, ""), " ")
	if strings.Contains(keys, "gone.txt") || strings.Contains(keys, ".x.part") {
		t.Errorf("a file deleted or renamed away came back: %s", keys)
	}
	var conflict string
	for _, k := range sdkKeys(t, b, "theirs.kfs-conflict-") {
		conflict = k
	}
	if got, _ := sdkObject(t, b, conflict); conflict == "" || string(got) != "ours" {
		t.Errorf("ours not kept beside theirs: %q in %s", conflict, keys)
	}
	if got, err := os.ReadFile(m2.path("final.txt")); err != nil || string(got) != "renamed" {
		t.Errorf("the new mount reads %q %v", got, err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*", "wb-*")); len(left) != 0 {
		t.Errorf("staging files left after the replay: %v", left)
	}
}

// kill -9 at every step of renaming pending files (a file, and a
// directory holding one): after the next mount each file is in the bucket
// exactly once, under its old or its new name, with its bytes.
func TestWriteBackKillDuringRename(t *testing.T) {
	b := newBucket(t)
	cache := t.TempDir()
	for i, delay := range []time.Duration{0, 200 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		m, p := faultMount(t, b, "--write-back", "--cache-dir", cache)
		p.Set(Fault{Kind: FaultInternal, Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && !strings.HasSuffix(r.URL.Path, "/") // markers go, files wait
		}})
		dir := fmt.Sprintf("r%d", i)
		os.Mkdir(m.path(dir), 0o755)
		os.WriteFile(m.path(dir, "a"), []byte("file a"), 0o644)
		os.Mkdir(m.path(dir, "sub"), 0o755)
		os.WriteFile(m.path(dir, "sub", "b"), []byte("file b"), 0o644)
		done := make(chan struct{})
		go func() {
			os.Rename(m.path(dir, "a"), m.path(dir, "a2"))
			os.Rename(m.path(dir, "sub"), m.path(dir, "sub2"))
			close(done)
		}()
		time.Sleep(delay)
		killMount(m)
		<-done
		p.Set(Fault{})
		m2 := remount(t, b, p, "--cache-dir", cache)
		for _, pair := range [][2]string{{"a", "a2"}, {"sub/b", "sub2/b"}} {
			n := 0
			for _, k := range pair {
				if got, ok := sdkObject(t, b, dir+"/"+k); ok {
					n++
					if want := "file " + pair[0][len(pair[0])-1:]; string(got) != want {
						t.Errorf("kill after %v: %s holds %q", delay, k, got)
					}
				}
			}
			if n != 1 {
				t.Errorf("kill after %v: %s is in the bucket %d times: %v\n%s", delay, pair[0], n, sdkKeys(t, b, dir+"/"), m2.logText())
			}
		}
	}
}

// A torn journal record (a crash while a close was being recorded): the
// whole records are replayed, the torn one is reported, and a staging file
// no record names is kept in lost+found, not thrown away.
func TestWriteBackTornRecord(t *testing.T) {
	b := newBucket(t)
	cache := t.TempDir()
	m, p := faultMount(t, b, "--write-back", "--cache-dir", cache)
	p.Set(Fault{Kind: FaultInternal, Match: IsMethod(http.MethodPut)})
	os.WriteFile(m.path("whole.txt"), []byte("whole"), 0o644)
	killMount(m)
	journals, _ := filepath.Glob(filepath.Join(cache, "*", "uploads*.journal"))
	if len(journals) != 1 {
		t.Fatalf("journals: %v", journals)
	}
	dir := filepath.Dir(journals[0])
	orphan := filepath.Join(dir, "wb-999999-123")
	os.WriteFile(orphan, []byte("bytes of a close never recorded"), 0o600)
	f, _ := os.OpenFile(journals[0], os.O_APPEND|os.O_WRONLY, 0o600)
	f.WriteString(`W+ 1-2-3 {"bucket":"` + b + `","key":"torn.txt","file":"` + orphan)
	f.Close()
	p.Set(Fault{})
	m2 := remount(t, b, p, "--write-back", "--cache-dir", cache)
	if got, ok := sdkObject(t, b, "whole.txt"); !ok || string(got) != "whole" {
		t.Errorf("the whole record was not replayed: %q %v", got, ok)
	}
	if !strings.Contains(m2.logText(), "cut short") {
		t.Errorf("the torn record was not reported:\n%s", m2.logText())
	}
	if got, err := os.ReadFile(filepath.Join(dir, "lost+found", filepath.Base(orphan))); err != nil || !strings.Contains(string(got), "never recorded") {
		t.Errorf("the unrecorded staging file was not kept: %v", err)
	}
}

// The cache directory full (a small tmpfs): write-back cannot keep files
// locally, so their close uploads them as in the default mode: nothing is
// lost, nothing fails.
func TestWriteBackCacheDirFull(t *testing.T) {
	b := newBucket(t)
	cache := t.TempDir()
	if err := syscall.Mount("tmpfs", cache, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(cache, syscall.MNT_DETACH) })
	m := mountKFS(t, b, "--write-back", "--cache-dir", cache)
	want := map[string][]byte{}
	for i := 0; i < 6; i++ {
		data := randBytes(300<<10 + i) // staged: over the inline size
		name := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(m.path(name), data, 0o644); err != nil {
			t.Fatalf("%s with the cache directory full: %v", name, err)
		}
		want[name] = data
	}
	if code, errs := kfsSync(t, m.dir); code != 0 {
		t.Fatalf("kfs sync: %d %s", code, errs)
	}
	for k, data := range want {
		if got, ok := sdkObject(t, b, k); !ok || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes (%v)", k, len(got), ok)
		}
	}
}

// Unmount (SIGTERM) waits for the uploads.
func TestWriteBackUnmountUploads(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b, "--write-back", "--cache-dir", t.TempDir())
	for i := 0; i < 20; i++ {
		os.WriteFile(m.path(fmt.Sprintf("u%d", i)), []byte("u"), 0o644)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for isMounted(m.dir) || processAlive(m.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("kfs did not exit after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(sdkKeys(t, b, "u")); n != 20 {
		t.Errorf("%d of 20 files in the bucket after unmount\n%s", n, m.logText())
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// Two live mounts of one bucket write the same new name: the write-back
// mount's upload finds the other's object there and keeps both; each
// mount then shows both files.
func TestWriteBackTwoMountsOneName(t *testing.T) {
	b := newBucket(t)
	wb := mountKFS(t, b, "--write-back", "--cache-dir", t.TempDir(), "--negative-ttl", "0")
	plain := mountKFS(t, b, "--negative-ttl", "0")
	if err := os.WriteFile(wb.path("same.csv"), []byte("from write-back"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain.path("same.csv"), []byte("from default"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, errs := kfsSync(t, wb.dir); code != 0 {
		t.Fatalf("kfs sync: %d %s", code, errs)
	}
	if got, _ := sdkObject(t, b, "same.csv"); string(got) != "from default" {
		t.Fatalf("the name holds %q: the other mount's write was overwritten", got)
	}
	keys := sdkKeys(t, b, "same.kfs-conflict-")
	if len(keys) != 1 {
		t.Fatalf("conflict copies: %v", keys)
	}
	if got, _ := sdkObject(t, b, keys[0]); string(got) != "from write-back" {
		t.Fatalf("our copy holds %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := os.ReadFile(wb.path("same.csv"))
		_, err := os.Stat(plain.path(keys[0]))
		if string(got) == "from default" && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the write-back mount shows %q; the other mount sees the copy: %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
