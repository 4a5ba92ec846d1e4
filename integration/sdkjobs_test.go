package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// The SDK jobs that were only partly there: a ranged read of an old
// version, cp from stdin, a local file copied in with metadata, type and
// tags as one PUT (one version), rm of several paths, and a listing that
// starts after a key.
func TestSDKJobsThroughKfs(t *testing.T) {
	b := newLockedBucket(t) // versioned: every PUT is a version
	m := mountKFS(t, b)
	ctx := context.Background()
	old := randBytes(3 << 20)
	put(t, b, "v.bin", old)
	put(t, b, "v.bin", []byte("new"))
	var oldID string
	for o := range client(t).ListObjects(ctx, b, minio.ListObjectsOptions{Prefix: "v.bin", WithVersions: true}) {
		if !o.IsLatest {
			oldID = o.VersionID
		}
	}
	got := kfsOut(t, "cat", "--version-id", oldID, "--offset", "1048576", "--length", "16", m.path("v.bin"))
	if got != strings.TrimSpace(string(old[1<<20:1<<20+16])) && !bytes.Equal([]byte(got), bytes.TrimSpace(old[1<<20:1<<20+16])) {
		t.Fatalf("ranged read of an old version: %q", got)
	}
	cmd := exec.Command(kfsBin, "cat", "--version-id", oldID, "--offset", "2097152", m.path("v.bin"))
	cmd.Env = kfsEnv()
	if out, err := cmd.Output(); err != nil || !bytes.Equal(out, old[2<<20:]) {
		t.Fatalf("from an offset to the end: %d bytes %v", len(out), err)
	}

	cp := exec.Command(kfsBin, "cp", "-", m.path("stdin.bin"))
	cp.Env, cp.Stdin = kfsEnv(), bytes.NewReader(old)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("kfs cp - DST: %v %s", err, out)
	}
	if !bytes.Equal(sdkBytes(t, b, "stdin.bin"), old) {
		t.Fatal("kfs cp from stdin stored other bytes")
	}

	local := filepath.Join(t.TempDir(), "data.csv")
	os.WriteFile(local, []byte("a,b\n1,2\n"), 0o644)
	kfsOut(t, "cp", "--metadata", "Owner=data-team", "--content-type", "text/x-csv", "--tags", "project=kfs&stage=raw", local, m.path("data.csv"))
	st, err := client(t).StatObject(ctx, b, "data.csv", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Owner"] != "data-team" || st.ContentType != "text/x-csv" || st.UserTagCount != 2 {
		t.Fatalf("cp with metadata, type and tags: %+v %v", st, err)
	}
	versions := 0
	for range client(t).ListObjects(ctx, b, minio.ListObjectsOptions{Prefix: "data.csv", WithVersions: true}) {
		versions++
	}
	if versions != 1 {
		t.Fatalf("cp with metadata, type and tags made %d versions, want one PUT", versions)
	}

	for _, n := range []string{"r1", "r2", "r3"} {
		os.WriteFile(m.path(n), []byte(n), 0o644)
	}
	if out := kfsOut(t, "rm", m.path("r1"), m.path("r2")); out != "removed 2" {
		t.Fatalf("kfs rm of two paths: %q", out)
	}
	if left := listKeys(t, b, "r"); strings.Join(left, ",") != "r3" {
		t.Fatalf("left after kfs rm of two: %v", left)
	}

	out := kfsOut(t, "ls", "--start-after", "r3", m.dir)
	if out != m.path("stdin.bin")+"\n"+m.path("v.bin") {
		t.Fatalf("kfs ls --start-after r3:\n%s", out)
	}
	if out := kfsOut(t, "ls", "--max", "1", m.dir); out != m.path("data.csv") {
		t.Fatalf("kfs ls --max 1: %q", out)
	}
}
