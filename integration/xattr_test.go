package integration

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/pkg/xattr"
)

func sdkTags(t *testing.T, bucket, key string) map[string]string {
	t.Helper()
	tg, err := client(t).GetObjectTagging(context.Background(), bucket, key, minio.GetObjectTaggingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tg.ToMap()
}

func TestObjectTagsAsXattrs(t *testing.T) {
	b := newBucket(t)
	put(t, b, "data.csv", []byte("a,b\n1,2\n"))
	m := mountKFS(t, b)
	p := m.path("data.csv")

	sh(t, "setfattr", "-n", "user.s3.tag.project", "-v", "kfs", p)
	if got := sdkTags(t, b, "data.csv"); fmt.Sprint(got) != "map[project:kfs]" {
		t.Fatalf("tags in the bucket after setfattr: %v", got)
	}
	if out := sh(t, "getfattr", "--only-values", "-n", "user.s3.tag.project", p); out != "kfs" {
		t.Fatalf("getfattr tag: %q", out)
	}
	sh(t, "setfattr", "-n", "user.s3.tags", "-v", "team=data science&stage=raw", p)
	if got := sdkTags(t, b, "data.csv"); fmt.Sprint(got) != "map[stage:raw team:data science]" {
		t.Fatalf("whole tag set: %v", got)
	}
	for _, want := range []string{`user.s3.tag.stage="raw"`, `user.s3.tag.team="data science"`, "user.s3.content-type=", "user.s3.tags="} {
		name := want[:strings.Index(want, "=")]
		if out := sh(t, "getfattr", "-n", name, p); !strings.Contains(out, want) {
			t.Errorf("getfattr -n %s:\n%s", name, out)
		}
	}
	// S3 state is readable by name but not listed (copying tools would
	// carry it onto local files, or fail setting it back).
	if out := sh(t, "getfattr", "-d", "-m", "-", p); strings.Contains(out, "user.s3.") {
		t.Errorf("getfattr -d lists S3 state:\n%s", out)
	}
	if etag := sh(t, "getfattr", "--only-values", "-n", "user.s3.etag", p); len(etag) != 32 {
		t.Errorf("etag by name: %q", etag)
	}
	sh(t, "setfattr", "-x", "user.s3.tag.stage", p)
	if got := sdkTags(t, b, "data.csv"); fmt.Sprint(got) != "map[team:data science]" {
		t.Fatalf("after remove: %v", got)
	}

	// Flags, short buffers, read-only facts, bad values: errnos, nothing changed.
	if err := xattr.SetWithFlags(p, "user.s3.tag.team", []byte("x"), xattr.XATTR_CREATE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("XATTR_CREATE on an existing tag: %v", err)
	}
	if err := xattr.SetWithFlags(p, "user.s3.tag.none", []byte("x"), xattr.XATTR_REPLACE); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("XATTR_REPLACE on a missing tag: %v", err)
	}
	if _, err := syscall.Getxattr(p, "user.s3.tag.team", make([]byte, 2)); err != syscall.ERANGE {
		t.Errorf("short buffer: %v, want ERANGE", err)
	}
	if v, err := xattr.Get(p, "user.s3.tag.team"); err != nil || string(v) != "data science" {
		t.Errorf("pkg/xattr Get: %q %v", v, err)
	}
	st, _ := client(t).StatObject(context.Background(), b, "data.csv", minio.StatObjectOptions{})
	if v, err := xattr.Get(p, "user.s3.etag"); err != nil || string(v) != st.ETag {
		t.Errorf("etag %q %v, SDK %q", v, err, st.ETag)
	}
	if err := xattr.Set(p, "user.s3.etag", []byte("x")); !errors.Is(err, syscall.EPERM) {
		t.Errorf("set of a read-only fact: %v", err)
	}
	var eleven []string
	for i := 0; i < 11; i++ {
		eleven = append(eleven, fmt.Sprintf("k%d=v", i))
	}
	for _, bad := range []string{strings.Join(eleven, "&"), "k=semi;colon", strings.Repeat("k", 129) + "=v"} {
		if err := xattr.Set(p, "user.s3.tags", []byte(bad)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("bad tag set %.30q: %v, want EINVAL", bad, err)
		}
	}
	if got := sdkTags(t, b, "data.csv"); fmt.Sprint(got) != "map[team:data science]" {
		t.Fatalf("a refused value changed the tags: %v", got)
	}
	if _, err := xattr.Get(p, "user.other"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("unknown name: %v", err)
	}
	if err := xattr.Set(p, "user.s3.nonsense", []byte("x")); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("set of an unknown user.s3 name: %v", err)
	}
}

func TestMetadataAndContentTypeAsXattrs(t *testing.T) {
	b := newBucket(t)
	put(t, b, "f.bin", []byte("payload"))
	m := mountKFS(t, b)
	p := m.path("f.bin")
	sh(t, "setfattr", "-n", "user.s3.meta.owner", "-v", "data-team", p)
	sh(t, "setfattr", "-n", "user.s3.content-type", "-v", "text/csv", p)
	st, err := client(t).StatObject(context.Background(), b, "f.bin", minio.StatObjectOptions{})
	if err != nil || st.ContentType != "text/csv" || st.UserMetadata["Owner"] != "data-team" {
		t.Fatalf("SDK sees %q %v %v", st.ContentType, st.UserMetadata, err)
	}
	if got := string(sdkBytes(t, b, "f.bin")); got != "payload" {
		t.Fatalf("content changed: %q", got)
	}
	if v, _ := xattr.Get(p, "user.s3.meta.owner"); string(v) != "data-team" {
		t.Fatalf("get meta: %q", v)
	}
	sh(t, "setfattr", "-x", "user.s3.meta.owner", p)
	if st, _ := client(t).StatObject(context.Background(), b, "f.bin", minio.StatObjectOptions{}); st.UserMetadata["Owner"] != "" {
		t.Fatalf("meta not removed: %v", st.UserMetadata)
	}
}

// Tag updates on one object are serialised: concurrent setters lose nothing.
func TestConcurrentTagSetters(t *testing.T) {
	b := newBucket(t)
	put(t, b, "c", []byte("c"))
	m := mountKFS(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- xattr.Set(m.path("c"), fmt.Sprintf("user.s3.tag.k%d", i), []byte("v"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := sdkTags(t, b, "c")
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 10 {
		t.Fatalf("after 10 concurrent setters the object has tags %v", keys)
	}
}
