package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runKFS runs the kfs binary to completion and returns its exit code and
// stderr.
func runKFS(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(kfsBin, args...)
	cmd.Env = env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), errb.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, errb.String()
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("kfs %q did not exit", args)
	}
	return -1, ""
}

func TestMountErrors(t *testing.T) {
	b := newBucket(t)
	empty := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	live := mountKFS(t, b)
	loose := filepath.Join(t.TempDir(), "cred.json")
	os.WriteFile(loose, []byte(`{"ACCESS_KEY":"a","SECRET_KEY":"b","PUBLIC_BUCKET":"`+b+`",}`), 0o644)
	closedAddr, _ := FreeAddr()
	noCreds := []string{"PATH=" + os.Getenv("PATH"), "KFS_ENDPOINT=" + srv.Endpoint}
	badCreds := append(noCreds, "KFS_ACCESS_KEY=nobody", "KFS_SECRET_KEY=wrongwrong")
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unknown option", kfsEnv(), []string{"mount", "--frob", b, empty}, 2, `unknown flag "-frob"`},
		{"unknown -o option", kfsEnv(), []string{"mount", "-o", "frob=1", b, empty}, 2, `unknown mount option "frob"`},
		{"bad value", kfsEnv(), []string{"mount", "--cache-size", "huge", b, empty}, 2, `size "huge"`},
		{"missing credentials", noCreds, []string{"mount", b, empty}, 2, "no credentials"},
		{"wrong credentials", badCreds, []string{"mount", b, empty}, 3, "credentials refused"},
		{"no such bucket", kfsEnv(), []string{"mount", "no-such-bucket-kfs", empty}, 3, "bucket no-such-bucket-kfs does not exist"},
		{"endpoint unreachable", append(kfsEnv(), "KFS_ENDPOINT=http://"+closedAddr), []string{"mount", b, empty}, 3, "endpoint unreachable"},
		{"missing mount point", kfsEnv(), []string{"mount", b, "/nonexistent/kfs-mnt"}, 2, "does not exist"},
		{"mount point not empty", kfsEnv(), []string{"mount", b, full}, 2, "is not empty"},
		{"already mounted", kfsEnv(), []string{"mount", b, live.dir}, 2, "already mounted"},
		{"loose credentials file", kfsEnv(), []string{"mount", "--config", loose}, 2, "chmod 600"},
		{"daemon reports errors too", kfsEnv(), []string{"mount", "--daemon", "no-such-bucket-kfs", empty}, 3, "does not exist"},
		{"unknown command", kfsEnv(), []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := runKFS(t, c.env, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines > 0 {
				t.Fatalf("want one line, got:\n%s", stderr)
			}
			if isMounted(empty) {
				t.Fatal("something got mounted")
			}
		})
	}
}

func TestHelpDocumentsEveryOption(t *testing.T) {
	b, err := exec.Command(kfsBin, "mount", "--help").Output()
	if err != nil {
		t.Fatalf("kfs mount --help: %v", err)
	}
	out := string(b)
	for _, opt := range []string{"endpoint", "access-key", "secret-key", "region", "ca-file", "config", "uid", "gid",
		"file-mode", "dir-mode", "allow-other", "read-only", "attr-ttl", "entry-ttl", "negative-ttl", "cache-size",
		"block-size", "max-readahead", "daemon", "log-file"} {
		if !strings.Contains(out, "--"+opt) {
			t.Errorf("--help does not mention %s", opt)
		}
	}
	if !strings.Contains(out, "default 64MiB") || !strings.Contains(out, "default 10s") {
		t.Errorf("--help does not show defaults:\n%s", out)
	}
}

// The credentials file our users have (trailing comma) mounts both buckets.
func TestConfigFileMountsPublicAndPrivate(t *testing.T) {
	pub, priv := newBucket(t), newBucket(t)
	put(t, pub, "movies.csv", []byte("title,year\nx,2020\n"))
	put(t, priv, "secret.txt", []byte("mine"))
	dir := t.TempDir()
	cred := filepath.Join(dir, "credentials.json")
	body := `{ "ACCESS_KEY": "` + srv.AccessKey + `", "SECRET_KEY": "` + srv.SecretKey + `", "PRIVATE_BUCKET": "` + priv + `",
  "PUBLIC_BUCKET": "` + pub + `", "ENDPOINT": "` + srv.Endpoint + `", }`
	if err := os.WriteFile(cred, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	pm, vm := filepath.Join(dir, "public"), filepath.Join(dir, "private")
	os.Mkdir(pm, 0o755)
	os.Mkdir(vm, 0o755)
	env := []string{"PATH=" + os.Getenv("PATH")}
	code, stderr := runKFS(t, env, "mount", "--config", cred, "--daemon", "--public-mountpoint", pm, "--private-mountpoint", vm)
	t.Cleanup(func() {
		for _, d := range []string{pm, vm} {
			if isMounted(d) {
				_ = syscall.Unmount(d, syscall.MNT_DETACH)
			}
		}
	})
	if code != 0 {
		t.Fatalf("daemon mount: exit %d: %s", code, stderr)
	}
	// --daemon returned: the mounts are already live.
	if !isMounted(pm) || !isMounted(vm) {
		t.Fatal("--daemon returned before both mounts were live")
	}
	if got, _ := os.ReadFile(filepath.Join(pm, "movies.csv")); !strings.HasPrefix(string(got), "title,year") {
		t.Fatalf("public: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(vm, "secret.txt")); string(got) != "mine" {
		t.Fatalf("private: %q", got)
	}
	// kfs unmount detaches both; the daemon exits when its last mount goes.
	for _, d := range []string{pm, vm} {
		if code, stderr := runKFS(t, env, "unmount", d); code != 0 {
			t.Fatalf("unmount %s: %d %s", d, code, stderr)
		}
	}
	if isMounted(pm) || isMounted(vm) {
		t.Fatal("still mounted after kfs unmount")
	}
	if code, stderr := runKFS(t, env, "unmount", pm); code == 0 || !strings.Contains(stderr, "not mounted") {
		t.Fatalf("unmount of an unmounted dir: %d %q", code, stderr)
	}
}

// mount(8) with a fuse type (what an fstab line does) goes through
// mount.fuse3, which runs kfs as `kfs SOURCE MOUNTPOINT -o OPTIONS` and waits
// for it to return. mount(8) resets PATH for helpers, so the test names the
// binary in the source ("PROGRAM#SOURCE"); with kfs installed in
// /usr/local/bin the fstab type fuse.kfs finds it by name.
func TestMountHelper(t *testing.T) {
	b := newBucket(t)
	put(t, b, "hello.txt", []byte("hi"))
	dir := t.TempDir()
	cred := filepath.Join(dir, "cred.json")
	os.WriteFile(cred, []byte(`{"ACCESS_KEY":"`+srv.AccessKey+`","SECRET_KEY":"`+srv.SecretKey+`","ENDPOINT":"`+srv.Endpoint+`",}`), 0o600)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := exec.Command("mount", "-t", "fuse", kfsBin+"#"+b, mnt, "-o", "config="+cred+",ro,_netdev,attr_ttl=2s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount -t fuse: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if isMounted(mnt) {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	if got, _ := os.ReadFile(filepath.Join(mnt, "hello.txt")); string(got) != "hi" {
		t.Fatalf("read %q", got)
	}
	if out := sh(t, "umount", mnt); out != "" {
		t.Log(out)
	}
}

func TestSignalUnmountsCleanly(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	if err := m.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for isMounted(m.dir) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if isMounted(m.dir) {
		t.Fatal("still mounted 10s after SIGINT")
	}
	if !strings.Contains(m.logText(), "unmounted") {
		t.Fatalf("log: %s", m.logText())
	}
}

// A --daemon mount that fusermount refuses says fusermount's reason, in
// the background as in the foreground (it said only "code 256"): here a
// user who may not open /dev/fuse (or, where every user may, write the
// mount point).
func TestDaemonSaysWhyFusermountFailed(t *testing.T) {
	b := newBucket(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	os.Chmod(filepath.Dir(dir), 0o755)
	bin := filepath.Join(dir, "kfs")
	data, err := os.ReadFile(kfsBin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, daemon := range []bool{false, true} {
		args := []string{"--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=" + dir, bin, "mount",
			"--log-file", filepath.Join(dir, "kfs.log"), "--cache-dir", filepath.Join(dir, "cache"), b, mnt}
		if daemon {
			args = append(args[:7], append([]string{"--daemon"}, args[7:]...)...)
		}
		cmd := exec.Command("setpriv", args...)
		cmd.Env = kfsEnv()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(string(out), "fusermount3: ") {
			t.Fatalf("daemon %v: %v\n%s", daemon, err, out)
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines > 0 {
			t.Fatalf("daemon %v: want one line:\n%s", daemon, out)
		}
		if isMounted(mnt) {
			t.Fatal("mounted")
		}
	}
}
