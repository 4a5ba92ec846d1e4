// Package storetest is the conformance suite every fs.Store passes: the
// MinIO adapter (in integration/) and the in-memory fake (in fs/).
package storetest

import (
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
			p, err := e.Store.List(ctx, e.Bucket, "d/", token, 3)
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
		p, err := e.Store.List(ctx, e.Bucket, "nothing/", "", 0)
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
}
