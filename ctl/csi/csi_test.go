package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"kfs/fs/store"
	"kfs/fs/store/memstore"
)

var creds = map[string]string{"endpoint": "http://127.0.0.1:9", "accessKeyID": "AK", "secretAccessKey": "SECRET"}

func mountCap(mode csipb.VolumeCapability_AccessMode_Mode, flags ...string) *csipb.VolumeCapability {
	return &csipb.VolumeCapability{AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{MountFlags: flags}}}
}

var rw = mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

// fakeMounter records mounts in memory.
type fakeMounter struct {
	mu      sync.Mutex
	mounts  map[string]MountInfo
	calls   []string
	args    map[string][]string
	env     map[string][]string
	busy    bool  // the next Unmount finds files open
	failing error // the next Mount fails so
}

func newFakeMounter() *fakeMounter {
	return &fakeMounter{mounts: map[string]MountInfo{}, args: map[string][]string{}, env: map[string][]string{}}
}

func (f *fakeMounter) Mount(_ context.Context, source, target string, args, env []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "mount "+target)
	if err := f.failing; err != nil {
		f.failing = nil
		return err
	}
	b, p, _ := strings.Cut(source, ":")
	if p != "" {
		p += "/"
	}
	f.mounts[target] = MountInfo{Mounted: true, FSType: "fuse.kfs", Source: "kfs:" + b + ":" + p, ReadOnly: slices.Contains(args, "ro")}
	f.args[target], f.env[target] = args, env
	return nil
}

func (f *fakeMounter) Unmount(target string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unmount "+target)
	delete(f.mounts, target)
	lazy := f.busy
	f.busy = false
	return lazy, nil
}

func (f *fakeMounter) Mounted(target string) (MountInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mounts[target], nil
}

func newDriver(t *testing.T, mode string) (*Driver, *memstore.Store, *fakeMounter) {
	t.Helper()
	st := memstore.New()
	m := newFakeMounter()
	d, err := New(Config{NodeID: "n1", Mode: mode, Mounter: m, StateDir: t.TempDir(),
		Stores: func(s Secrets) (Store, error) {
			if s.SecretKey != "SECRET" {
				return nil, errors.New("wrong key")
			}
			return st, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return d, st, m
}

func code(err error) codes.Code { return status.Code(err) }

func TestParseVolumeID(t *testing.T) {
	for _, c := range []struct {
		id, bucket, prefix string
		ok                 bool
	}{
		{"data", "data", "", true},
		{"data:pvc-1", "data", "pvc-1/", true},
		{"data:a/b/", "data", "a/b/", true},
		{"", "", "", false},
		{"Bad_Bucket", "", "", false},
		{"data:a/../b", "", "", false},
	} {
		v, err := parseVolumeID(c.id)
		if (err == nil) != c.ok || (c.ok && (v.Bucket != c.bucket || v.Prefix != c.prefix)) {
			t.Errorf("parseVolumeID(%q) = %+v, %v", c.id, v, err)
		}
		if err != nil && code(err) != codes.InvalidArgument {
			t.Errorf("parseVolumeID(%q): code %v", c.id, code(err))
		}
		if c.ok && v.ID() != strings.TrimSuffix(c.id, "/") {
			t.Errorf("ID of %q = %q", c.id, v.ID())
		}
	}
}

func TestParseSecrets(t *testing.T) {
	if _, err := parseSecrets(nil, Secrets{}); code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "endpoint, accessKeyID, secretAccessKey") {
		t.Errorf("no secrets: %v", err)
	}
	if _, err := parseSecrets(map[string]string{"accessKeyId": "x"}, Secrets{}); err == nil || !strings.Contains(err.Error(), "accessKeyId") {
		t.Errorf("a misspelt key: %v", err)
	}
	def := Secrets{Endpoint: "http://e", AccessKey: "a", SecretKey: "s"}
	if s, err := parseSecrets(nil, def); err != nil || s != def {
		t.Errorf("defaults: %+v %v", s, err)
	}
	s, err := parseSecrets(map[string]string{"secretAccessKey": "other", "region": "eu"}, def)
	if err != nil || s.SecretKey != "other" || s.Region != "eu" || s.AccessKey != "a" {
		t.Errorf("over defaults: %+v %v", s, err)
	}
	if env := strings.Join(s.env(), " "); !strings.Contains(env, "KFS_SECRET_KEY=other") || !strings.Contains(env, "KFS_REGION=eu") {
		t.Errorf("env: %s", env)
	}
}

func TestParamsAndOptions(t *testing.T) {
	if _, err := parseParams(map[string]string{}, ""); code(err) != codes.InvalidArgument {
		t.Errorf("no bucket: %v", err)
	}
	if _, err := parseParams(map[string]string{"bucket": "b", "bukcet": "c"}, ""); err == nil || !strings.Contains(err.Error(), "bukcet") {
		t.Errorf("unknown parameter: %v", err)
	}
	if _, err := parseParams(map[string]string{"bucket": "b", "keepData": "perhaps"}, ""); err == nil {
		t.Error("keepData=perhaps accepted")
	}
	p, err := parseParams(map[string]string{"bucket": "bkt", "keepData": "true", "csi.storage.k8s.io/pvc/name": "x"}, "")
	if err != nil || !p.KeepData || p.Bucket != "bkt" {
		t.Errorf("params: %+v %v", p, err)
	}
	args, err := mountArgs([]string{"uid=1000, gid=1000", "-o ro", ""})
	if err != nil || strings.Join(args, " ") != "-o uid=1000 -o gid=1000 -o ro" {
		t.Errorf("mountArgs: %q %v", args, err)
	}
	for _, bad := range []string{"secret_key=x", "secret-key=x", "config=/etc/x", "--endpoint=http://x", "daemon"} {
		if _, err := mountArgs([]string{bad}); code(err) != codes.InvalidArgument {
			t.Errorf("mountArgs(%q): %v", bad, err)
		}
	}
	block := &csipb.VolumeCapability{AccessMode: rw.AccessMode, AccessType: &csipb.VolumeCapability_Block{Block: &csipb.VolumeCapability_BlockVolume{}}}
	for _, c := range []*csipb.VolumeCapability{nil, block, {AccessType: rw.AccessType},
		{AccessMode: rw.AccessMode, AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{FsType: "ext4"}}}} {
		if err := checkCapability(c); code(err) != codes.InvalidArgument {
			t.Errorf("checkCapability(%v): %v", c, err)
		}
	}
}

func TestCreateDeleteVolume(t *testing.T) {
	d, st, _ := newDriver(t, ModeController)
	ctx := context.Background()
	req := &csipb.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: []*csipb.VolumeCapability{rw},
		Parameters: map[string]string{"bucket": "vols"}, Secrets: creds, CapacityRange: &csipb.CapacityRange{RequiredBytes: 100}}
	r1, err := d.CreateVolume(ctx, req)
	if err != nil || r1.GetVolume().GetVolumeId() != "vols:pvc-1" || r1.GetVolume().GetCapacityBytes() != 100 {
		t.Fatalf("CreateVolume: %v %v", r1, err)
	}
	if err := st.StatBucket(ctx, "vols"); err != nil {
		t.Fatalf("the bucket was not made: %v", err)
	}
	if r2, err := d.CreateVolume(ctx, req); err != nil || r2.GetVolume().GetVolumeId() != "vols:pvc-1" {
		t.Fatalf("CreateVolume again: %v %v", r2, err)
	}
	bigger := proto.Clone(req).(*csipb.CreateVolumeRequest)
	bigger.CapacityRange = &csipb.CapacityRange{RequiredBytes: 200}
	if _, err := d.CreateVolume(ctx, bigger); code(err) != codes.AlreadyExists {
		t.Fatalf("the same name, more capacity: %v", err)
	}
	other := proto.Clone(req).(*csipb.CreateVolumeRequest)
	other.Parameters = map[string]string{"bucket": "vols", "keepData": "true"}
	if _, err := d.CreateVolume(ctx, other); code(err) != codes.AlreadyExists {
		t.Fatalf("the same name, other parameters: %v", err)
	}
	// Growing is recorded; then the first request's range no longer fits.
	if r, err := d.ControllerExpandVolume(ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: "vols:pvc-1",
		CapacityRange: &csipb.CapacityRange{RequiredBytes: 300}, Secrets: creds}); err != nil || r.GetCapacityBytes() != 300 {
		t.Fatalf("ControllerExpandVolume: %v %v", r, err)
	}
	if r, err := d.CreateVolume(ctx, bigger); err != nil || r.GetVolume().GetCapacityBytes() != 300 {
		t.Fatalf("CreateVolume after growing: %v %v", r, err)
	}
	// Someone else's prefix is not taken over.
	st.PutBytes("vols", "theirs/file", []byte("x"))
	theirs := proto.Clone(req).(*csipb.CreateVolumeRequest)
	theirs.Name = "theirs"
	if _, err := d.CreateVolume(ctx, theirs); code(err) != codes.AlreadyExists {
		t.Fatalf("a prefix holding others' objects: %v", err)
	}
	st.PutBytes("vols", "pvc-1/a", []byte("1"))
	st.PutBytes("vols", "pvc-1/sub/b", []byte("2"))
	st.PutBytes("vols", "pvc-10/c", []byte("3"))
	for _, id := range []string{"vols", "vols:theirs", "fake-vol-id", "vols:pvc-1/sub", "missing-bucket:x"} {
		if _, err := d.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: id, Secrets: creds}); err != nil {
			t.Fatalf("DeleteVolume(%s): %v", id, err)
		}
	}
	if got := len(st.Keys("vols")); got != 5 {
		t.Fatalf("DeleteVolume of IDs the driver did not make removed objects: %v", st.Keys("vols"))
	}
	if _, err := d.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: "vols:pvc-1", Secrets: creds}); err != nil {
		t.Fatal(err)
	}
	if got := st.Keys("vols"); strings.Join(got, ",") != "pvc-10/c,theirs/file" {
		t.Fatalf("after DeleteVolume: %v", got)
	}
	if _, err := d.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{}); code(err) != codes.InvalidArgument {
		t.Fatalf("DeleteVolume without an ID: %v", err)
	}
}

func TestKeepDataAndValidate(t *testing.T) {
	d, st, _ := newDriver(t, ModeController)
	ctx := context.Background()
	if _, err := d.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "k", VolumeCapabilities: []*csipb.VolumeCapability{rw},
		Parameters: map[string]string{"bucket": "vols", "keepData": "true", "mountOptions": "uid=7"}, Secrets: creds}); err != nil {
		t.Fatal(err)
	}
	st.PutBytes("vols", "k/data", []byte("keep"))
	val := func(id string) error {
		_, err := d.ValidateVolumeCapabilities(ctx, &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: id,
			VolumeCapabilities: []*csipb.VolumeCapability{rw}, Secrets: creds})
		return err
	}
	if err := val("vols:k"); err != nil {
		t.Fatal(err)
	}
	if err := val("vols:nothing"); code(err) != codes.NotFound {
		t.Fatalf("an empty prefix: %v", err)
	}
	if err := val("nobucket"); code(err) != codes.NotFound {
		t.Fatalf("a missing bucket: %v", err)
	}
	if _, err := d.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: "vols:k", Secrets: creds}); err != nil {
		t.Fatal(err)
	}
	if got := st.Keys("vols"); strings.Join(got, ",") != "k/data" {
		t.Fatalf("keepData: %v", got)
	}
	// A wrong secret is the store's refusal, not a crash.
	if _, err := d.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "z", VolumeCapabilities: []*csipb.VolumeCapability{rw},
		Parameters: map[string]string{"bucket": "vols"}, Secrets: map[string]string{"endpoint": "http://x", "accessKeyID": "a", "secretAccessKey": "nope"}}); code(err) != codes.InvalidArgument {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := d.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "a/b", VolumeCapabilities: []*csipb.VolumeCapability{rw},
		Parameters: map[string]string{"bucket": "vols"}, Secrets: creds}); code(err) != codes.InvalidArgument {
		t.Fatalf("a name with a slash: %v", err)
	}
}

func TestNodePublishUnpublish(t *testing.T) {
	d, _, m := newDriver(t, ModeNode)
	ctx := context.Background()
	target := filepath.Join(t.TempDir(), "pod", "mount")
	req := &csipb.NodePublishVolumeRequest{VolumeId: "vols:pvc-1", TargetPath: target, Secrets: creds,
		VolumeCapability: mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "uid=1000"),
		VolumeContext:    map[string]string{"mountOptions": "attr_ttl=5s"}}
	req.VolumeCapability.GetMount().VolumeMountGroup = "2000"
	if _, err := d.NodePublishVolume(ctx, req); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(m.args[target], " ")
	for _, want := range []string{"-o attr_ttl=5s", "-o uid=1000", "-o allow_other", "-o gid=2000", "-o cache_dir=", "-o log_file="} {
		if !strings.Contains(args, want) {
			t.Errorf("mount args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "SECRET") || !slices.Contains(m.env[target], "KFS_SECRET_KEY=SECRET") {
		t.Errorf("the secret must travel in the environment only: args %q env %q", args, m.env[target])
	}
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		t.Fatalf("the target directory: %v", err)
	}
	// Again: nothing new. Read-only over it: refused.
	if _, err := d.NodePublishVolume(ctx, req); err != nil || len(m.calls) != 1 {
		t.Fatalf("publish again: %v %v", err, m.calls)
	}
	ro := proto.Clone(req).(*csipb.NodePublishVolumeRequest)
	ro.Readonly = true
	if _, err := d.NodePublishVolume(ctx, ro); code(err) != codes.AlreadyExists {
		t.Fatalf("read-only over read-write: %v", err)
	}
	// A dead mount is replaced; another filesystem is left alone.
	mi := m.mounts[target]
	mi.Dead = true
	m.mounts[target] = mi
	if _, err := d.NodePublishVolume(ctx, req); err != nil || strings.Join(m.calls, ",") != "mount "+target+",unmount "+target+",mount "+target {
		t.Fatalf("replacing a dead mount: %v %v", err, m.calls)
	}
	other := filepath.Join(t.TempDir(), "x")
	m.mounts[other] = MountInfo{Mounted: true, FSType: "ext4", Source: "/dev/sda1"}
	oreq := proto.Clone(req).(*csipb.NodePublishVolumeRequest)
	oreq.TargetPath = other
	if _, err := d.NodePublishVolume(ctx, oreq); code(err) != codes.AlreadyExists {
		t.Fatalf("over another filesystem: %v", err)
	}
	if _, err := d.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "x", TargetPath: other}); code(err) != codes.FailedPrecondition {
		t.Fatalf("unpublishing another filesystem: %v", err)
	}
	// Stats: ours at the path, or NotFound.
	if _, err := d.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: "vols:other", VolumePath: target}); code(err) != codes.NotFound {
		t.Fatalf("stats of another volume: %v", err)
	}
	// Unpublish: unmounted, directory gone; lazily when busy; twice fine.
	m.busy = true
	for i := 0; i < 2; i++ {
		if _, err := d.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "vols:pvc-1", TargetPath: target}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) || m.mounts[target].Mounted {
		t.Fatalf("after unpublish: %v %+v", err, m.mounts[target])
	}
	// A failed mount says why, with the right code.
	m.failing = &mountError{msg: "bucket vols: not found", usage: true}
	if _, err := d.NodePublishVolume(ctx, req); code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("a failed mount: %v", err)
	}
}

func TestNodeRefusals(t *testing.T) {
	d, _, m := newDriver(t, ModeNode)
	ctx := context.Background()
	for name, req := range map[string]*csipb.NodePublishVolumeRequest{
		"no volume":       {TargetPath: "/t", VolumeCapability: rw, Secrets: creds},
		"no target":       {VolumeId: "b", VolumeCapability: rw, Secrets: creds},
		"relative target": {VolumeId: "b", TargetPath: "t", VolumeCapability: rw, Secrets: creds},
		"no capability":   {VolumeId: "b", TargetPath: "/t", Secrets: creds},
		"no secrets":      {VolumeId: "b", TargetPath: "/t", VolumeCapability: rw},
		"bad option":      {VolumeId: "b", TargetPath: "/t", VolumeCapability: mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "cache_size=lots"), Secrets: creds},
		"secret option":   {VolumeId: "b", TargetPath: "/t", VolumeCapability: mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "access_key=x"), Secrets: creds},
	} {
		if _, err := d.NodePublishVolume(ctx, req); code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(m.calls) != 0 {
		t.Errorf("refused publishes mounted: %v", m.calls)
	}
	if _, err := d.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{TargetPath: "/t"}); code(err) != codes.InvalidArgument {
		t.Errorf("unpublish without a volume: %v", err)
	}
	// A second operation on the same target meanwhile: Aborted.
	unlock, err := d.lock("/busy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "b", TargetPath: "/busy"}); code(err) != codes.Aborted {
		t.Errorf("concurrent operation: %v", err)
	}
	unlock()
	caps, _ := d.NodeGetCapabilities(ctx, nil)
	if len(caps.GetCapabilities()) == 0 {
		t.Error("no node capabilities")
	}
	if info, _ := d.NodeGetInfo(ctx, nil); info.GetNodeId() != "n1" {
		t.Errorf("node id %q", info.GetNodeId())
	}
}

func TestIdentityAndConfig(t *testing.T) {
	if _, err := New(Config{Mode: "both", Stores: func(Secrets) (Store, error) { return nil, nil }}); err == nil {
		t.Error("--mode both accepted")
	}
	if _, err := New(Config{Mode: ModeNode, Stores: func(Secrets) (Store, error) { return nil, nil }}); err == nil {
		t.Error("a node without --node-id accepted")
	}
	ctx := context.Background()
	d, st, _ := newDriver(t, ModeController)
	if info, _ := d.GetPluginInfo(ctx, nil); info.GetName() != DriverName {
		t.Errorf("name %q", info.GetName())
	}
	if caps, _ := d.GetPluginCapabilities(ctx, nil); len(caps.GetCapabilities()) != 1 {
		t.Errorf("controller capabilities: %v", caps)
	}
	if r, err := d.Probe(ctx, nil); err != nil || !r.GetReady().GetValue() {
		t.Errorf("probe without defaults: %v %v", r, err)
	}
	d.cfg.Defaults = Secrets{Endpoint: "http://e", AccessKey: "a", SecretKey: "SECRET"}
	if _, err := d.Probe(ctx, nil); err != nil {
		t.Errorf("probe with a store: %v", err)
	}
	st.SetHook(func(method, bucket, key string) error { return store.ErrUnavailable })
	if _, err := d.Probe(ctx, nil); code(err) != codes.FailedPrecondition {
		t.Errorf("probe with the store down: %v", err)
	}
}

func TestMountinfo(t *testing.T) {
	line := `50 27 0:44 / /var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv\040a/mount ro,nosuid,nodev,relatime shared:1 - fuse.kfs kfs:vols:pvc-1/ rw,user_id=0`
	mi, ok := parseMountinfo(line, "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv a/mount")
	if !ok || mi.FSType != "fuse.kfs" || mi.Source != "kfs:vols:pvc-1/" || !mi.ReadOnly {
		t.Fatalf("parseMountinfo: %+v %v", mi, ok)
	}
	if _, ok := parseMountinfo(line, "/elsewhere"); ok {
		t.Fatal("matched another path")
	}
	if got := unescapeMountinfo(`a\134b\011c`); got != "a\\b\tc" {
		t.Fatalf("unescape: %q", got)
	}
	var p ProcessMounter
	if mi, err := p.Mounted(t.TempDir()); err != nil || mi.Mounted {
		t.Fatalf("a plain directory: %+v %v", mi, err)
	}
}

func TestServeOverSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "csi.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix://" + sock); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	os.Remove(sock)
	if _, err := Listen("tcp://127.0.0.1:1"); err == nil {
		t.Fatal("Listen took a tcp endpoint")
	}
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st.Mode(), err)
	}
	d, _, _ := newDriver(t, ModeAll)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, l) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	info, err := csipb.NewIdentityClient(conn).GetPluginInfo(ctx, &csipb.GetPluginInfoRequest{})
	if err != nil || info.GetName() != DriverName {
		t.Fatalf("GetPluginInfo over the socket: %v %v", info, err)
	}
	if _, err := csipb.NewNodeClient(conn).NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{}); code(err) != codes.InvalidArgument {
		t.Fatalf("a refused call over the socket: %v", err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// A stale socket from an earlier run is replaced.
	l2, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l2.Close()
}

func TestProcessMounterErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		script string
		usage  bool
	}{
		{"#!/bin/sh\necho 'kfs: bucket nope: not found' >&2\nexit 2\n", true},
		{"#!/bin/sh\necho 'kfs: fusermount3: permission denied' >&2\nexit 1\n", false},
	} {
		bin := filepath.Join(dir, "kfs")
		if err := os.WriteFile(bin, []byte(c.script), 0o755); err != nil {
			t.Fatal(err)
		}
		err := ProcessMounter{Bin: bin}.Mount(context.Background(), "b", filepath.Join(dir, "t"), nil, nil)
		var me *mountError
		if !errors.As(err, &me) || me.usage != c.usage || strings.HasPrefix(me.msg, "kfs:") {
			t.Errorf("%q: %v", c.script, err)
		}
	}
	if lazy, err := (ProcessMounter{}).Unmount(dir); err != nil || lazy {
		t.Errorf("unmounting a plain directory: %v %v", lazy, err)
	}
}

func TestDefaultBucket(t *testing.T) {
	if p, err := parseParams(nil, "kfs-volumes"); err != nil || p.Bucket != "kfs-volumes" {
		t.Fatalf("a class without bucket: %+v %v", p, err)
	}
	if p, err := parseParams(map[string]string{"bucket": "mine"}, "kfs-volumes"); err != nil || p.Bucket != "mine" {
		t.Fatalf("a class with a bucket: %+v %v", p, err)
	}
}

// regionStore records the region a bucket is made in.
type regionStore struct {
	*memstore.Store
	region string
}

func (r *regionStore) MakeBucket(ctx context.Context, b string, o store.MakeBucketOptions) error {
	r.region = o.Region
	return r.Store.MakeBucket(ctx, b, o)
}

// A bucket CreateVolume makes is made in the region of the request's
// secret, not of the driver's own credentials.
func TestCreateVolumeRegionFromSecret(t *testing.T) {
	rs := &regionStore{Store: memstore.New()}
	d, err := New(Config{Mode: ModeController, Defaults: Secrets{Region: "us-east-1"},
		Stores: func(Secrets) (Store, error) { return rs, nil }})
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{"endpoint": "http://e", "accessKeyID": "a", "secretAccessKey": "s", "region": "eu-west-3"}
	if _, err := d.CreateVolume(context.Background(), &csipb.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*csipb.VolumeCapability{rw},
		Parameters: map[string]string{"bucket": "vols"}, Secrets: sec}); err != nil {
		t.Fatal(err)
	}
	if rs.region != "eu-west-3" {
		t.Fatalf("bucket made in %q, want the secret's eu-west-3", rs.region)
	}
}
