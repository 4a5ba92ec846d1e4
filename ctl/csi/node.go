package csi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kfs/mountopts"
)

// NodeGetInfo names the node; volumes have no topology (a bucket is
// reachable from every node that reaches the store).
func (d *Driver) NodeGetInfo(context.Context, *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	return &csipb.NodeGetInfoResponse{NodeId: d.cfg.NodeID}, nil
}

// NodeGetCapabilities: no staging (a bucket needs no device); the pod's
// fsGroup is taken as the mount's group (VOLUME_MOUNT_GROUP), so the
// kubelet does not walk the volume changing every object's group; stats
// and condition (a mount whose process died is abnormal).
func (d *Driver) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	var caps []*csipb.NodeServiceCapability
	for _, c := range []csipb.NodeServiceCapability_RPC_Type{csipb.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP,
		csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS, csipb.NodeServiceCapability_RPC_VOLUME_CONDITION} {
		caps = append(caps, &csipb.NodeServiceCapability{Type: &csipb.NodeServiceCapability_Rpc{
			Rpc: &csipb.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csipb.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodePublishVolume mounts the volume at the target path with a kfs
// mount process (allow_other, so the pod's user can use it; read-only
// when asked). Publishing what is already mounted there is a no-op; a
// mount there whose process died is replaced.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	target := req.GetTargetPath()
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path missing")
	}
	if !filepath.IsAbs(target) || filepath.Clean(target) != target {
		return nil, status.Errorf(codes.InvalidArgument, "target path %q: want a clean absolute path", target)
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	ro := req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	args, env, err := d.publishArgs(v, req, ro)
	if err != nil {
		return nil, err
	}
	unlock, err := d.lock(target)
	if err != nil {
		return nil, err
	}
	defer unlock()
	mi, err := d.cfg.Mounter.Mounted(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reading the node's mounts: %v", err)
	}
	if mi.Mounted {
		ours := mi.FSType == "fuse.kfs" && mi.Source == "kfs:"+v.Bucket+":"+v.Prefix
		switch {
		case ours && !mi.Dead && mi.ReadOnly == ro:
			return &csipb.NodePublishVolumeResponse{}, nil
		case ours && !mi.Dead:
			return nil, status.Errorf(codes.AlreadyExists, "%s is mounted there %s", v.ID(), map[bool]string{true: "read-only", false: "read-write"}[mi.ReadOnly])
		case mi.FSType == "fuse.kfs" && mi.Dead:
			d.cfg.Log.Warn("replacing a mount whose process died", "target", target, "was", mi.Source)
			if _, err := d.cfg.Mounter.Unmount(target); err != nil {
				return nil, status.Errorf(codes.Internal, "removing the dead mount at %s: %v", target, err)
			}
		default:
			return nil, status.Errorf(codes.AlreadyExists, "%s already holds another mount (%s %s)", target, mi.FSType, mi.Source)
		}
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "target path: %v", err)
	}
	if err := d.cfg.Mounter.Mount(ctx, v.ID(), target, args, env); err != nil {
		var me *mountError
		if errors.As(err, &me) && me.usage {
			return nil, status.Errorf(codes.InvalidArgument, "mount %s: %v", v.ID(), err)
		}
		return nil, status.Errorf(codes.Internal, "mount %s: %v", v.ID(), err)
	}
	d.cfg.Log.Info("volume published", "volume", v.ID(), "target", target, "read_only", ro)
	return &csipb.NodePublishVolumeResponse{}, nil
}

// publishArgs builds a publish's `kfs mount` arguments and environment
// and validates them as `kfs mount` would, so bad options are refused
// here with the same message.
func (d *Driver) publishArgs(v volume, req *csipb.NodePublishVolumeRequest, ro bool) ([]string, []string, error) {
	m := req.GetVolumeCapability().GetMount()
	flags := append([]string{req.GetVolumeContext()["mountOptions"]}, m.GetMountFlags()...)
	args, err := mountArgs(flags)
	if err != nil {
		return nil, nil, err
	}
	args = append(args, "-o", "allow_other")
	if ro {
		args = append(args, "-o", "ro")
	}
	if g := m.GetVolumeMountGroup(); g != "" {
		if _, err := strconv.ParseUint(g, 10, 32); err != nil {
			return nil, nil, status.Errorf(codes.InvalidArgument, "volume mount group %q: want a numeric gid", g)
		}
		args = append(args, "-o", "gid="+g)
	}
	if d.cfg.StateDir != "" {
		sum := sha256.Sum256([]byte(req.GetTargetPath()))
		name := hex.EncodeToString(sum[:6])
		if !hasOption(args, "cache_dir") {
			args = append(args, "-o", "cache_dir="+filepath.Join(d.cfg.StateDir, "cache"))
		}
		if !hasOption(args, "log_file") {
			args = append(args, "-o", "log_file="+filepath.Join(d.cfg.StateDir, "log", "mount-"+name+".log"))
		}
	}
	secrets, err := parseSecrets(req.GetSecrets(), d.cfg.Defaults)
	if err != nil {
		return nil, nil, err
	}
	env := secrets.env()
	lookup := func(k string) string {
		for _, e := range env {
			if name, val, _ := strings.Cut(e, "="); name == k {
				return val
			}
		}
		return ""
	}
	if _, err := mountopts.Parse(append(append([]string(nil), args...), v.ID(), req.GetTargetPath()), lookup); err != nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "mount options of %s: %v", v.ID(), err)
	}
	return args, env, nil
}

// hasOption says whether -o arguments set name (with - or _).
func hasOption(args []string, name string) bool {
	for i := 1; i < len(args); i += 2 {
		n, _, _ := strings.Cut(args[i], "=")
		if strings.ReplaceAll(n, "-", "_") == name {
			return true
		}
	}
	return false
}

// NodeUnpublishVolume unmounts the target path (lazily when files are
// still open there: said in the log) and removes the directory
// NodePublishVolume made. Unpublishing what is not mounted succeeds.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	target := req.GetTargetPath()
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path missing")
	}
	unlock, err := d.lock(target)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for try := 0; ; try++ {
		mi, err := d.cfg.Mounter.Mounted(target)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "reading the node's mounts: %v", err)
		}
		if !mi.Mounted {
			break
		}
		if try == 8 {
			return nil, status.Errorf(codes.Internal, "%s is still mounted after 8 unmounts", target)
		}
		if mi.FSType != "fuse.kfs" {
			return nil, status.Errorf(codes.FailedPrecondition, "%s holds a %s mount, not a kfs volume: left alone", target, mi.FSType)
		}
		lazy, err := d.cfg.Mounter.Unmount(target)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		if lazy {
			d.cfg.Log.Warn("volume unpublished while files were open: detached lazily; its process ends when they close", "volume", req.GetVolumeId(), "target", target)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "removing the target path: %v", err)
	}
	d.cfg.Log.Info("volume unpublished", "volume", req.GetVolumeId(), "target", target)
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats reports what the mount's statfs says, and a mount
// whose process died as an abnormal condition.
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	path := req.GetVolumePath()
	if path == "" {
		return nil, status.Error(codes.InvalidArgument, "volume path missing")
	}
	mi, err := d.cfg.Mounter.Mounted(path)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reading the node's mounts: %v", err)
	}
	if !mi.Mounted || mi.FSType != "fuse.kfs" || mi.Source != "kfs:"+v.Bucket+":"+v.Prefix {
		return nil, status.Errorf(codes.NotFound, "volume %s is not mounted at %s", v.ID(), path)
	}
	if mi.Dead {
		return &csipb.NodeGetVolumeStatsResponse{VolumeCondition: &csipb.VolumeCondition{Abnormal: true,
			Message: "the kfs process serving this mount is gone (ENOTCONN); restart the pod to mount it again"}}, nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return nil, status.Errorf(codes.Internal, "statfs %s: %v", path, err)
	}
	bs := int64(st.Bsize)
	return &csipb.NodeGetVolumeStatsResponse{
		Usage: []*csipb.VolumeUsage{
			{Unit: csipb.VolumeUsage_BYTES, Total: int64(st.Blocks) * bs, Available: int64(st.Bavail) * bs, Used: int64(st.Blocks-st.Bfree) * bs},
			{Unit: csipb.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
		},
		VolumeCondition: &csipb.VolumeCondition{Message: "mounted"},
	}, nil
}
