package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"kfs/fs/store"
)

// Bucket management, restoring deleted files, and naming objects of this
// mount for another mount's socket (server-side work across mounts of one
// endpoint).

// MakeBucketRequest makes a bucket.
type MakeBucketRequest struct {
	Path       string `json:"path"` // DIR/NAME: DIR is the root of an all-buckets mount
	ObjectLock bool   `json:"object_lock,omitempty"`
	Versioning bool   `json:"versioning,omitempty"`
	Region     string `json:"region,omitempty"`
}

// RemoveBucketRequest removes an empty bucket.
type RemoveBucketRequest struct {
	Path string `json:"path"`
}

// RestoreRequest brings back a deleted file of a versioned bucket: the
// latest version that is not a delete marker, or the one named.
type RestoreRequest struct {
	Path      string `json:"path"`
	VersionID string `json:"version_id,omitempty"`
}

// ResolveRequest asks which object a path of this mount is.
type ResolveRequest struct {
	Path  string `json:"path"`
	Write bool   `json:"write,omitempty"` // the caller means to change it: checked as a change, not a read
}

// ResolveResponse names the object and the endpoint holding it.
type ResolveResponse struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	Endpoint string `json:"endpoint"`
}

// bucketPath maps DIR/NAME (DIR the root of an all-buckets mount) to NAME.
func (s *Server) bucketPath(p string) (string, error) {
	b, k, err := s.Resolve(p)
	if err != nil {
		return "", err
	}
	if s.cfg.Bucket != "" || k != "" {
		return "", badRequest("%s: name a bucket in the root of an all-buckets mount (kfs mount MOUNTPOINT), e.g. /mnt/s3/new-bucket", p)
	}
	return b, nil
}

func (s *Server) makeBucket(ctx context.Context, body []byte) (any, error) {
	var req MakeBucketRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := s.ownerOnly(ctx, "mb"); err != nil {
		return nil, err
	}
	name, err := s.bucketPath(req.Path)
	if err != nil {
		return nil, err
	}
	if err := store.CheckBucketName(name); err != nil {
		return nil, badRequest("%v", err)
	}
	a := s.be
	if err := a.MakeBucket(ctx, name, store.MakeBucketOptions{Region: req.Region, ObjectLock: req.ObjectLock, Versioning: req.Versioning}); err != nil {
		return nil, err
	}
	s.cfg.Changed(name, "")
	s.changed(ctx, "mb", "bucket", name)
	return Bucket{Name: name}, nil
}

func (s *Server) removeBucket(ctx context.Context, body []byte) (any, error) {
	var req RemoveBucketRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := s.ownerOnly(ctx, "rb"); err != nil {
		return nil, err
	}
	name, err := s.bucketPath(req.Path)
	if err != nil {
		return nil, err
	}
	a := s.be
	if err := a.RemoveBucket(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotEmpty) {
			return nil, httpError{409, fmt.Sprintf("bucket %s is not empty (kfs rm -r %s first)", name, req.Path)}
		}
		return nil, err
	}
	s.cfg.Changed(name, "")
	s.changed(ctx, "rb", "bucket", name)
	return Bucket{Name: name}, nil
}

func (s *Server) restore(ctx context.Context, body []byte) (any, error) {
	var req RestoreRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	o, err := s.resolveObject(req.Path)
	if err != nil {
		return nil, err
	}
	if err := s.allowChange(ctx, "restore", req.Path); err != nil {
		return nil, err
	}
	vs, err := s.be.ListVersions(ctx, store.PrefixRequest{Bucket: o.Bucket, Prefix: o.Key, Exact: true})
	if err != nil {
		return nil, err
	}
	if req.VersionID != "" {
		src := o
		src.VersionID = req.VersionID
		info, err := s.be.Copy(ctx, store.CopyRequest{Src: src, Dst: o})
		if err != nil {
			return nil, err
		}
		s.cfg.Changed(o.Bucket, o.Key)
		s.changed(ctx, "restore", "path", req.Path, "version_id", req.VersionID)
		return statOf(o.Bucket, info), nil
	}
	// Remove the delete markers above the newest real version.
	var markers []store.Version
	for _, v := range vs {
		if !v.DeleteMarker {
			break
		}
		markers = append(markers, v)
	}
	if len(markers) == len(vs) {
		return nil, fmt.Errorf("%s: no earlier version to restore (is versioning enabled? kfs versions %s): %w", req.Path, req.Path, store.ErrNotFound)
	}
	if len(markers) == 0 {
		return nil, badRequest("%s is not deleted (its latest version is current); to bring back an older one give --version-id", req.Path)
	}
	for _, m := range markers {
		if err := s.be.Remove(ctx, store.ObjectRef{Bucket: o.Bucket, Key: o.Key, VersionID: m.VersionID}); err != nil {
			return nil, err
		}
	}
	s.cfg.Changed(o.Bucket, o.Key)
	s.changed(ctx, "restore", "path", req.Path, "delete_markers_removed", len(markers))
	return s.statAfter(ctx, o, store.ObjectInfo{})
}

func (s *Server) resolve(ctx context.Context, body []byte) (any, error) {
	var req ResolveRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	b, k, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	if req.Write {
		err = s.allowChange(ctx, "resolve for a change", req.Path)
	} else {
		err = s.allowRead(ctx, "resolve", req.Path)
	}
	if err != nil {
		return nil, err
	}
	return ResolveResponse{Bucket: b, Key: k, Endpoint: s.cfg.Endpoint}, nil
}

// target is an object named by a path of this mount, or by bucket and key
// for a path another mount of the same endpoint resolved.
func (s *Server) target(path, bucket, key string) (store.ObjectRef, error) {
	if bucket == "" {
		return s.resolveObject(path)
	}
	if err := store.CheckBucketName(bucket); err != nil || key == "" || strings.HasPrefix(key, "/") {
		return store.ObjectRef{}, badRequest("bad object %q/%q", bucket, key)
	}
	return store.ObjectRef{Bucket: bucket, Key: key}, nil
}
