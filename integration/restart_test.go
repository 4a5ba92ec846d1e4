package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// restartingMinio is a server of one test that can be killed and brought
// back on the same address and data.
type restartingMinio struct {
	t    *testing.T
	dir  string
	addr string
	m    *Minio
}

func newRestartingMinio(t *testing.T) *restartingMinio {
	dir := t.TempDir()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	r := &restartingMinio{t: t, dir: dir, addr: addr}
	r.m = ownMinio(t, dir, addr, "", "")
	t.Cleanup(func() { r.m.Stop() })
	return r
}

// crashFor kills the server (SIGKILL) and starts it again after down.
func (r *restartingMinio) crashFor(down time.Duration) {
	r.m.Kill()
	time.Sleep(down)
	r.m = ownMinio(r.t, r.dir, r.addr, r.m.AccessKey, r.m.SecretKey)
}

func (r *restartingMinio) client() *minio.Client {
	c, err := sdkClient(r.m)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// MinIO killed and restarted in the middle of a read, a write and a
// directory rename: each operation completes correctly or fails with an
// error (never wrong bytes, never a partial object, never a file twice),
// and the same mount serves again once MinIO is back.
func TestMinioRestartsMidOperation(t *testing.T) {
	r := newRestartingMinio(t)
	ctx := context.Background()
	c := r.client()
	if err := c.MakeBucket(ctx, "restarts", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randBytes(96 << 20)
	want := sha256.Sum256(data)
	if _, err := c.PutObject(ctx, "restarts", "big.bin", strings.NewReader(string(data)), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	mnt := mountOn(t, r.m, "restarts", "--cache-size", "32MiB", "--max-readahead", "8MiB", "--part-size", "5MiB",
		"--request-timeout", "2s", "--retries", "6", "--deadline", "60s", "--attr-ttl", "1s", "--entry-ttl", "1s", "--negative-ttl", "1s")

	t.Run("read", func(t *testing.T) {
		f, err := os.Open(mnt.path("big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		done := make(chan error, 1)
		go func() { // a slow reader: about 2 s for the file
			buf := make([]byte, 1<<20)
			for {
				n, err := f.Read(buf)
				h.Write(buf[:n])
				if err == io.EOF {
					done <- nil
					return
				}
				if err != nil {
					done <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		time.Sleep(400 * time.Millisecond)
		r.crashFor(time.Second)
		select {
		case err := <-done:
			if err != nil {
				t.Logf("read across the restart failed (allowed): %v", err)
			} else if got := hex.EncodeToString(h.Sum(nil)); got != hex.EncodeToString(want[:]) {
				t.Fatalf("read across the restart gave wrong bytes: sha256 %s", got)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("read across the restart neither finished nor failed in 90 s")
		}
		if got, err := fileSha(mnt.path("big.bin")); err != nil || got != hex.EncodeToString(want[:]) {
			t.Fatalf("re-read after the restart: %s %v", got, err)
		}
	})

	t.Run("write", func(t *testing.T) {
		src := filepath.Join(r.dir, "src.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cp := exec.Command("cp", src, mnt.path("copy.bin"))
		if err := cp.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cp.Wait() }()
		time.Sleep(300 * time.Millisecond)
		r.crashFor(time.Second)
		var cpErr error
		select {
		case cpErr = <-done:
		case <-time.After(3 * time.Minute):
			_ = cp.Process.Kill()
			t.Fatal("cp across the restart neither finished nor failed in 3 minutes")
		}
		o, err := r.client().GetObject(ctx, "restarts", "copy.bin", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, rerr := io.Copy(h, o)
		o.Close()
		switch {
		case cpErr == nil && (rerr != nil || hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want[:])):
			t.Fatalf("cp returned 0 but the bucket holds something else (%v)", rerr)
		case cpErr != nil && rerr == nil:
			t.Fatalf("cp failed (%v) but an object is visible", cpErr)
		case cpErr != nil:
			t.Logf("cp across the restart failed (allowed): %v", cpErr)
		}
		if err := exec.Command("cp", src, mnt.path("again.bin")).Run(); err != nil {
			t.Fatalf("cp after the restart: %v\n%s", err, mnt.logText())
		}
		if got, err := fileSha(mnt.path("again.bin")); err != nil || got != hex.EncodeToString(want[:]) {
			t.Fatalf("again.bin: %s %v", got, err)
		}
	})

	t.Run("rename", func(t *testing.T) { renameAcrossCrash(t, r, mnt, "tree", time.Second) })
	// An outage longer than --deadline: mv fails, and the mount undoes or
	// finishes the rename by itself once MinIO is back.
	short := mountOn(t, r.m, "restarts", "--request-timeout", "1s", "--retries", "1", "--deadline", "2s",
		"--attr-ttl", "1s", "--entry-ttl", "1s", "--negative-ttl", "1s")
	t.Run("rename-long-outage", func(t *testing.T) { renameAcrossCrash(t, r, short, "tree2", 6*time.Second) })
	if os.Getenv("KFS_TEST_LOG") != "" {
		t.Log(mnt.logText())
	}
	if got, err := os.ReadFile(mnt.path("big.bin")); err != nil || sha256.Sum256(got) != want {
		t.Fatalf("the mount stopped serving: %v", err)
	}
}

// renameAcrossCrash moves a directory of 600 files while MinIO crashes
// and comes back after down; in the end every file exists once, under one
// of the names, in the bucket and in the mount.
func renameAcrossCrash(t *testing.T, r *restartingMinio, mnt *mounted, dir string, down time.Duration) {
	ctx := context.Background()
	const n = 600
	var keys []string
	for i := 0; i < n; i++ {
		keys = append(keys, fmt.Sprintf(dir+"/f%03d", i))
	}
	sdk := r.client()
	for _, k := range keys {
		if _, err := sdk.PutObject(ctx, "restarts", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(mnt.path(dir)); err != nil { // known to the mount: the crash hits the rename itself
		t.Fatal(err)
	}
	mv := exec.Command("mv", mnt.path(dir), mnt.path(dir+"-moved"))
	var out strings.Builder
	mv.Stdout, mv.Stderr = &out, &out
	if err := mv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mv.Wait() }()
	time.Sleep(150 * time.Millisecond)
	r.crashFor(down)
	select {
	case err := <-done:
		t.Logf("mv across the restart: %v %s", err, out.String())
	case <-time.After(3 * time.Minute):
		_ = mv.Process.Kill()
		t.Fatal("mv across the restart neither finished nor failed in 3 minutes")
	}
	// Every file once, under one of the names (the mount finishes or
	// undoes what the outage left, without a remount).
	var where map[string][]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		where = map[string][]string{}
		for o := range r.client().ListObjects(ctx, "restarts", minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if d, name, ok := strings.Cut(o.Key, "/"); ok && (d == dir || d == dir+"-moved") {
				where[name] = append(where[name], d)
			}
		}
		ok := len(where) == n
		for _, ds := range where {
			ok = ok && len(ds) == 1
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after the restart: %d names, some twice or missing: %v\n%s", len(where), where, mnt.logText())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // the TTLs
	a, _ := os.ReadDir(mnt.path(dir))
	b, _ := os.ReadDir(mnt.path(dir + "-moved"))
	if len(a)+len(b) != n {
		t.Fatalf("the mount shows %d + %d files, want %d in all", len(a), len(b), n)
	}
}
