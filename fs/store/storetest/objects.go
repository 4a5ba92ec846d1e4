package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"kfs/fs/store"
	"strings"
	"testing"
	"time"
)

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
	if _, err := e.Store.Copy(ctx, ref("c"), ref("d"), store.CopyOptions{IfNoneMatch: st.ETag}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy if none match of its own ETag: %v, want ErrStale", err)
	}
	if _, err := e.Store.Copy(ctx, ref("c"), ref("d"), store.CopyOptions{IfUnmodifiedSince: st.LastModified.Add(-time.Hour)}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Copy if unmodified since an hour before it was written: %v, want ErrStale", err)
	}
	if _, err := e.Store.Stat(ctx, ref("d")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused copy stored something: %v", err)
	}
	if _, err := e.Store.Copy(ctx, ref("c"), ref("d"), store.CopyOptions{IfMatch: st.ETag, IfModifiedSince: st.LastModified.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Copy(ctx, ref("c"), ref("e"), store.CopyOptions{IfNoneMatch: "0123456789abcdef0123456789abcdef",
		IfUnmodifiedSince: time.Now().Add(time.Hour)}); err != nil {
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
	// An upload aborted underneath: its parts and completion say so (not
	// "no such file"); aborting it again finds nothing to discard.
	if _, err := e.Store.PutPart(ctx, e.Bucket, "gone", id2, 2, strings.NewReader("x"), 1); !errors.Is(err, store.ErrUploadGone) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutPart of an aborted upload: %v", err)
	}
	if _, err := e.Store.CompleteUpload(ctx, e.Bucket, "gone", id2, []store.Part{{Number: 1, ETag: "x"}}); !errors.Is(err, store.ErrUploadGone) {
		t.Fatalf("CompleteUpload of an aborted upload: %v", err)
	}
	if err := e.Store.AbortUpload(ctx, e.Bucket, "gone", id2); err != nil {
		t.Fatalf("AbortUpload of an aborted upload: %v", err)
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
