package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// csiDriver is one `kfs csi` process on a socket in a temporary directory.
type csiDriver struct {
	dir, sock, state string
	cmd              *exec.Cmd
	log              *lockedBuffer
	conn             *grpc.ClientConn
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startCSI runs `kfs csi --mode all` without credentials of its own:
// every request brings them as secrets. Cleanup stops it by PID, then
// unmounts whatever it mounted under its directory and stops those
// mount processes by PID.
func startCSI(t *testing.T, env ...string) *csiDriver {
	t.Helper()
	d := &csiDriver{dir: t.TempDir(), log: &lockedBuffer{}}
	d.sock = filepath.Join(d.dir, "csi.sock")
	d.state = filepath.Join(d.dir, "state")
	d.cmd = exec.Command(kfsBin, "csi", "--endpoint", "unix://"+d.sock, "--node-id", "it-node", "--mode", "all",
		"--state-dir", d.state, "--log-level", "debug", "--default-bucket", "csi-default-"+strings.ToLower(randomHex(4)))
	d.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("kfs csi did not stop 10 s after SIGTERM")
			_ = d.cmd.Process.Kill()
			<-exited
		}
		cleanupMountsUnder(t, d.dir)
		if logs := d.mountLogs(); strings.Contains(logs+d.log.String(), "DATA RACE") {
			t.Errorf("the race detector fired:\n%s", logs)
		}
		if t.Failed() {
			t.Logf("kfs csi log:\n%s\nmount logs:\n%s", d.log.String(), d.mountLogs())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(d.sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kfs csi did not listen within 20 s:\n%s", d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d.conn = conn
	return d
}

func (d *csiDriver) mountLogs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(d.state, "log", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "== %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// cleanupMountsUnder detaches every mount below dir and stops the kfs
// processes serving them (found by their command lines naming dir).
func cleanupMountsUnder(t *testing.T, dir string) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			if !t.Failed() {
				t.Errorf("%s still mounted at the end of the test", f[4])
			}
			_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
	for _, pid := range pidsNaming(dir) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// pidsNaming lists processes whose command line mentions s.
func pidsNaming(s string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

func (d *csiDriver) secrets() map[string]string {
	return map[string]string{"endpoint": srv.Endpoint, "accessKeyID": srv.AccessKey, "secretAccessKey": srv.SecretKey}
}

// TestCSISanity runs the upstream csi-sanity suite against `kfs csi` and
// MinIO: every spec passes or is skipped for a capability kfs does not
// offer (snapshots, expansion, listing, attach, staging, stats).
func TestCSISanity(t *testing.T) {
	d := startCSI(t)
	bucket := "csi-sanity-" + strings.ToLower(randomHex(4)) // absent: CreateVolume makes it
	secrets := filepath.Join(d.dir, "secrets.yaml")
	var y strings.Builder
	for _, k := range []string{"CreateVolumeSecret", "DeleteVolumeSecret", "ControllerValidateVolumeCapabilitiesSecret", "NodePublishVolumeSecret", "ControllerExpandVolumeSecret"} {
		fmt.Fprintf(&y, "%s:\n  endpoint: %q\n  accessKeyID: %q\n  secretAccessKey: %q\n", k, srv.Endpoint, srv.AccessKey, srv.SecretKey)
	}
	if err := os.WriteFile(secrets, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(d.dir, "params.yaml")
	if err := os.WriteFile(params, []byte("bucket: "+bucket+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runSanity(t, d, "--csi.secrets", secrets, "--csi.testvolumeparameters", params)
	// What the suite made, it deleted: no volume is left in the bucket.
	var left []string
	for o := range client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		left = append(left, o.Key)
	}
	if len(left) > 0 {
		t.Errorf("objects left in %s after the suite deleted its volumes: %v", bucket, left)
	}
}

// The suite again, as a cluster without secrets in its StorageClass sees
// the driver: credentials from the driver's own environment, volumes in
// --default-bucket.
func TestCSISanityDriverCredentials(t *testing.T) {
	d := startCSI(t, "KFS_ENDPOINT="+srv.Endpoint, "KFS_ACCESS_KEY="+srv.AccessKey, "KFS_SECRET_KEY="+srv.SecretKey)
	runSanity(t, d)
	if strings.Contains(d.log.String()+d.mountLogs(), srv.SecretKey) {
		t.Fatal("the secret key is in a log")
	}
}

// TestCSIPublishWriteUnpublish is a pod's life as the kubelet drives it:
// a volume is made, published at a target path, written through it (by
// the pod's uid), read back through S3, published read-only elsewhere,
// unpublished (nothing left mounted), and deleted.
func TestCSIPublishWriteUnpublish(t *testing.T) {
	d := startCSI(t)
	ctx := context.Background()
	ctrl, node := csipb.NewControllerClient(d.conn), csipb.NewNodeClient(d.conn)
	bucket := newBucket(t)
	mountCap := func(mode csipb.VolumeCapability_AccessMode_Mode, flags ...string) *csipb.VolumeCapability {
		return &csipb.VolumeCapability{AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{MountFlags: flags}}}
	}
	rw := mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, "uid=1000,gid=1000")
	vol, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: []*csipb.VolumeCapability{rw},
		Parameters: map[string]string{"bucket": bucket}, Secrets: d.secrets(),
		CapacityRange: &csipb.CapacityRange{RequiredBytes: 5 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	if id != bucket+":pvc-1" || vol.GetVolume().GetCapacityBytes() != 5<<30 {
		t.Fatalf("CreateVolume: %v", vol)
	}

	// A bad mount option is refused before anything is mounted, with
	// the option named.
	target := filepath.Join(d.dir, "pods", "p1", "volumes", "mount")
	_, err = node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: id, TargetPath: target,
		VolumeCapability: mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "cache_size=lots"), Secrets: d.secrets()})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cache_size") {
		t.Fatalf("a bad mount option: %v", err)
	}
	_, err = node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: id, TargetPath: target,
		VolumeCapability: mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "secret_key=x"), Secrets: d.secrets()})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a secret in the mount options: %v", err)
	}
	if isMounted(target) {
		t.Fatal("a refused publish mounted something")
	}

	publish := func(target string, c *csipb.VolumeCapability, ro bool) {
		t.Helper()
		if _, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: id, TargetPath: target,
			VolumeCapability: c, Readonly: ro, Secrets: d.secrets()}); err != nil {
			t.Fatalf("NodePublishVolume %s: %v", target, err)
		}
		if !isMounted(target) {
			t.Fatalf("%s not mounted after NodePublishVolume", target)
		}
	}
	publish(target, rw, false)
	publish(target, rw, false) // idempotent
	if _, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: id, TargetPath: target,
		VolumeCapability: rw, Readonly: true, Secrets: d.secrets()}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("publishing read-only over a read-write mount: %v", err)
	}

	// The pod's user writes; S3 has the bytes under the volume's prefix.
	for _, p := range []string{filepath.Dir(d.dir), d.dir, filepath.Join(d.dir, "pods"), filepath.Join(d.dir, "pods", "p1"), filepath.Dir(target)} { // the way to the target, as a pod's bind mount gives it
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	data := randBytes(3<<20 + 17)
	cp := exec.Command("setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "sh", "-c", `cat > "$1"`, "sh", filepath.Join(target, "out.bin"))
	cp.Stdin = bytes.NewReader(data)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("writing as uid 1000 into the volume: %v %s", err, out)
	}
	obj, err := client(t).GetObject(ctx, bucket, "pvc-1/out.bin", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the object through S3: %d bytes, %v (want %d)", len(got), err, len(data))
	}

	// A second pod reads it read-only; its writes fail with EROFS.
	roTarget := filepath.Join(d.dir, "pods", "p2", "volumes", "mount")
	publish(roTarget, mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), false)
	if b, err := os.ReadFile(filepath.Join(roTarget, "out.bin")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("reading through the read-only volume: %v", err)
	}
	if err := os.WriteFile(filepath.Join(roTarget, "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("writing through a read-only volume: %v", err)
	}

	// A mount whose process died is replaced at the next publish.
	for _, pid := range pidsNaming(roTarget) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, 10*time.Second, "the killed mount to answer ENOTCONN", func() bool {
		var st syscall.Statfs_t
		return syscall.Statfs(roTarget, &st) == syscall.ENOTCONN
	})
	publish(roTarget, mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), false)
	if b, err := os.ReadFile(filepath.Join(roTarget, "out.bin")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("reading through the replaced mount: %v", err)
	}

	// Unpublish: nothing left mounted, the target directories gone, the
	// mount processes ended; twice is fine.
	for _, tg := range []string{target, roTarget, roTarget} {
		if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: tg}); err != nil {
			t.Fatalf("NodeUnpublishVolume %s: %v", tg, err)
		}
		if isMounted(tg) {
			t.Fatalf("%s still mounted", tg)
		}
		if _, err := os.Stat(tg); !os.IsNotExist(err) {
			t.Fatalf("%s not removed: %v", tg, err)
		}
	}
	waitFor(t, 15*time.Second, "the mount processes to end", func() bool {
		return len(pidsNaming(target)) == 0 && len(pidsNaming(roTarget)) == 0
	})

	// No secret reaches a log, and none is on a mount process's command line.
	if strings.Contains(d.log.String()+d.mountLogs(), srv.SecretKey) {
		t.Fatal("the secret key is in a log")
	}

	// DeleteVolume removes the volume's objects and nothing else.
	put(t, bucket, "other/keep.txt", []byte("not the volume's"))
	if _, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: id, Secrets: d.secrets()}); err != nil {
		t.Fatal(err)
	}
	var left []string
	for o := range client(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		left = append(left, o.Key)
	}
	if strings.Join(left, ",") != "other/keep.txt" {
		t.Fatalf("after DeleteVolume the bucket holds %v", left)
	}
	// A static volume (the whole bucket) is never deleted.
	if _, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: bucket, Secrets: d.secrets()}); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t).StatObject(ctx, bucket, "other/keep.txt", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("DeleteVolume of a static volume removed data: %v", err)
	}
}

// TestCSIKeepDataAndStatic: a StorageClass with keepData leaves the
// objects at DeleteVolume, and a static PV (volumeHandle bucket:prefix)
// mounts that prefix.
func TestCSIKeepDataAndStatic(t *testing.T) {
	d := startCSI(t)
	ctx := context.Background()
	ctrl, node := csipb.NewControllerClient(d.conn), csipb.NewNodeClient(d.conn)
	bucket := newBucket(t)
	c := &csipb.VolumeCapability{AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}}}
	vol, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "kept", VolumeCapabilities: []*csipb.VolumeCapability{c},
		Parameters: map[string]string{"bucket": bucket, "keepData": "true"}, Secrets: d.secrets()})
	if err != nil {
		t.Fatal(err)
	}
	// The same name with other parameters is refused.
	if _, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "kept", VolumeCapabilities: []*csipb.VolumeCapability{c},
		Parameters: map[string]string{"bucket": bucket}, Secrets: d.secrets()}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreateVolume again with other parameters: %v", err)
	}
	put(t, bucket, "kept/data.txt", []byte("keep me"))
	if _, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId(), Secrets: d.secrets()}); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t).StatObject(ctx, bucket, "kept/data.txt", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("keepData: the object is gone: %v", err)
	}

	// Static: the PV's volumeHandle is bucket:prefix.
	target := filepath.Join(d.dir, "static")
	if _, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: bucket + ":kept", TargetPath: target,
		VolumeCapability: c, Secrets: d.secrets()}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "data.txt")); err != nil || string(b) != "keep me" {
		t.Fatalf("static volume: %q %v", b, err)
	}
	// Missing credentials are named, and nothing is mounted.
	other := filepath.Join(d.dir, "nocreds")
	if _, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: bucket, TargetPath: other,
		VolumeCapability: c}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "accessKeyID") {
		t.Fatalf("publish without secrets: %v", err)
	}
	if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: bucket + ":kept", TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if isMounted(target) {
		t.Fatal("still mounted")
	}
}

// waitFor polls cond every 50 ms until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
	}
}

// runSanity runs csi-sanity against d with extra flags, and checks that
// every spec passed or was skipped for a capability kfs does not offer.
func runSanity(t *testing.T, d *csiDriver, extra ...string) string {
	t.Helper()
	bin := filepath.Join(RepoRoot(), ".tools", "bin", "csi-sanity")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("csi-sanity not found at %s: run scripts/install-deps.sh", bin)
	}
	args := append([]string{"--csi.endpoint", "unix://" + d.sock,
		"--csi.mountdir", filepath.Join(d.dir, "target"), "--csi.stagingdir", filepath.Join(d.dir, "staging"),
		"--csi.testvolumesize", "1073741824", "--ginkgo.no-color", "--ginkgo.v"}, extra...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	text := string(out)
	if p := os.Getenv("KFS_CSI_SANITY_OUT"); p != "" {
		_ = os.WriteFile(p, out, 0o644)
	}
	if err != nil {
		t.Fatalf("csi-sanity: %v\n%s", err, text)
	}
	m := regexp.MustCompile(`Ran (\d+) of (\d+) Specs.*\n.*(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("csi-sanity said no summary:\n%s", text)
	}
	t.Logf("csi-sanity: ran %s of %s specs; summary line: %s", m[1], m[2], m[0])
	if m[4] != "0" {
		t.Fatalf("csi-sanity failures:\n%s", text)
	}
	// Every skip is a capability kfs does not offer, named in the README.
	offered := map[string]bool{}
	for _, why := range []string{"Controller Publish, UnpublishVolume not supported", "ControllerModifyVolume not supported",
		"ControllerPublishVolume not supported", "ControllerUnpublishVolume not supported", "CreateSnapshot not supported",
		"DeleteSnapshot not supported", "GetCapacity not supported", "GroupControllerService not supported",
		"ListSnapshots not supported", "ListVolumes not supported", "Modify Volume not supported", "Modify volume not supported",
		"NodeExpandVolume not supported", "NodeStageVolume not supported", "NodeUnstageVolume not supported",
		"Snapshot not supported", "Volume Cloning not supported"} {
		offered[why] = true
	}
	for _, s := range regexp.MustCompile(`(?m)^  \[SKIPPED\] ([A-Z].*)$`).FindAllStringSubmatch(text, -1) {
		if !offered[s[1]] {
			t.Errorf("csi-sanity skipped specs for a reason not accounted for: %q", s[1])
		}
	}
	return text
}
