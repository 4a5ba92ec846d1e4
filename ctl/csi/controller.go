package csi

import (
	"context"
	"errors"
	"strconv"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kfs/fs/store"
)

// Store is what the controller needs of the object store.
type Store interface {
	store.Buckets
	store.Objects
}

// A dynamic volume is the prefix NAME/ in the StorageClass's bucket, made
// with a directory marker NAME/ that carries these metadata: the marker
// is what makes it the driver's (DeleteVolume removes nothing else), and
// it records what CreateVolume was asked, so a repeated call is answered
// the same and a different one is refused.
const (
	metaVolume   = "kfs-csi-volume"   // the volume's name
	metaCapacity = "kfs-csi-capacity" // bytes asked (accepted, not enforced)
	metaKeep     = "kfs-csi-keep"     // "true": DeleteVolume keeps the objects
	metaOptions  = "kfs-csi-options"  // the StorageClass's mountOptions parameter
)

// ControllerGetCapabilities: volumes are made, deleted and grown (the
// recorded capacity: nothing is enforced); nothing is attached (a bucket
// needs no attaching).
func (d *Driver) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	return &csipb.ControllerGetCapabilitiesResponse{Capabilities: []*csipb.ControllerServiceCapability{
		{Type: &csipb.ControllerServiceCapability_Rpc{Rpc: &csipb.ControllerServiceCapability_RPC{
			Type: csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME}}},
		{Type: &csipb.ControllerServiceCapability_Rpc{Rpc: &csipb.ControllerServiceCapability_RPC{
			Type: csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME}}},
	}}, nil
}

// storeFor opens the store with a request's credentials.
func (d *Driver) storeFor(secrets map[string]string) (Store, Secrets, error) {
	s, err := parseSecrets(secrets, d.cfg.Defaults)
	if err != nil {
		return nil, s, err
	}
	st, err := d.cfg.Stores(s)
	if err != nil {
		return nil, s, status.Errorf(codes.InvalidArgument, "store: %v", err)
	}
	return st, s, nil
}

// lockedStore marks the volume busy (see lock) and opens the store with
// the request's credentials; unlock ends the operation.
func (d *Driver) lockedStore(v volume, secrets map[string]string) (st Store, s Secrets, unlock func(), err error) {
	unlock, err = d.lock(v.ID())
	if err != nil {
		return nil, s, nil, err
	}
	if st, s, err = d.storeFor(secrets); err != nil {
		unlock()
		return nil, s, nil, err
	}
	return st, s, unlock, nil
}

// hasObjects says whether anything is stored under the volume's prefix.
func hasObjects(ctx context.Context, st Store, v volume) (bool, error) {
	page, err := st.List(ctx, store.ListRequest{Bucket: v.Bucket, Prefix: v.Prefix, Max: 1, Recursive: true})
	if err != nil {
		return false, storeError("volume "+v.ID(), err)
	}
	return len(page.Objects) > 0, nil
}

// putMarker stores the volume's marker with its metadata.
func putMarker(ctx context.Context, st Store, v volume, meta map[string]string) error {
	_, err := st.Put(ctx, store.PutRequest{Bucket: v.Bucket, Key: v.Prefix, Body: strings.NewReader(""), Size: 0, Options: store.PutOptions{ContentType: "application/x-directory", Meta: meta}})
	return err
}

// storeError maps a store failure to a gRPC code.
func storeError(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", what, err)
	case errors.Is(err, store.ErrAccessDenied):
		return status.Errorf(codes.PermissionDenied, "%s: %v", what, err)
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNameTooLong), errors.Is(err, store.ErrMetaTooLarge):
		return status.Errorf(codes.InvalidArgument, "%s: %v", what, err)
	case errors.Is(err, store.ErrQuota):
		return status.Errorf(codes.ResourceExhausted, "%s: %v", what, err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", what, err)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: %v", what, err)
	}
	return status.Errorf(codes.Unavailable, "%s: %v", what, err)
}

// checkVolumeName: a volume is one path segment of the bucket.
func checkVolumeName(name string) error {
	if name == "" {
		return status.Error(codes.InvalidArgument, "volume name missing")
	}
	if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || len(name) > 512 {
		return status.Errorf(codes.InvalidArgument, "volume name %q: want one path segment of at most 512 bytes", name)
	}
	return nil
}

// CreateVolume makes the prefix NAME/ in the bucket the StorageClass
// names (and the bucket when it is absent). Capacity is recorded and
// reported, not enforced: S3 has no quota per prefix.
func (d *Driver) CreateVolume(ctx context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	p, capacity, err := d.checkCreate(req)
	if err != nil {
		return nil, err
	}
	v := volume{Bucket: p.Bucket, Prefix: req.GetName() + "/"}
	st, secrets, unlock, err := d.lockedStore(v, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := ensureBucket(ctx, st, p.Bucket, secrets.Region); err != nil {
		return nil, err
	}
	want := map[string]string{metaVolume: req.GetName(), metaCapacity: strconv.FormatInt(capacity, 10),
		metaKeep: strconv.FormatBool(p.KeepData), metaOptions: p.MountOptions}
	resp := &csipb.CreateVolumeResponse{Volume: &csipb.Volume{VolumeId: v.ID(), CapacityBytes: capacity,
		VolumeContext: volumeContext(p.MountOptions)}}
	made, got, err := existingVolume(ctx, st, v, want, req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if made {
		resp.Volume.CapacityBytes = got
		return resp, nil
	}
	meta := map[string]string{"mode": strconv.Itoa(0o40000 | 0o755)}
	for k, w := range want {
		meta[k] = w
	}
	if err := putMarker(ctx, st, v, meta); err != nil {
		return nil, storeError("volume "+v.ID(), err)
	}
	d.cfg.Log.Info("volume created", "volume", v.ID(), "capacity", capacity, "keep_data", p.KeepData)
	return resp, nil
}

// checkCreate validates a CreateVolume request: its name, capabilities,
// parameters and capacity range.
func (d *Driver) checkCreate(req *csipb.CreateVolumeRequest) (params, int64, error) {
	if err := checkVolumeName(req.GetName()); err != nil {
		return params{}, 0, err
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return params{}, 0, err
	}
	if req.GetVolumeContentSource() != nil {
		return params{}, 0, status.Error(codes.InvalidArgument, "kfs volumes cannot be made from a snapshot or another volume")
	}
	p, err := parseParams(req.GetParameters(), d.cfg.DefaultBucket)
	if err != nil {
		return p, 0, err
	}
	if _, err := mountArgs([]string{p.MountOptions}); err != nil {
		return p, 0, err
	}
	capacity := req.GetCapacityRange().GetRequiredBytes()
	if limit := req.GetCapacityRange().GetLimitBytes(); limit > 0 && capacity > limit {
		return p, 0, status.Errorf(codes.OutOfRange, "required bytes %d over the limit %d", capacity, limit)
	}
	if capacity < 0 {
		return p, 0, status.Error(codes.OutOfRange, "negative capacity")
	}
	return p, capacity, nil
}

// existingVolume says whether the volume v is already made (made true,
// with its capacity), or may be made (false, nil). The same name again
// is the same volume if the parameters match and its capacity (perhaps
// grown since) fits the range asked; anything else there is
// AlreadyExists.
func existingVolume(ctx context.Context, st Store, v volume, want map[string]string, r *csipb.CapacityRange) (made bool, capacity int64, err error) {
	have, err := st.Stat(ctx, store.ObjectRef{Bucket: v.Bucket, Key: v.Prefix})
	switch {
	case err == nil && have.Meta[metaVolume] == want[metaVolume]:
		for _, k := range []string{metaKeep, metaOptions} {
			if have.Meta[k] != want[k] {
				return false, 0, status.Errorf(codes.AlreadyExists, "volume %s exists with other parameters", v.ID())
			}
		}
		got, _ := strconv.ParseInt(have.Meta[metaCapacity], 10, 64)
		if got < r.GetRequiredBytes() || (r.GetLimitBytes() > 0 && got > r.GetLimitBytes()) {
			return false, 0, status.Errorf(codes.AlreadyExists, "volume %s exists with capacity %d", v.ID(), got)
		}
		return true, got, nil
	case err == nil:
		return false, 0, status.Errorf(codes.AlreadyExists, "%s/%s exists and was not made by this driver", v.Bucket, v.Prefix)
	case !errors.Is(err, store.ErrNotFound):
		return false, 0, storeError("volume "+v.ID(), err)
	}
	if found, err := hasObjects(ctx, st, v); err != nil || found {
		if err == nil {
			err = status.Errorf(codes.AlreadyExists, "%s/%s holds objects not made by this driver", v.Bucket, v.Prefix)
		}
		return false, 0, err
	}
	return false, 0, nil
}

func volumeContext(mountOptions string) map[string]string {
	if mountOptions == "" {
		return nil
	}
	return map[string]string{"mountOptions": mountOptions}
}

func ensureBucket(ctx context.Context, st Store, bucket, region string) error {
	err := st.StatBucket(ctx, bucket)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return storeError("bucket "+bucket, err)
	}
	if err := st.MakeBucket(ctx, bucket, store.MakeBucketOptions{Region: region}); err != nil {
		if st.StatBucket(ctx, bucket) == nil {
			return nil // made meanwhile by another call
		}
		return storeError("make bucket "+bucket, err)
	}
	return nil
}

// DeleteVolume removes a volume this driver made: every object under its
// prefix (or, with keepData, only its marker). An ID that names no such
// volume — a static bucket or prefix, one already deleted — succeeds and
// deletes nothing: data the driver did not make is never removed.
func (d *Driver) DeleteVolume(ctx context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil || v.Prefix == "" || strings.Count(v.Prefix, "/") != 1 {
		return &csipb.DeleteVolumeResponse{}, nil // not a dynamic volume's ID
	}
	st, _, unlock, err := d.lockedStore(v, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer unlock()
	marker, err := st.Stat(ctx, store.ObjectRef{Bucket: v.Bucket, Key: v.Prefix})
	if errors.Is(err, store.ErrNotFound) {
		return &csipb.DeleteVolumeResponse{}, nil
	}
	if err != nil {
		return nil, storeError("volume "+v.ID(), err)
	}
	if marker.Meta[metaVolume] != strings.TrimSuffix(v.Prefix, "/") {
		d.cfg.Log.Warn("DeleteVolume of a prefix this driver did not make: nothing deleted", "volume", v.ID())
		return &csipb.DeleteVolumeResponse{}, nil
	}
	if marker.Meta[metaKeep] == "true" {
		if err := removeKeys(ctx, st, v.Bucket, []string{v.Prefix}); err != nil {
			return nil, storeError("volume "+v.ID(), err)
		}
		d.cfg.Log.Info("volume deleted; its objects kept (keepData)", "volume", v.ID())
		return &csipb.DeleteVolumeResponse{}, nil
	}
	n, err := removePrefix(ctx, st, v.Bucket, v.Prefix)
	if err != nil {
		return nil, storeError("delete volume "+v.ID(), err)
	}
	d.cfg.Log.Info("volume deleted", "volume", v.ID(), "objects", n)
	return &csipb.DeleteVolumeResponse{}, nil
}

// removePrefix deletes every object under prefix, the marker last (so an
// interrupted delete leaves a volume DeleteVolume can be asked again).
func removePrefix(ctx context.Context, st Store, bucket, prefix string) (int, error) {
	n := 0
	for {
		page, err := st.List(ctx, store.ListRequest{Bucket: bucket, Prefix: prefix, Recursive: true})
		if err != nil {
			return n, err
		}
		var keys []string
		for _, o := range page.Objects {
			if o.Key != prefix {
				keys = append(keys, o.Key)
			}
		}
		if len(keys) == 0 {
			break
		}
		if err := removeKeys(ctx, st, bucket, keys); err != nil {
			return n, err
		}
		n += len(keys)
	}
	return n + 1, removeKeys(ctx, st, bucket, []string{prefix})
}

func removeKeys(ctx context.Context, st Store, bucket string, keys []string) error {
	failed, err := st.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: keys})
	if err != nil {
		return err
	}
	for _, f := range failed {
		if !errors.Is(f.Err, store.ErrNotFound) {
			return f.Err
		}
	}
	return nil
}

// ValidateVolumeCapabilities confirms every mount capability of a volume
// that exists (its bucket, and its prefix when it has one).
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csipb.ValidateVolumeCapabilitiesRequest) (*csipb.ValidateVolumeCapabilitiesResponse, error) {
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	st, _, err := d.storeFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if err := st.StatBucket(ctx, v.Bucket); err != nil {
		return nil, storeError("volume "+v.ID(), err)
	}
	if v.Prefix != "" {
		if found, err := hasObjects(ctx, st, v); err != nil || !found {
			if err == nil {
				err = status.Errorf(codes.NotFound, "volume %s: nothing under %s/%s", v.ID(), v.Bucket, v.Prefix)
			}
			return nil, err
		}
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csipb.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csipb.ValidateVolumeCapabilitiesResponse{Confirmed: &csipb.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters()}}, nil
}

// ControllerExpandVolume records a larger capacity (S3 enforces none, so
// the mount needs no change). A static volume (a bucket or prefix the
// driver did not make) is answered without a record.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csipb.ControllerExpandVolumeRequest) (*csipb.ControllerExpandVolumeResponse, error) {
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity range missing")
	}
	want := req.GetCapacityRange().GetRequiredBytes()
	if limit := req.GetCapacityRange().GetLimitBytes(); want < 0 || (limit > 0 && want > limit) {
		return nil, status.Errorf(codes.OutOfRange, "capacity range %d..%d", want, limit)
	}
	st, _, unlock, err := d.lockedStore(v, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := st.StatBucket(ctx, v.Bucket); err != nil {
		return nil, storeError("volume "+v.ID(), err)
	}
	resp := &csipb.ControllerExpandVolumeResponse{CapacityBytes: want}
	if v.Prefix == "" {
		return resp, nil
	}
	marker, err := st.Stat(ctx, store.ObjectRef{Bucket: v.Bucket, Key: v.Prefix})
	if errors.Is(err, store.ErrNotFound) { // a static prefix
		if found, err := hasObjects(ctx, st, v); err != nil || !found {
			if err == nil {
				err = status.Errorf(codes.NotFound, "volume %s: nothing under %s/%s", v.ID(), v.Bucket, v.Prefix)
			}
			return nil, err
		}
		return resp, nil
	}
	if err != nil {
		return nil, storeError("volume "+v.ID(), err)
	}
	if marker.Meta[metaVolume] == "" {
		return resp, nil
	}
	if got, _ := strconv.ParseInt(marker.Meta[metaCapacity], 10, 64); got >= want {
		resp.CapacityBytes = got
		return resp, nil
	}
	if err := recordCapacity(ctx, st, v, marker.Meta, want); err != nil {
		return nil, storeError("volume "+v.ID(), err)
	}
	d.cfg.Log.Info("volume capacity raised (recorded, not enforced)", "volume", v.ID(), "capacity", want)
	return resp, nil
}

// recordCapacity stores the volume's marker again with a new capacity.
func recordCapacity(ctx context.Context, st Store, v volume, old map[string]string, capacity int64) error {
	meta := map[string]string{}
	for k, val := range old {
		meta[k] = val
	}
	meta[metaCapacity] = strconv.FormatInt(capacity, 10)
	return putMarker(ctx, st, v, meta)
}
