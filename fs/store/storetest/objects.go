package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"kfs/fs/store"
	"strings"
	"testing"
	"time"
)

func copyMetadata(t *testing.T, e Env) {
	meta := map[string]string{"mode": "33188", "mtime": "1700000000"}
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "a.csv", Body: strings.NewReader("a,b\n"), Size: 4, Options: store.PutOptions{ContentType: "text/csv", Meta: meta}}); err != nil {
		t.Fatal(err)
	}
	ref := func(k string) store.ObjectRef { return store.ObjectRef{Bucket: e.Bucket, Key: k} }
	cp, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("a.csv"), Dst: ref("b.csv")})
	if err != nil || cp.Size != 4 || cp.ETag == "" {
		t.Fatalf("Copy = %+v %v", cp, err)
	}
	st, err := e.Store.Stat(ctx, ref("b.csv"))
	if err != nil || st.Meta["mode"] != "33188" || st.ContentType != "text/csv" {
		t.Fatalf("copy kept metadata? %+v %v", st, err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("b.csv"), Dst: ref("b.csv"), Options: store.CopyOptions{Replace: &store.PutOptions{ContentType: "text/plain",
		Meta: map[string]string{"mode": "33261"}}}}); err != nil {
		t.Fatal(err)
	}
	st, _ = e.Store.Stat(ctx, ref("b.csv"))
	if st.Meta["mode"] != "33261" || st.Meta["mtime"] != "" || st.ContentType != "text/plain" || st.Size != 4 {
		t.Fatalf("self-copy with new metadata: %+v", st)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("none"), Dst: ref("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("copy of a missing object: %v", err)
	}
}

func copyConditions(t *testing.T, e Env) {
	e.Put("c", []byte("data"))
	ref := func(k string) store.ObjectRef { return store.ObjectRef{Bucket: e.Bucket, Key: k} }
	st, _ := e.Store.Stat(ctx, ref("c"))
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("c"), Dst: ref("d"), Options: store.CopyOptions{IfMatch: "0123456789abcdef0123456789abcdef"}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy with a wrong ETag: %v, want ErrStale", err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("c"), Dst: ref("d"), Options: store.CopyOptions{IfModifiedSince: time.Now().Add(time.Hour)}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy if modified since the future: %v, want ErrStale", err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("c"), Dst: ref("d"), Options: store.CopyOptions{IfNoneMatch: st.ETag}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy if none match of its own ETag: %v, want ErrStale", err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("c"), Dst: ref("d"), Options: store.CopyOptions{IfUnmodifiedSince: st.LastModified.Add(-time.Hour)}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy if unmodified since an hour before it was written: %v, want ErrStale", err)
	}
	if _, err := e.Store.Stat(ctx, ref("d")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused copy stored something: %v", err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("c"), Dst: ref("d"), Options: store.CopyOptions{IfMatch: st.ETag, IfModifiedSince: st.LastModified.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: ref("c"), Dst: ref("e"), Options: store.CopyOptions{IfNoneMatch: "0123456789abcdef0123456789abcdef",
		IfUnmodifiedSince: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatalf("Copy if none match another ETag and unmodified since the future: %v", err)
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
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "x", Body: strings.NewReader("xyz"), Size: 3, Options: store.PutOptions{Tags: map[string]string{"t": "1"},
		Meta: map[string]string{"owner": "me"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Copy(ctx, store.CopyRequest{Src: store.ObjectRef{Bucket: e.Bucket, Key: "x"}, Dst: store.ObjectRef{Bucket: other, Key: "x"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.Store.GetTags(ctx, store.ObjectRef{Bucket: other, Key: "x"})
	if err != nil || tags["t"] != "1" {
		t.Fatalf("tags after a copy across buckets: %v %v", tags, err)
	}
	buf := make([]byte, 3)
	if n, err := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: other, Key: "x"}, buf); err != nil || string(buf[:n]) != "xyz" {
		t.Fatalf("copied bytes %q %v", buf[:n], err)
	}
}

func compose(t *testing.T, e Env) {
	big := bytes.Repeat([]byte("A"), store.MinPartSize)
	e.Put("p1", big)
	e.Put("p2", []byte("tail"))
	e.Put("small", []byte("s"))
	ref := func(k string) store.ObjectRef { return store.ObjectRef{Bucket: e.Bucket, Key: k} }
	info, err := e.Store.Compose(ctx, store.ComposeRequest{Dst: ref("all"), Srcs: []store.ObjectRef{ref("p1"), ref("p2")}})
	if err != nil || info.Size != store.MinPartSize+4 {
		t.Fatalf("Compose = %+v %v", info, err)
	}
	buf := make([]byte, 6)
	if n, _ := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "all", Offset: store.MinPartSize - 2}, buf); string(buf[:n]) != "AAtail" {
		t.Fatalf("composed bytes %q", buf[:n])
	}
	if _, err := e.Store.Compose(ctx, store.ComposeRequest{Dst: ref("bad"), Srcs: []store.ObjectRef{ref("small"), ref("p2")}}); err == nil {
		t.Fatal("compose of a small first source succeeded")
	}
}

func multipart(t *testing.T, e Env) {
	base := bytes.Repeat([]byte("B"), store.MinPartSize+10)
	e.Put("src", base)
	src, _ := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "src"})
	id, err := e.Store.NewUpload(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "dst"}, store.PutOptions{Meta: map[string]string{"uid": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := e.Store.CopyPart(ctx, store.CopyPartRequest{Upload: id, Number: 1, Src: store.ObjectRef{Bucket: e.Bucket, Key: "src"}, SrcETag: src.ETag, Length: store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.Store.PutPart(ctx, store.PartRequest{Upload: id, Number: 2, Body: strings.NewReader("tail"), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.CopyPart(ctx, store.CopyPartRequest{Upload: id, Number: 3, Src: store.ObjectRef{Bucket: e.Bucket, Key: "src"}, SrcETag: "0123456789abcdef0123456789abcdef", Length: 10}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("CopyPart with a stale ETag: %v", err)
	}
	ups, err := e.Store.ListUploads(ctx, store.PrefixRequest{Bucket: e.Bucket})
	if err != nil || len(ups) != 1 || ups[0].Key != "dst" || ups[0].ID != id.ID {
		t.Fatalf("ListUploads = %+v, %v", ups, err)
	}
	if _, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "dst"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an incomplete upload is visible: %v", err)
	}
	info, err := e.Store.CompleteUpload(ctx, id, []store.Part{p1, p2})
	if err != nil || info.ETag == "" {
		t.Fatalf("Complete = %+v, %v", info, err)
	}
	st, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "dst"})
	if err != nil || st.Size != store.MinPartSize+4 || st.Meta["uid"] != "7" {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	buf := make([]byte, 8)
	if n, _ := e.Store.ReadAt(ctx, store.ReadRequest{Bucket: e.Bucket, Key: "dst", Offset: store.MinPartSize - 4}, buf); string(buf[:n]) != "BBBBtail" {
		t.Fatalf("assembled bytes %q", buf[:n])
	}
	abortedUpload(t, e)
}

// abortedUpload: an upload aborted underneath fails its parts and
// completion as gone, not as a missing file; aborting it again succeeds.
func abortedUpload(t *testing.T, e Env) {
	id2, _ := e.Store.NewUpload(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "gone"}, store.PutOptions{})
	if _, err := e.Store.PutPart(ctx, store.PartRequest{Upload: id2, Number: 1, Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.AbortUpload(ctx, id2); err != nil {
		t.Fatal(err)
	}
	// An upload aborted underneath: its parts and completion say so (not
	// "no such file"); aborting it again finds nothing to discard.
	if _, err := e.Store.PutPart(ctx, store.PartRequest{Upload: id2, Number: 2, Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, store.ErrUploadGone) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutPart of an aborted upload: %v", err)
	}
	if _, err := e.Store.CompleteUpload(ctx, id2, []store.Part{{Number: 1, ETag: "x"}}); !errors.Is(err, store.ErrUploadGone) {
		t.Fatalf("CompleteUpload of an aborted upload: %v", err)
	}
	if err := e.Store.AbortUpload(ctx, id2); err != nil {
		t.Fatalf("AbortUpload of an aborted upload: %v", err)
	}
	if ups, _ := e.Store.ListUploads(ctx, store.PrefixRequest{Bucket: e.Bucket}); len(ups) != 0 {
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
	failed, err := e.Store.RemoveMany(ctx, store.RemoveManyRequest{Bucket: e.Bucket, Keys: []string{"many/0", "many/1", "many/2", "many/none"}})
	if err != nil || len(failed) != 0 {
		t.Fatalf("RemoveMany: %v %v", failed, err)
	}
	if p, _ := e.Store.List(ctx, store.ListRequest{Bucket: e.Bucket, Prefix: "many/"}); len(p.Objects) != 0 {
		t.Fatalf("left after RemoveMany: %+v", p.Objects)
	}
}

func tags(t *testing.T, e Env) {
	e.Put("t", []byte("x"))
	if m, err := e.Store.GetTags(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "t"}); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("untagged: %v %v", m, err)
	}
	want := map[string]string{"project": "kfs", "team": "data science"}
	if err := e.Store.PutTags(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "t"}, want); err != nil {
		t.Fatal(err)
	}
	if m, err := e.Store.GetTags(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "t"}); err != nil || fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("GetTags = %v %v", m, err)
	}
	if err := e.Store.PutTags(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "t"}, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.Store.GetTags(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "t"}); len(m) != 0 {
		t.Fatalf("after clearing: %v", m)
	}
	if _, err := e.Store.GetTags(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "missing"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tags of a missing object: %v", err)
	}
}

// putConditions: a Put with IfAbsent or IfMatch stores nothing (ErrStale)
// when the condition fails, and stores when it holds.
func putConditions(t *testing.T, e Env) {
	put := func(key, body string, o store.PutOptions) (store.ObjectInfo, error) {
		return e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: key, Body: strings.NewReader(body), Size: int64(len(body)), Options: o})
	}
	first, err := put("p", "one", store.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatalf("Put if absent where nothing is: %v", err)
	}
	if _, err := put("p", "two", store.PutOptions{IfAbsent: true}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Put if absent over an object: %v, want ErrStale", err)
	}
	if _, err := put("p", "two", store.PutOptions{IfMatch: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Put if match of another ETag: %v, want ErrStale", err)
	}
	if _, err := put("q", "two", store.PutOptions{IfMatch: first.ETag}); !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Put if match where nothing is: %v, want ErrStale (MinIO) or ErrNotFound (SeaweedFS, AWS)", err)
	}
	get := func(key string) string {
		rc, _, err := e.Store.Get(ctx, store.GetRequest{ObjectRef: store.ObjectRef{Bucket: e.Bucket, Key: key}})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	if got := get("p"); got != "one" {
		t.Fatalf("a refused Put changed the object: %q", got)
	}
	if _, err := put("p", "three", store.PutOptions{IfMatch: first.ETag}); err != nil {
		t.Fatalf("Put if match of its ETag: %v", err)
	}
	if got := get("p"); got != "three" {
		t.Fatalf("after a Put if match: %q", got)
	}
}
