package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// An erasure-coded MinIO (one process, four drives) loses a drive in the
// middle of a read and a write workload through the mount: both go on,
// and every byte read or written checks out by sha256.
func TestErasureSurvivesALostDrive(t *testing.T) {
	dir := t.TempDir()
	m, err := StartMinio(MinioConfig{DataDir: filepath.Join(dir, "data"), Drives: 4, LogPath: filepath.Join(dir, "minio.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	c, err := sdkClient(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "erasure", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	const nread = 4
	sums := map[string]string{}
	for i := 0; i < nread; i++ {
		data := randBytes(12 << 20)
		name := fmt.Sprintf("r%d.bin", i)
		if _, err := c.PutObject(ctx, "erasure", name, strings.NewReader(string(data)), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(data)
		sums[name] = hex.EncodeToString(s[:])
	}
	// No block cache to speak of: every pass reads from the drives.
	mnt := mountOn(t, m, "erasure", "--cache-size", "16MiB", "--max-readahead", "4MiB", "--part-size", "5MiB",
		"--attr-ttl", "0", "--entry-ttl", "0")

	if ents, err := os.ReadDir(mnt.dir); err != nil || len(ents) != nread {
		t.Fatalf("mount shows %v (%v)", ents, err)
	}
	start := time.Now()
	if got, err := fileSha(mnt.path("r0.bin")); err != nil || got != sums["r0.bin"] {
		t.Fatalf("first read: %v", err)
	}
	took := time.Since(start)
	start = time.Now()
	o, err := c.GetObject(ctx, "erasure", "r0.bin", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, o)
	o.Close()
	t.Logf("first read of 12 MiB: %v through the mount, %v direct (%d bytes, %v)", took, time.Since(start), n, err)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	defer func() { halt(); wg.Wait() }() // never leave the mount busy
	var mu sync.Mutex
	var failures []string
	fail := func(f string, a ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(f, a...))
		mu.Unlock()
	}
	reads, writes := 0, 0
	// untilHalted runs step(0), step(1), ... until halt, counting the
	// steps that report success in *count.
	untilHalted := func(count *int, step func(i int) bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if step(i) {
					mu.Lock()
					*count++
					mu.Unlock()
				}
			}
		}()
	}
	untilHalted(&reads, func(i int) bool { // readers: every file again and again
		name := fmt.Sprintf("r%d.bin", i%nread)
		if got, err := fileSha(mnt.path(name)); err != nil || got != sums[name] {
			fail("read %s: %s %v", name, got, err)
		}
		return true
	})
	untilHalted(&writes, func(i int) bool { // writers: new files, checked through the SDK
		data := randBytes(6<<20 + i)
		name := fmt.Sprintf("w%03d.bin", i)
		if err := os.WriteFile(mnt.path(name), data, 0o644); err != nil {
			fail("write %s: %v", name, err)
			return false
		}
		o, err := c.GetObject(ctx, "erasure", name, minio.GetObjectOptions{})
		if err != nil {
			fail("get %s: %v", name, err)
			return false
		}
		h := sha256.New()
		_, err = io.Copy(h, o)
		o.Close()
		if want := sha256.Sum256(data); err != nil || hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want[:]) {
			fail("object %s differs from what was written (%v)", name, err)
		}
		return true
	})
	time.Sleep(2 * time.Second)
	mu.Lock()
	before := [2]int{reads, writes}
	mu.Unlock()
	// The drive goes at once (a rename), then its files.
	drive := filepath.Join(dir, "data", "d2")
	if err := os.Rename(drive, drive+".lost"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(drive + ".lost"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	halt()
	wg.Wait()
	t.Logf("before the drive went: %d reads, %d writes; in all %d reads, %d writes", before[0], before[1], reads, writes)
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %v\n%s", len(failures), failures[0], mnt.logText())
	}
	if reads <= before[0] || writes <= before[1] {
		t.Fatalf("the workload stopped when the drive went: reads %d -> %d, writes %d -> %d", before[0], reads, before[1], writes)
	}
}
