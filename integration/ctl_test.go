package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/parquet-go/parquet-go"

	"kfs/ctl"
)

func kfsOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(kfsBin, args...)
	cmd.Env = kfsEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kfs %q: %v: %s", args, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func httpDo(t *testing.T, method, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestPresignedURLs(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b, "--entry-ttl", "1s", "--negative-ttl", "1s")
	sh(t, "cp", writeLocal(t, []byte("title,year\nSoul,2020\n")), m.path("movies.csv"))

	u := kfsOut(t, "presign", m.path("movies.csv"))
	resp, body := httpDo(t, http.MethodGet, u, nil)
	if resp.StatusCode != 200 || string(body) != "title,year\nSoul,2020\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("presigned GET: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	u = kfsOut(t, "presign", "--method", "PUT", "--expires", "10m", m.path("uploaded.txt"))
	if resp, body := httpDo(t, http.MethodPut, u, []byte("via presigned PUT")); resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond)
	if got, err := os.ReadFile(m.path("uploaded.txt")); err != nil || string(got) != "via presigned PUT" {
		t.Fatalf("the uploaded file through the mount: %q %v", got, err)
	}
	u = kfsOut(t, "presign", "--method", "DELETE", m.path("uploaded.txt"))
	if resp, _ := httpDo(t, http.MethodDelete, u, nil); resp.StatusCode != 204 {
		t.Fatalf("presigned DELETE: %d", resp.StatusCode)
	}
	if _, err := client(t).StatObject(context.Background(), b, "uploaded.txt", minio.StatObjectOptions{}); err == nil {
		t.Fatal("object still there after the presigned DELETE")
	}
	u = kfsOut(t, "presign", "--expires", "1s", m.path("movies.csv"))
	time.Sleep(2100 * time.Millisecond)
	if resp, _ := httpDo(t, http.MethodGet, u, nil); resp.StatusCode != 403 {
		t.Fatalf("expired URL: %d, want 403", resp.StatusCode)
	}

	var st ctl.ObjectStat
	if err := json.Unmarshal([]byte(kfsOut(t, "stat", m.path("movies.csv"))), &st); err != nil || st.Size != 21 || st.ETag == "" || st.Key != "movies.csv" {
		t.Fatalf("kfs stat: %+v %v", st, err)
	}
	if out := kfsOut(t, "buckets", m.dir); !strings.Contains(out, b) {
		t.Fatalf("kfs buckets: %s", out)
	}
	if out := kfsOut(t, "status", m.path("movies.csv")); !strings.Contains(out, `"bucket": "`+b+`"`) {
		t.Fatalf("kfs status: %s", out)
	}
}

// Every bad request gets a 4xx with one line, and the server keeps serving.
func TestControlSocketRejectsBadRequests(t *testing.T) {
	b := newBucket(t)
	put(t, b, "x", []byte("x"))
	m := mountKFS(t, b)
	sock := ctl.SocketPath(m.dir)
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v", sock, st, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	post := func(path, body string) (int, string) {
		resp, err := hc.Post("http://kfs"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	x := m.path("x")
	cases := []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"expiry too long", "/v1/presign", `{"path":"` + x + `","expires":"192h"}`, 400, "at most 7 days"},
		{"expiry zero", "/v1/presign", `{"path":"` + x + `","expires":"0s"}`, 400, "more than 0"},
		{"bad method", "/v1/presign", `{"path":"` + x + `","method":"PATCH"}`, 400, "want GET, PUT"},
		{"outside the mount", "/v1/presign", `{"path":"/etc/passwd"}`, 400, "not inside the mount"},
		{"dot-dot escape", "/v1/presign", `{"path":"` + m.dir + `/../x"}`, 400, "not inside the mount"},
		{"relative path", "/v1/presign", `{"path":"x"}`, 400, "absolute path"},
		{"malformed JSON", "/v1/presign", `{"path":`, 400, "malformed JSON"},
		{"unknown field", "/v1/presign", `{"path":"` + x + `","bucket":"other"}`, 400, "unknown field"},
		{"trailing data", "/v1/presign", `{"path":"` + x + `"} {}`, 400, "after the object"},
		{"bad response header", "/v1/presign", `{"path":"` + x + `","response_headers":{"x-evil":"1"}}`, 400, "response-*"},
		{"huge body", "/v1/presign", `{"path":"` + strings.Repeat("a", 70000) + `"}`, 413, "over"},
		{"missing object", "/v1/stat", `{"path":"` + m.path("nope") + `"}`, 404, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := post(c.path, c.body)
			var e ctl.ErrorBody
			if code != c.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, c.want) || strings.Contains(e.Error, "\n") {
				t.Fatalf("%d %s; want %d and %q", code, body, c.code, c.want)
			}
		})
	}
	resp, err := hc.Get("http://kfs/v1/presign")
	if err != nil || resp.StatusCode != 405 {
		t.Fatalf("GET on a POST endpoint: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _ := post("/v1/presign", `{"path":"`+x+`"}`); code != 200 {
		t.Fatalf("the server stopped serving after bad requests: %d", code)
	}

	// Another user cannot reach the socket.
	cmd := exec.Command("curl", "-sS", "--unix-socket", sock, "http://kfs/v1/status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("user nobody reached the socket: %s", out)
	}
	// The socket goes away with the mount.
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(sock); os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("socket left behind after unmount")
}

func TestVersionsCopyComposeRemove(t *testing.T) {
	b := newLockedBucket(t) // versioning enabled
	plain := newBucket(t)
	put(t, b, "doc.txt", []byte("one"))
	put(t, b, "doc.txt", []byte("two"))
	m := mountKFS(t)
	doc := m.path(b, "doc.txt")
	var vs []ctl.Version
	out := kfsOut(t, "versions", doc)
	lines := strings.Split(out, "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "true") {
		t.Fatalf("kfs versions:\n%s", out)
	}
	c, _, err := ctl.ForPath(doc)
	if err != nil {
		t.Fatal(err)
	}
	if vs, err = c.Versions(ctl.VersionsRequest{Path: doc}); err != nil || len(vs) != 2 {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	old := vs[0].VersionID // the version that is not the latest
	if vs[0].IsLatest {
		old = vs[1].VersionID
	}
	if got := kfsOut(t, "cat", "--version-id", old, doc); got != "one" {
		t.Fatalf("kfs cat --version-id: %q", got)
	}
	var st ctl.ObjectStat
	json.Unmarshal([]byte(kfsOut(t, "stat", "--version-id", old, doc)), &st)
	if st.Size != 3 || st.VersionID != old {
		t.Fatalf("kfs stat --version-id: %+v", st)
	}
	kfsOut(t, "rm", "--version-id", old, doc)
	if vs, _ = c.Versions(ctl.VersionsRequest{Path: doc}); len(vs) != 1 {
		t.Fatalf("after rm --version-id: %+v", vs)
	}

	// Server-side copy: conditions and metadata.
	put(t, plain, "src.bin", []byte("source bytes"))
	src := m.path(plain, "src.bin")
	sst, _ := client(t).StatObject(context.Background(), plain, "src.bin", minio.StatObjectOptions{})
	code, stderr := runKFS(t, kfsEnv(), "cp", "--server-side", "--if-match", "not-the-etag", src, m.path(plain, "refused.bin"))
	if code == 0 || !strings.Contains(stderr, "--if-match: the source's ETag is "+sst.ETag) {
		t.Fatalf("conditional copy with a wrong ETag: %d %s", code, stderr)
	}
	kfsOut(t, "cp", "--server-side", "--if-match", sst.ETag, "--metadata", "owner=team", src, m.path(plain, "copy.bin"))
	cst, err := client(t).StatObject(context.Background(), plain, "copy.bin", minio.StatObjectOptions{})
	if err != nil || cst.UserMetadata["Owner"] != "team" || string(sdkBytes(t, plain, "copy.bin")) != "source bytes" {
		t.Fatalf("copy: %v %v", cst.UserMetadata, err)
	}

	// Compose: two parts of 5 MiB+, and the 5 MiB rule explained.
	p1, p2 := randBytes(5<<20+1), randBytes(1000)
	put(t, plain, "p1", p1)
	put(t, plain, "p2", p2)
	kfsOut(t, "compose", m.path(plain, "joined"), m.path(plain, "p1"), m.path(plain, "p2"))
	if got := sdkSha(t, plain, "joined"); got != sha(append(append([]byte(nil), p1...), p2...)) {
		t.Fatal("composed bytes differ")
	}
	// The result's Content-Type: from the name, from --content-type, with
	// --metadata (minio-go's multipart compose drops Content-Type).
	for _, c := range []struct {
		name string
		args []string
		ct   string
	}{
		{"joined.csv", nil, "text/csv"},
		{"joined.dat", []string{"--content-type", "application/x-parquet", "--metadata", "source=export"}, "application/x-parquet"},
	} {
		kfsOut(t, append(append([]string{"compose"}, c.args...), m.path(plain, c.name), m.path(plain, "p1"), m.path(plain, "p2"))...)
		st, err := client(t).StatObject(context.Background(), plain, c.name, minio.StatObjectOptions{})
		if err != nil || st.ContentType != c.ct || st.Size != int64(len(p1)+len(p2)) {
			t.Fatalf("compose %s: %q %d %v, want %s", c.name, st.ContentType, st.Size, err, c.ct)
		}
		if c.args != nil && st.UserMetadata["Source"] != "export" {
			t.Fatalf("compose --metadata: %v", st.UserMetadata)
		}
	}
	code, stderr = runKFS(t, kfsEnv(), "cp", "--server-side", "--if-modified-since", "2999-01-01T00:00:00Z", src, m.path(plain, "refused.bin"))
	if code == 0 || !strings.Contains(stderr, "--if-modified-since: the source was last modified") || strings.Contains(stderr, "ETag") {
		t.Fatalf("a refused --if-modified-since copy says why: %d %s", code, stderr)
	}
	code, stderr = runKFS(t, kfsEnv(), "cp", "--server-side", "--if-none-match", sst.ETag, src, m.path(plain, "refused.bin"))
	if code == 0 || !strings.Contains(stderr, "--if-none-match") {
		t.Fatalf("a refused --if-none-match copy: %d %s", code, stderr)
	}
	kfsOut(t, "cp", "--server-side", "--if-unmodified-since", "2999-01-01T00:00:00Z", src, m.path(plain, "unmodified.bin"))
	code, stderr = runKFS(t, kfsEnv(), "compose", m.path(plain, "bad"), m.path(plain, "p2"), m.path(plain, "p1"))
	if code == 0 || !strings.Contains(stderr, "5 MiB") {
		t.Fatalf("compose with a small first source: %d %s", code, stderr)
	}

	// rm -r: batch removal.
	putMany(t, plain, []string{"tree/a", "tree/b/c", "tree/b/d"}, func(string) []byte { return []byte("x") })
	if out := kfsOut(t, "rm", "-r", m.path(plain, "tree")); out != "removed 3" {
		t.Fatalf("kfs rm -r: %q", out)
	}
	if left := listKeys(t, plain, "tree/"); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

func TestSelect(t *testing.T) {
	b := newBucket(t)
	put(t, b, "movies.csv", []byte("title,yr\nSoul,2020\nDune,2021\nTenet,2020\n"))
	put(t, b, "movies.json", []byte(`{"title":"Soul","yr":2020}`+"\n"+`{"title":"Dune","yr":2021}`+"\n"))
	m := mountKFS(t, b)
	cmd := exec.Command(kfsBin, "select", m.path("movies.csv"), "--sql", "select title from S3Object where yr = '2020'", "--stats")
	cmd.Env = kfsEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("select: %v %s", err, errb.String())
	}
	if out.String() != "Soul\nTenet\n" || !strings.Contains(errb.String(), "bytes scanned") {
		t.Fatalf("select csv: %q / %q", out.String(), errb.String())
	}
	got := kfsOut(t, "select", m.path("movies.json"), "--input", "json", "--output", "json", "--sql", "select s.title from S3Object s where s.yr > 2020")
	if got != `{"title":"Dune"}` {
		t.Fatalf("select json: %q", got)
	}
	code, stderr := runKFS(t, kfsEnv(), "select", m.path("movies.csv"), "--sql", "selec nonsense")
	if code == 0 || stderr == "" {
		t.Fatalf("bad SQL: %d %q", code, stderr)
	}
}

// kfs cp between a local file and a mount: a progress line on a terminal
// (run under script(1) for a pseudo-TTY), nothing when not a terminal.
func TestCpWithProgress(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	data := randBytes(24 << 20)
	src := writeLocal(t, data)
	cmd := exec.Command("script", "-qec", kfsBin+" cp "+src+" "+m.path("up.bin"), "/dev/null")
	cmd.Env = kfsEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kfs cp under a pty: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "24.0 MiB") || !strings.Contains(string(out), "/s") || !strings.Contains(string(out), "done in") {
		t.Fatalf("no progress line on the terminal:\n%q", out)
	}
	if got := sdkSha(t, b, "up.bin"); got != sha(data) {
		t.Fatal("uploaded bytes differ")
	}
	dst := t.TempDir() + "/down.bin"
	cmd = exec.Command(kfsBin, "cp", m.path("up.bin"), dst)
	cmd.Env = kfsEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() != 0 {
		t.Fatalf("kfs cp without a terminal: %v, stderr %q", err, stderr.String())
	}
	if got, _ := os.ReadFile(dst); sha(got) != sha(data) {
		t.Fatal("downloaded bytes differ")
	}
	if code, msg := runKFS(t, kfsEnv(), "cp", src, dst); code != 2 || !strings.Contains(msg, "kfs mount") {
		t.Fatalf("cp with neither side in a mount: %d %q", code, msg)
	}
}

// kfs watch prints bucket events, here from MinIO's webhook target (the
// pinned server's listen stream does not deliver; see README).
func TestWatchWebhookEvents(t *testing.T) {
	dir := t.TempDir()
	hookAddr, _ := FreeAddr()
	mc, err := StartMinio(MinioConfig{DataDir: dir + "/data", Env: []string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_KFS=on", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_KFS=http://" + hookAddr + "/",
		"MINIO_API_SYNC_EVENTS=on"}})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Stop()
	c, _ := sdkClient(mc)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "events", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	m := mountOn(t, mc, "events", "--events-webhook", hookAddr)
	cfg := notification.NewConfig(notification.NewArn("minio", "sqs", "", "KFS", "webhook"))
	cfg.AddEvents(notification.ObjectCreatedAll, notification.ObjectRemovedAll)
	var bn notification.Configuration
	bn.AddQueue(cfg)
	if err := c.SetBucketNotification(ctx, "events", bn); err != nil {
		t.Fatalf("attach webhook: %v", err)
	}
	watch := exec.Command(kfsBin, "watch", "--suffix", ".csv", m.dir)
	watch.Env = append(os.Environ(), "KFS_ENDPOINT="+mc.Endpoint)
	stdout, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	time.Sleep(500 * time.Millisecond) // subscribed
	lines := make(chan string, 10)
	go func() {
		dec := json.NewDecoder(stdout)
		for {
			var e ctl.Event
			if dec.Decode(&e) != nil {
				close(lines)
				return
			}
			lines <- e.Event + " " + e.Key + " " + e.Path
		}
	}()
	c.PutObject(ctx, "events", "skip.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	c.PutObject(ctx, "events", "in/new.csv", strings.NewReader("a,b"), 3, minio.PutObjectOptions{})
	c.RemoveObject(ctx, "events", "in/new.csv", minio.RemoveObjectOptions{})
	var got []string
	timeout := time.After(15 * time.Second)
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; got %v", got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("events seen within 15s: %v\nkfs log:\n%s", got, m.logText())
		}
	}
	want := []string{"s3:ObjectCreated:Put in/new.csv " + m.path("in/new.csv"), "s3:ObjectRemoved:Delete in/new.csv " + m.path("in/new.csv")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// kfs status shows the cache, uploads in flight and problems since mount.
func TestStatus(t *testing.T) {
	b := newBucket(t)
	put(t, b, "r.bin", randBytes(1<<20))
	m := mountKFS(t, b)
	os.ReadFile(m.path("r.bin"))
	os.ReadFile(m.path("r.bin"))
	// A writer in its own process (a fork of ours would close, and so
	// flush, the file when it execs) holds the file open mid-upload.
	writer := exec.Command("python3", "-c", `import os,sys,time
f=open(sys.argv[1],"wb"); f.write(os.urandom(3<<20)); f.flush(); print("ok", flush=True); time.sleep(30)`, m.path("writing.bin"))
	wout, _ := writer.StdoutPipe()
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { writer.Process.Kill(); writer.Wait() }()
	if b := make([]byte, 2); func() bool { _, err := io.ReadFull(wout, b); return err != nil }() {
		t.Fatal("the writer did not start")
	}
	os.ReadFile(m.path("bad//name"))
	var st struct {
		Mountpoint string `json:"mountpoint"`
		Stats      struct {
			Ratio float64 `json:"cache_hit_ratio"`
			FS    struct {
				Uploads []struct {
					Path  string `json:"path"`
					Bytes int64  `json:"bytes_written"`
				} `json:"uploads"`
			} `json:"fs"`
		} `json:"stats"`
	}
	raw := kfsOut(t, "status", m.dir)
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mountpoint != m.dir || len(st.Stats.FS.Uploads) != 1 || st.Stats.FS.Uploads[0].Bytes != 3<<20 ||
		!strings.HasSuffix(st.Stats.FS.Uploads[0].Path, "/writing.bin") {
		t.Fatalf("status: %+v\n%s", st, raw)
	}
	// Every kfs mount on the machine is listed: other tests' mounts may
	// come and go meanwhile, and a dead one (its process killed) is
	// reported without failing; this mount must be there and answer.
	_, out, errOut := kfsRun(t, "status")
	var all []map[string]any
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("kfs status: %v\n%s\n%s", err, out, errOut)
	}
	found := false
	for _, e := range all {
		if e["mountpoint"] == m.dir {
			found = e["error"] == nil && e["pid"] != nil
		}
	}
	if !found {
		t.Fatalf("kfs status without a path does not list %s as answering:\n%s\n%s", m.dir, out, errOut)
	}
}

// S3 Select over a Parquet file written by the test (MinIO runs with
// MINIO_API_SELECT_PARQUET=on).
func TestSelectParquet(t *testing.T) {
	type movie struct {
		Title string `parquet:"title"`
		Yr    int64  `parquet:"yr"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []movie{{"Soul", 2020}, {"Dune", 2021}, {"Tenet", 2020}}); err != nil {
		t.Fatal(err)
	}
	b := newBucket(t)
	put(t, b, "movies.parquet", buf.Bytes())
	m := mountKFS(t, b)
	got := kfsOut(t, "select", m.path("movies.parquet"), "--input", "parquet", "--sql", "select s.title from S3Object s where s.yr = 2020")
	if got != "Soul\nTenet" {
		t.Fatalf("select parquet: %q", got)
	}
}
