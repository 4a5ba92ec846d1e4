// Package storetest is the conformance suite every fs.Store passes: the
// MinIO adapter (in integration/) and the in-memory fake (in fs/).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	kfs "kfs/fs"
)

// Env is a store with an empty bucket and a way to put objects into it
// behind the store's back (the SDK, or the fake's helper).
type Env struct {
	Store  kfs.Store
	Bucket string
	Put    func(key string, data []byte)
}

// Run runs the suite; newEnv gives each subtest a fresh bucket.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	ctx := context.Background()
	t.Run("StatAndNotFound", func(t *testing.T) {
		e := newEnv(t)
		e.Put("a/b.txt", []byte("hello"))
		info, err := e.Store.Stat(ctx, e.Bucket, "a/b.txt")
		if err != nil || info.Size != 5 || info.ETag == "" || info.Key != "a/b.txt" || info.LastModified.IsZero() {
			t.Fatalf("Stat = %+v, %v", info, err)
		}
		if _, err := e.Store.Stat(ctx, e.Bucket, "a/missing"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Stat missing: %v, want ErrNotExist", err)
		}
		if _, err := e.Store.Stat(ctx, e.Bucket, "a"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Stat of a prefix: %v, want ErrNotExist", err)
		}
		if err := e.Store.StatBucket(ctx, e.Bucket); err != nil {
			t.Fatal(err)
		}
		if err := e.Store.StatBucket(ctx, "no-such-bucket-kfs"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("StatBucket missing: %v", err)
		}
		bs, err := e.Store.ListBuckets(ctx)
		found := false
		for _, b := range bs {
			found = found || b.Name == e.Bucket && !b.Created.IsZero()
		}
		if err != nil || !found {
			t.Fatalf("ListBuckets = %+v, %v", bs, err)
		}
	})
	t.Run("ListPagesInOrder", func(t *testing.T) {
		e := newEnv(t)
		var want []string
		for i := 0; i < 7; i++ {
			e.Put(fmt.Sprintf("d/f%d", i), []byte("x"))
			want = append(want, fmt.Sprintf("d/f%d", i))
		}
		e.Put("d/sub/x", []byte("x"))
		e.Put("d/sub2/", nil)
		e.Put("d/", nil)
		e.Put("other", []byte("x"))
		want = append(want, "d/sub/", "d/sub2/")
		var got []string
		token, pages := "", 0
		for {
			p, err := e.Store.List(ctx, e.Bucket, "d/", token, 3, false)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, o := range p.Objects {
				if o.Key != "d/" {
					got = append(got, o.Key)
				}
			}
			got = append(got, p.Prefixes...)
			if token = p.NextToken; token == "" {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || pages < 3 {
			t.Fatalf("listing %q in %d pages, want %q in at least 3", got, pages, want)
		}
		p, err := e.Store.List(ctx, e.Bucket, "nothing/", "", 0, true)
		if err != nil || len(p.Objects)+len(p.Prefixes) != 0 || p.NextToken != "" {
			t.Fatalf("empty listing: %+v %v", p, err)
		}
	})
	t.Run("ReadAtRangesAndETag", func(t *testing.T) {
		e := newEnv(t)
		data := []byte("0123456789abcdefghij")
		e.Put("r", data)
		info, _ := e.Store.Stat(ctx, e.Bucket, "r")
		buf := make([]byte, 5)
		n, err := e.Store.ReadAt(ctx, e.Bucket, "r", info.ETag, buf, 3)
		if err != nil || string(buf[:n]) != "34567" {
			t.Fatalf("ReadAt = %q, %v", buf[:n], err)
		}
		n, err = e.Store.ReadAt(ctx, e.Bucket, "r", "", make([]byte, 10), 15)
		if err != nil || n != 5 {
			t.Fatalf("short read at the end = %d, %v", n, err)
		}
		if n, err := e.Store.ReadAt(ctx, e.Bucket, "r", "", buf, 20); err != nil || n != 0 {
			t.Fatalf("read at EOF = %d, %v", n, err)
		}
		e.Put("r", []byte("changed"))
		if _, err := e.Store.ReadAt(ctx, e.Bucket, "r", info.ETag, buf, 0); !errors.Is(err, kfs.ErrStale) {
			t.Fatalf("read with the old ETag: %v, want ErrStale", err)
		}
		if _, err := e.Store.ReadAt(ctx, e.Bucket, "gone", "", buf, 0); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read of a missing key: %v", err)
		}
	})
	t.Run("PutStatAndCopy", func(t *testing.T) {
		e := newEnv(t)
		meta := map[string]string{"mode": "33188", "mtime": "1700000000"}
		info, err := e.Store.Put(ctx, e.Bucket, "p/a.csv", bytes.NewReader([]byte("a,b\n")), 4, kfs.PutOptions{ContentType: "text/csv", Meta: meta})
		if err != nil || info.ETag == "" || info.Size != 4 {
			t.Fatalf("Put = %+v, %v", info, err)
		}
		st, err := e.Store.Stat(ctx, e.Bucket, "p/a.csv")
		if err != nil || st.ContentType != "text/csv" || st.Meta["mode"] != "33188" || st.Meta["mtime"] != "1700000000" || st.ETag != info.ETag {
			t.Fatalf("Stat after Put = %+v, %v", st, err)
		}
		e.Put("p/plain", []byte("x"))
		e.Put("p/sub/x", []byte("x"))
		lp, err := e.Store.List(ctx, e.Bucket, "p/", "", 0, true)
		if err != nil || len(lp.Objects) != 2 || len(lp.Prefixes) != 1 || lp.Prefixes[0] != "p/sub/" {
			t.Fatalf("List with metadata = %+v, %v", lp, err)
		}
		if m := lp.Objects[0].Meta; m["mode"] != "33188" || m["mtime"] != "1700000000" || len(lp.Objects[1].Meta) != 0 || lp.Objects[1].Meta == nil {
			t.Fatalf("metadata in the listing: %+v / %+v", lp.Objects[0].Meta, lp.Objects[1].Meta)
		}
		if lp, _ := e.Store.List(ctx, e.Bucket, "p/", "", 0, false); lp.Objects[0].Key != "p/a.csv" || lp.Objects[0].Size != 4 {
			t.Fatalf("plain listing: %+v", lp.Objects)
		}
		if _, err := e.Store.Copy(ctx, e.Bucket, "p/a.csv", "not-the-etag", "p/b.csv", nil); !errors.Is(err, kfs.ErrStale) {
			t.Fatalf("Copy with a wrong ETag: %v, want ErrStale", err)
		}
		if _, err := e.Store.Copy(ctx, e.Bucket, "p/a.csv", info.ETag, "p/b.csv", nil); err != nil {
			t.Fatal(err)
		}
		st, err = e.Store.Stat(ctx, e.Bucket, "p/b.csv")
		if err != nil || st.Meta["mode"] != "33188" || st.Size != 4 {
			t.Fatalf("copy kept metadata? %+v %v", st, err)
		}
		if _, err := e.Store.Copy(ctx, e.Bucket, "p/b.csv", "", "p/b.csv", &kfs.PutOptions{ContentType: "text/plain", Meta: map[string]string{"mode": "33261"}}); err != nil {
			t.Fatal(err)
		}
		st, _ = e.Store.Stat(ctx, e.Bucket, "p/b.csv")
		if st.Meta["mode"] != "33261" || st.Meta["mtime"] != "" || st.ContentType != "text/plain" {
			t.Fatalf("self-copy with new metadata: %+v", st)
		}
		if err := e.Store.Remove(ctx, e.Bucket, "p/b.csv"); err != nil {
			t.Fatal(err)
		}
		if err := e.Store.Remove(ctx, e.Bucket, "p/b.csv"); err != nil {
			t.Fatalf("removing a missing object: %v", err)
		}
		for i := 0; i < 3; i++ {
			e.Put(fmt.Sprintf("many/%d", i), []byte("x"))
		}
		if err := e.Store.RemoveMany(ctx, e.Bucket, []string{"many/0", "many/1", "many/2", "many/none"}); err != nil {
			t.Fatal(err)
		}
		if p, _ := e.Store.List(ctx, e.Bucket, "many/", "", 0, false); len(p.Objects) != 0 {
			t.Fatalf("left after RemoveMany: %+v", p.Objects)
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		e := newEnv(t)
		base := bytes.Repeat([]byte("B"), kfs.MinPartSize+10)
		e.Put("src", base)
		src, _ := e.Store.Stat(ctx, e.Bucket, "src")
		id, err := e.Store.NewUpload(ctx, e.Bucket, "dst", kfs.PutOptions{Meta: map[string]string{"uid": "7"}})
		if err != nil {
			t.Fatal(err)
		}
		p1, err := e.Store.CopyPart(ctx, e.Bucket, "dst", id, 1, "src", src.ETag, 0, kfs.MinPartSize)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := e.Store.PutPart(ctx, e.Bucket, "dst", id, 2, []byte("tail"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Store.CopyPart(ctx, e.Bucket, "dst", id, 3, "src", "bad-etag", 0, 10); !errors.Is(err, kfs.ErrStale) {
			t.Fatalf("CopyPart with a stale ETag: %v", err)
		}
		ups, err := e.Store.ListUploads(ctx, e.Bucket, "")
		if err != nil || len(ups) != 1 || ups[0].Key != "dst" || ups[0].ID != id {
			t.Fatalf("ListUploads = %+v, %v", ups, err)
		}
		info, err := e.Store.CompleteUpload(ctx, e.Bucket, "dst", id, []kfs.Part{p1, p2})
		if err != nil || info.ETag == "" {
			t.Fatalf("Complete = %+v, %v", info, err)
		}
		st, err := e.Store.Stat(ctx, e.Bucket, "dst")
		if err != nil || st.Size != kfs.MinPartSize+4 || st.Meta["uid"] != "7" {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
		buf := make([]byte, 8)
		if n, _ := e.Store.ReadAt(ctx, e.Bucket, "dst", "", buf, kfs.MinPartSize-4); string(buf[:n]) != "BBBBtail" {
			t.Fatalf("assembled bytes %q", buf[:n])
		}
		id2, _ := e.Store.NewUpload(ctx, e.Bucket, "gone", kfs.PutOptions{})
		if _, err := e.Store.PutPart(ctx, e.Bucket, "gone", id2, 1, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := e.Store.AbortUpload(ctx, e.Bucket, "gone", id2); err != nil {
			t.Fatal(err)
		}
		if ups, _ := e.Store.ListUploads(ctx, e.Bucket, ""); len(ups) != 0 {
			t.Fatalf("uploads left: %+v", ups)
		}
		if _, err := e.Store.Stat(ctx, e.Bucket, "gone"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("aborted upload visible: %v", err)
		}
	})
	t.Run("Tags", func(t *testing.T) {
		e := newEnv(t)
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
		if _, err := e.Store.GetTags(ctx, e.Bucket, "missing"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("tags of a missing object: %v", err)
		}
	})
}
