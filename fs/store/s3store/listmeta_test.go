package s3store

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kfs/fs/store"
)

// A server without metadata listings: the listing names three objects
// without metadata; HEADs give it, once per object version; an object
// deleted between the listing and its HEAD is left out.
func TestListMetaFromHeads(t *testing.T) {
	var heads atomic.Int32
	etag := `"e1"`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
			fmt.Fprint(w, `<ListBucketResult><Name>bkt</Name>`)
			for _, k := range []string{"a", "gone", "c"} {
				fmt.Fprintf(w, `<Contents><Key>%s</Key><ETag>%s</ETag><Size>1</Size><LastModified>2026-12-01T10:00:00.000Z</LastModified></Contents>`, k, strings.ReplaceAll(etag, `"`, "&#34;"))
			}
			fmt.Fprint(w, `</ListBucketResult>`)
		case r.Method == http.MethodHead:
			heads.Add(1)
			if strings.HasSuffix(r.URL.Path, "/gone") {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("ETag", etag)
			w.Header().Set("Content-Length", "1")
			w.Header().Set("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Amz-Meta-Mode", "33152")
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	defer srv.Close()
	told := 0
	s, err := New(Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "secret-key", Region: "us-east-1", Timeout: 5 * time.Second,
		Retries: -1, NoListMeta: func() { told++ }})
	if err != nil {
		t.Fatal(err)
	}
	list := func() store.ListPage {
		p, err := s.List(context.Background(), store.ListRequest{Bucket: "bkt", Meta: true})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := list()
	if len(p.Objects) != 2 || p.Objects[0].Key != "a" || p.Objects[1].Key != "c" {
		t.Fatalf("objects: %+v", p.Objects)
	}
	for _, o := range p.Objects {
		if o.Meta["mode"] != "33152" || o.ContentType != "text/plain" {
			t.Fatalf("%s: meta %v type %q", o.Key, o.Meta, o.ContentType)
		}
	}
	if heads.Load() != 3 || told != 1 {
		t.Fatalf("heads %d, told %d", heads.Load(), told)
	}
	list() // the same versions: from the cache, but for the gone one
	if heads.Load() != 4 {
		t.Fatalf("a second listing made %d HEADs in all, want 4", heads.Load())
	}
	etag = `"e2"` // changed: looked up again
	if p := list(); heads.Load() != 7 || p.Objects[0].ETag != "e2" {
		t.Fatalf("after a change: %d HEADs, %+v", heads.Load(), p.Objects)
	}
	if told != 1 {
		t.Fatalf("told %d times", told)
	}
}

// A version written a moment ago is not cached (a change within the same
// second of a whole-second LastModified would look the same), and a
// write of this store to a key forgets what was cached of it.
func TestListMetaCacheProvesItself(t *testing.T) {
	var heads atomic.Int32
	modified := map[string]time.Time{"old": time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "new": time.Now().UTC().Truncate(time.Second)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/bkt/")
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
			fmt.Fprint(w, `<ListBucketResult><Name>bkt</Name>`)
			for _, k := range []string{"new", "old"} {
				fmt.Fprintf(w, `<Contents><Key>%s</Key><ETag>&#34;e&#34;</ETag><Size>1</Size><LastModified>%s</LastModified></Contents>`, k, modified[k].Format(time.RFC3339))
			}
			fmt.Fprint(w, `</ListBucketResult>`)
		case r.Method == http.MethodHead:
			heads.Add(1)
			w.Header().Set("ETag", `"e"`)
			w.Header().Set("Content-Length", "1")
			w.Header().Set("Last-Modified", modified[key].Format(http.TimeFormat))
			w.Header().Set("X-Amz-Meta-Mode", "33188")
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	defer srv.Close()
	s, err := New(Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "secret-key", Region: "us-east-1", Timeout: 5 * time.Second, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list := func() {
		if _, err := s.List(ctx, store.ListRequest{Bucket: "bkt", Meta: true}); err != nil {
			t.Fatal(err)
		}
	}
	list()
	list()
	if got := heads.Load(); got != 3 { // new twice, old once
		t.Fatalf("%d HEADs, want 3: a version a moment old was cached", got)
	}
	if err := s.Remove(ctx, store.ObjectRef{Bucket: "bkt", Key: "old"}); err != nil {
		t.Fatal(err)
	}
	list()
	if got := heads.Load(); got != 5 { // new again, old forgotten
		t.Fatalf("%d HEADs, want 5: a key this store wrote stayed cached", got)
	}
}
