package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"kfs/ctl"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/pkg/xattr"
)

// kfsRun runs kfs and returns its exit code, stdout and stderr.
func kfsRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(kfsBin, args...)
	cmd.Env = kfsEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// Help, usage and mistakes, as a new user meets them.
func TestHelpAndMistakes(t *testing.T) {
	code, out, _ := kfsRun(t, "--help")
	if code != 0 || !strings.Contains(out, "kfs help xattrs") || !strings.Contains(out, "presign") {
		t.Fatalf("kfs --help: %d\n%s", code, out)
	}
	for _, cmd := range []string{"mount", "unmount", "presign", "stat", "versions", "restore", "cat", "rm", "cp", "compose",
		"select", "watch", "mb", "rb", "buckets", "status", "metrics"} {
		code, out, errOut := kfsRun(t, cmd, "--help")
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage") || !strings.Contains(out, "kfs "+cmd) ||
			!strings.Contains(out, "Examples:") || strings.Contains(out, "(default false)") {
			t.Errorf("kfs %s --help: exit %d, stderr %q\n%s", cmd, code, errOut, out)
		}
	}
	if _, out, _ := kfsRun(t, "mount", "--help"); !strings.Contains(out, "--cache-size") || !strings.Contains(out, "--metrics-addr") {
		t.Errorf("kfs mount --help does not list the cache and metrics options")
	}
	for typo, want := range map[string]string{"prsign": "presign", "mont": "mount", "verions": "versions"} {
		code, _, errOut := kfsRun(t, typo, "/tmp")
		if code != 2 || !strings.Contains(errOut, `unknown command "`+typo+`" (did you mean `+want+`?)`) {
			t.Errorf("kfs %s: exit %d, %q", typo, code, errOut)
		}
	}
	if code, _, errOut := kfsRun(t, "presign", "--expirs", "1d", "/tmp/x"); code != 2 || !strings.Contains(errOut, "--expires") {
		t.Errorf("flag typo: exit %d, %q", code, errOut)
	}
	code, out, _ = kfsRun(t, "help", "xattrs")
	for _, name := range []string{"user.s3.tags", "user.s3.tag.", "user.s3.retention", "user.s3.legal-hold", "user.s3.meta.",
		"user.s3.content-type", "user.s3.versioning", "user.s3.encryption", "user.s3.lifecycle", "user.s3.object-lock",
		"user.s3.policy", "user.s3.notification", "setfattr"} {
		if code != 0 || !strings.Contains(out, name) {
			t.Errorf("kfs help xattrs does not explain %s", name)
		}
	}
}

// Subcommands on a bucket root and on directories; a missing file; JSON
// as written; presign in days.
func TestSubcommandsOnRootsAndDirectories(t *testing.T) {
	b := newBucket(t)
	put(t, b, "dir/a.txt", []byte("a"))
	put(t, b, "f.txt", []byte("f"))
	m := mountKFS(t, b)
	fails := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := kfsRun(t, args...)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("kfs %q: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	fails("is a bucket's directory, not a file", "stat", m.dir)
	fails("is a directory, not a file", "stat", m.path("dir"))
	fails("is a directory, not a file", "cat", m.path("dir"))
	fails("is a directory, not a file", "presign", m.path("dir"))
	fails("kfs versions -r", "versions", m.path("dir"))
	fails("no such file", "rm", m.path("missing"))
	fails("no such file", "stat", m.path("missing"))
	fails("at most 7 days", "presign", "--expires", "8d", m.path("f.txt"))
	if u := kfsOut(t, "presign", "--expires", "1d", m.path("f.txt")); !strings.Contains(u, "X-Amz-Expires=86400") {
		t.Errorf("presign --expires 1d: %s", u)
	}
	if err := xattr.Set(m.path("f.txt"), "user.s3.meta.note", []byte("a&b<c>")); err != nil {
		t.Fatal(err)
	}
	if out := kfsOut(t, "stat", m.path("f.txt")); !strings.Contains(out, `"a&b<c>"`) {
		t.Errorf("kfs stat escapes HTML characters:\n%s", out)
	}
	if out := kfsOut(t, "versions", "-r", m.dir); !strings.Contains(out, m.path("dir", "a.txt")) || !strings.Contains(out, m.path("f.txt")) {
		t.Errorf("kfs versions -r of the bucket root:\n%s", out)
	}
	if out := kfsOut(t, "buckets", m.dir); !strings.Contains(out, b) {
		t.Errorf("kfs buckets: %s", out)
	}
	if out := kfsOut(t, "rm", "-r", m.path("dir")); out != "removed 1" {
		t.Errorf("kfs rm -r: %q", out)
	}
}

// Buckets made and removed with mkdir/rmdir and kfs mb/rb; object-lock
// default retention and the bucket policy as attributes.
func TestBucketManagement(t *testing.T) {
	plain := newBucket(t)
	m := mountKFS(t)
	ctx := context.Background()
	c := client(t)
	name := "mk-" + strings.ToLower(randomHex(6))
	if err := os.Mkdir(m.path(name), 0o755); err != nil {
		t.Fatalf("mkdir of a bucket: %v", err)
	}
	if ok, err := c.BucketExists(ctx, name); !ok || err != nil {
		t.Fatalf("mkdir made no bucket: %v %v", ok, err)
	}
	if err := os.WriteFile(m.path(name, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path(name)); err == nil {
		t.Fatal("rmdir of a non-empty bucket worked")
	}
	if code, _, errOut := kfsRun(t, "rb", m.path(name)); code == 0 || !strings.Contains(strings.ToLower(errOut), "not empty") {
		t.Errorf("kfs rb of a non-empty bucket: %d %q", code, errOut)
	}
	os.Remove(m.path(name, "f"))
	if err := os.Remove(m.path(name)); err != nil {
		t.Fatalf("rmdir of an empty bucket: %v", err)
	}
	if ok, _ := c.BucketExists(ctx, name); ok {
		t.Fatal("rmdir left the bucket")
	}
	if err := os.Mkdir(m.path("Bad_Name"), 0o755); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mkdir of a bad bucket name: %v, want EINVAL", err)
	}
	if code, _, errOut := kfsRun(t, "mb", m.path("Bad_Name")); code == 0 || !strings.Contains(errOut, "3 to 63 characters") {
		t.Errorf("kfs mb of a bad name: %d %q", code, errOut)
	}

	locked := "lk-" + strings.ToLower(randomHex(6))
	kfsOut(t, "mb", "--with-lock", "--versioning", m.path(locked))
	if _, _, _, _, err := c.GetObjectLockConfig(ctx, locked); err != nil {
		t.Fatalf("kfs mb --with-lock: %v", err)
	}
	if v, err := c.GetBucketVersioning(ctx, locked); err != nil || v.Status != "Enabled" {
		t.Fatalf("kfs mb --versioning: %+v %v", v, err)
	}
	for _, value := range []string{"Enabled GOVERNANCE 30d", "Enabled COMPLIANCE 1y"} {
		if err := xattr.Set(m.path(locked), "user.s3.object-lock", []byte(value)); err != nil {
			t.Fatalf("set %q: %v", value, err)
		}
		if got, err := xattr.Get(m.path(locked), "user.s3.object-lock"); err != nil || string(got) != value {
			t.Fatalf("object-lock reads %q %v, want %q", got, err, value)
		}
	}
	_, mode, validity, unit, _ := c.GetObjectLockConfig(ctx, locked)
	if mode == nil || *mode != minio.Compliance || validity == nil || *validity != 1 || unit == nil || *unit != minio.Years {
		t.Fatalf("default retention in the store: %v %v %v", mode, validity, unit)
	}
	if err := xattr.Set(m.path(locked), "user.s3.object-lock", []byte("Enabled")); err != nil {
		t.Fatal(err)
	}
	if _, mode, _, _, _ := c.GetObjectLockConfig(ctx, locked); mode != nil && *mode != "" {
		t.Fatalf("Enabled did not clear the default retention: %v", *mode)
	}
	if err := xattr.Set(m.path(plain), "user.s3.object-lock", []byte("Enabled GOVERNANCE 1d")); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("object lock on a bucket made without it: %v, want ENOTSUP", err)
	}

	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + plain + `/public/*"]}]}`
	if err := xattr.Set(m.path(plain), "user.s3.policy", []byte(policy)); err != nil {
		t.Fatalf("set policy: %v", err)
	}
	if got, err := c.GetBucketPolicy(ctx, plain); err != nil || !strings.Contains(got, "s3:GetObject") {
		t.Fatalf("policy in the store: %q %v", got, err)
	}
	if got, err := xattr.Get(m.path(plain), "user.s3.policy"); err != nil || !strings.Contains(string(got), "s3:GetObject") {
		t.Fatalf("policy read back: %q %v", got, err)
	}
	if err := xattr.Set(m.path(plain), "user.s3.policy", []byte(`{"Statement":`)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("malformed policy: %v, want EINVAL", err)
	}
	if err := xattr.Remove(m.path(plain), "user.s3.policy"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetBucketPolicy(ctx, plain); got != "" {
		t.Fatalf("policy after removal: %q", got)
	}
	empty := "rb-" + strings.ToLower(randomHex(6))
	kfsOut(t, "mb", m.path(empty))
	kfsOut(t, "rb", m.path(empty))
	if ok, _ := c.BucketExists(ctx, empty); ok {
		t.Fatal("kfs rb left the bucket")
	}
}

// Versions of a tree and restoring a deleted file.
func TestVersionsOfATreeAndRestore(t *testing.T) {
	b := newBucket(t)
	ctx := context.Background()
	if err := client(t).SetBucketVersioning(ctx, b, minio.BucketVersioningConfiguration{Status: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	m := mountKFS(t, b)
	f := m.path("d", "report.csv")
	os.Mkdir(m.path("d"), 0o755)
	for _, v := range []string{"one\n", "two\n"} {
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	// The socket sees the mount's own deletion at once (it waits in the
	// mount's batch: the socket sends it first).
	if code, _, errOut := kfsRun(t, "stat", f); code == 0 || !strings.Contains(strings.ToLower(errOut), "no such") {
		t.Fatalf("kfs stat right after rm: %d %q", code, errOut)
	}
	var vs []struct {
		Path         string `json:"path"`
		VersionID    string `json:"version_id"`
		IsLatest     bool   `json:"is_latest"`
		DeleteMarker bool   `json:"delete_marker"`
	}
	cl, _, err := ctl.ForPath(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Call("/v1/versions", map[string]any{"path": m.dir, "recursive": true}, &vs); err != nil {
		t.Fatal(err)
	}
	var first string
	markers := 0
	for _, v := range vs {
		if v.Path != f {
			continue
		}
		if v.DeleteMarker {
			markers++
		} else if !v.IsLatest {
			first = v.VersionID // the oldest comes last
		}
	}
	if markers != 1 || first == "" || len(vs) < 3 {
		t.Fatalf("versions -r: %+v", vs)
	}
	if out := kfsOut(t, "versions", "-r", m.dir); !strings.Contains(out, f) {
		t.Fatalf("kfs versions -r:\n%s", out)
	}
	kfsOut(t, "restore", f)
	if got, err := os.ReadFile(f); err != nil || string(got) != "two\n" {
		t.Fatalf("after restore: %q %v", got, err)
	}
	kfsOut(t, "restore", "--version-id", first, f)
	if got, err := os.ReadFile(f); err != nil || string(got) != "one\n" {
		t.Fatalf("after restore --version-id: %q %v", got, err)
	}
	if code, _, errOut := kfsRun(t, "restore", m.path("never")); code == 0 || !strings.Contains(errOut, "no earlier version") {
		t.Errorf("restore of a name that never existed: %d %q", code, errOut)
	}
}

// Server-side work across mounts of one endpoint and across buckets of an
// all-buckets mount: no byte passes through kfs (its metrics say so).
func TestServerSideAcrossMountsAndBuckets(t *testing.T) {
	a, b := newBucket(t), newBucket(t)
	data := randBytes(3 << 20)
	put(t, a, "src.csv", data)
	put(t, a, "mv.bin", data)
	p1, p2 := randBytes(5<<20+1), randBytes(1000)
	put(t, a, "p1", p1)
	put(t, a, "p2", p2)
	ma, mb := mountKFS(t, a), mountKFS(t, b)
	ctx := context.Background()
	c := client(t)

	kfsOut(t, "cp", "--server-side", "--metadata", "owner=me", "--if-modified-since", "2001-01-01T00:00:00Z",
		ma.path("src.csv"), mb.path("dst.csv"))
	st, err := c.StatObject(ctx, b, "dst.csv", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Owner"] != "me" || st.ContentType != "text/csv" || sdkSha(t, b, "dst.csv") != sha(data) {
		t.Fatalf("cross-mount copy: %+v %v", st, err)
	}
	kfsOut(t, "compose", mb.path("all.bin"), ma.path("p1"), ma.path("p2"))
	if sdkSha(t, b, "all.bin") != sha(append(append([]byte(nil), p1...), p2...)) {
		t.Fatal("cross-mount compose differs")
	}

	all := mountKFS(t)
	sh(t, "cp", all.path(a, "src.csv"), all.path(b, "cp.csv"))
	sh(t, "mv", all.path(a, "mv.bin"), all.path(b, "mv.bin"))
	src, _ := c.StatObject(ctx, a, "src.csv", minio.StatObjectOptions{})
	for _, k := range []string{"cp.csv", "mv.bin"} {
		st, err := c.StatObject(ctx, b, k, minio.StatObjectOptions{})
		if err != nil || st.ETag != src.ETag || sdkSha(t, b, k) != sha(data) {
			t.Fatalf("%s across buckets: %+v %v", k, st, err)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) { // deletes leave in batches
		if _, err := c.StatObject(ctx, a, "mv.bin", minio.StatObjectOptions{}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mv left its source")
		}
	}
	fams := parseMetrics(t, kfsOut(t, "metrics", all.dir)+"\n")
	for _, dir := range []string{"read", "written"} {
		if v, _ := metricValue(fams, "kfs_fuse_bytes_total", map[string]string{"mount": all.dir, "direction": dir}); v != 0 {
			t.Errorf("%v bytes %s through kfs for cp and mv across buckets: not server-side", v, dir)
		}
	}
}

// kfs select infers the input format and compression from the name.
func TestSelectInfersFormat(t *testing.T) {
	b := newBucket(t)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("name,n\nx,1\ny,2\nz,3\n"))
	w.Close()
	put(t, b, "data.csv.gz", gz.Bytes())
	put(t, b, "data.json", []byte(`{"n":1}`+"\n"+`{"n":2}`+"\n"))
	m := mountKFS(t, b)
	if out := kfsOut(t, "select", m.path("data.csv.gz"), "--sql", "select count(*) from S3Object"); out != "3" {
		t.Errorf("select on gzip CSV: %q", out)
	}
	out := kfsOut(t, "select", m.path("data.json"), "--json-type", "lines", "--output", "json", "--sql", "select s.n from S3Object s")
	var rows []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("select on JSON: %q: %v", out, err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 2 || rows[1]["n"] != float64(2) {
		t.Errorf("select on JSON: %q", out)
	}
}
