package csi

import (
	"sort"
	"strconv"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kfs/mountopts"
)

// A volume is a bucket, or a prefix in one: its ID is "bucket" or
// "bucket:prefix" (the prefix without its trailing slash), the same
// syntax as `kfs mount`'s source. Dynamic volumes are "bucket:NAME".
type volume struct {
	Bucket string
	Prefix string // "" or ending in "/"
}

func (v volume) ID() string {
	if v.Prefix == "" {
		return v.Bucket
	}
	return v.Bucket + ":" + strings.TrimSuffix(v.Prefix, "/")
}

// parseVolumeID reads a volume ID; a malformed one is InvalidArgument.
func parseVolumeID(id string) (volume, error) {
	if id == "" {
		return volume{}, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	b, p, err := mountopts.ParseTarget(id)
	if err != nil {
		return volume{}, status.Errorf(codes.InvalidArgument, "volume ID %q: %v (want BUCKET or BUCKET:PREFIX)", id, err)
	}
	if b == "" {
		return volume{}, status.Errorf(codes.InvalidArgument, "volume ID %q names no bucket", id)
	}
	return volume{Bucket: b, Prefix: p}, nil
}

// Secrets are the credentials a request carries (the Kubernetes secret
// the StorageClass or PV names). Their values are never logged.
type Secrets struct {
	Endpoint  string // endpoint
	AccessKey string // accessKeyID
	SecretKey string // secretAccessKey
	Region    string // region (optional)
}

var secretKeys = []string{"endpoint", "accessKeyID", "secretAccessKey", "region"}

// parseSecrets reads a request's secrets over the driver's defaults (its
// own environment): an empty map means "the defaults". A key kfs does not
// know is refused by name, so a misspelt secret is not silently unused.
func parseSecrets(m map[string]string, def Secrets) (Secrets, error) {
	s := def
	var unknown []string
	for k, v := range m {
		switch k {
		case "endpoint":
			s.Endpoint = v
		case "accessKeyID":
			s.AccessKey = v
		case "secretAccessKey":
			s.SecretKey = v
		case "region":
			s.Region = v
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return s, status.Errorf(codes.InvalidArgument, "unknown secret keys %s (kfs reads %s)", strings.Join(unknown, ", "), strings.Join(secretKeys, ", "))
	}
	var missing []string
	if s.Endpoint == "" {
		missing = append(missing, "endpoint")
	}
	if s.AccessKey == "" {
		missing = append(missing, "accessKeyID")
	}
	if s.SecretKey == "" {
		missing = append(missing, "secretAccessKey")
	}
	if len(missing) > 0 {
		return s, status.Errorf(codes.InvalidArgument, "secrets lack %s (give them in the secret the StorageClass or PV names)", strings.Join(missing, ", "))
	}
	return s, nil
}

// env is the environment of a kfs mount process with these credentials:
// given to the child only (its /proc/PID/environ is readable by root
// alone), never on a command line or in a file.
func (s Secrets) env() []string {
	e := []string{"KFS_ENDPOINT=" + s.Endpoint, "KFS_ACCESS_KEY=" + s.AccessKey, "KFS_SECRET_KEY=" + s.SecretKey}
	if s.Region != "" {
		e = append(e, "KFS_REGION="+s.Region)
	}
	return e
}

// checkCapability accepts a mounted filesystem in any access mode (an
// object store is shared by nature); a raw block device is not offered.
func checkCapability(c *csipb.VolumeCapability) error {
	if c == nil {
		return status.Error(codes.InvalidArgument, "volume capability missing")
	}
	if c.GetBlock() != nil {
		return status.Error(codes.InvalidArgument, "kfs volumes are filesystems: block access is not offered")
	}
	if c.GetMount() == nil {
		return status.Error(codes.InvalidArgument, "volume capability names no access type (want mount)")
	}
	if fs := c.GetMount().GetFsType(); fs != "" && fs != "fuse.kfs" && fs != "kfs" {
		return status.Errorf(codes.InvalidArgument, "fsType %q: kfs volumes are fuse.kfs (leave fsType empty)", fs)
	}
	if c.GetAccessMode() == nil || c.GetAccessMode().GetMode() == csipb.VolumeCapability_AccessMode_UNKNOWN {
		return status.Error(codes.InvalidArgument, "volume capability names no access mode")
	}
	return nil
}

func checkCapabilities(cs []*csipb.VolumeCapability) error {
	if len(cs) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	for _, c := range cs {
		if err := checkCapability(c); err != nil {
			return err
		}
	}
	return nil
}

// readOnlyMode says whether an access mode allows reading only.
func readOnlyMode(c *csipb.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// Parameters of a StorageClass (CreateVolume).
type params struct {
	Bucket       string // bucket: where volumes are made (created when absent)
	KeepData     bool   // keepData: DeleteVolume leaves the objects
	MountOptions string // mountOptions: -o options every publish of the volume gets
}

// parseParams reads a StorageClass's parameters; the CO's own
// (csi.storage.k8s.io/...) pass, anything else unknown is refused. A
// class without bucket uses defBucket.
func parseParams(m map[string]string, defBucket string) (params, error) {
	p := params{Bucket: defBucket}
	for k, v := range m {
		switch {
		case k == "bucket":
			p.Bucket = v
		case k == "keepData":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return p, status.Errorf(codes.InvalidArgument, "parameter keepData=%q: want true or false", v)
			}
			p.KeepData = b
		case k == "mountOptions":
			p.MountOptions = v
		case strings.HasPrefix(k, "csi.storage.k8s.io/"):
		default:
			return p, status.Errorf(codes.InvalidArgument, "unknown StorageClass parameter %q (kfs reads bucket, keepData, mountOptions)", k)
		}
	}
	if p.Bucket == "" {
		return p, status.Error(codes.InvalidArgument, "StorageClass parameter bucket missing (and no --default-bucket): it names the bucket volumes are made in")
	}
	if _, _, err := mountopts.ParseTarget(p.Bucket); err != nil || strings.Contains(p.Bucket, ":") {
		return p, status.Errorf(codes.InvalidArgument, "parameter bucket=%q is not a bucket name", p.Bucket)
	}
	return p, nil
}

// Mount options a volume may not carry: credentials come from secrets
// (a PV's mount options are readable by anyone who can read the PV), and
// the process shape is the driver's.
var refusedOptions = map[string]string{
	"access_key":    "credentials come from the secret (accessKeyID)",
	"secret_key":    "credentials come from the secret (secretAccessKey)",
	"session_token": "credentials come from the secret",
	"config":        "credentials come from the secret, not a file on the node",
	"endpoint":      "the endpoint comes from the secret",
	"daemon":        "the driver runs the mount process",
	"events_token":  "not accepted in a PV's options (readable by anyone who can read the PV)",
}

// mountArgs turns a volume's mount flags (each a -o list: "ro",
// "uid=1000", "allow_other,disk_cache_size=1GiB") into `kfs mount` -o
// arguments, refusing those a volume may not set.
func mountArgs(flags []string) ([]string, error) {
	var out []string
	for _, f := range flags {
		for _, o := range strings.Split(f, ",") {
			o = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(o), "-o"))
			if o == "" {
				continue
			}
			name, _, _ := strings.Cut(o, "=")
			name = strings.ReplaceAll(strings.TrimLeft(name, "-"), "-", "_")
			if why, bad := refusedOptions[name]; bad {
				return nil, status.Errorf(codes.InvalidArgument, "mount option %s: %s", name, why)
			}
			out = append(out, "-o", o)
		}
	}
	return out, nil
}
