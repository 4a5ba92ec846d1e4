package ctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"kfs/fs/store/memstore"
)

type changes struct {
	mu   sync.Mutex
	seen []string
}

func (c *changes) add(s string) {
	c.mu.Lock()
	c.seen = append(c.seen, s)
	c.mu.Unlock()
}

func (c *changes) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.seen, " ")
}

func startServer(t *testing.T, cfg Config) (*Client, *memstore.Store, *changes) {
	t.Helper()
	t.Setenv("KFS_RUNTIME_DIR", t.TempDir())
	m := memstore.New()
	for _, b := range []string{"data", "b1", "b2"} {
		m.MakeBucketNow(b)
	}
	ch := &changes{}
	cfg.Changed = func(b, k string) { ch.add("changed:" + b + "/" + k) }
	cfg.ChangedPrefix = func(b, p string) { ch.add("prefix:" + b + "/" + p) }
	s, err := Listen(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return Dial(s.Path()), m, ch
}

func TestResolveAndPresign(t *testing.T) {
	c, m, _ := startServer(t, Config{Mountpoint: "/mnt/k", Bucket: "data", Prefix: "team/"})
	r, err := c.Presign(PresignRequest{Path: "/mnt/k/a/b.csv", Method: "put", Expires: "2h",
		ResponseHeaders: map[string]string{"response-content-type": "text/csv"}, VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.URL, "http://memstore/data/team%2Fa%2Fb.csv?") || !strings.Contains(r.URL, "X-Method=PUT") ||
		!strings.Contains(r.URL, "versionId=v1") || !strings.Contains(r.URL, "X-Amz-Expires=7200") || m.Calls("Presign") != 1 {
		t.Fatalf("URL %q", r.URL)
	}
	if _, err := c.Presign(PresignRequest{Path: "/mnt/other/x"}); err == nil || !strings.Contains(err.Error(), "not inside") {
		t.Fatalf("a path outside the mount: %v", err)
	}
	all, am, _ := startServer(t, Config{Mountpoint: "/mnt/all"})
	am.PutBytes("b2", "x/y", []byte("hello"))
	if st, err := all.Stat(StatRequest{Path: "/mnt/all/b2/x/y"}); err != nil || st.Bucket != "b2" || st.Key != "x/y" || st.Size != 5 {
		t.Fatalf("all-buckets mount: %+v %v", st, err)
	}
	if _, err := all.Stat(StatRequest{Path: "/mnt/all/b2"}); err == nil || !strings.Contains(err.Error(), "bucket's directory") {
		t.Fatalf("a bucket path: %v", err)
	}
	if _, err := all.Stat(StatRequest{Path: "/mnt/all/b2/x"}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("a directory: %v", err)
	}
	if _, err := all.Stat(StatRequest{Path: "/mnt/all/b2/none"}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("a missing object: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	for in, want := range map[string]time.Duration{"": MaxExpiry, "2h": 2 * time.Hour, "3600": time.Hour, "168h": MaxExpiry,
		"1d": 24 * time.Hour, "7d": MaxExpiry} {
		if got, err := ParseExpiry(in); err != nil || got != want {
			t.Errorf("ParseExpiry(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-1h", "169h", "soon", "8d", "0d"} {
		if _, err := ParseExpiry(in); err == nil {
			t.Errorf("ParseExpiry(%q) accepted", in)
		}
	}
}

// Every change the socket makes reaches the mount's caches before it
// answers; failures have the right status.
func TestChangesAndErrors(t *testing.T) {
	c, m, ch := startServer(t, Config{Mountpoint: "/mnt/k", Bucket: "data"})
	m.PutBytes("data", "a.csv", []byte("a,b\n"))
	big := bytes.Repeat([]byte("x"), 5<<20)
	m.PutBytes("data", "p1", big)
	m.PutBytes("data", "p2", []byte("tail"))
	if _, err := c.Copy(CopyRequest{Src: "/mnt/k/a.csv", Dst: "/mnt/k/b.csv", Metadata: map[string]string{"Owner": "me"}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Stat(StatRequest{Path: "/mnt/k/b.csv"}); st.Metadata["owner"] != "me" {
		t.Fatalf("copy metadata: %+v", st.Metadata)
	}
	// Each refused condition says which it was (the server says only
	// "precondition failed").
	future, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	a, _ := c.Stat(StatRequest{Path: "/mnt/k/a.csv"})
	for _, cc := range []struct {
		req  CopyRequest
		want string
	}{
		{CopyRequest{IfMatch: "0000"}, "--if-match: the source's ETag is " + a.ETag},
		{CopyRequest{IfNoneMatch: a.ETag}, "--if-none-match"},
		{CopyRequest{IfModifiedSince: &future}, "--if-modified-since: the source was last modified"},
		{CopyRequest{IfUnmodified: &past}, "--if-unmodified-since: the source was modified"},
	} {
		cc.req.Src, cc.req.Dst = "/mnt/k/a.csv", "/mnt/k/c.csv"
		if _, err := c.Copy(cc.req); err == nil || !strings.Contains(err.Error(), cc.want) {
			t.Fatalf("refused copy %+v: %v, want %q", cc.req, err, cc.want)
		}
	}
	if _, err := c.Stat(StatRequest{Path: "/mnt/k/c.csv"}); err == nil {
		t.Fatal("a refused copy made the destination")
	}
	if _, err := c.Compose(ComposeRequest{Dst: "/mnt/k/all", Srcs: []string{"/mnt/k/p2", "/mnt/k/p1"}}); err == nil || !strings.Contains(err.Error(), "5 MiB") {
		t.Fatalf("compose of a small first source: %v", err)
	}
	if st, err := c.Compose(ComposeRequest{Dst: "/mnt/k/all", Srcs: []string{"/mnt/k/p1", "/mnt/k/p2"}}); err != nil || st.Size != 5<<20+4 {
		t.Fatalf("compose: %+v %v", st, err)
	}
	if _, err := c.Remove(RemoveRequest{Path: "/mnt/k/none"}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("rm of a missing name: %v", err)
	}
	if r, err := c.Remove(RemoveRequest{Path: "/mnt/k/b.csv"}); err != nil || r.Removed != 1 {
		t.Fatalf("rm: %+v %v", r, err)
	}
	for i := 0; i < 5; i++ {
		m.PutBytes("data", fmt.Sprintf("dir/%d", i), []byte("x"))
	}
	if r, err := c.Remove(RemoveRequest{Path: "/mnt/k/dir", Recursive: true}); err != nil || r.Removed != 5 {
		t.Fatalf("rm -r: %+v %v", r, err)
	}
	want := "changed:data/b.csv changed:data/all changed:data/b.csv prefix:data/dir/"
	if got := ch.String(); got != want {
		t.Fatalf("changes told to the mount: %q, want %q", got, want)
	}
	if vs, err := c.Versions(VersionsRequest{Path: "/mnt/k", Recursive: true}); err != nil || len(vs) != 4 || vs[0].Path != "/mnt/k/a.csv" {
		t.Fatalf("versions -r: %+v %v", vs, err)
	}
}

// The decoder never panics and rejects what is not one well-formed request.
func FuzzDecodePresign(f *testing.F) {
	f.Add(`{"path":"/mnt/k/x","method":"GET","expires":"2h"}`)
	f.Add(`{"path":`)
	f.Add(`{"path":"/mnt/k/x"} {}`)
	m := memstore.New()
	s := &Server{cfg: Config{Mountpoint: "/mnt/k", Bucket: "b"}, be: m}
	f.Fuzz(func(t *testing.T, body string) {
		v, err := s.presign(context.Background(), []byte(body))
		if err == nil {
			r := v.(PresignResponse)
			if !strings.HasPrefix(r.URL, "http://memstore/b/") {
				t.Fatalf("accepted %q with URL %q", body, r.URL)
			}
		}
	})
}

// A socket file left by a process that died is replaced; a live one is not.
func TestStaleSocketReplaced(t *testing.T) {
	t.Setenv("KFS_RUNTIME_DIR", t.TempDir())
	cfg := Config{Mountpoint: "/mnt/stale", Bucket: "b"}
	if err := os.MkdirAll(RuntimeDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SocketPath(cfg.Mountpoint), []byte("left behind"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(cfg, memstore.New())
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()
	if _, err := Listen(cfg, memstore.New()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second server on a live socket: %v", err)
	}
}
