// Package storetest is the conformance suite every store passes: the MinIO
// adapter (run from integration/ against a real server) and the in-memory
// fake (run from memstore's tests). One named subtest per behaviour.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"kfs/fs/store"
)

// Store is everything kfs asks of an object store.
type Store interface {
	ListBuckets(ctx context.Context) ([]store.BucketInfo, error)
	StatBucket(ctx context.Context, bucket string) error
	MakeBucket(ctx context.Context, bucket string, o store.MakeBucketOptions) error
	RemoveBucket(ctx context.Context, bucket string) error
	Stat(ctx context.Context, o store.ObjectRef) (store.ObjectInfo, error)
	List(ctx context.Context, r store.ListRequest) (store.ListPage, error)
	ListVersions(ctx context.Context, bucket, prefix string, exact bool) ([]store.Version, error)
	ReadAt(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, error)
	Get(ctx context.Context, o store.ObjectRef) (io.ReadCloser, store.ObjectInfo, error)
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts store.PutOptions) (store.ObjectInfo, error)
	NewUpload(ctx context.Context, bucket, key string, opts store.PutOptions) (string, error)
	PutPart(ctx context.Context, bucket, key, uploadID string, num int, r io.ReadSeeker, size int64) (store.Part, error)
	CopyPart(ctx context.Context, bucket, key, uploadID string, num int, srcKey, srcETag string, off, n int64) (store.Part, error)
	CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []store.Part) (store.ObjectInfo, error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
	ListUploads(ctx context.Context, bucket, prefix string) ([]store.Upload, error)
	Copy(ctx context.Context, src, dst store.ObjectRef, o store.CopyOptions) (store.ObjectInfo, error)
	Compose(ctx context.Context, dst store.ObjectRef, srcs []store.ObjectRef, opts *store.PutOptions) (store.ObjectInfo, error)
	Remove(ctx context.Context, o store.ObjectRef) error
	RemoveMany(ctx context.Context, bucket string, keys []string) ([]store.KeyError, error)
	GetTags(ctx context.Context, bucket, key string) (map[string]string, error)
	PutTags(ctx context.Context, bucket, key string, tags map[string]string) error
	GetRetention(ctx context.Context, bucket, key string) (string, time.Time, error)
	PutRetention(ctx context.Context, bucket, key, mode string, until time.Time, bypass bool) error
	GetLegalHold(ctx context.Context, bucket, key string) (bool, error)
	PutLegalHold(ctx context.Context, bucket, key string, on bool) error
	GetVersioning(ctx context.Context, bucket string) (string, error)
	SetVersioning(ctx context.Context, bucket, status string) error
	GetEncryption(ctx context.Context, bucket string) (store.Encryption, error)
	SetEncryption(ctx context.Context, bucket string, e store.Encryption) error
	GetLifecycle(ctx context.Context, bucket string) ([]byte, error)
	SetLifecycle(ctx context.Context, bucket string, doc []byte) error
	GetBucketTags(ctx context.Context, bucket string) (map[string]string, error)
	SetBucketTags(ctx context.Context, bucket string, tags map[string]string) error
	GetObjectLock(ctx context.Context, bucket string) (store.ObjectLock, error)
	SetObjectLock(ctx context.Context, bucket string, l store.ObjectLock) error
	GetPolicy(ctx context.Context, bucket string) (string, error)
	SetPolicy(ctx context.Context, bucket, policy string) error
	Presign(ctx context.Context, method string, o store.ObjectRef, expires time.Duration, params url.Values) (string, error)
}

// Env is a store with a fresh empty bucket and a way to write objects
// behind the store's back (the SDK, or the fake's helper).
type Env struct {
	Store  Store
	Bucket string
	Put    func(key string, data []byte)
	// NewBucketName returns an unused valid bucket name.
	NewBucketName func() string
	// History says the store keeps old versions (a real versioned bucket).
	History bool
}

var ctx = context.Background()

// Run runs the suite; newEnv gives each subtest a fresh bucket.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	for _, c := range []struct {
		name string
		f    func(t *testing.T, e Env)
	}{
		{"StatAndNotFound", statAndNotFound},
		{"Buckets", buckets},
		{"ListPagesInOrder", listPagesInOrder},
		{"ListRecursive", listRecursive},
		{"ListWithMetadata", listWithMetadata},
		{"ReadAtRangesAndETag", readAtRangesAndETag},
		{"GetStreams", getStreams},
		{"PutAndStat", putAndStat},
		{"CopyMetadata", copyMetadata},
		{"CopyConditions", copyConditions},
		{"CopyAcrossBucketsKeepsTags", copyAcrossBuckets},
		{"Compose", compose},
		{"Multipart", multipart},
		{"Remove", remove},
		{"Tags", tags},
		{"RetentionAndLegalHold", retention},
		{"BucketSettings", bucketSettings},
		{"Presign", presign},
		{"Versions", versions},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, newEnv(t)) })
	}
}

func statAndNotFound(t *testing.T, e Env) {
	e.Put("a/b.txt", []byte("hello"))
	info, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "a/b.txt"})
	if err != nil || info.Size != 5 || info.ETag == "" || info.Key != "a/b.txt" || info.LastModified.IsZero() || info.Meta == nil {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	for _, k := range []string{"a/missing", "a"} {
		if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: k}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat %q: %v, want ErrNotFound", k, err)
		}
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.NewBucketName(), Key: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stat in a missing bucket: %v", err)
	}
}

func buckets(t *testing.T, e Env) {
	if err := e.Store.StatBucket(ctx, e.Bucket); err != nil {
		t.Fatal(err)
	}
	name := e.NewBucketName()
	if err := e.Store.StatBucket(ctx, name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StatBucket of a missing bucket: %v", err)
	}
	if err := e.Store.MakeBucket(ctx, name, store.MakeBucketOptions{Versioning: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.MakeBucket(ctx, name, store.MakeBucketOptions{}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("MakeBucket twice: %v, want ErrExists", err)
	}
	if v, err := e.Store.GetVersioning(ctx, name); err != nil || v != "Enabled" {
		t.Fatalf("versioning of a bucket made with it: %q %v", v, err)
	}
	bs, err := e.Store.ListBuckets(ctx)
	found := false
	for _, b := range bs {
		found = found || b.Name == name && !b.Created.IsZero()
	}
	if err != nil || !found {
		t.Fatalf("ListBuckets = %+v, %v", bs, err)
	}
	if _, err := e.Store.Put(ctx, name, "x", strings.NewReader("x"), 1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.RemoveBucket(ctx, name); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("RemoveBucket of a non-empty bucket: %v, want ErrNotEmpty", err)
	}
	if err := e.Store.SetVersioning(ctx, name, "Suspended"); err != nil {
		t.Fatal(err)
	}
	vs, _ := e.Store.ListVersions(ctx, name, "", false)
	for _, v := range vs {
		if err := e.Store.Remove(ctx, store.ObjectRef{Bucket: name, Key: v.Key, VersionID: v.VersionID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Store.Remove(ctx, store.ObjectRef{Bucket: name, Key: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.RemoveBucket(ctx, name); err != nil {
		t.Fatal(err)
	}
}

func keysOf(p store.ListPage) []string {
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.Key)
	}
	return append(out, p.Prefixes...)
}

func listPagesInOrder(t *testing.T, e Env) {
	var want []string
	for i := 0; i < 7; i++ {
		e.Put(fmt.Sprintf("d/f%d", i), []byte("x"))
		want = append(want, fmt.Sprintf("d/f%d", i))
	}
	e.Put("d/sub/x", []byte("x"))
	e.Put("d/sub2/", nil)
	e.Put("d/", nil)
	e.Put("other", []byte("x"))
	want = append([]string{"d/"}, want...)
	want = append(want, "d/sub/", "d/sub2/")
	var got []string
	r, pages := store.ListRequest{Bucket: e.Bucket, Prefix: "d/", Max: 3}, 0
	for {
		p, err := e.Store.List(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, keysOf(p)...)
		if r.Token = p.NextToken; r.Token == "" {
			break
		}
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) || pages < 3 {
		t.Fatalf("listing %q in %d pages, want %q in at least 3", got, pages, want)
	}
	p, err := e.Store.List(ctx, store.ListRequest{Bucket: e.Bucket, Prefix: "nothing/", Meta: true})
	if err != nil || len(p.Objects)+len(p.Prefixes) != 0 || p.NextToken != "" {
		t.Fatalf("empty listing: %+v %v", p, err)
	}
	if _, err := e.Store.List(ctx, store.ListRequest{Bucket: e.NewBucketName()}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("listing a missing bucket: %v", err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func listRecursive(t *testing.T, e Env) {
	keys := []string{"r/a", "r/b/c", "r/b/d/e", "r/b/", "r/z"}
	for _, k := range keys {
		e.Put(k, []byte("1"))
	}
	var got []string
	r := store.ListRequest{Bucket: e.Bucket, Prefix: "r/", Recursive: true, Max: 2, Meta: true}
	for {
		p, err := e.Store.List(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Prefixes) != 0 {
			t.Fatalf("recursive listing gave prefixes %q", p.Prefixes)
		}
		got = append(got, keysOf(p)...)
		if r.Token = p.NextToken; r.Token == "" {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(sorted(keys)) {
		t.Fatalf("recursive listing %q, want %q", got, sorted(keys))
	}
}

func listWithMetadata(t *testing.T, e Env) {
	meta := map[string]string{"mode": "33188", "mtime": "1700000000"}
	if _, err := e.Store.Put(ctx, e.Bucket, "p/a.csv", strings.NewReader("a,b\n"), 4, store.PutOptions{ContentType: "text/csv", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	e.Put("p/plain", []byte("x"))
	e.Put("p/sub/x", []byte("x"))
	lp, err := e.Store.List(ctx, store.ListRequest{Bucket: e.Bucket, Prefix: "p/", Meta: true})
	if err != nil || len(lp.Objects) != 2 || len(lp.Prefixes) != 1 || lp.Prefixes[0] != "p/sub/" {
		t.Fatalf("List with metadata = %+v, %v", lp, err)
	}
	if m := lp.Objects[0].Meta; m["mode"] != "33188" || m["mtime"] != "1700000000" || lp.Objects[1].Meta == nil || len(lp.Objects[1].Meta) != 0 {
		t.Fatalf("metadata in the listing: %+v / %+v", lp.Objects[0].Meta, lp.Objects[1].Meta)
	}
	lp, err = e.Store.List(ctx, store.ListRequest{Bucket: e.Bucket, Prefix: "p/"})
	if err != nil || lp.Objects[0].Key != "p/a.csv" || lp.Objects[0].Size != 4 || lp.Objects[0].Meta != nil {
		t.Fatalf("plain listing: %+v %v", lp.Objects, err)
	}
}

func readAtRangesAndETag(t *testing.T, e Env) {
	data := []byte("0123456789abcdefghij")
	e.Put("r", data)
	info, _ := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "r"})
	buf := make([]byte, 5)
	n, err := e.Store.ReadAt(ctx, e.Bucket, "r", info.ETag, buf, 3)
	if err != nil || string(buf[:n]) != "34567" {
		t.Fatalf("ReadAt = %q, %v", buf[:n], err)
	}
	if n, err = e.Store.ReadAt(ctx, e.Bucket, "r", "", make([]byte, 10), 15); err != nil || n != 5 {
		t.Fatalf("short read at the end = %d, %v", n, err)
	}
	if n, err := e.Store.ReadAt(ctx, e.Bucket, "r", "", buf, 20); err != nil || n != 0 {
		t.Fatalf("read at EOF = %d, %v", n, err)
	}
	e.Put("r", []byte("changed"))
	if _, err := e.Store.ReadAt(ctx, e.Bucket, "r", info.ETag, buf, 0); !errors.Is(err, store.ErrStale) {
		t.Fatalf("read with the old ETag: %v, want ErrStale", err)
	}
	if _, err := e.Store.ReadAt(ctx, e.Bucket, "gone", "", buf, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read of a missing key: %v", err)
	}
}

func getStreams(t *testing.T, e Env) {
	e.Put("g", []byte("whole object"))
	rc, info, err := e.Store.Get(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "g"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "whole object" || info.Size != 12 {
		t.Fatalf("Get = %q %+v", b, info)
	}
	if _, _, err := e.Store.Get(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "none"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
}

func putAndStat(t *testing.T, e Env) {
	meta := map[string]string{"mode": "33188", "owner": "Data Team"}
	info, err := e.Store.Put(ctx, e.Bucket, "p/a.csv", strings.NewReader("a,b\n"), 4, store.PutOptions{ContentType: "text/csv", Meta: meta,
		Tags: map[string]string{"k": "v"}})
	if err != nil || info.ETag == "" || info.Size != 4 || info.Key != "p/a.csv" {
		t.Fatalf("Put = %+v, %v", info, err)
	}
	st, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "p/a.csv"})
	if err != nil || st.ContentType != "text/csv" || st.Meta["mode"] != "33188" || st.Meta["owner"] != "Data Team" || st.ETag != info.ETag || st.TagCount != 1 {
		t.Fatalf("Stat after Put = %+v, %v", st, err)
	}
	if _, err := e.Store.Put(ctx, e.Bucket, "short", strings.NewReader("abc"), 5, store.PutOptions{}); err == nil {
		t.Fatal("a Put whose reader ends early succeeded")
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "short"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed Put left an object: %v", err)
	}
}

func copyMetadata(t *testing.T, e Env) {
	meta := map[string]string{"mode": "33188", "mtime": "1700000000"}
	if _, err := e.Store.Put(ctx, e.Bucket, "a.csv", strings.NewReader("a,b\n"), 4, store.PutOptions{ContentType: "text/csv", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	ref := func(k string) store.ObjectRef { return store.ObjectRef{Bucket: e.Bucket, Key: k} }
	cp, err := e.Store.Copy(ctx, ref("a.csv"), ref("b.csv"), store.CopyOptions{})
	if err != nil || cp.Size != 4 || cp.ETag == "" {
		t.Fatalf("Copy = %+v %v", cp, err)
	}
	st, err := e.Store.Stat(ctx, ref("b.csv"))
	if err != nil || st.Meta["mode"] != "33188" || st.ContentType != "text/csv" {
		t.Fatalf("copy kept metadata? %+v %v", st, err)
	}
	if _, err := e.Store.Copy(ctx, ref("b.csv"), ref("b.csv"), store.CopyOptions{Replace: &store.PutOptions{ContentType: "text/plain",
		Meta: map[string]string{"mode": "33261"}}}); err != nil {
		t.Fatal(err)
	}
	st, _ = e.Store.Stat(ctx, ref("b.csv"))
	if st.Meta["mode"] != "33261" || st.Meta["mtime"] != "" || st.ContentType != "text/plain" || st.Size != 4 {
		t.Fatalf("self-copy with new metadata: %+v", st)
	}
	if _, err := e.Store.Copy(ctx, ref("none"), ref("x"), store.CopyOptions{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("copy of a missing object: %v", err)
	}
}

func copyConditions(t *testing.T, e Env) {
	e.Put("c", []byte("data"))
	ref := func(k string) store.ObjectRef { return store.ObjectRef{Bucket: e.Bucket, Key: k} }
	st, _ := e.Store.Stat(ctx, ref("c"))
	if _, err := e.Store.Copy(ctx, ref("c"), ref("d"), store.CopyOptions{IfMatch: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy with a wrong ETag: %v, want ErrStale", err)
	}
	if _, err := e.Store.Copy(ctx, ref("c"), ref("d"), store.CopyOptions{IfModifiedSince: time.Now().Add(time.Hour)}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy if modified since the future: %v, want ErrStale", err)
	}
	if _, err := e.Store.Copy(ctx, ref("c"), ref("d"), store.CopyOptions{IfMatch: st.ETag, IfModifiedSince: st.LastModified.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func copyAcrossBuckets(t *testing.T, e Env) {
	other := e.NewBucketName()
	if err := e.Store.MakeBucket(ctx, other, store.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Store.Remove(ctx, store.ObjectRef{Bucket: other, Key: "x"})
		_ = e.Store.RemoveBucket(ctx, other)
	})
	if _, err := e.Store.Put(ctx, e.Bucket, "x", strings.NewReader("xyz"), 3, store.PutOptions{Tags: map[string]string{"t": "1"},
		Meta: map[string]string{"owner": "me"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Copy(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "x"}, store.ObjectRef{Bucket: other, Key: "x"}, store.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.Store.GetTags(ctx, other, "x")
	if err != nil || tags["t"] != "1" {
		t.Fatalf("tags after a copy across buckets: %v %v", tags, err)
	}
	buf := make([]byte, 3)
	if n, err := e.Store.ReadAt(ctx, other, "x", "", buf, 0); err != nil || string(buf[:n]) != "xyz" {
		t.Fatalf("copied bytes %q %v", buf[:n], err)
	}
}

func compose(t *testing.T, e Env) {
	big := bytes.Repeat([]byte("A"), store.MinPartSize)
	e.Put("p1", big)
	e.Put("p2", []byte("tail"))
	e.Put("small", []byte("s"))
	ref := func(k string) store.ObjectRef { return store.ObjectRef{Bucket: e.Bucket, Key: k} }
	info, err := e.Store.Compose(ctx, ref("all"), []store.ObjectRef{ref("p1"), ref("p2")}, nil)
	if err != nil || info.Size != store.MinPartSize+4 {
		t.Fatalf("Compose = %+v %v", info, err)
	}
	buf := make([]byte, 6)
	if n, _ := e.Store.ReadAt(ctx, e.Bucket, "all", "", buf, store.MinPartSize-2); string(buf[:n]) != "AAtail" {
		t.Fatalf("composed bytes %q", buf[:n])
	}
	if _, err := e.Store.Compose(ctx, ref("bad"), []store.ObjectRef{ref("small"), ref("p2")}, nil); err == nil {
		t.Fatal("compose of a small first source succeeded")
	}
}

func multipart(t *testing.T, e Env) {
	base := bytes.Repeat([]byte("B"), store.MinPartSize+10)
	e.Put("src", base)
	src, _ := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "src"})
	id, err := e.Store.NewUpload(ctx, e.Bucket, "dst", store.PutOptions{Meta: map[string]string{"uid": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := e.Store.CopyPart(ctx, e.Bucket, "dst", id, 1, "src", src.ETag, 0, store.MinPartSize)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.Store.PutPart(ctx, e.Bucket, "dst", id, 2, strings.NewReader("tail"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.CopyPart(ctx, e.Bucket, "dst", id, 3, "src", "0123456789abcdef0123456789abcdef", 0, 10); !errors.Is(err, store.ErrStale) {
		t.Fatalf("CopyPart with a stale ETag: %v", err)
	}
	ups, err := e.Store.ListUploads(ctx, e.Bucket, "")
	if err != nil || len(ups) != 1 || ups[0].Key != "dst" || ups[0].ID != id {
		t.Fatalf("ListUploads = %+v, %v", ups, err)
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "dst"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an incomplete upload is visible: %v", err)
	}
	info, err := e.Store.CompleteUpload(ctx, e.Bucket, "dst", id, []store.Part{p1, p2})
	if err != nil || info.ETag == "" {
		t.Fatalf("Complete = %+v, %v", info, err)
	}
	st, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "dst"})
	if err != nil || st.Size != store.MinPartSize+4 || st.Meta["uid"] != "7" {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	buf := make([]byte, 8)
	if n, _ := e.Store.ReadAt(ctx, e.Bucket, "dst", "", buf, store.MinPartSize-4); string(buf[:n]) != "BBBBtail" {
		t.Fatalf("assembled bytes %q", buf[:n])
	}
	id2, _ := e.Store.NewUpload(ctx, e.Bucket, "gone", store.PutOptions{})
	if _, err := e.Store.PutPart(ctx, e.Bucket, "gone", id2, 1, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.AbortUpload(ctx, e.Bucket, "gone", id2); err != nil {
		t.Fatal(err)
	}
	if ups, _ := e.Store.ListUploads(ctx, e.Bucket, ""); len(ups) != 0 {
		t.Fatalf("uploads left: %+v", ups)
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "gone"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("aborted upload visible: %v", err)
	}
}

func remove(t *testing.T, e Env) {
	e.Put("x", []byte("x"))
	ref := store.ObjectRef{Bucket: e.Bucket, Key: "x"}
	if err := e.Store.Remove(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.Remove(ctx, ref); err != nil {
		t.Fatalf("removing a missing object: %v", err)
	}
	for i := 0; i < 3; i++ {
		e.Put(fmt.Sprintf("many/%d", i), []byte("x"))
	}
	failed, err := e.Store.RemoveMany(ctx, e.Bucket, []string{"many/0", "many/1", "many/2", "many/none"})
	if err != nil || len(failed) != 0 {
		t.Fatalf("RemoveMany: %v %v", failed, err)
	}
	if p, _ := e.Store.List(ctx, store.ListRequest{Bucket: e.Bucket, Prefix: "many/"}); len(p.Objects) != 0 {
		t.Fatalf("left after RemoveMany: %+v", p.Objects)
	}
}

func tags(t *testing.T, e Env) {
	e.Put("t", []byte("x"))
	if m, err := e.Store.GetTags(ctx, e.Bucket, "t"); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("untagged: %v %v", m, err)
	}
	want := map[string]string{"project": "kfs", "team": "data science"}
	if err := e.Store.PutTags(ctx, e.Bucket, "t", want); err != nil {
		t.Fatal(err)
	}
	if m, err := e.Store.GetTags(ctx, e.Bucket, "t"); err != nil || fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("GetTags = %v %v", m, err)
	}
	if err := e.Store.PutTags(ctx, e.Bucket, "t", map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.Store.GetTags(ctx, e.Bucket, "t"); len(m) != 0 {
		t.Fatalf("after clearing: %v", m)
	}
	if _, err := e.Store.GetTags(ctx, e.Bucket, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tags of a missing object: %v", err)
	}
}

func retention(t *testing.T, e Env) {
	e.Put("plain", []byte("x"))
	if _, _, err := e.Store.GetRetention(ctx, e.Bucket, "plain"); !errors.Is(err, store.ErrNoObjectLock) {
		t.Fatalf("retention on a bucket without lock: %v, want ErrNoObjectLock", err)
	}
	if err := e.Store.PutLegalHold(ctx, e.Bucket, "plain", true); !errors.Is(err, store.ErrNoObjectLock) {
		t.Fatalf("legal hold on a bucket without lock: %v, want ErrNoObjectLock", err)
	}
	lb := e.NewBucketName()
	if err := e.Store.MakeBucket(ctx, lb, store.MakeBucketOptions{ObjectLock: true}); err != nil {
		t.Fatal(err)
	}
	info, err := e.Store.Put(ctx, lb, "f", strings.NewReader("x"), 1, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mode, _, err := e.Store.GetRetention(ctx, lb, "f"); err != nil || mode != "" {
		t.Fatalf("retention of an object without one: %q %v", mode, err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := e.Store.PutRetention(ctx, lb, "f", "GOVERNANCE", until, false); err != nil {
		t.Fatal(err)
	}
	mode, got, err := e.Store.GetRetention(ctx, lb, "f")
	if err != nil || mode != "GOVERNANCE" || !got.Equal(until) {
		t.Fatalf("retention = %q %v %v", mode, got, err)
	}
	if err := e.Store.PutRetention(ctx, lb, "f", "GOVERNANCE", time.Now().Add(-time.Hour), true); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("retention in the past: %v, want ErrInvalid", err)
	}
	if err := e.Store.PutRetention(ctx, lb, "f", "", time.Time{}, true); err != nil {
		t.Fatalf("clearing GOVERNANCE with bypass: %v", err)
	}
	if on, err := e.Store.GetLegalHold(ctx, lb, "f"); err != nil || on {
		t.Fatalf("legal hold before: %v %v", on, err)
	}
	if err := e.Store.PutLegalHold(ctx, lb, "f", true); err != nil {
		t.Fatal(err)
	}
	if on, err := e.Store.GetLegalHold(ctx, lb, "f"); err != nil || !on {
		t.Fatalf("legal hold after: %v %v", on, err)
	}
	if err := e.Store.PutLegalHold(ctx, lb, "f", false); err != nil {
		t.Fatal(err)
	}
	l, err := e.Store.GetObjectLock(ctx, lb)
	if err != nil || !l.Enabled || l.Mode != "" {
		t.Fatalf("object lock of a new lock bucket: %+v %v", l, err)
	}
	if err := e.Store.SetObjectLock(ctx, lb, store.ObjectLock{Enabled: true, Mode: "GOVERNANCE", Days: 1}); err != nil {
		t.Fatal(err)
	}
	if l, err := e.Store.GetObjectLock(ctx, lb); err != nil || l.Mode != "GOVERNANCE" || l.Days != 1 {
		t.Fatalf("default retention: %+v %v", l, err)
	}
	if err := e.Store.SetObjectLock(ctx, lb, store.ObjectLock{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.Store.GetObjectLock(ctx, e.Bucket); l.Enabled {
		t.Fatalf("a plain bucket reports object lock: %+v", l)
	}
	_ = info
}

func bucketSettings(t *testing.T, e Env) {
	b := e.Bucket
	if v, err := e.Store.GetVersioning(ctx, b); err != nil || v != "" {
		t.Fatalf("versioning of a new bucket: %q %v", v, err)
	}
	if err := e.Store.SetVersioning(ctx, b, "Sometimes"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad versioning: %v", err)
	}
	for _, s := range []string{"Enabled", "Suspended"} {
		if err := e.Store.SetVersioning(ctx, b, s); err != nil {
			t.Fatal(err)
		}
		if v, _ := e.Store.GetVersioning(ctx, b); v != s {
			t.Fatalf("versioning %q, want %q", v, s)
		}
	}
	if enc, err := e.Store.GetEncryption(ctx, b); err != nil || enc.Algorithm != "" {
		t.Fatalf("encryption of a new bucket: %+v %v", enc, err)
	}
	if err := e.Store.SetEncryption(ctx, b, store.Encryption{Algorithm: "AES256"}); err != nil {
		t.Fatal(err)
	}
	if enc, _ := e.Store.GetEncryption(ctx, b); enc.Algorithm != "AES256" {
		t.Fatalf("encryption = %+v", enc)
	}
	if err := e.Store.SetEncryption(ctx, b, store.Encryption{}); err != nil {
		t.Fatal(err)
	}
	if doc, err := e.Store.GetLifecycle(ctx, b); err != nil || doc != nil {
		t.Fatalf("lifecycle of a new bucket: %s %v", doc, err)
	}
	lc := `<LifecycleConfiguration><Rule><ID>tmp</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter><Expiration><Days>7</Days></Expiration></Rule></LifecycleConfiguration>`
	if err := e.Store.SetLifecycle(ctx, b, []byte(lc)); err != nil {
		t.Fatal(err)
	}
	if doc, err := e.Store.GetLifecycle(ctx, b); err != nil || !strings.Contains(string(doc), "<ID>tmp</ID>") || !strings.Contains(string(doc), "<Days>7</Days>") {
		t.Fatalf("lifecycle = %s %v", doc, err)
	}
	if err := e.Store.SetLifecycle(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	if doc, _ := e.Store.GetLifecycle(ctx, b); doc != nil {
		t.Fatalf("lifecycle after removal: %s", doc)
	}
	if m, err := e.Store.GetBucketTags(ctx, b); err != nil || len(m) != 0 {
		t.Fatalf("bucket tags of a new bucket: %v %v", m, err)
	}
	if err := e.Store.SetBucketTags(ctx, b, map[string]string{"team": "ds"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.Store.GetBucketTags(ctx, b); m["team"] != "ds" {
		t.Fatalf("bucket tags = %v", m)
	}
	if err := e.Store.SetBucketTags(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	if p, err := e.Store.GetPolicy(ctx, b); err != nil || p != "" {
		t.Fatalf("policy of a new bucket: %q %v", p, err)
	}
	pol := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/public/*"]}]}`, b)
	if err := e.Store.SetPolicy(ctx, b, pol); err != nil {
		t.Fatal(err)
	}
	if p, err := e.Store.GetPolicy(ctx, b); err != nil || !strings.Contains(p, "s3:GetObject") {
		t.Fatalf("policy = %q %v", p, err)
	}
	if err := e.Store.SetPolicy(ctx, b, ""); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.Store.GetPolicy(ctx, b); p != "" {
		t.Fatalf("policy after removal: %q", p)
	}
}

func presign(t *testing.T, e Env) {
	u, err := e.Store.Presign(ctx, "GET", store.ObjectRef{Bucket: e.Bucket, Key: "dir/a b.csv"}, time.Hour,
		url.Values{"response-content-type": {"text/csv"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(u)
	if err != nil || !strings.Contains(p.Path, e.Bucket) || !strings.Contains(p.Path, "a b.csv") || p.Query().Get("response-content-type") != "text/csv" ||
		p.Query().Get("X-Amz-Expires") != "3600" {
		t.Fatalf("presigned URL %q (%v)", u, err)
	}
}

func versions(t *testing.T, e Env) {
	if err := e.Store.SetVersioning(ctx, e.Bucket, "Enabled"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one", "two"} {
		if _, err := e.Store.Put(ctx, e.Bucket, "v/f", strings.NewReader(s), int64(len(s)), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := e.Store.ListVersions(ctx, e.Bucket, "v/f", true)
	if err != nil || len(vs) == 0 || !vs[0].IsLatest || vs[0].Size != 3 || vs[0].VersionID == "" {
		t.Fatalf("versions = %+v %v", vs, err)
	}
	if !e.History {
		return
	}
	if len(vs) != 2 || vs[1].IsLatest {
		t.Fatalf("versions = %+v, want two, the newest first", vs)
	}
	old, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "v/f", VersionID: vs[1].VersionID})
	if err != nil || old.Size != 3 || old.VersionID != vs[1].VersionID {
		t.Fatalf("stat of the old version: %+v %v", old, err)
	}
	if err := e.Store.Remove(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "v/f"}); err != nil {
		t.Fatal(err)
	}
	vs, _ = e.Store.ListVersions(ctx, e.Bucket, "v/", false)
	if len(vs) != 3 || !vs[0].DeleteMarker || !vs[0].IsLatest {
		t.Fatalf("versions after a delete = %+v, want a delete marker first", vs)
	}
}
