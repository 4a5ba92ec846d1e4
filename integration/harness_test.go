package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// One MinIO server and one kfs binary per test package.
var (
	srv    *Minio
	kfsBin string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "kfs-it-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if os.Geteuid() != 0 {
			fmt.Fprintln(os.Stderr, "integration tests mount with FUSE and need root (CI runs as root)")
			return 1
		}
		if _, err := exec.LookPath("fusermount3"); err != nil {
			fmt.Fprintln(os.Stderr, "fusermount3 missing: run scripts/install-deps.sh")
			return 1
		}
		kfsBin = filepath.Join(dir, "kfs")
		// The mounted binary is race-instrumented: a data race under real
		// FUSE load fails the test that saw it (see mounted.stop).
		build := exec.Command("go", "build", "-race", "-o", kfsBin, ".")
		build.Dir = RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building kfs: %v\n%s", err, out)
			return 1
		}
		srv, err = StartMinio(MinioConfig{DataDir: filepath.Join(dir, "minio")})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer srv.Stop()
		defer stopSeaweed()
		return m.Run()
	}())
}

// sdkClient is a minio-go client for a server: the direct SDK the tests
// check the mount against.
func sdkClient(m *Minio) (*minio.Client, error) {
	opts := &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Region: "us-east-1"}
	if m.CAFile() != "" {
		pemBytes, err := os.ReadFile(m.CAFile())
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemBytes)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		opts.Secure, opts.Transport = true, tr
	}
	return minio.New(m.Addr, opts)
}

func client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := sdkClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newBucket makes a fresh bucket for one test.
func newBucket(t testing.TB) string {
	t.Helper()
	name := "t-" + strings.ToLower(randomHex(6))
	if err := client(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	_, err := client(t).PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{PartSize: 16 << 20, NumThreads: 4})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// putMany uploads keys with small bodies, 16 at a time.
func putMany(t testing.TB, bucket string, keys []string, body func(string) []byte) {
	t.Helper()
	var wg sync.WaitGroup
	ch := make(chan string)
	errs := make(chan error, 1)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(t)
			for k := range ch {
				b := body(k)
				if _, err := c.PutObject(context.Background(), bucket, k, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// kfsEnv is the environment a kfs process gets: credentials via env vars.
func kfsEnv() []string {
	return append(os.Environ(), "KFS_ENDPOINT="+srv.Endpoint, "KFS_ACCESS_KEY="+srv.AccessKey, "KFS_SECRET_KEY="+srv.SecretKey)
}

// mounted is one kfs process serving one mount point.
type mounted struct {
	dir string
	cmd *exec.Cmd
	log string
}

// mountKFS runs `kfs mount ARGS... MOUNTPOINT` in the foreground as a
// subprocess and waits until the mount is live. Cleanup stops it by PID and
// makes sure nothing stays mounted, whatever the test did.
func mountKFS(t *testing.T, args ...string) *mounted {
	t.Helper()
	return mountBin(t, kfsBin, args...)
}

var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

// plainKFS is kfs built without the race detector (which multiplies
// memory), for tests that measure the process; built once, on demand.
func plainKFS(t testing.TB) string {
	plainOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(kfsBin), "kfs-plain")
		build := exec.Command("go", "build", "-o", plainBin, ".")
		build.Dir = RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			plainErr = fmt.Errorf("building kfs: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainBin
}

// mountBin is mountKFS with the binary bin.
func mountBin(t testing.TB, bin string, args ...string) *mounted {
	t.Helper()
	return mountBinEnv(t, bin, kfsEnv(), args...)
}

// mountBinEnv is mountBin with the process's environment env.
func mountBinEnv(t testing.TB, bin string, env []string, args ...string) *mounted {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &mounted{dir: dir, log: filepath.Join(base, "kfs.log")}
	full := append([]string{"mount"}, args...)
	full = append(full, dir)
	m.cmd = exec.Command(bin, full...)
	m.cmd.Env = env
	logf, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	t.Cleanup(func() { m.stop(t, exited) })
	deadline := time.Now().Add(20 * time.Second)
	for !isMounted(dir) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("kfs exited before mounting (%v):\n%s", err, m.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kfs did not mount within 20s:\n%s", m.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return m
}

func (m *mounted) logText() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

func (m *mounted) path(p ...string) string { return filepath.Join(append([]string{m.dir}, p...)...) }

func (m *mounted) stop(t testing.TB, exited chan error) {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Errorf("kfs (pid %d) did not exit 15s after SIGTERM; killing it (SIGQUIT first: its goroutines go to the log)", m.cmd.Process.Pid)
		_ = m.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = m.cmd.Process.Kill()
			<-exited
		}
	}
	if strings.Contains(m.logText(), "DATA RACE") {
		t.Errorf("the race detector fired in kfs")
	}
	if isMounted(m.dir) {
		t.Errorf("%s still mounted after kfs exited", m.dir)
		_ = syscall.Unmount(m.dir, syscall.MNT_DETACH)
	}
	if t.Failed() {
		t.Logf("kfs log:\n%s", m.logText())
	}
}

func isMounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// sh runs a command and returns its stdout, failing the test on error.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, errb.String())
	}
	return out.String()
}
