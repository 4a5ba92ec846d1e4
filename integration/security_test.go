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
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// kfsAs runs the kfs binary as another user (setpriv), from a copy every
// user may execute; it returns the exit code, stdout and stderr.
func kfsAs(t *testing.T, uid int, args ...string) (int, string, string) {
	t.Helper()
	bin := publicKfs(t)
	full := append([]string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups", "env", "HOME=/tmp", bin}, args...)
	cmd := exec.Command("setpriv", full...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// publicKfs is a copy of the kfs binary in a directory every user can read.
func publicKfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "kfs-public-bin")
	bin := filepath.Join(dir, "kfs")
	if st, err := os.Stat(bin); err == nil && st.Mode().Perm() == 0o755 {
		if a, b := fileSize(kfsBin), st.Size(); a == b {
			return bin
		}
	}
	os.MkdirAll(dir, 0o755)
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(kfsBin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := bin + fmt.Sprintf(".%d", os.Getpid())
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return st.Size()
}

// On a shared (allow_other) mount every user reaches the control socket
// with exactly the rights the filesystem gives them; without allow_other
// only the owner and root; on -o ro nothing changes through the socket,
// whoever asks; every refusal says why and is logged with the uid.
func TestControlSocketAuthorizesEachRequest(t *testing.T) {
	const alice, bob = 65534, 65533
	b := newBucket(t)
	m := mountKFS(t, b, "--allow-other")
	reachable(m.dir)
	os.WriteFile(m.path("open.csv"), []byte("a,b\n1,2\n"), 0o644)
	os.WriteFile(m.path("secret.csv"), []byte("x"), 0o600)
	os.Mkdir(m.path("rootonly"), 0o755)
	os.WriteFile(m.path("rootonly/f"), []byte("f"), 0o644)
	os.Mkdir(m.path("shared"), 0o777)
	os.Chmod(m.path("shared"), 0o777)
	os.WriteFile(m.path("shared/g"), []byte("g"), 0o644)

	if code, out, errOut := kfsAs(t, alice, "presign", m.path("open.csv")); code != 0 || !strings.Contains(out, "X-Amz-Signature") {
		t.Fatalf("presign of a 0644 file by another user: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := kfsAs(t, alice, "presign", m.path("secret.csv")); code == 0 || !strings.Contains(errOut, "needs read permission") {
		t.Fatalf("presign of a 0600 file by another user: %d %q", code, errOut)
	}
	if code, _, errOut := kfsAs(t, alice, "cat", m.path("secret.csv")); code == 0 || !strings.Contains(errOut, "permission") {
		t.Fatalf("cat of a 0600 file by another user: %d %q", code, errOut)
	}
	if code, out, _ := kfsAs(t, alice, "cat", m.path("open.csv")); code != 0 || out != "a,b\n1,2\n" {
		t.Fatalf("cat of a 0644 file by another user: %d %q", code, out)
	}
	if code, _, errOut := kfsAs(t, alice, "rm", m.path("rootonly/f")); code == 0 || !strings.Contains(errOut, "needs write+search permission") {
		t.Fatalf("kfs rm in a directory the user may not write: %d %q", code, errOut)
	}
	if left := listKeys(t, b, "rootonly/"); len(left) == 0 {
		t.Fatal("a refused kfs rm removed the file")
	}
	if code, _, errOut := kfsAs(t, bob, "rm", m.path("shared/g")); code != 0 {
		t.Fatalf("kfs rm in a 0777 directory: %d %q", code, errOut)
	}
	if code, _, errOut := kfsAs(t, alice, "presign", "--method", "PUT", m.path("rootonly/new")); code == 0 || !strings.Contains(errOut, "permission") {
		t.Fatalf("a PUT URL into a directory the user may not write: %d %q", code, errOut)
	}
	if code, _, errOut := kfsAs(t, alice, "cp", "--server-side", m.path("open.csv"), m.path("rootonly/copy.csv")); code == 0 || !strings.Contains(errOut, "permission") {
		t.Fatalf("a server-side copy into a directory the user may not write: %d %q", code, errOut)
	}
	if code, _, errOut := kfsAs(t, alice, "mb", m.path("x")); code == 0 {
		t.Fatalf("kfs mb by another user: %d %q", code, errOut)
	}
	if !strings.Contains(m.logText(), "uid=65534") || !strings.Contains(m.logText(), "control socket: refused") {
		t.Errorf("refusals are not logged with the caller's uid:\n%s", m.logText())
	}
	if !strings.Contains(m.logText(), "control socket: rm") || !strings.Contains(m.logText(), "uid=65533") {
		t.Errorf("a change through the socket is not logged with its uid:\n%s", m.logText())
	}

	// Not shared: only the owner and root.
	private := mountKFS(t, b)
	reachable(private.dir)
	if code, _, errOut := kfsAs(t, alice, "stat", private.path("open.csv")); code == 0 || !strings.Contains(errOut, "not shared") {
		t.Fatalf("another user on a mount without allow_other: %d %q", code, errOut)
	}
}

// A read-only mount refuses every change through the socket, whoever asks.
func TestReadOnlyBindsTheSocket(t *testing.T) {
	b := newLockedBucket(t)
	put(t, b, "a.bin", randBytes(6<<20))
	put(t, b, "b.bin", []byte("b"))
	put(t, b, "gone", []byte("1"))
	client(t).RemoveObject(context.Background(), b, "gone", minio.RemoveObjectOptions{})
	m := mountKFS(t, b, "-o", "ro")
	for _, args := range [][]string{
		{"rm", m.path("b.bin")},
		{"rm", "-r", m.path("")},
		{"cp", "--server-side", m.path("a.bin"), m.path("c.bin")},
		{"compose", m.path("d.bin"), m.path("a.bin"), m.path("b.bin")},
		{"restore", m.path("gone")},
		{"presign", "--method", "PUT", m.path("e.bin")},
		{"presign", "--method", "DELETE", m.path("b.bin")},
	} {
		code, _, errOut := kfsRun(t, args...)
		if code == 0 || !strings.Contains(errOut, "read-only") {
			t.Errorf("kfs %v on a read-only mount: %d %q", args, code, errOut)
		}
	}
	if keys := listKeys(t, b, ""); strings.Join(keys, ",") != "a.bin,b.bin" {
		t.Fatalf("a read-only mount changed the bucket: %v", keys)
	}
	all := mountKFS(t, "-o", "ro")
	for _, args := range [][]string{{"mb", all.path("newbucket-ro")}, {"rb", all.path(b)}} {
		if code, _, errOut := kfsRun(t, args...); code == 0 || !strings.Contains(errOut, "read-only") {
			t.Errorf("kfs %v on a read-only mount: %d %q", args, code, errOut)
		}
	}
	if code, _, errOut := kfsRun(t, "presign", m.path("a.bin")); code != 0 {
		t.Errorf("a GET URL on a read-only mount: %d %q", code, errOut)
	}
}

// reachable lets every user reach dir (test directories are 0700).
func reachable(dir string) {
	for d := filepath.Dir(dir); d != "/" && strings.HasPrefix(d, os.TempDir()); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(dir, 0o755)
}

// Secrets stay off the command line and out of the log: the events token
// comes from the environment (or the credentials file), and a full run —
// mount, files, xattrs, presigned URLs, events, a forged POST — logs
// neither the secret key, nor the token, nor a presigned URL's signature.
func TestSecretsStayOffTheCommandLineAndOutOfTheLog(t *testing.T) {
	mc, hookA, _ := eventMinio(t)
	c, _ := sdkClient(mc)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "sec", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	saved := srv
	srv = mc
	env := append(kfsEnv(), "KFS_EVENTS_TOKEN=token-a")
	m := mountBinEnv(t, kfsBin, env, "sec", "--events-webhook", hookA, "--log-level", "debug")
	srv = saved
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte("token-a")) || bytes.Contains(cmdline, []byte(mc.SecretKey)) {
		t.Fatalf("a secret is on kfs's command line: %q", cmdline)
	}
	sh(t, "setfattr", "-n", "user.s3.notification", "-v",
		`{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFSA:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}`, m.dir)
	os.WriteFile(m.path("f.txt"), []byte("data"), 0o644)
	sh(t, "setfattr", "-n", "user.s3.tag.k", "-v", "v", m.path("f.txt"))
	c.PutObject(ctx, "sec", "from-sdk", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	if !within(2*time.Second, readsAs(m.path("from-sdk"), "x")) {
		t.Fatal("the event did not arrive (is the token taken from the environment?)")
	}
	url := kfsOut(t, "presign", "--method", "PUT", m.path("up.bin"))
	kfsOut(t, "presign", m.path("f.txt"))
	req := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", `{"Records":[]}`, "http://"+hookA+"/")
	if out, _ := req.Output(); string(out) != "401" {
		t.Fatalf("a POST without the token: %s", out)
	}
	os.Remove(m.path("f.txt"))
	log := m.logText()
	sig := url[strings.Index(url, "X-Amz-Signature=")+len("X-Amz-Signature="):]
	for what, secret := range map[string]string{"the secret key": mc.SecretKey, "the events token": "token-a", "a presigned URL's signature": sig} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %s:\n%s", what, log)
		}
	}
	// On the command line it still works, with a warning.
	saved = srv
	srv = mc
	m2 := mountKFS(t, "sec", "--events-token", "token-a")
	srv = saved
	if !strings.Contains(m2.logText(), "--events-token on the command line can be read by every user") {
		t.Errorf("no warning for a token on the command line:\n%s", m2.logText())
	}
}
