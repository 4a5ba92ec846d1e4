package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"kfs/fs/store/s3store"
)

// SeaweedBinary finds SeaweedFS's weed: $KFS_WEED_BIN, else .tools/bin/weed
// (made by scripts/install-deps.sh). A missing binary is an error, never a
// skip.
func SeaweedBinary() (string, error) {
	p := os.Getenv("KFS_WEED_BIN")
	if p == "" {
		p = filepath.Join(RepoRoot(), ".tools", "bin", "weed")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("weed not found at %s: run scripts/install-deps.sh (or set KFS_WEED_BIN)", p)
	}
	return p, nil
}

// Seaweed is one `weed server` (master, volume, filer and S3 gateway in
// one process) on loopback ports, with one S3 identity.
type Seaweed struct {
	Endpoint  string // http://127.0.0.1:PORT of the S3 gateway
	AccessKey string
	SecretKey string
	Dir       string
	cmd       *exec.Cmd
	exited    chan struct{}
	log       string
}

// StartSeaweed starts a server with its data under dir and waits until its
// S3 gateway answers a signed ListBuckets.
func StartSeaweed(dir string) (*Seaweed, error) {
	bin, err := SeaweedBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	// Eight ports, each chosen here: the gRPC ones too (weed's default of
	// port+10000 could land in the ephemeral range).
	ports := make([]int, 8)
	for i := range ports {
		a, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		_, p, _ := net.SplitHostPort(a)
		ports[i], _ = strconv.Atoi(p)
	}
	s := &Seaweed{AccessKey: "kfs" + randomHex(6), SecretKey: randomHex(16), Dir: dir, exited: make(chan struct{}),
		log: filepath.Join(dir, "weed.log")}
	s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", ports[6])
	cfg := map[string]any{"identities": []any{map[string]any{"name": "kfs",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"}}}}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.cmd = exec.Command(bin, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+filepath.Join(dir, "data"),
		"-master.port="+p(0), "-master.port.grpc="+p(1), "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
		"-volume.port="+p(2), "-volume.port.grpc="+p(3), "-volume.max=0",
		"-filer", "-filer.port="+p(4), "-filer.port.grpc="+p(5),
		"-s3", "-s3.port="+p(6), "-s3.port.grpc="+p(7), "-s3.config="+cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(90 * time.Second); err != nil {
		s.Stop()
		log, _ := os.ReadFile(s.log)
		return nil, fmt.Errorf("weed did not come up: %v\n%s", err, tail(log, 3000))
	}
	return s, nil
}

func (s *Seaweed) waitReady(timeout time.Duration) error {
	st, err := s.Store()
	if err != nil {
		return err
	}
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-s.exited:
			return fmt.Errorf("weed exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, last = st.ListBuckets(ctx)
		cancel()
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("timed out: %v", last)
}

// Store returns kfs's store adapter for the server.
func (s *Seaweed) Store() (*s3store.Store, error) {
	return s3store.New(s3store.Config{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Region: "us-east-1", Retries: -1})
}

// Stop ends the server's process group by PID: SIGTERM, then SIGKILL.
func (s *Seaweed) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// Log is the server's log so far.
func (s *Seaweed) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(tail(b, 4000))
}
