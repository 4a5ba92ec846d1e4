// Package integration tests the real kfs binary, mounted with FUSE, against
// a real MinIO server started on loopback. This file is the harness: it
// starts and stops MinIO (by PID), and is shared by the tests and by the
// demo set-up command (integration/kfsdemo).
package integration

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"kfs/fs/store/s3store"
)

// MinioVersion is the pinned server version (see README and scripts/).
const MinioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// MinioBinary finds the server: $KFS_MINIO_BIN, else .tools/bin/minio (made
// by scripts/install-deps.sh). A missing binary is an error, never a skip.
func MinioBinary() (string, error) {
	p := os.Getenv("KFS_MINIO_BIN")
	if p == "" {
		p = filepath.Join(RepoRoot(), ".tools", "bin", "minio")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("minio server not found at %s: run scripts/install-deps.sh (or set KFS_MINIO_BIN)", p)
	}
	return p, nil
}

// Minio is one running server.
type Minio struct {
	Endpoint  string // http://127.0.0.1:PORT
	Addr      string // 127.0.0.1:PORT
	AccessKey string
	SecretKey string
	DataDir   string
	caFile    string // for https servers: the CA that signed public.crt
	cmd       *exec.Cmd
	exited    chan struct{}
}

func caFileIn(certsDir string) string {
	if certsDir == "" {
		return ""
	}
	return filepath.Join(certsDir, "ca.pem")
}

// MinioConfig says how to start a server.
type MinioConfig struct {
	DataDir string   // required
	Addr    string   // "" = a free loopback port
	Env     []string // extra environment (notify targets and such)
	LogPath string   // "" = DataDir + ".log"
	// AccessKey/SecretKey: "" = random.
	AccessKey, SecretKey string
	// CertsDir holds public.crt and private.key: the server speaks https.
	CertsDir string
	// Drives > 0 makes an erasure-coded server of that many drive
	// directories DataDir/d1…dN (one process).
	Drives int
	// Detach starts the server in its own session, outliving this process
	// (the demo); otherwise it dies with its parent.
	Detach bool
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
//
// The port is below the kernel's ephemeral range (ip_local_port_range),
// where no outgoing connection takes it as its source port between this
// call and the server's bind (a MinIO takes seconds to start), and it is
// never handed out twice by this process.
func FreeAddr() (string, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				lo = n
			}
		}
	}
	freeMu.Lock()
	defer freeMu.Unlock()
	for i := 0; i < 1000; i++ {
		port := 10000 + mrand.Intn(lo-10000)
		if freeGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		freeGiven[port] = true
		return l.Addr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var (
	freeMu    sync.Mutex
	freeGiven = map[int]bool{} // ports FreeAddr handed out
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartMinio starts a server on loopback and waits until it answers a
// signed ListBuckets.
func StartMinio(cfg MinioConfig) (*Minio, error) {
	bin, err := MinioBinary()
	if err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		if cfg.Addr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	console, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey, cfg.SecretKey = "kfs"+randomHex(6), randomHex(16)
	}
	if cfg.LogPath == "" {
		cfg.LogPath = cfg.DataDir + ".log"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	kms, err := kmsKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	args, extraEnv, scheme := minioArgs(cfg, console)
	cmd := exec.Command(bin, args...)
	cmd.Env = minioEnv(cfg, kms, extraEnv)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if cfg.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &Minio{Endpoint: scheme + cfg.Addr, caFile: caFileIn(cfg.CertsDir), Addr: cfg.Addr, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
		DataDir: cfg.DataDir, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.exited) }()
	if err := m.waitReady(60 * time.Second); err != nil {
		m.Stop()
		log, _ := os.ReadFile(cfg.LogPath)
		return nil, fmt.Errorf("minio did not come up: %v\n%s", err, tail(log, 2000))
	}
	return m, nil
}

// minioArgs are the server's arguments, the environment they need and
// the scheme it answers with.
func minioArgs(cfg MinioConfig, console string) (args, env []string, scheme string) {
	args = []string{"server", cfg.DataDir, "--address", cfg.Addr, "--console-address", console, "--quiet"}
	if cfg.Drives > 0 {
		args[1] = filepath.Join(cfg.DataDir, fmt.Sprintf("d{1...%d}", cfg.Drives))
		env = append(env, "MINIO_CI_CD=on") // else drives on the root disk are refused
	}
	scheme = "http://"
	if cfg.CertsDir != "" {
		args = append(args, "--certs-dir", cfg.CertsDir)
		scheme = "https://"
	}
	return args, env, scheme
}

// minioEnv is the server's environment: credentials, the KMS key, the
// features the tests use, extra and cfg.Env last (they win).
func minioEnv(cfg MinioConfig, kms []byte, extra []string) []string {
	env := append(os.Environ(),
		"MINIO_ROOT_USER="+cfg.AccessKey, "MINIO_ROOT_PASSWORD="+cfg.SecretKey,
		"MINIO_KMS_SECRET_KEY=kfs-key:"+base64.StdEncoding.EncodeToString(kms),
		"MINIO_API_SELECT_PARQUET=on", "MINIO_UPDATE=off", "MINIO_BROWSER=off")
	env = append(env, extra...)
	return append(env, cfg.Env...)
}

// kmsKey is the server's KMS key. It lives beside the data, so a restart
// on the same data can decrypt its config (and the notification targets,
// IAM...).
func kmsKey(dataDir string) ([]byte, error) {
	kmsPath := filepath.Clean(dataDir) + ".kms"
	kms, err := os.ReadFile(kmsPath)
	if err != nil || len(kms) != 32 {
		kms = make([]byte, 32)
		_, _ = rand.Read(kms)
		if err := os.WriteFile(kmsPath, kms, 0o600); err != nil {
			return nil, err
		}
	}
	return kms, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (m *Minio) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c, err := m.Store()
	if err != nil {
		return err
	}
	hc := http.DefaultClient
	if m.caFile != "" {
		tr, err := m.transport()
		if err != nil {
			return err
		}
		hc = &http.Client{Transport: tr}
	}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return errors.New("server exited")
		default:
		}
		resp, err := hc.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, last = c.ListBuckets(ctx)
				cancel()
				if last == nil {
					return nil
				}
			}
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out: %v", last)
}

// Store returns kfs's store adapter for the server.
func (m *Minio) Store() (*s3store.Store, error) {
	return s3store.New(s3store.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Region: "us-east-1", CAFile: m.caFile})
}

// CAFile is the CA bundle of a TLS server ("" for plain HTTP).
func (m *Minio) CAFile() string { return m.caFile }

func (m *Minio) transport() (*http.Transport, error) {
	pemBytes, err := os.ReadFile(m.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// PID is the server's process id.
func (m *Minio) PID() int { return m.cmd.Process.Pid }

// Stop sends SIGTERM to the server's PID, then SIGKILL after 10 s.
// Kill ends the server with SIGKILL (a crash: nothing flushed, connections
// cut) and waits for it.
func (m *Minio) Kill() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

func (m *Minio) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}
