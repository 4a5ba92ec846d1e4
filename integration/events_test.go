package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// eventMinio starts a server with two webhook targets (KFSA and KFSB, one
// per mount), events posted before the S3 call returns.
func eventMinio(t *testing.T) (*Minio, string, string) {
	t.Helper()
	a, _ := FreeAddr()
	b, _ := FreeAddr()
	mc, err := StartMinio(MinioConfig{DataDir: t.TempDir() + "/data", Env: []string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_KFSA=on", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_KFSA=http://" + a + "/",
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_KFSA=token-a",
		"MINIO_NOTIFY_WEBHOOK_ENABLE_KFSB=on", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_KFSB=http://" + b + "/",
		"MINIO_API_SYNC_EVENTS=on"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mc.Stop)
	return mc, a, b
}

// within polls f until it is true or d has passed.
func within(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readsAs(p, want string) func() bool {
	return func() bool { b, err := os.ReadFile(p); return err == nil && string(b) == want }
}

func gone(p string) func() bool {
	return func() bool { _, err := os.Stat(p); return errors.Is(err, os.ErrNotExist) }
}

// Two mounts of one bucket with a minute of TTLs: what one mount, the SDK
// or a presigned-style PUT changes shows on the other within a second,
// through bucket events (attached with setfattr on the bucket directory).
func TestEventsKeepTwoMountsFresh(t *testing.T) {
	mc, hookA, hookB := eventMinio(t)
	c, _ := sdkClient(mc)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "shared", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	ttl := []string{"--entry-ttl", "1m", "--attr-ttl", "1m", "--negative-ttl", "1m"}
	ma := mountOn(t, mc, append([]string{"shared", "--events-webhook", hookA, "--events-token", "token-a"}, ttl...)...)
	mb := mountOn(t, mc, append([]string{"shared", "--events-webhook", hookB}, ttl...)...)
	conf := `{"QueueConfigurations":[` +
		`{"QueueArn":"arn:minio:sqs::KFSA:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]},` +
		`{"QueueArn":"arn:minio:sqs::KFSB:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}`
	sh(t, "setfattr", "-n", "user.s3.notification", "-v", conf, ma.dir)
	if out := sh(t, "getfattr", "--only-values", "-n", "user.s3.notification", mb.dir); !strings.Contains(out, "KFSB") {
		t.Fatalf("notification read back: %s", out)
	}
	os.MkdirAll(ma.path("dir"), 0o755)
	os.WriteFile(ma.path("dir/seed"), []byte("seed"), 0o644)
	// B caches everything, misses included.
	for _, p := range []string{"dir/seed", "new.txt", "sdk.txt", "dir2/seed"} {
		os.ReadFile(mb.path(p))
	}
	sh(t, "ls", "-lR", mb.dir)

	os.WriteFile(ma.path("new.txt"), []byte("made on A"), 0o644)
	if !within(time.Second, readsAs(mb.path("new.txt"), "made on A")) {
		t.Fatal("a file made on mount A did not show on B within 1 s")
	}
	os.WriteFile(ma.path("new.txt"), []byte("overwritten on A"), 0o644)
	if !within(time.Second, readsAs(mb.path("new.txt"), "overwritten on A")) {
		t.Fatal("an overwrite on A did not show on B within 1 s")
	}
	c.PutObject(ctx, "shared", "sdk.txt", strings.NewReader("from the SDK"), 12, minio.PutObjectOptions{})
	if !within(time.Second, readsAs(mb.path("sdk.txt"), "from the SDK")) {
		t.Fatal("a PUT through the SDK did not show on B within 1 s")
	}
	os.Remove(ma.path("new.txt"))
	if !within(time.Second, gone(mb.path("new.txt"))) {
		t.Fatal("a delete on A still shows on B after 1 s")
	}
	c.RemoveObject(ctx, "shared", "sdk.txt", minio.RemoveObjectOptions{})
	if !within(time.Second, gone(mb.path("sdk.txt"))) {
		t.Fatal("a delete through the SDK still shows on B after 1 s")
	}
	sh(t, "mv", ma.path("dir"), ma.path("dir2"))
	if !within(time.Second, func() bool { return gone(mb.path("dir/seed"))() && readsAs(mb.path("dir2/seed"), "seed")() }) {
		t.Fatal("a directory rename on A did not show on B within 1 s")
	}
	if out := kfsOut(t, "status", mb.dir); !strings.Contains(out, `"state": "live"`) || !strings.Contains(out, `"name": "webhook"`) {
		t.Fatalf("status of B's event sources:\n%s", out)
	}
	// New prefixes: after a failed lookup of the prefix (a negative entry
	// on B, negative-ttl 1m), under a listed parent, and a prefix whose
	// last object goes: each shows on B within the events' latency.
	os.Stat(mb.path("fresh"))
	c.PutObject(ctx, "shared", "fresh/x", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	if !within(time.Second, readsAs(mb.path("fresh/x"), "x")) {
		t.Fatal("a new prefix after a failed lookup of it did not show on B within 1 s")
	}
	c.PutObject(ctx, "shared", "dir2/sub/deeper/y", strings.NewReader("y"), 1, minio.PutObjectOptions{})
	listed := func(dir, name string) func() bool {
		return func() bool {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() == name {
					return true
				}
			}
			return false
		}
	}
	if !within(time.Second, listed(mb.path("dir2"), "sub")) {
		t.Fatal("a new prefix under a listed directory did not show on B within 1 s")
	}
	c.RemoveObject(ctx, "shared", "fresh/x", minio.RemoveObjectOptions{})
	if !within(time.Second, func() bool { return !listed(mb.dir, "fresh")() }) {
		t.Fatal("a prefix whose last object went is still listed on B after 1 s")
	}

	// An open reader on B of a file overwritten on A gets its old bytes
	// or ESTALE, never a mix.
	old := bytes.Repeat([]byte("o"), 3<<20)
	os.WriteFile(ma.path("big"), old, 0o644)
	within(time.Second, func() bool { st, err := os.Stat(mb.path("big")); return err == nil && st.Size() == int64(len(old)) })
	r, err := os.Open(mb.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 4096)
	r.Read(head)
	os.WriteFile(ma.path("big"), bytes.Repeat([]byte("n"), 3<<20), 0o644)
	time.Sleep(200 * time.Millisecond)
	sh(t, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
	rest := make([]byte, 3<<20)
	n, err := r.ReadAt(rest, 4096)
	if err != nil && !errors.Is(err, syscall.ESTALE) && n == 0 {
		t.Fatalf("reader of an overwritten file: %v", err)
	}
	if bytes.ContainsRune(rest[:n], 'n') && bytes.ContainsRune(rest[:n], 'o') || bytes.ContainsRune(rest[:n], 'n') && head[0] == 'o' {
		t.Fatal("an open reader saw bytes of two versions")
	}
	// Forged events change nothing (A requires its token).
	req := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", `{"Records":[]}`, "http://"+hookA+"/")
	if out, _ := req.Output(); string(out) != "401" {
		t.Fatalf("a POST without the token: %s", out)
	}
}

// A mount whose event source went away (MinIO restarted) keeps serving,
// falls back to its TTLs, and gets events again once the source is back.
func TestEventSourceRecovers(t *testing.T) {
	dir := t.TempDir() + "/data"
	hook, _ := FreeAddr()
	addr, _ := FreeAddr()
	env := []string{"MINIO_NOTIFY_WEBHOOK_ENABLE_KFS=on", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_KFS=http://" + hook + "/", "MINIO_API_SYNC_EVENTS=on"}
	mc, err := StartMinio(MinioConfig{DataDir: dir, Addr: addr, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := sdkClient(mc)
	ctx := context.Background()
	c.MakeBucket(ctx, "rec", minio.MakeBucketOptions{})
	m := mountOn(t, mc, "rec", "--events-webhook", hook, "--entry-ttl", "2s", "--attr-ttl", "2s", "--negative-ttl", "2s")
	sh(t, "setfattr", "-n", "user.s3.notification", "-v",
		`{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFS:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}`, m.dir)
	os.ReadFile(m.path("one"))
	c.PutObject(ctx, "rec", "one", strings.NewReader("1"), 1, minio.PutObjectOptions{})
	if !within(time.Second, readsAs(m.path("one"), "1")) {
		t.Fatal("no event before the restart")
	}
	mc.Stop()
	mc2, err := StartMinio(MinioConfig{DataDir: dir, Addr: addr, AccessKey: mc.AccessKey, SecretKey: mc.SecretKey, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer mc2.Stop()
	os.ReadFile(m.path("two"))
	c2, _ := sdkClient(mc2)
	c2.PutObject(ctx, "rec", "two", strings.NewReader("2"), 1, minio.PutObjectOptions{})
	if !within(3*time.Second, readsAs(m.path("two"), "2")) {
		t.Fatal("after the restart the change did not show within the TTL")
	}
	os.ReadFile(m.path("three"))
	c2.PutObject(ctx, "rec", "three", strings.NewReader("3"), 1, minio.PutObjectOptions{})
	if !within(time.Second, readsAs(m.path("three"), "3")) {
		log, _ := os.ReadFile(dir + ".log")
		t.Fatalf("events did not come back after the restart; minio log:\n%s", log)
	}
	if got := fmt.Sprint(os.ReadFile(m.path("one"))); !strings.Contains(got, "[49]") {
		t.Fatalf("the mount stopped serving: %s", got)
	}
}

// With bucket events reaching the mount, tar x and rsync -a send no
// listing and no HEAD: the mount's own events (a created directory's
// marker, a rename's copy, the temporary it removed) are recognised as
// its own instead of making it ask again (before, every file cost a LIST).
// tar x: one PUT per file and a
// few per directory; rsync -a: PUT, copy to the final name, delete.
func TestOwnEventsCostNoRequests(t *testing.T) {
	mc, hookA, _ := eventMinio(t)
	c, _ := sdkClient(mc)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "own", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	m := mountOn(t, mc, "own", "--events-webhook", hookA, "--events-token", "token-a")
	conf := `{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFSA:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}`
	sh(t, "setfattr", "-n", "user.s3.notification", "-v", conf, m.dir)
	os.WriteFile(m.path("seed"), []byte("seed"), 0o644)
	covered := func() bool {
		_, out, _ := kfsRun(t, "metrics", m.dir)
		v, _ := metricValue(parseMetrics(t, out), "kfs_events_received_total", map[string]string{"source": "webhook"})
		return v > 0
	}
	if !within(5*time.Second, covered) {
		t.Fatal("no webhook event arrived")
	}
	src := t.TempDir()
	for d := 0; d < 3; d++ {
		os.MkdirAll(filepath.Join(src, fmt.Sprintf("d%d", d)), 0o755)
		for i := 0; i < 8; i++ {
			os.WriteFile(filepath.Join(src, fmt.Sprintf("d%d/f%d", d, i)), []byte(fmt.Sprint(d, i)), 0o644)
		}
	}
	tarball := filepath.Join(t.TempDir(), "t.tar")
	sh(t, "tar", "cf", tarball, "-C", src, ".")
	count := func(op string) float64 {
		_, out, _ := kfsRun(t, "metrics", m.dir)
		v, _ := metricValue(parseMetrics(t, out), "kfs_s3_requests_total", map[string]string{"op": op})
		return v
	}
	os.Mkdir(m.path("t"), 0o755)
	os.Mkdir(m.path("r"), 0o755)
	time.Sleep(200 * time.Millisecond) // their events are in
	for _, step := range []struct {
		name string
		run  func()
	}{
		{"tar x", func() { sh(t, "tar", "xf", tarball, "-C", m.path("t")) }},
		{"rsync -a", func() { sh(t, "rsync", "-a", src+"/", m.path("r")+"/") }},
	} {
		l0, h0 := count("ListObjectsV2"), count("HeadObject")
		step.run()
		time.Sleep(300 * time.Millisecond) // the last events arrive
		// at most the one listing of the destination rsync reads first
		if l, h := count("ListObjectsV2")-l0, count("HeadObject")-h0; l > 1 || h != 0 {
			t.Errorf("%s of 24 files in 3 directories sent %v listings and %v HEADs", step.name, l, h)
		}
	}
	for d := 0; d < 3; d++ {
		for i := 0; i < 8; i++ {
			for _, top := range []string{"t", "r"} {
				if got, err := os.ReadFile(m.path(top, fmt.Sprintf("d%d/f%d", d, i))); err != nil || string(got) != fmt.Sprint(d, i) {
					t.Fatalf("%s/d%d/f%d: %q %v", top, d, i, got, err)
				}
			}
		}
	}
}
