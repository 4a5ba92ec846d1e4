package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kfs/fs/store"
)

// The read side over a real socket: cat (ranges, past the end), ls (pages,
// recursion, --start-after), status, buckets, warm, select on a store
// without it, metrics.
func TestReadRequests(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kfs_up 1\n") })
	var warmed []string
	c, m, _ := startServer(t, Config{Mountpoint: "/mnt/k", Bucket: "data", Endpoint: "http://s3", Metrics: metrics,
		Stats: func() any { return map[string]int{"blocks": 3} },
		Warm: func(ctx context.Context, bucket string, info store.ObjectInfo, body io.Reader) (bool, error) {
			b, _ := io.ReadAll(body)
			warmed = append(warmed, bucket+"/"+info.Key+":"+string(b))
			return true, nil
		}})
	m.PutBytes("data", "a.txt", []byte("hello world"))
	for i := 0; i < 5; i++ {
		m.PutBytes("data", "dir/f"+string(rune('0'+i)), []byte("x"))
	}
	m.PutBytes("data", "dir/sub/deep", []byte("y"))

	var out bytes.Buffer
	if _, err := c.Stream("/v1/cat", CatRequest{Path: "/mnt/k/a.txt", Offset: 6, Length: 3}, &out); err != nil || out.String() != "wor" {
		t.Fatalf("cat a range: %q %v", out.String(), err)
	}
	out.Reset()
	if _, err := c.Stream("/v1/cat", CatRequest{Path: "/mnt/k/a.txt", Offset: 100}, &out); err != nil || out.Len() != 0 {
		t.Fatalf("cat past the end: %q %v", out.String(), err)
	}
	if _, err := c.Stream("/v1/cat", CatRequest{Path: "/mnt/k/a.txt", Offset: -1}, io.Discard); err == nil {
		t.Fatal("a negative offset was accepted")
	}
	if _, err := c.Stream("/v1/cat", CatRequest{Path: "/mnt/k/none"}, io.Discard); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("cat of a missing file: %v", err)
	}

	ls, err := c.List(ListRequest{Path: "/mnt/k/dir"})
	if err != nil || len(ls) != 6 || !ls[5].Dir || ls[5].Path != "/mnt/k/dir/sub" {
		t.Fatalf("ls: %+v %v", ls, err)
	}
	ls, err = c.List(ListRequest{Path: "/mnt/k/dir", Recursive: true, StartAfter: "f2", Max: 2})
	if err != nil || len(ls) != 2 || ls[0].Key != "dir/f3" || ls[1].Key != "dir/f4" {
		t.Fatalf("ls -r --start-after f2 --max 2: %+v %v", ls, err)
	}
	if _, err := c.List(ListRequest{Path: "/mnt/k/dir", StartAfter: "/mnt/other/x"}); err == nil {
		t.Fatal("--start-after outside the listing was accepted")
	}
	if _, err := c.List(ListRequest{Path: "/mnt/k", Max: -1}); err == nil {
		t.Fatal("a negative --max was accepted")
	}

	st, err := c.Status()
	if err != nil || st.Mountpoint != "/mnt/k" || st.Bucket != "data" || st.PID != os.Getpid() || st.Extra == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
	bs, err := c.Buckets()
	if err != nil || len(bs) != 3 {
		t.Fatalf("buckets: %+v %v", bs, err)
	}
	w, err := c.Warm("/mnt/k/a.txt")
	if err != nil || w.Size != 11 || !w.Fetched || len(warmed) != 1 || warmed[0] != "data/a.txt:hello world" {
		t.Fatalf("warm: %+v %v %v", w, err, warmed)
	}
	if _, err := c.Stream("/v1/select", SelectRequest{Path: "/mnt/k/a.txt", SQL: "select * from s3object"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "not supported") {
		t.Fatalf("select on a store without it: %v", err)
	}
	if _, err := c.Stream("/v1/select", SelectRequest{Path: "/mnt/k/a.txt"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--sql") {
		t.Fatalf("select without SQL: %v", err)
	}
	out.Reset()
	if err := c.Metrics(&out); err != nil || out.String() != "kfs_up 1\n" {
		t.Fatalf("metrics: %q %v", out.String(), err)
	}
	var res ResolveResponse
	if err := c.Call("/v1/resolve", ResolveRequest{Path: "/mnt/k/dir/f1", Write: true}, &res); err != nil ||
		res.Bucket != "data" || res.Key != "dir/f1" || res.Endpoint != "http://s3" {
		t.Fatalf("resolve: %+v %v", res, err)
	}

	// A mount without a disk cache says so.
	c2, m2, _ := startServer(t, Config{Mountpoint: "/mnt/n", Bucket: "data"})
	m2.PutBytes("data", "a", []byte("x"))
	if _, err := c2.Warm("/mnt/n/a"); err == nil || !strings.Contains(err.Error(), "no disk cache") {
		t.Fatalf("warm without a disk cache: %v", err)
	}
}

// Bucket management on an all-buckets mount, restore of versions, and a
// read-only mount refusing every change.
func TestManageRequests(t *testing.T) {
	c, m, ch := startServer(t, Config{Mountpoint: "/mnt/all"})
	var b Bucket
	if err := c.Call("/v1/mb", MakeBucketRequest{Path: "/mnt/all/fresh-bucket", Versioning: true}, &b); err != nil || b.Name != "fresh-bucket" {
		t.Fatalf("mb: %+v %v", b, err)
	}
	if v, _ := m.GetVersioning(context.Background(), "fresh-bucket"); v != "Enabled" {
		t.Errorf("versioning of the new bucket: %q", v)
	}
	if err := c.Call("/v1/mb", MakeBucketRequest{Path: "/mnt/all/Bad_Name"}, &b); err == nil {
		t.Error("a bad bucket name was accepted")
	}
	if err := c.Call("/v1/mb", MakeBucketRequest{Path: "/mnt/all/a/b"}, &b); err == nil {
		t.Error("a nested path was taken for a bucket")
	}
	m.PutBytes("fresh-bucket", "k", []byte("x"))
	if err := c.Call("/v1/rb", RemoveBucketRequest{Path: "/mnt/all/fresh-bucket"}, &b); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("rb of a bucket with objects: %v", err)
	}
	if _, err := c.Remove(RemoveRequest{Path: "/mnt/all/fresh-bucket/k"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Call("/v1/rb", RemoveBucketRequest{Path: "/mnt/all/fresh-bucket"}, &b); err != nil {
		t.Fatalf("rb: %v", err)
	}
	if !strings.Contains(ch.String(), "changed:fresh-bucket/") {
		t.Errorf("the mount was not told: %s", ch)
	}

	// restore: the fake keeps one version, so a named version is copied
	// back, and "no delete marker" is said as such.
	if err := m.SetVersioning(context.Background(), "b1", "Enabled"); err != nil {
		t.Fatal(err)
	}
	info := m.PutBytes("b1", "r", []byte("v1"))
	var st ObjectStat
	if err := c.Call("/v1/restore", RestoreRequest{Path: "/mnt/all/b1/r", VersionID: info.VersionID}, &st); err != nil || st.Key != "r" {
		t.Fatalf("restore of a version: %+v %v", st, err)
	}
	if err := c.Call("/v1/restore", RestoreRequest{Path: "/mnt/all/b1/r"}, &st); err == nil || !strings.Contains(err.Error(), "is not deleted") {
		t.Fatalf("restore of a current file: %v", err)
	}
	if err := c.Call("/v1/restore", RestoreRequest{Path: "/mnt/all/b1/none"}, &st); err == nil {
		t.Fatal("restore of a file that never was succeeded")
	}

	ro, rm, _ := startServer(t, Config{Mountpoint: "/mnt/ro", Bucket: "data", ReadOnly: true})
	rm.PutBytes("data", "f", []byte("x"))
	for what, call := range map[string]func() error{
		"rm":   func() error { _, err := ro.Remove(RemoveRequest{Path: "/mnt/ro/f"}); return err },
		"copy": func() error { _, err := ro.Copy(CopyRequest{Src: "/mnt/ro/f", Dst: "/mnt/ro/g"}); return err },
		"compose": func() error {
			_, err := ro.Compose(ComposeRequest{Dst: "/mnt/ro/g", Srcs: []string{"/mnt/ro/f"}})
			return err
		},
		"restore": func() error { return ro.Call("/v1/restore", RestoreRequest{Path: "/mnt/ro/f"}, &st) },
		"resolve": func() error {
			return ro.Call("/v1/resolve", ResolveRequest{Path: "/mnt/ro/f", Write: true}, &ResolveResponse{})
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s on a read-only mount: %v", what, err)
		}
	}
	if _, err := ro.Stat(StatRequest{Path: "/mnt/ro/f"}); err != nil {
		t.Errorf("stat on a read-only mount: %v", err)
	}
}

// watch streams the hub's events under the path as JSON lines until the
// client goes.
func TestWatchStreamsEvents(t *testing.T) {
	hub := NewHub()
	c, _, _ := startServer(t, Config{Mountpoint: "/mnt/k", Bucket: "data", Hub: hub})
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := c.Stream("/v1/watch", WatchRequest{Path: "/mnt/k/in", Suffix: ".csv"}, w)
		w.CloseWithError(err)
		done <- err
	}()
	stop := make(chan struct{})
	go func() { // until the watcher has subscribed and seen one
		for i := 0; ; i++ {
			hub.Publish(Event{Event: "s3:ObjectCreated:Put", Bucket: "data", Key: "elsewhere/x.csv", Time: time.Now(), seq: fmt.Sprint(i, "a")})
			hub.Publish(Event{Event: "s3:ObjectCreated:Put", Bucket: "data", Key: "in/x.txt", Time: time.Now(), seq: fmt.Sprint(i, "b")})
			hub.Publish(Event{Event: "s3:ObjectCreated:Put", Bucket: "data", Key: "in/x.csv", Time: time.Now(), seq: fmt.Sprint(i, "c")})
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer close(stop)
	var got Event
	if err := json.NewDecoder(r).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Key != "in/x.csv" || got.Path != filepath.Join("/mnt/k", "in/x.csv") {
		t.Fatalf("watched %+v", got)
	}
	r.Close()
}

// sync reaches the mount's Sync and carries its failure back; a mount
// without one has nothing to wait for.
func TestSyncRequest(t *testing.T) {
	calls := 0
	fail := fmt.Errorf("data/f.csv: %w", store.ErrUnavailable)
	c, _, _ := startServer(t, Config{Mountpoint: "/mnt/k", Bucket: "data", Sync: func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return fail
		}
		return nil
	}})
	if err := c.Sync(); err == nil || !strings.Contains(err.Error(), "data/f.csv") {
		t.Fatalf("sync with an upload failing: %v", err)
	}
	if err := c.Sync(); err != nil || calls != 2 {
		t.Fatalf("sync: %v (%d calls)", err, calls)
	}
	plain, _, _ := startServer(t, Config{Mountpoint: "/mnt/p", Bucket: "data"})
	if err := plain.Sync(); err != nil {
		t.Fatalf("sync of a mount without write-back: %v", err)
	}
}
