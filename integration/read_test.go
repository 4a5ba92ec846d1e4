package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// sdkTree lists a bucket through the SDK as the paths a mount should show:
// files with sizes, and every directory implied by a key or marker.
func sdkTree(t *testing.T, bucket string) map[string]int64 {
	t.Helper()
	tree := map[string]int64{}
	for o := range client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		parts := strings.Split(strings.TrimSuffix(o.Key, "/"), "/")
		for i := 1; i < len(parts); i++ {
			tree[strings.Join(parts[:i], "/")+"/"] = -1
		}
		if strings.HasSuffix(o.Key, "/") {
			tree[o.Key] = -1
		} else {
			tree[o.Key] = o.Size
		}
	}
	return tree
}

// mountTree walks a mounted directory the same way.
func mountTree(t *testing.T, root string) map[string]int64 {
	t.Helper()
	tree := map[string]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			tree[rel+"/"] = -1
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		tree[rel] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func diffTrees(want, got map[string]int64) string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			out = append(out, fmt.Sprintf("want %s (%d), got %d/%v", k, v, g, ok))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "unexpected "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestListingsMatchSDK(t *testing.T) {
	b := newBucket(t)
	for _, k := range []string{"a.txt", "dir1/b.txt", "dir1/sub/c.txt", "dir1/sub/deeper/d.csv", "empty-dir/", "marked/", "marked/inside", "sp ace/f g", "ü/ñ.txt", "z"} {
		put(t, b, k, []byte("data of "+k))
	}
	m := mountKFS(t, b)
	if d := diffTrees(sdkTree(t, b), mountTree(t, m.dir)); d != "" {
		t.Fatalf("mount differs from SDK listing:\n%s", d)
	}
	// Listing again is served from memory: an empty directory too.
	for i := 0; i < 2; i++ {
		if out := sh(t, "ls", "-A", m.path("empty-dir")); out != "" {
			t.Fatalf("empty dir lists %q", out)
		}
	}
	sh(t, "du", "-s", m.dir)
	sh(t, "find", m.dir, "-name", "*.csv")
	// ls -l output carries sizes from the listing.
	out := sh(t, "ls", "-l", m.path("dir1"))
	if !strings.Contains(out, fmt.Sprint(len("data of dir1/b.txt"))) || !strings.Contains(out, "sub") {
		t.Fatalf("ls -l dir1:\n%s", out)
	}

	// A prefix mount shows the subtree.
	pm := mountKFS(t, b+":dir1")
	want := map[string]int64{}
	for k, v := range sdkTree(t, b) {
		if rest, ok := strings.CutPrefix(k, "dir1/"); ok && rest != "" {
			want[rest] = v
		}
	}
	if d := diffTrees(want, mountTree(t, pm.dir)); d != "" {
		t.Fatalf("prefix mount differs:\n%s", d)
	}

	// The all-buckets mount has one directory per bucket, mtime = creation date.
	all := mountKFS(t)
	bs, err := client(t).ListBuckets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(all.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(bs) {
		t.Fatalf("root has %d entries, ListBuckets %d", len(ents), len(bs))
	}
	for _, bi := range bs {
		st, err := os.Stat(all.path(bi.Name))
		if err != nil || !st.IsDir() {
			t.Fatalf("bucket %s: %v", bi.Name, err)
		}
		if !st.ModTime().Equal(bi.CreationDate) {
			t.Errorf("bucket %s mtime %v, created %v", bi.Name, st.ModTime(), bi.CreationDate)
		}
	}
	if d := diffTrees(sdkTree(t, b), mountTree(t, all.path(b))); d != "" {
		t.Fatalf("bucket under all-buckets mount differs:\n%s", d)
	}
}

func TestLargeDirectory(t *testing.T) {
	const n = 10000
	b := newBucket(t)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("big/f%05d", i)
	}
	putMany(t, b, keys, func(k string) []byte { return []byte(k) })
	m := mountKFS(t, b)
	out := sh(t, "ls", "-l", m.path("big"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n+1 { // "total N" first
		t.Fatalf("ls -l shows %d lines, want %d entries", len(lines)-1, n)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) < 9 || f[4] != "10" {
			t.Fatalf("bad ls -l line %q (size must be 10)", l)
		}
	}
	if d := diffTrees(sdkTree(t, b), mountTree(t, m.dir)); d != "" {
		t.Fatalf("differs:\n%s", d)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestReadSizesSha256(t *testing.T) {
	b := newBucket(t)
	const block = 4 << 20 // the default block size
	sizes := []int{0, 1, block - 1, block, block + 1, 3*block + 12345, 100<<20 + 7}
	want := map[string]string{}
	for _, n := range sizes {
		data := randBytes(n)
		key := fmt.Sprintf("size-%d.bin", n)
		put(t, b, key, data)
		want[key] = sha(data)
	}
	m := mountKFS(t, b)
	for key, w := range want {
		out := sh(t, "sha256sum", m.path(key))
		if got := strings.Fields(out)[0]; got != w {
			t.Errorf("%s: sha256 through the mount %s, SDK bytes %s", key, got, w)
		}
	}
	// A copy with cp is byte-identical too.
	dst := filepath.Join(t.TempDir(), "copy")
	sh(t, "cp", m.path("size-4194305.bin"), dst)
	got, _ := os.ReadFile(dst)
	if sha(got) != want["size-4194305.bin"] {
		t.Fatal("cp through the mount changed bytes")
	}
}

func TestRandomReadsMatchRangeGets(t *testing.T) {
	b := newBucket(t)
	data := randBytes(20<<20 + 333)
	put(t, b, "r.bin", data)
	m := mountKFS(t, b, "--block-size", "1MiB")
	f, err := os.Open(m.path("r.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	c := client(t)
	for i := 0; i < 200; i++ {
		off := rng.Int64N(int64(len(data)))
		n := 1 + rng.IntN(300<<10)
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("pread(%d, %d): %v", n, off, err)
		}
		var opts minio.GetObjectOptions
		end := min(off+int64(n), int64(len(data))) - 1
		_ = opts.SetRange(off, end)
		obj, err := c.GetObject(context.Background(), b, "r.bin", opts)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:got]) != string(ref) {
			t.Fatalf("pread(%d, %d) differs from SDK range GET (%d vs %d bytes)", n, off, got, len(ref))
		}
	}
}

func TestReplacedObjectAfterTTL(t *testing.T) {
	b := newBucket(t)
	put(t, b, "f.txt", []byte("version one"))
	m := mountKFS(t, b, "--attr-ttl", "1s", "--entry-ttl", "1s", "--negative-ttl", "1s")
	if got, _ := os.ReadFile(m.path("f.txt")); string(got) != "version one" {
		t.Fatalf("read %q", got)
	}
	put(t, b, "f.txt", []byte("version two, longer"))
	if _, err := os.Stat(m.path("new.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of missing file: %v", err)
	}
	put(t, b, "new.txt", []byte("new"))
	time.Sleep(1500 * time.Millisecond)
	if got, _ := os.ReadFile(m.path("f.txt")); string(got) != "version two, longer" {
		t.Fatalf("after the TTL read %q, want version two", got)
	}
	if got, err := os.ReadFile(m.path("new.txt")); err != nil || string(got) != "new" {
		t.Fatalf("new object after negative TTL: %q %v", got, err)
	}
}

// An open reader never mixes two versions: it gets ESTALE or old bytes.
func TestOpenReaderNeverMixesVersions(t *testing.T) {
	b := newBucket(t)
	v1 := randBytes(2 << 20)
	put(t, b, "v.bin", v1)
	m := mountKFS(t, b, "--block-size", "64KiB", "--cache-size", "1MiB", "--max-readahead", "128KiB")
	f, err := os.Open(m.path("v.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	put(t, b, "v.bin", randBytes(2<<20))
	rest, err := io.ReadAll(f)
	got := append(head, rest...)
	switch {
	case errors.Is(err, syscall.ESTALE):
		if string(got) != string(v1[:len(got)]) {
			t.Fatal("bytes before ESTALE are not all from version one")
		}
	case err != nil:
		t.Fatalf("read: %v (want ESTALE or success)", err)
	default:
		if string(got) != string(v1) {
			t.Fatal("reader returned a mix of versions")
		}
	}
	if !strings.Contains(m.logText(), "ESTALE") && err != nil {
		t.Errorf("no log line for the ESTALE")
	}
}

func TestStatfsReadOnlyOwnership(t *testing.T) {
	b := newBucket(t)
	put(t, b, "x", []byte("x"))
	put(t, b, "d/y", []byte("y"))
	m := mountKFS(t, b, "-o", "ro,uid=1234,gid=5678,file_mode=0600", "--dir-mode", "0750")
	for p, want := range map[string]os.FileMode{"x": 0o600, "d": os.ModeDir | 0o750, "": os.ModeDir | 0o750} {
		st, err := os.Stat(m.path(p))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode() != want || sys.Uid != 1234 || sys.Gid != 5678 {
			t.Errorf("%q: mode %v uid %d gid %d; want %v 1234 5678", p, st.Mode(), sys.Uid, sys.Gid, want)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.dir, &st); err != nil || st.Blocks == 0 || st.Bsize == 0 {
		t.Fatalf("statfs: %+v %v", st, err)
	}
	if out := sh(t, "df", "-h", m.dir); !strings.Contains(out, m.dir) {
		t.Fatalf("df: %s", out)
	}
	_, err := os.OpenFile(m.path("x"), os.O_WRONLY, 0)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("open for write on a read-only mount: %v, want EROFS", err)
	}
}
