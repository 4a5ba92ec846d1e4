// Package storetest is the conformance suite every store passes: the MinIO
// adapter (run from integration/ against a real server) and the in-memory
// fake (run from memstore's tests). One named subtest per behaviour.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"kfs/fs/store"
)

// Store is everything kfs asks of an object store: the union of the
// capabilities, each checked by the suite.
type Store interface {
	store.All
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
	// Limits name what the server does differently from S3 (and MinIO);
	// the subtest that meets one pins what the server does instead.
	Limits Limits
}

// Limits of a server measured against S3 and MinIO.
type Limits struct {
	// NoMetaLimit: user metadata past S3's 2 KiB is stored, not refused
	// (SeaweedFS). kfs applies the 2 KiB rule itself, so the mount behaves
	// the same.
	NoMetaLimit bool
	// EmptiedBucketNotEmpty: a versioned bucket whose every version was
	// removed still counts as not empty (SeaweedFS keeps its version
	// folders), so RemoveBucket refuses it.
	EmptiedBucketNotEmpty bool
	// NoRetentionClear: GOVERNANCE retention cannot be cleared, even
	// with the bypass header (SeaweedFS answers InvalidRequest); it can
	// be shortened or left to expire.
	NoRetentionClear bool
	// NoSelect: S3 Select is refused (ErrUnsupported): SeaweedFS, the fake.
	NoSelect bool
	// NoListen: the listen API is refused (ErrUnsupported): SeaweedFS.
	NoListen bool
	// NoNotificationConfig: bucket notification settings cannot be
	// changed (ErrUnsupported); reading them says none (SeaweedFS).
	NoNotificationConfig bool
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
		{"PutConditions", putConditions},
		{"CopyAcrossBucketsKeepsTags", copyAcrossBuckets},
		{"Compose", compose},
		{"Multipart", multipart},
		{"Remove", remove},
		{"Tags", tags},
		{"RetentionAndLegalHold", retention},
		{"BucketSettings", bucketSettings},
		{"Presign", presign},
		{"Versions", versions},
		{"UserMetadataLimit", userMetadataLimit},
		{"Select", selectCSV},
		{"Listen", listen},
		{"NotificationSettings", notificationSettings},
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
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: name, Key: "x", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.RemoveBucket(ctx, name); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("RemoveBucket of a non-empty bucket: %v, want ErrNotEmpty", err)
	}
	if err := e.Store.SetVersioning(ctx, name, "Suspended"); err != nil {
		t.Fatal(err)
	}
	vs, _ := e.Store.ListVersions(ctx, store.PrefixRequest{Bucket: name})
	for _, v := range vs {
		if err := e.Store.Remove(ctx, store.ObjectRef{Bucket: name, Key: v.Key, VersionID: v.VersionID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Store.Remove(ctx, store.ObjectRef{Bucket: name, Key: "x"}); err != nil {
		t.Fatal(err)
	}
	err = e.Store.RemoveBucket(ctx, name)
	if e.Limits.EmptiedBucketNotEmpty {
		if !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("RemoveBucket of an emptied versioned bucket on a server that keeps its folders: %v, want ErrNotEmpty", err)
		}
		return
	}
	if err != nil {
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
	for _, meta := range []bool{false, true} {
		p, err := e.Store.List(ctx, store.ListRequest{Bucket: e.Bucket, Prefix: "d/", StartAfter: "d/f4", Meta: meta})
		if got := keysOf(p); err != nil || fmt.Sprint(got) != "[d/f5 d/f6 d/sub/ d/sub2/]" {
			t.Fatalf("start after d/f4 (meta %v): %q %v", meta, got, err)
		}
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
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "p/a.csv", Body: strings.NewReader("a,b\n"), Size: 4, Options: store.PutOptions{ContentType: "text/csv", Meta: meta}}); err != nil {
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
	n, err := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "r", ETag: info.ETag, Offset: 3}, buf)
	if err != nil || string(buf[:n]) != "34567" {
		t.Fatalf("ReadAt = %q, %v", buf[:n], err)
	}
	if n, err = e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "r", Offset: 15}, make([]byte, 10)); err != nil || n != 5 {
		t.Fatalf("short read at the end = %d, %v", n, err)
	}
	if n, err := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "r", Offset: 20}, buf); err != nil || n != 0 {
		t.Fatalf("read at EOF = %d, %v", n, err)
	}
	e.Put("r", []byte("changed"))
	if _, err := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "r", ETag: info.ETag}, buf); !errors.Is(err, store.ErrStale) {
		t.Fatalf("read with the old ETag: %v, want ErrStale", err)
	}
	if _, err := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "gone"}, buf); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read of a missing key: %v", err)
	}
}

func getStreams(t *testing.T, e Env) {
	e.Put("g", []byte("whole object"))
	rc, info, err := e.Store.Get(ctx, store.GetRequest{ObjectRef: store.ObjectRef{Bucket: e.Bucket, Key: "g"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "whole object" || info.Size != 12 {
		t.Fatalf("Get = %q %+v", b, info)
	}
	if _, _, err := e.Store.Get(ctx, store.GetRequest{ObjectRef: store.ObjectRef{Bucket: e.Bucket, Key: "none"}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	for _, c := range []struct {
		r    store.Range
		want string
	}{{store.Range{Offset: 6}, "object"}, {store.Range{Offset: 1, Length: 4}, "hole"}, {store.Range{Length: 5}, "whole"}, {store.Range{Offset: 6, Length: 100}, "object"}} {
		rc, _, err := e.Store.Get(ctx, store.GetRequest{ObjectRef: store.ObjectRef{Bucket: e.Bucket, Key: "g"}, Range: c.r})
		if err != nil {
			t.Fatalf("Get %+v: %v", c.r, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != c.want {
			t.Fatalf("Get %+v = %q, want %q", c.r, b, c.want)
		}
	}
	if _, _, err := e.Store.Get(ctx, store.GetRequest{ObjectRef: store.ObjectRef{Bucket: e.Bucket, Key: "g"}, Range: store.Range{Offset: 12}}); !errors.Is(err, io.EOF) {
		t.Fatalf("Get past the end: %v, want io.EOF", err)
	}
}

func putAndStat(t *testing.T, e Env) {
	meta := map[string]string{"mode": "33188", "owner": "Data Team"}
	info, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "p/a.csv", Body: strings.NewReader("a,b\n"), Size: 4, Options: store.PutOptions{ContentType: "text/csv", Meta: meta,
		Tags: map[string]string{"k": "v"}}})
	if err != nil || info.ETag == "" || info.Size != 4 || info.Key != "p/a.csv" {
		t.Fatalf("Put = %+v, %v", info, err)
	}
	st, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "p/a.csv"})
	if err != nil || st.ContentType != "text/csv" || st.Meta["mode"] != "33188" || st.Meta["owner"] != "Data Team" || st.ETag != info.ETag || st.TagCount != 1 {
		t.Fatalf("Stat after Put = %+v, %v", st, err)
	}
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "short", Body: strings.NewReader("abc"), Size: 5}); err == nil {
		t.Fatal("a Put whose reader ends early succeeded")
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "short"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed Put left an object: %v", err)
	}
}

// userMetadataLimit pins the server's rule kfs relies on: user metadata
// whose x-amz-meta- names and values add up to 2 KiB is stored, a byte more
// is refused (ErrMetaTooLarge) by Put, NewUpload and a Copy that replaces
// the metadata, and nothing is stored.
func userMetadataLimit(t *testing.T, e Env) {
	meta := func(total int) map[string]string {
		return map[string]string{"big": strings.Repeat("v", total-len("x-amz-meta-big"))}
	}
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "fits", Body: strings.NewReader("x"), Size: 1, Options: store.PutOptions{Meta: meta(2048)}}); err != nil {
		t.Fatalf("2048 bytes of user metadata: %v", err)
	}
	_, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "over", Body: strings.NewReader("x"), Size: 1, Options: store.PutOptions{Meta: meta(2049)}})
	if e.Limits.NoMetaLimit {
		if err != nil {
			t.Fatalf("2049 bytes of user metadata on a server without the limit: %v", err)
		}
		return
	}
	if !errors.Is(err, store.ErrMetaTooLarge) {
		t.Fatalf("2049 bytes of user metadata: %v, want ErrMetaTooLarge", err)
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "over"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused put stored something: %v", err)
	}
	if _, err := e.Store.NewUpload(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "over"}, store.PutOptions{Meta: meta(2049)}); !errors.Is(err, store.ErrMetaTooLarge) {
		t.Fatalf("NewUpload with 2049 bytes of user metadata: %v", err)
	}
	ref := store.ObjectRef{Bucket: e.Bucket, Key: "fits"}
	_, err = e.Store.Copy(ctx, store.CopyRequest{Src: ref, Dst: ref, Options: store.CopyOptions{Replace: &store.PutOptions{Meta: meta(2049)}}})
	if !errors.Is(err, store.ErrMetaTooLarge) {
		t.Fatalf("Copy with 2049 bytes of user metadata: %v", err)
	}
}
