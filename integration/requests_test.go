package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rsync -a of small files: the copies that set modes, times and the final
// name never look the object up first (kfs wrote it: it knows its size and
// ETag, and every copy is conditioned on that ETag), so no HEAD finds an
// object; per file what is left is the PUT, the copies and the delete.
func TestRsyncSendsNoHeadForWhatItWrote(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 20; i++ {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), randBytes(3000), 0o640)
	}
	b := newBucket(t)
	m := mountKFS(t, b)
	count := func(op, status string) float64 {
		_, out, _ := kfsRun(t, "metrics", m.dir)
		v, _ := metricValue(parseMetrics(t, out), "kfs_s3_requests_total", map[string]string{"op": op, "status": status})
		return v
	}
	head0, put0 := count("HeadObject", "200"), count("PutObject", "200")
	sh(t, "rsync", "-a", src+"/", m.path("copy")+"/")
	if n := count("HeadObject", "200") - head0; n != 0 {
		t.Fatalf("rsync -a of 20 new files looked up %v objects that exist", n)
	}
	if n := count("PutObject", "200") - put0; n > 50 { // a PUT and a copy per file, and the directory's marker and its times
		t.Fatalf("%v PUTs and copies for 20 files", n)
	}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("copy/f%02d", i)
		want, _ := os.ReadFile(filepath.Join(src, fmt.Sprintf("f%02d", i)))
		if got := sdkBytes(t, b, k); !bytes.Equal(got, want) {
			t.Fatalf("%s differs", k)
		}
	}
	stats := sh(t, "rsync", "-ai", src+"/", m.path("copy")+"/")
	if strings.TrimSpace(stats) != "" {
		t.Fatalf("a second rsync -a sent files again (modes or times lost):\n%s", stats)
	}
}

// Attributes set right after a hidden temporary was written are held back
// for a moment (journaled) so a rename carries them: they reach the store
// within a second, at fsync at once, and after kill -9 with the next
// mount. Other files' attributes are stored before chmod returns.
func TestHeldBackAttributes(t *testing.T) {
	b := newBucket(t)
	cacheDir := t.TempDir()
	m := mountKFS(t, b, "--cache-dir", cacheDir)
	mode := func(key string) string { return sdkMeta(t, b, key)["mode"] }
	want := fmt.Sprint(syscall.S_IFREG | 0o600)

	os.WriteFile(m.path("plain.txt"), []byte("x"), 0o644)
	os.Chmod(m.path("plain.txt"), 0o600)
	if got := mode("plain.txt"); got != want {
		t.Fatalf("a plain file's chmod is not stored when it returns: %s", got)
	}

	os.WriteFile(m.path(".tmp.a"), []byte("x"), 0o644)
	os.Chmod(m.path(".tmp.a"), 0o600)
	if st, _ := os.Stat(m.path(".tmp.a")); st.Mode().Perm() != 0o600 {
		t.Fatalf("the mount does not show the chmod at once: %v", st.Mode())
	}
	deadline := time.Now().Add(3 * time.Second)
	for mode(".tmp.a") != want {
		if time.Now().After(deadline) {
			t.Fatalf("held-back chmod not stored within 3s: %s", mode(".tmp.a"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	os.WriteFile(m.path(".tmp.b"), []byte("x"), 0o644)
	os.Chmod(m.path(".tmp.b"), 0o600)
	f, err := os.Open(m.path(".tmp.b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := mode(".tmp.b"); got != want {
		t.Fatalf("fsync did not store the held-back chmod: %s", got)
	}

	// kill -9 while held back: the next mount stores it.
	os.WriteFile(m.path(".tmp.c"), []byte("x"), 0o644)
	os.Chmod(m.path(".tmp.c"), 0o600)
	m.cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 100 && isMounted(m.dir); i++ {
		syscall.Unmount(m.dir, syscall.MNT_DETACH)
		time.Sleep(20 * time.Millisecond)
	}
	if got := mode(".tmp.c"); got == want {
		t.Log("stored before the kill (the machine was slow); the replay is not exercised")
	}
	m2 := mountKFS(t, b, "--cache-dir", cacheDir)
	if got := mode(".tmp.c"); got != want {
		t.Fatalf("the next mount did not store the chmod a killed run held back: %s\n%s", got, m2.logText())
	}
}
