package ctl

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

type fakeBackend struct {
	Extended  // not used by these tests
	presigned []string
}

func (f *fakeBackend) Presign(ctx context.Context, method, bucket, key string, exp time.Duration, p url.Values) (string, error) {
	u := "http://s3/" + bucket + "/" + key + "?m=" + method + "&e=" + exp.String() + "&" + p.Encode()
	f.presigned = append(f.presigned, u)
	return u, nil
}
func (f *fakeBackend) Stat(ctx context.Context, bucket, key, v string) (ObjectStat, error) {
	return ObjectStat{Bucket: bucket, Key: key}, nil
}
func (f *fakeBackend) Buckets(ctx context.Context) ([]Bucket, error) {
	return []Bucket{{Name: "b1"}}, nil
}

func startServer(t *testing.T, cfg Config) (*Client, *fakeBackend) {
	t.Helper()
	t.Setenv("KFS_RUNTIME_DIR", t.TempDir())
	fb := &fakeBackend{}
	s, err := Listen(cfg, fb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return Dial(s.Path()), fb
}

func TestResolveAndPresign(t *testing.T) {
	c, fb := startServer(t, Config{Mountpoint: "/mnt/k", Bucket: "data", Prefix: "team/"})
	r, err := c.Presign(PresignRequest{Path: "/mnt/k/a/b.csv", Method: "put", Expires: "2h",
		ResponseHeaders: map[string]string{"response-content-type": "text/csv"}, VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "http://s3/data/team/a/b.csv?m=PUT&e=2h0m0s&response-content-type=text%2Fcsv&versionId=v1"
	if r.URL != want || len(fb.presigned) != 1 {
		t.Fatalf("URL %q, want %q", r.URL, want)
	}
	if _, err := c.Presign(PresignRequest{Path: "/mnt/k"}); err == nil || !strings.Contains(err.Error(), "not inside") {
		t.Fatalf("the mount root itself: %v", err)
	}
	all, _ := startServer(t, Config{Mountpoint: "/mnt/all"})
	if st, err := all.Stat(StatRequest{Path: "/mnt/all/b2/x/y"}); err != nil || st.Bucket != "b2" || st.Key != "x/y" {
		t.Fatalf("all-buckets mount: %+v %v", st, err)
	}
	if _, err := all.Stat(StatRequest{Path: "/mnt/all/b2"}); err == nil || !strings.Contains(err.Error(), "names a bucket") {
		t.Fatalf("a bucket path: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	for in, want := range map[string]time.Duration{"": MaxExpiry, "2h": 2 * time.Hour, "3600": time.Hour, "168h": MaxExpiry} {
		if got, err := ParseExpiry(in); err != nil || got != want {
			t.Errorf("ParseExpiry(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-1h", "169h", "soon", "8d"} {
		if _, err := ParseExpiry(in); err == nil {
			t.Errorf("ParseExpiry(%q) accepted", in)
		}
	}
}

// The decoder never panics and rejects what is not one well-formed request.
func FuzzDecodePresign(f *testing.F) {
	f.Add(`{"path":"/mnt/k/x","method":"GET","expires":"2h"}`)
	f.Add(`{"path":`)
	f.Add(`{"path":"/mnt/k/x"} {}`)
	s := &Server{cfg: Config{Mountpoint: "/mnt/k", Bucket: "b"}, be: &fakeBackend{}}
	f.Fuzz(func(t *testing.T, body string) {
		v, err := s.presign(context.Background(), []byte(body))
		if err == nil {
			r := v.(PresignResponse)
			if !strings.HasPrefix(r.URL, "http://s3/b/") {
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
	s, err := Listen(cfg, &fakeBackend{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()
	if _, err := Listen(cfg, &fakeBackend{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second server on a live socket: %v", err)
	}
}
