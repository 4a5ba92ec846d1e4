package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func versionCount(t *testing.T, bucket, key string) int {
	t.Helper()
	n := 0
	for o := range client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.Key == key {
			n++
		}
	}
	return n
}

func newVersionedBucket(t *testing.T) string {
	t.Helper()
	b := newBucket(t)
	if err := client(t).EnableVersioning(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

// One logical write is one PUT: a shell's `> f` (open, dup2, close) and a
// child that inherits the descriptor make one version, not two.
func TestShellRedirectionIsOnePut(t *testing.T) {
	b := newVersionedBucket(t)
	m := mountKFS(t, b)
	sh(t, "sh", "-c", "echo one > "+m.path("f"))
	if n := versionCount(t, b, "f"); n != 1 {
		t.Fatalf("echo one > f made %d versions, want 1", n)
	}
	if got := string(sdkBytes(t, b, "f")); got != "one\n" {
		t.Fatalf("content %q", got)
	}
	sh(t, "sh", "-c", "exec 3>"+m.path("g")+"; echo a >&3; sh -c 'echo b >&3'; echo c >&3; exec 3>&-")
	if n := versionCount(t, b, "g"); n != 1 {
		t.Fatalf("a descriptor shared with a child made %d versions, want 1", n)
	}
	if got := string(sdkBytes(t, b, "g")); got != "a\nb\nc\n" {
		t.Fatalf("content %q", got)
	}
	sh(t, "sh", "-c", ": > "+m.path("empty"))
	if n := versionCount(t, b, "empty"); n != 1 {
		t.Fatalf(": > empty made %d versions", n)
	}
}

// After mv of a directory every child is there at once, to read, append,
// truncate and rename.
func TestRenameDirectoryThenUseChildren(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	os.Mkdir(m.path("dir"), 0o755)
	for i := 0; i < 100; i++ {
		if err := os.WriteFile(m.path(fmt.Sprintf("dir/f%03d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, "ls", "-l", m.path("dir"))
	sh(t, "mv", m.path("dir"), m.path("dir2"))
	for i := 0; i < 100; i++ {
		got, err := os.ReadFile(m.path(fmt.Sprintf("dir2/f%03d", i)))
		if err != nil || string(got) != fmt.Sprint(i) {
			t.Fatalf("cat dir2/f%03d right after mv: %q %v", i, got, err)
		}
	}
	f, err := os.OpenFile(m.path("dir2/f000"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("+"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(m.path("dir2/f001"), 0); err != nil {
		t.Fatalf("truncate right after the directory's rename: %v", err)
	}
	if err := os.Rename(m.path("dir2/f002"), m.path("dir2/moved")); err != nil {
		t.Fatal(err)
	}
	if got := string(sdkBytes(t, b, "dir2/f000")); got != "0+" {
		t.Fatalf("appended child %q", got)
	}
	if len(listKeys(t, b, "dir/")) != 0 || len(listKeys(t, b, "dir2/")) != 101 {
		t.Fatalf("keys after the rename: %d under dir/, %d under dir2/", len(listKeys(t, b, "dir/")), len(listKeys(t, b, "dir2/")))
	}
}

// What the control socket changes, the mount shows at once (its TTLs are
// a minute here).
func TestControlSocketChangesShowAtOnce(t *testing.T) {
	b := newBucket(t)
	put(t, b, "p1", randBytes(5<<20))
	put(t, b, "p2", []byte("tail"))
	put(t, b, "src.txt", []byte("source"))
	put(t, b, "gone.txt", []byte("x"))
	putMany(t, b, []string{"tree/a", "tree/b", "tree/c/d"}, func(string) []byte { return []byte("t") })
	m := mountKFS(t, b, "--entry-ttl", "1m", "--attr-ttl", "1m", "--negative-ttl", "1m")
	sh(t, "ls", "-lR", m.dir) // everything cached, misses too:
	for _, n := range []string{"all", "copy.txt"} {
		if _, err := os.Stat(m.path(n)); !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(m.path(name))
		if err != nil {
			t.Fatalf("read %s right after the change: %v", name, err)
		}
		return string(b)
	}
	kfsOut(t, "compose", m.path("all"), m.path("p1"), m.path("p2"))
	if st, err := os.Stat(m.path("all")); err != nil || st.Size() != 5<<20+4 {
		t.Fatalf("composed file through the mount: %v %v", st, err)
	}
	kfsOut(t, "cp", "--server-side", m.path("src.txt"), m.path("copy.txt"))
	if got := read("copy.txt"); got != "source" {
		t.Fatalf("copy %q", got)
	}
	put(t, b, "src.txt", []byte("changed source"))
	kfsOut(t, "cp", "--server-side", m.path("src.txt"), m.path("copy.txt"))
	if got := read("copy.txt"); got != "changed source" {
		t.Fatalf("overwritten by a copy: %q", got)
	}
	kfsOut(t, "rm", m.path("gone.txt"))
	if _, err := os.Stat(m.path("gone.txt")); !os.IsNotExist(err) {
		t.Fatalf("removed through the socket, still there: %v", err)
	}
	kfsOut(t, "rm", "-r", m.path("tree"))
	if _, err := os.Stat(m.path("tree/a")); !os.IsNotExist(err) {
		t.Fatalf("removed tree: %v", err)
	}
	if ents, _ := os.ReadDir(m.dir); strings.Contains(fmt.Sprint(ents), "gone.txt") || strings.Contains(fmt.Sprint(ents), "tree") {
		t.Fatalf("listing after removals: %v", ents)
	}
}

// Another client overwrites a file: new opens read it (or the old bytes),
// never an error.
func TestOutsideOverwriteNewOpensRead(t *testing.T) {
	b := newBucket(t)
	put(t, b, "f", []byte("version one"))
	m := mountKFS(t, b, "--attr-ttl", "1m", "--entry-ttl", "1m")
	if got, err := os.ReadFile(m.path("f")); err != nil || string(got) != "version one" {
		t.Fatal(got, err)
	}
	put(t, b, "f", []byte("version two, longer"))
	sh(t, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
	for i := 0; i < 5; i++ {
		got, err := os.ReadFile(m.path("f"))
		if err != nil {
			t.Fatalf("open+read %d after an outside overwrite: %v", i, err)
		}
		if s := string(got); s != "version one" && s != "version two, longer" {
			t.Fatalf("read %q: a mix of versions", s)
		}
	}
}

// Names created by another client show within the negative TTL, even in a
// directory kfs listed completely (or made) a moment ago.
func TestOutsideCreateShowsWithinNegativeTTL(t *testing.T) {
	b := newBucket(t)
	put(t, b, "d/old", []byte("x"))
	m := mountKFS(t, b, "--entry-ttl", "1m", "--attr-ttl", "1m", "--negative-ttl", "1s")
	sh(t, "ls", m.path("d"))
	os.Mkdir(m.path("made"), 0o755)
	sh(t, "ls", m.path("made"))
	put(t, b, "d/new", []byte("new"))
	put(t, b, "made/inside", []byte("inside"))
	time.Sleep(1500 * time.Millisecond)
	for _, p := range []string{"d/new", "made/inside"} {
		if _, err := os.ReadFile(m.path(p)); err != nil {
			t.Fatalf("%s 1.5 s after another client made it (negative TTL 1 s): %v", p, err)
		}
	}
	if out := sh(t, "ls", m.path("d")); !strings.Contains(out, "new") {
		t.Fatalf("ls d: %q", out)
	}
}

// A TTL of 0 means "always ask the store": such a mount works.
func TestZeroTTLMountWorks(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b, "--entry-ttl", "0", "--attr-ttl", "0", "--negative-ttl", "0")
	done := make(chan error, 1)
	go func() {
		cmd := exec.Command("sh", "-c", "set -e; cd "+m.dir+"; mkdir d; echo hi > d/f; cat d/f; ls -l d; mv d/f d/g; rm d/g; rmdir d")
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a mount with TTLs of 0 did not finish simple work in 30 s")
	}
}

// Unlinked while open, or replaced by a rename while open: the name stays
// gone and nothing reaches the bucket.
func TestUnlinkedWhileOpenStaysGone(t *testing.T) {
	b := newBucket(t)
	put(t, b, "existing", randBytes(200000))
	put(t, b, "target", []byte("old"))
	m := mountKFS(t, b, "--entry-ttl", "1s", "--attr-ttl", "1s", "--negative-ttl", "1s")
	f, err := os.Create(m.path("new"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(m.path("new"))
	f.Write([]byte("after unlink"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := os.OpenFile(m.path("existing"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(m.path("existing"))
	g.WriteAt([]byte("written"), 0)
	buf := make([]byte, 7)
	if _, err := g.ReadAt(buf, 0); err != nil || string(buf) != "written" {
		t.Fatalf("read through an unlinked handle: %q %v", buf, err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := os.OpenFile(m.path("target"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(m.path("src"), []byte("renamed in"), 0o644)
	if err := os.Rename(m.path("src"), m.path("target")); err != nil {
		t.Fatal(err)
	}
	h.WriteAt([]byte("OLD HANDLE"), 0)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2200 * time.Millisecond) // twice the TTLs
	for _, n := range []string{"new", "existing"} {
		if _, err := os.Stat(m.path(n)); !os.IsNotExist(err) {
			t.Fatalf("%s came back: %v", n, err)
		}
		if _, err := client(t).StatObject(context.Background(), b, n, minio.StatObjectOptions{}); err == nil {
			t.Fatalf("%s is in the bucket", n)
		}
	}
	if got := string(sdkBytes(t, b, "target")); got != "renamed in" {
		t.Fatalf("target in the bucket: %q", got)
	}
}

// Ten dd writers into one file, each its own region (conv=notrunc): every
// byte of every writer is there.
func TestTenDdWritersIntoOneFile(t *testing.T) {
	b := newBucket(t)
	base := randBytes(30 << 20)
	put(t, b, "big", base)
	m := mountKFS(t, b)
	want := append([]byte(nil), base...)
	errs := make(chan error, 10)
	for w := 0; w < 10; w++ {
		chunk := bytes.Repeat([]byte{byte('A' + w)}, 1<<20)
		copy(want[w*3<<20:], chunk)
		local := writeLocal(t, chunk)
		go func(w int) {
			out, err := exec.Command("dd", "if="+local, "of="+m.path("big"), "bs=64k", fmt.Sprintf("seek=%d", w*3*16), "conv=notrunc").CombinedOutput()
			if err != nil {
				err = fmt.Errorf("dd %d: %v: %s", w, err, out)
			}
			errs <- err
		}(w)
	}
	for i := 0; i < 10; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := sdkSha(t, b, "big"); got != sha(want) {
		t.Fatal("the bucket does not hold every writer's bytes")
	}
	if got, err := os.ReadFile(m.path("big")); err != nil || sha(got) != sha(want) {
		t.Fatalf("read back through the mount: %v", err)
	}
}
