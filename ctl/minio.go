package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// MinioBackend serves the socket with a minio-go client (the only file of
// this package that imports minio-go).
type MinioBackend struct{ C *minio.Client }

var _ Backend = MinioBackend{}

func (b MinioBackend) Presign(ctx context.Context, method, bucket, key string, expires time.Duration, params url.Values) (string, error) {
	u, err := b.C.Presign(ctx, method, bucket, key, expires, params)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func (b MinioBackend) Stat(ctx context.Context, bucket, key, versionID string) (ObjectStat, error) {
	oi, err := b.C.StatObject(ctx, bucket, key, minio.StatObjectOptions{VersionID: versionID})
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			return ObjectStat{}, fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
		}
		return ObjectStat{}, err
	}
	st := ObjectStat{Bucket: bucket, Key: key, Size: oi.Size, ETag: strings.Trim(oi.ETag, `"`), VersionID: oi.VersionID,
		LastModified: oi.LastModified, ContentType: oi.ContentType, Metadata: map[string]string(oi.UserMetadata),
		TagCount: oi.UserTagCount, StorageClass: oi.StorageClass}
	if m := oi.Metadata.Get("X-Amz-Object-Lock-Mode"); m != "" {
		st.LockMode = m
		if t, err := time.Parse(time.RFC3339, oi.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date")); err == nil {
			st.LockUntil = &t
		}
	}
	st.LegalHold = oi.Metadata.Get("X-Amz-Object-Lock-Legal-Hold")
	return st, nil
}

func (b MinioBackend) Buckets(ctx context.Context) ([]Bucket, error) {
	bs, err := b.C.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Bucket, len(bs))
	for i, x := range bs {
		out[i] = Bucket{Name: x.Name, Created: x.CreationDate}
	}
	return out, nil
}

// ErrNotFound is a missing object or version.
var ErrNotFound = errors.New("not found")
