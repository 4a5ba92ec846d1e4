package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"
)

// Without events (no webhook): an object put through S3 right after the
// directory was listed is there for stat and cat at once, and in ls within
// revalidate-after; a key a/b/c put outside shows a/ and a/b/ the same way.
func TestFreshWithoutEvents(t *testing.T) {
	b := newBucket(t)
	put(t, b, "dir/old", []byte("old"))
	m := mountKFS(t, b) // default TTLs: entry 10s, negative 5s
	names := func(dir string) map[string]bool {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, e := range ents {
			out[e.Name()] = true
		}
		return out
	}
	for i := 0; i < 3; i++ {
		names(m.path("dir")) // listed, cached
		key := "new" + string(rune('a'+i))
		put(t, b, "dir/"+key, []byte("fresh"))
		if got, err := os.ReadFile(m.path("dir", key)); err != nil || string(got) != "fresh" {
			t.Fatalf("an object put right after the listing: %q %v (No such file from a cached listing)", got, err)
		}
	}
	names(m.dir)
	put(t, b, "a/b/c", []byte("deep"))
	if got, err := os.ReadFile(m.path("a/b/c")); err != nil || string(got) != "deep" {
		t.Fatalf("a/b/c put outside: %q %v", got, err)
	}
	names(m.path("dir"))
	put(t, b, "dir/listed", []byte("x"))
	deadline := time.Now().Add(1500 * time.Millisecond) // revalidate-after 1s
	for !names(m.path("dir"))["listed"] {
		if time.Now().After(deadline) {
			t.Fatal("a new object is not in ls after revalidate-after")
		}
		time.Sleep(50 * time.Millisecond)
	}
	put(t, b, "x/y/z", []byte("z"))
	deadline = time.Now().Add(1500 * time.Millisecond)
	for !names(m.dir)["x"] {
		if time.Now().After(deadline) {
			t.Fatal("the implicit directory x/ of a key put outside is not in ls after revalidate-after")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !names(m.path("x"))["y"] {
		t.Fatal("x/y/ missing")
	}
}

// Data written by s3fs reads as s3fs wrote it: a directory kept as an
// empty object without the slash (application/x-directory, s3fs's mode),
// and extended attributes with bare names (no namespace) in its
// URL-encoded x-amz-meta-xattr blob.
func TestDataWrittenByS3fs(t *testing.T) {
	b := newBucket(t)
	ctx := context.Background()
	c := client(t)
	dirMeta := map[string]string{"mode": fmt.Sprint(syscall.S_IFDIR | 0o750), "uid": "1000", "gid": "1000", "mtime": "1600000000"}
	for _, k := range []string{"s3dir", "empty"} {
		if _, err := c.PutObject(ctx, b, k, strings.NewReader(""), 0, minio.PutObjectOptions{ContentType: "application/x-directory", UserMetadata: dirMeta}); err != nil {
			t.Fatal(err)
		}
	}
	put(t, b, "s3dir/f", []byte("inside"))
	blob := url.PathEscape(`{"key1":"` + base64.StdEncoding.EncodeToString([]byte("value one")) + `","user.k2":"` + base64.StdEncoding.EncodeToString([]byte("two")) + `"}`)
	if _, err := c.PutObject(ctx, b, "attrs", strings.NewReader("x"), 1, minio.PutObjectOptions{UserMetadata: map[string]string{"xattr": blob}}); err != nil {
		t.Fatal(err)
	}
	m := mountKFS(t, b)
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if seen[e.Name()] {
			t.Fatalf("%s listed twice: %v", e.Name(), ents)
		}
		seen[e.Name()] = true
		if (e.Name() == "s3dir" || e.Name() == "empty") && !e.IsDir() {
			t.Fatalf("s3fs's directory object %s is not a directory", e.Name())
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(m.path("s3dir"), &st); err != nil || st.Mode != syscall.S_IFDIR|0o750 || st.Uid != 1000 || st.Mtim.Sec != 1600000000 {
		t.Fatalf("s3fs directory attributes: %o uid %d mtime %d %v", st.Mode, st.Uid, st.Mtim.Sec, err)
	}
	if got, err := os.ReadFile(m.path("s3dir/f")); err != nil || string(got) != "inside" {
		t.Fatalf("a file in s3fs's directory: %q %v", got, err)
	}
	m2 := mountKFS(t, b) // by lookup, not listing
	if st, err := os.Stat(m2.path("empty")); err != nil || !st.IsDir() {
		t.Fatalf("an empty s3fs directory looked up by name: %v %v", st, err)
	}
	if err := os.Remove(m2.path("empty")); err != nil {
		t.Fatalf("rmdir of an s3fs directory: %v", err)
	}
	if keys := listKeys(t, b, "empty"); len(keys) != 0 {
		t.Fatalf("rmdir left %v", keys)
	}
	buf := make([]byte, 256)
	if n, err := unix.Getxattr(m.path("attrs"), "key1", buf); err != nil || string(buf[:n]) != "value one" {
		t.Fatalf("a bare-named attribute s3fs stored: %q %v", buf[:n], err)
	}
	n, err := unix.Listxattr(m.path("attrs"), buf)
	if err != nil || !strings.Contains(string(buf[:n]), "key1\x00") || !strings.Contains(string(buf[:n]), "user.k2\x00") {
		t.Fatalf("listxattr of s3fs's attributes: %q %v", buf[:n], err)
	}
	if err := unix.Setxattr(m.path("attrs"), "key3", []byte("bare"), 0); err != nil {
		t.Fatalf("setting a bare name, as s3fs allows: %v", err)
	}
	if meta := sdkMeta(t, b, "attrs"); !strings.Contains(meta["xattr"], "key3") {
		t.Fatalf("the bare name is not in s3fs's blob: %v", meta)
	}
}
