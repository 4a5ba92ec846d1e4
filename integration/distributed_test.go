package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
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
)

// cluster is a distributed MinIO of its own: each node in its own network
// namespace with its own address on a bridge made by the test (MinIO
// refuses loopback addresses for distributed mode), one erasure set of one
// drive per node. Everything is torn down by the test's cleanup.
type cluster struct {
	t      *testing.T
	id     string
	dir    string
	bridge string
	ak, sk string
	mu     sync.Mutex
	nodes  []*exec.Cmd // GUARDED_BY(mu): nil when stopped
	exited []chan struct{}
}

const clusterNodes = 4

func (c *cluster) ns(i int) string   { return "kfs-" + c.id + "-" + fmt.Sprint(i) }
func (c *cluster) addr(i int) string { return fmt.Sprintf("10.231.%d.%d:9000", c.subnet(), i+1) }
func (c *cluster) subnet() int {
	var b [1]byte
	_, _ = hex.Decode(b[:], []byte(c.id[:2]))
	return int(b[0])
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// newCluster builds the network and starts the four nodes; it skips the
// test (loudly) only where network namespaces cannot be made.
func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, id: randomHex(3), dir: t.TempDir(), ak: "kfs" + randomHex(6), sk: randomHex(16)}
	c.bridge = "kfsbr" + c.id
	c.nodes, c.exited = make([]*exec.Cmd, clusterNodes), make([]chan struct{}, clusterNodes)
	if err := run("ip", "netns", "add", c.ns(0)); err != nil {
		t.Skipf("SKIPPED LOUDLY: cannot create network namespaces here (%v); the distributed MinIO test needs root", err)
	}
	_ = run("ip", "netns", "del", c.ns(0))
	t.Cleanup(c.teardown)
	must := func(args ...string) {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("ip", "link", "add", c.bridge, "type", "bridge")
	must("ip", "addr", "add", fmt.Sprintf("10.231.%d.254/24", c.subnet()), "dev", c.bridge)
	must("ip", "link", "set", c.bridge, "up")
	for i := 0; i < clusterNodes; i++ {
		ns, veth := c.ns(i), fmt.Sprintf("kfsv%s%d", c.id, i)
		must("ip", "netns", "add", ns)
		must("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		must("ip", "link", "set", veth, "master", c.bridge, "up")
		must("ip", "-n", ns, "addr", "add", strings.TrimSuffix(c.addr(i), ":9000")+"/24", "dev", "eth0")
		must("ip", "-n", ns, "link", "set", "eth0", "up")
		must("ip", "-n", ns, "link", "set", "lo", "up")
	}
	for i := 0; i < clusterNodes; i++ {
		c.start(i)
	}
	c.waitHealthy(2 * time.Minute)
	return c
}

func (c *cluster) start(i int) {
	bin, err := MinioBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	// nsenter --net, not `ip netns exec`: that one also makes a mount
	// namespace, whose copy of any FUSE mount made before keeps the FUSE
	// connection alive after the mount's own unmount (kfs then waits).
	args := []string{"--net=/var/run/netns/" + c.ns(i), bin, "server", "--address", c.addr(i),
		"--console-address", strings.TrimSuffix(c.addr(i), ":9000") + ":9001", "--quiet"}
	for j := 0; j < clusterNodes; j++ {
		args = append(args, fmt.Sprintf("http://%s%s", c.addr(j), filepath.Join(c.dir, fmt.Sprintf("node%d", j))))
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+c.ak, "MINIO_ROOT_PASSWORD="+c.sk, "MINIO_CI_CD=on",
		"MINIO_UPDATE=off", "MINIO_BROWSER=off")
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.nodes[i], c.exited[i] = cmd, done
	c.mu.Unlock()
}

// kill ends node i with SIGKILL (a crashed or unplugged server).
func (c *cluster) kill(i int) {
	c.mu.Lock()
	cmd, done := c.nodes[i], c.exited[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitHealthy waits until every running node sees a writable cluster: a
// node that rejoined is healthy for the node that saw it come back before
// it is for the others, and one that has not reconnected yet counts it
// offline (a write through it then lacks quorum once another node goes).
func (c *cluster) waitHealthy(d time.Duration) {
	deadline := time.Now().Add(d)
	for i := 0; i < clusterNodes; i++ {
		c.mu.Lock()
		running := c.nodes[i] != nil
		c.mu.Unlock()
		if !running {
			continue
		}
		if err := c.writableWithin(i, time.Until(deadline)); err != nil {
			log, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i)))
			c.t.Fatalf("the cluster is not writable through node %d after %v (%v):\n%s", i, d, err, tail(log, 3000))
		}
	}
}

// writableWithin waits until a write through node i succeeds, for up to d.
func (c *cluster) writableWithin(i int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := c.writable(i)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// writable says whether a write through node i succeeds now.
func (c *cluster) writable(i int) error {
	resp, err := http.Get("http://" + c.addr(i) + "/minio/health/cluster")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("health: %s", resp.Status)
	}
	// Healthy is not yet writable (a rejoining node answers SlowDownWrite
	// for a while): wait for the SDK to write.
	cl := c.clientOf(i)
	bs, err := cl.ListBuckets(context.Background())
	if err != nil || len(bs) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.PutObject(ctx, bs[0].Name, ".probe", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		return err
	}
	return cl.RemoveObject(ctx, bs[0].Name, ".probe", minio.RemoveObjectOptions{})
}

func (c *cluster) client() *minio.Client { return c.clientOf(0) }

// minio describes node i as a server to mount or reach.
func (c *cluster) minio(i int) *Minio {
	return &Minio{Endpoint: "http://" + c.addr(i), Addr: c.addr(i), AccessKey: c.ak, SecretKey: c.sk}
}

// clientOf is an SDK client of node i.
func (c *cluster) clientOf(i int) *minio.Client {
	cl, err := sdkClient(c.minio(i))
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *cluster) teardown() {
	for i := 0; i < clusterNodes; i++ {
		c.kill(i)
	}
	for i := 0; i < clusterNodes; i++ {
		_ = run("ip", "netns", "del", c.ns(i)) // takes its veth end with it
	}
	_ = run("ip", "link", "del", c.bridge)
}

// A distributed MinIO of four nodes loses a node kfs does not talk to in
// the middle of reads and writes: both go on, sha256-checked. Then the
// node kfs talks to goes: a mount given that node alone fails calls with
// EIO within the configured bound and works again, on the same mount,
// once it is back; a mount given the nodes as an endpoint list goes on
// with the next node, reads and writes checked.
func TestDistributedMinioLosesANode(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	cl := c.client()
	if err := cl.MakeBucket(ctx, "dist", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randBytes(8 << 20)
	want := sha256.Sum256(data)
	if _, err := cl.PutObject(ctx, "dist", "r.bin", strings.NewReader(string(data)), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	mnt := mountOn(t, c.minio(0), "dist", "--cache-size", "16MiB", "--max-readahead", "4MiB", "--part-size", "5MiB",
		"--attr-ttl", "0", "--entry-ttl", "0", "--negative-ttl", "0", "--request-timeout", "2s", "--retries", "2", "--deadline", "10s")
	nodes := "http://" + c.addr(0) + ",http://" + c.addr(1) + ",http://" + c.addr(3)
	// A cluster that just lost a node answers SlowDownWrite for a moment
	// (it is deciding the node is gone; on a loaded machine past what the
	// default 5 retries cover, seen twice in CI), which 10 retries ride
	// through well within the deadline.
	failover := mountOn(t, c.minio(0), "dist", "--endpoint", nodes, "--cache-size", "16MiB", "--max-readahead", "4MiB", "--part-size", "5MiB",
		"--attr-ttl", "0", "--entry-ttl", "0", "--negative-ttl", "0", "--request-timeout", "2s", "--retries", "10", "--deadline", "60s")

	checkOn := func(mnt *mounted, round string) error {
		cl := cl
		if round == "failover" {
			cl = c.clientOf(1) // node 0 is gone
		}
		if got, err := fileSha(mnt.path("r.bin")); err != nil || got != hex.EncodeToString(want[:]) {
			return fmt.Errorf("%s: read: %s %v", round, got, err)
		}
		w := randBytes(6 << 20)
		name := "w-" + round + ".bin"
		if err := os.WriteFile(mnt.path(name), w, 0o644); err != nil {
			return fmt.Errorf("%s: write: %v", round, err)
		}
		o, err := cl.GetObject(ctx, "dist", name, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer o.Close()
		h := sha256.New()
		if _, err := io.Copy(h, o); err != nil {
			return fmt.Errorf("%s: get %s: %v", round, name, err)
		}
		if ws := sha256.Sum256(w); hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(ws[:]) {
			return fmt.Errorf("%s: %s in the bucket differs from what was written", round, name)
		}
		return nil
	}
	check := func(round string) error { return checkOn(mnt, round) }
	if err := check("healthy"); err != nil {
		t.Fatal(err)
	}
	// A node kfs does not talk to goes, during a workload.
	errs := make(chan error, 1)
	go func() {
		for i := 0; i < 6; i++ {
			if err := check(fmt.Sprintf("during-%d", i)); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	time.Sleep(300 * time.Millisecond)
	c.kill(2)
	if err := <-errs; err != nil {
		t.Fatalf("with node 3 of 4 gone: %v\n%s", err, mnt.logText())
	}
	if err := check("node3-down"); err != nil {
		t.Fatal(err)
	}
	c.start(2)
	c.waitHealthy(2 * time.Minute)

	// The node kfs talks to goes: a clean, bounded EIO.
	c.kill(0)
	start := time.Now()
	_, err := os.ReadFile(mnt.path("r.bin"))
	if err == nil {
		// Served from the block cache is allowed; a listing must ask.
		_, err = os.ReadDir(mnt.dir)
	}
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("with kfs's endpoint gone: %v, want EIO", err)
	}
	if took > 30*time.Second {
		t.Fatalf("failing took %v, over the bound", took)
	}
	t.Logf("with the endpoint node gone: %v after %v", err, took.Round(time.Millisecond))
	// The mount with the node list goes on with the next node. Wait until
	// the cluster itself takes writes again through that node: just after
	// a node goes, MinIO answers SlowDownWrite until it has decided the
	// node is gone (seen lasting over 5 s on a loaded machine); riding
	// that out is the retries' job, tested elsewhere, and not what this
	// round is about.
	if err := c.writableWithin(1, time.Minute); err != nil {
		t.Fatalf("the cluster without node 0 takes no writes through node 1: %v", err)
	}
	start = time.Now()
	if err := checkOn(failover, "failover"); err != nil {
		t.Fatalf("with the first node of the list gone: %v\n%s", err, failover.logText())
	}
	if _, err := os.ReadDir(failover.dir); err != nil {
		t.Fatalf("listing with the first node of the list gone: %v", err)
	}
	t.Logf("the mount with a node list went on after %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(failover.logText(), "going on with the next") {
		t.Errorf("no log line says the mount changed node:\n%s", failover.logText())
	}
	c.start(0)
	c.waitHealthy(2 * time.Minute)
	if err := check("endpoint-back"); err != nil {
		t.Fatalf("the mount did not recover when its node came back: %v\n%s", err, mnt.logText())
	}
}
