package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"
)

// sdkBytes reads an object through the SDK.
func sdkBytes(t *testing.T, bucket, key string) []byte {
	t.Helper()
	o, err := client(t).GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return b
}

func sdkSha(t *testing.T, bucket, key string) string {
	t.Helper()
	o, err := client(t).GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	h := sha256.New()
	if _, err := io.Copy(h, o); err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeLocal(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCpSizes(t *testing.T) {
	b := newBucket(t)
	const part = 5 << 20
	m := mountKFS(t, b, "--part-size", "5MiB")
	for _, n := range []int{0, 1, part - 1, part, part + 1, 3*part + 17} {
		data := randBytes(n)
		src := writeLocal(t, data)
		name := fmt.Sprintf("cp-%d.bin", n)
		sh(t, "cp", src, m.path(name))
		if got := sdkSha(t, b, name); got != sha(data) {
			t.Errorf("%s: sha256 in the bucket %s, want %s", name, got, sha(data))
		}
		st, err := client(t).StatObject(context.Background(), b, name, minio.StatObjectOptions{})
		if err != nil || st.Size != int64(n) {
			t.Errorf("%s: stat %d %v", name, st.Size, err)
		}
	}
	// Overwriting an existing file (open without O_TRUNC, then truncate, as
	// the kernel sends cp's O_TRUNC) and a shell redirection.
	small := writeLocal(t, []byte("short"))
	sh(t, "cp", small, m.path(fmt.Sprintf("cp-%d.bin", part+1)))
	if got := string(sdkBytes(t, b, fmt.Sprintf("cp-%d.bin", part+1))); got != "short" {
		t.Errorf("overwrite with cp: %q", got)
	}
	sh(t, "sh", "-c", "echo replaced > "+m.path("cp-1.bin"))
	if got := string(sdkBytes(t, b, "cp-1.bin")); got != "replaced\n" {
		t.Errorf("overwrite with >: %q", got)
	}
	// Content-Type comes from the extension.
	sh(t, "cp", writeLocal(t, []byte("a,b\n1,2\n")), m.path("table.csv"))
	if st, _ := client(t).StatObject(context.Background(), b, "table.csv", minio.StatObjectOptions{}); st.ContentType != "text/csv; charset=utf-8" && st.ContentType != "text/csv" {
		t.Errorf("Content-Type of table.csv: %q", st.ContentType)
	}
	ups, _ := kfsStoreUploads(t, b)
	if len(ups) != 0 {
		t.Errorf("multipart uploads left behind: %v", ups)
	}
}

// kfsStoreUploads lists the incomplete multipart uploads of a bucket.
func kfsStoreUploads(t *testing.T, bucket string) ([]string, error) {
	t.Helper()
	var out []string
	for u := range client(t).ListIncompleteUploads(context.Background(), bucket, "", true) {
		if u.Err != nil {
			return out, u.Err
		}
		out = append(out, u.Key)
	}
	return out, nil
}

func TestCp1GiB(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	src := filepath.Join(t.TempDir(), "big")
	sh(t, "dd", "if=/dev/urandom", "of="+src, "bs=1M", "count=1024", "status=none")
	want := strings.Fields(sh(t, "sha256sum", src))[0]
	sh(t, "cp", src, m.path("big.bin"))
	if got := sdkSha(t, b, "big.bin"); got != want {
		t.Fatalf("1 GiB through cp: sha256 %s, want %s", got, want)
	}
}

func TestModifyInPlace(t *testing.T) {
	b := newBucket(t)
	orig := randBytes(12<<20 + 5)
	put(t, b, "f.bin", orig)
	put(t, b, "log.txt", []byte("line 1\n"))
	put(t, b, "t.txt", []byte("0123456789"))
	m := mountKFS(t, b, "--part-size", "5MiB")

	// dd conv=notrunc seek= changes 4 KiB in the middle, nothing else.
	patch := bytes.Repeat([]byte{0xAB}, 4096)
	sh(t, "dd", "if="+writeLocal(t, patch), "of="+m.path("f.bin"), "bs=4096", "seek=1000", "conv=notrunc", "status=none")
	want := append([]byte(nil), orig...)
	copy(want[4096*1000:], patch)
	if got := sdkBytes(t, b, "f.bin"); !bytes.Equal(got, want) {
		t.Fatalf("dd conv=notrunc: bucket has %d bytes, differing from the expected edit", len(got))
	}

	// >> appends.
	sh(t, "sh", "-c", "echo 'line 2' >> "+m.path("log.txt"))
	if got := string(sdkBytes(t, b, "log.txt")); got != "line 1\nline 2\n" {
		t.Fatalf(">> gave %q", got)
	}

	// truncate shrinks and grows (with zeros).
	sh(t, "truncate", "-s", "4", m.path("t.txt"))
	if got := string(sdkBytes(t, b, "t.txt")); got != "0123" {
		t.Fatalf("truncate -s 4 gave %q", got)
	}
	sh(t, "truncate", "-s", "8", m.path("t.txt"))
	if got := sdkBytes(t, b, "t.txt"); !bytes.Equal(got, []byte("0123\x00\x00\x00\x00")) {
		t.Fatalf("truncate -s 8 gave %q", got)
	}
	sh(t, "truncate", "-s", "0", m.path("f.bin"))
	if got := sdkBytes(t, b, "f.bin"); len(got) != 0 {
		t.Fatalf("truncate -s 0 left %d bytes", len(got))
	}

	// A writer that seeks back after streaming parts (random writes on a new file).
	f, err := os.Create(m.path("seek.bin"))
	if err != nil {
		t.Fatal(err)
	}
	big := randBytes(11 << 20)
	if _, err := f.Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("HEADER"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	copy(big, "HEADER")
	if got := sdkBytes(t, b, "seek.bin"); !bytes.Equal(got, big) {
		t.Fatal("seek-back writer: bucket differs")
	}
}

// An editor's save: write a temp file, fsync, rename over the original.
func TestEditorSave(t *testing.T) {
	b := newBucket(t)
	put(t, b, "notes.txt", []byte("old text\n"))
	m := mountKFS(t, b)
	tmp := m.path(".notes.txt.swp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("new text\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	// fsync returned: the bytes are in the bucket already.
	if got := string(sdkBytes(t, b, ".notes.txt.swp")); got != "new text\n" {
		t.Fatalf("after fsync the bucket has %q", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, m.path("notes.txt")); err != nil {
		t.Fatal(err)
	}
	if got := string(sdkBytes(t, b, "notes.txt")); got != "new text\n" {
		t.Fatalf("after rename: %q", got)
	}
	if _, err := client(t).StatObject(context.Background(), b, ".notes.txt.swp", minio.StatObjectOptions{}); err == nil {
		t.Fatal("the temp file is still in the bucket")
	}
	if got, _ := os.ReadFile(m.path("notes.txt")); string(got) != "new text\n" {
		t.Fatalf("through the mount: %q", got)
	}
	st, _ := os.Stat(m.path("notes.txt"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode after rename %v, want 0600", st.Mode())
	}
}

func TestNamespaceOps(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	if err := os.Mkdir(m.path("empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t).StatObject(context.Background(), b, "empty/", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("mkdir made no marker: %v", err)
	}
	os.MkdirAll(m.path("full/sub"), 0o755)
	os.WriteFile(m.path("full/sub/x"), []byte("x"), 0o644)
	if err := syscall.Rmdir(m.path("full")); err != syscall.ENOTEMPTY {
		t.Fatalf("rmdir of a non-empty dir: %v, want ENOTEMPTY", err)
	}
	if err := os.Remove(m.path("empty")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Link(m.path("full/sub/x"), m.path("hard")); err != syscall.ENOTSUP && err != syscall.EPERM {
		t.Fatalf("link: %v, want ENOTSUP", err)
	}
	if err := os.Symlink("sub/x", m.path("full/link")); err != nil {
		t.Fatal(err)
	}
	// rename onto a non-empty directory is refused.
	os.Mkdir(m.path("other"), 0o755)
	os.WriteFile(m.path("other/y"), []byte("y"), 0o644)
	if err := syscall.Rename(m.path("full"), m.path("other")); err != syscall.ENOTEMPTY && err != syscall.EEXIST {
		t.Fatalf("rename onto a non-empty dir: %v", err)
	}
	sh(t, "rm", "-rf", m.path("full"), m.path("other"))
	if keys := listKeys(t, b, ""); len(keys) != 0 {
		t.Fatalf("left after rm -rf: %v", keys)
	}

	// After a remount everything is read back from the bucket alone.
	os.Mkdir(m.path("kept"), 0o750)
	os.Symlink("../target", m.path("kept/ln"))
	os.WriteFile(m.path("kept/f"), []byte("f"), 0o640)
	os.Chmod(m.path("kept/f"), 0o604)
	when := time.Date(2021, 3, 4, 5, 6, 7, 890000000, time.UTC)
	os.Chtimes(m.path("kept/f"), when, when)
	m2 := mountKFS(t, b)
	if target, err := os.Readlink(m2.path("kept/ln")); err != nil || target != "../target" {
		t.Fatalf("readlink after remount: %q %v", target, err)
	}
	st, err := os.Lstat(m2.path("kept/f"))
	if err != nil || st.Mode().Perm() != 0o604 || !st.ModTime().Equal(when) {
		t.Fatalf("after remount: %v %v %v", st.Mode(), st.ModTime(), err)
	}
	if st, err := os.Stat(m2.path("kept")); err != nil || !st.IsDir() {
		t.Fatalf("empty-made dir after remount: %v", err)
	}
}

func listKeys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	var out []string
	for o := range client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

func TestMoveDirectory(t *testing.T) {
	b := newBucket(t)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("src/d%d/f%04d", i%10, i)
	}
	putMany(t, b, keys, func(k string) []byte { return []byte(k) })
	m := mountKFS(t, b)
	sh(t, "mv", m.path("src"), m.path("dst"))
	if left := listKeys(t, b, "src/"); len(left) != 0 {
		t.Fatalf("%d objects left under src/", len(left))
	}
	moved := listKeys(t, b, "dst/")
	if len(moved) != 1000 {
		t.Fatalf("%d objects under dst/, want 1000", len(moved))
	}
	if got := string(sdkBytes(t, b, "dst/d3/f0123")); got != "src/d3/f0123" {
		t.Fatalf("moved content %q", got)
	}
	if got, err := os.ReadFile(m.path("dst/d3/f0123")); err != nil || string(got) != "src/d3/f0123" {
		t.Fatalf("through the mount after mv: %q %v", got, err)
	}
	if !strings.Contains(m.logText(), "objects=1000") {
		t.Errorf("no progress in the log:\n%s", m.logText())
	}
}

func TestRsyncAndTar(t *testing.T) {
	for _, tool := range []string{"rsync", "tar", "diff"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: run scripts/install-deps.sh", tool)
		}
	}
	b := newBucket(t)
	src := t.TempDir()
	for i := 0; i < 20; i++ {
		p := filepath.Join(src, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d.txt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, randBytes(1000+i*1000), 0o644)
	}
	os.Symlink("d0/f0.txt", filepath.Join(src, "link"))
	m := mountKFS(t, b)
	sh(t, "rsync", "-a", src+"/", m.path("r")+"/")
	out := sh(t, "rsync", "-a", "--itemize-changes", src+"/", m.path("r")+"/")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("second rsync -a transferred:\n%s", out)
	}
	m2 := mountKFS(t, b)
	if out := sh(t, "rsync", "-a", "--itemize-changes", src+"/", m2.path("r")+"/"); strings.Contains(out, ">f") {
		t.Fatalf("rsync after a remount transferred files:\n%s", out)
	}

	tarball := filepath.Join(t.TempDir(), "t.tar")
	sh(t, "tar", "-C", src, "-cf", tarball, ".")
	os.Mkdir(m.path("x"), 0o755)
	sh(t, "tar", "-C", m.path("x"), "-xf", tarball)
	m3 := mountKFS(t, b)
	sh(t, "diff", "-r", "--no-dereference", src, m3.path("x"))
}

func TestConcurrentWriters(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b, "--part-size", "5MiB")
	var wg sync.WaitGroup
	sums := make([]string, 8)
	errs := make([]error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := randBytes(3<<20 + i*1000003)
			sums[i] = sha(data)
			errs[i] = os.WriteFile(m.path(fmt.Sprintf("w%d.bin", i)), data, 0o644)
		}()
	}
	wg.Wait()
	for i := range sums {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if got := sdkSha(t, b, fmt.Sprintf("w%d.bin", i)); got != sums[i] {
			t.Errorf("writer %d: bucket content differs", i)
		}
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	b := newBucket(t)
	put(t, b, "x", []byte("x"))
	m := mountKFS(t, b, "--read-only")
	checks := map[string]error{
		"create": os.WriteFile(m.path("new"), []byte("n"), 0o644),
		"mkdir":  os.Mkdir(m.path("d"), 0o755),
		"remove": os.Remove(m.path("x")),
		"rename": os.Rename(m.path("x"), m.path("y")),
		"chmod":  os.Chmod(m.path("x"), 0o600),
	}
	for op, err := range checks {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s on a read-only mount: %v, want EROFS", op, err)
		}
	}
}

// coreutils cp between two files of a mount uses copy_file_range: kfs makes
// it a server-side copy. Told apart by the ETag: a server-side copy of a
// single-part object keeps its MD5 ETag, while bytes written through the
// mount with 5 MiB parts would become a multipart upload ("…-3").
func TestCopyFileRangeIsServerSide(t *testing.T) {
	b := newBucket(t)
	data := randBytes(11<<20 + 1)
	put(t, b, "src.bin", data)
	m := mountKFS(t, b, "--part-size", "5MiB")
	in, err := os.Open(m.path("src.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(m.path("dst.bin"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := unixCopyFileRange(int(in.Fd()), int(out.Fd()), len(data))
	if err != nil || n != len(data) {
		t.Fatalf("copy_file_range = %d, %v", n, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, _ := client(t).StatObject(ctx, b, "src.bin", minio.StatObjectOptions{})
	for _, name := range []string{"dst.bin", "cp.bin"} {
		if name == "cp.bin" {
			sh(t, "cp", m.path("src.bin"), m.path("cp.bin"))
		}
		if got := sdkSha(t, b, name); got != sha(data) {
			t.Fatalf("%s differs", name)
		}
		dst, _ := client(t).StatObject(ctx, b, name, minio.StatObjectOptions{})
		if dst.ETag != src.ETag || strings.Contains(dst.ETag, "-") {
			t.Fatalf("%s has ETag %q, source %q: not a server-side copy", name, dst.ETag, src.ETag)
		}
	}
	// The control: the same bytes written through the mount.
	sh(t, "dd", "if="+m.path("src.bin"), "of="+m.path("written.bin"), "bs=1M", "status=none")
	if w, _ := client(t).StatObject(ctx, b, "written.bin", minio.StatObjectOptions{}); !strings.Contains(w.ETag, "-") {
		t.Fatalf("control: written bytes have ETag %q, expected a multipart ETag", w.ETag)
	}
}

// unixCopyFileRange copies n bytes in one copy_file_range(2) call: a
// server-side copy answers the whole length at once.
func unixCopyFileRange(in, out, n int) (int, error) {
	return unix.CopyFileRange(in, nil, out, nil, n, 0)
}

// rm -rf of many files: unlinks are batched, names vanish at once in this
// mount, and the objects are gone when rm returns (its rmdir waits).
func TestRmRfBatched(t *testing.T) {
	b := newBucket(t)
	keys := make([]string, 450)
	for i := range keys {
		keys[i] = fmt.Sprintf("tree/d%d/f%03d", i%3, i)
	}
	putMany(t, b, keys, func(k string) []byte { return []byte("x") })
	put(t, b, "single.txt", []byte("s"))
	m := mountKFS(t, b)
	sh(t, "rm", "-rf", m.path("tree"))
	if left := listKeys(t, b, "tree/"); len(left) != 0 {
		t.Fatalf("%d objects left after rm -rf returned", len(left))
	}
	// A lone rm: hidden at once, gone from the bucket within the batch delay.
	sh(t, "rm", m.path("single.txt"))
	if _, err := os.Stat(m.path("single.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after rm: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(listKeys(t, b, "single.txt")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("single.txt still in the bucket 5s after rm")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Re-creating a name whose deletion is pending keeps the new object.
	os.WriteFile(m.path("again.txt"), []byte("1"), 0o644)
	os.Remove(m.path("again.txt"))
	if err := os.WriteFile(m.path("again.txt"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := string(sdkBytes(t, b, "again.txt")); got != "2" {
		t.Fatalf("re-created file: %q", got)
	}
}

// A 4 KiB write and fsync in the middle of a 200 MiB object costs a
// handful of requests (the changed part, one copy before it and one
// after, the upload's start and end, the base bytes of the changed part,
// the tags it keeps), not one per part; the bytes are right.
func TestSmallEditOfALargeObject(t *testing.T) {
	b := newBucket(t)
	data := randBytes(200 << 20)
	put(t, b, "big.bin", data)
	m := mountKFS(t, b)
	byOp := func() map[string]float64 {
		_, out, _ := kfsRun(t, "metrics", m.dir)
		ops := map[string]float64{}
		for _, s := range parseMetrics(t, out)["kfs_s3_requests_total"].GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "op" {
					ops[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
		return ops
	}
	requests := func() float64 {
		total := 0.0
		for _, v := range byOp() {
			total += v
		}
		return total
	}
	if st, err := os.Stat(m.path("big.bin")); err != nil || st.Size() != int64(len(data)) {
		t.Fatal(st, err)
	}
	before := requests()
	f, err := os.OpenFile(m.path("big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	edit := bytes.Repeat([]byte("E"), 4096)
	if _, err := f.WriteAt(edit, 100<<20+777); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	used := requests() - before
	ops := byOp()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(data[100<<20+777:], edit)
	if got := sdkSha(t, b, "big.bin"); got != sha(data) {
		t.Fatal("the edited object differs")
	}
	if used > 8 {
		t.Fatalf("a 4 KiB edit + fsync of a 200 MiB file took %v requests, want at most 8 (all so far: %v)", used, ops)
	}
	t.Logf("a 4 KiB edit + fsync of a 200 MiB object: %v requests", used)
}
