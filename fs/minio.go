package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// MinioStore adapts a minio-go client to Store. It is the only file of this
// package that imports minio-go; SDK errors become sentinels here.
type MinioStore struct {
	core minio.Core
	meta *metaLister // nil: listings never carry metadata
}

// NewMinioStore wraps a configured client.
func NewMinioStore(c *minio.Client) *MinioStore { return &MinioStore{core: minio.Core{Client: c}} }

var _ Store = (*MinioStore)(nil)

func (s *MinioStore) ListBuckets(ctx context.Context) ([]BucketInfo, error) {
	bs, err := s.core.ListBuckets(ctx)
	if err != nil {
		return nil, mapErr(err, "list buckets")
	}
	out := make([]BucketInfo, len(bs))
	for i, b := range bs {
		out[i] = BucketInfo{Name: b.Name, Created: b.CreationDate}
	}
	return out, nil
}

func (s *MinioStore) StatBucket(ctx context.Context, bucket string) error {
	ok, err := s.core.BucketExists(ctx, bucket)
	if err != nil {
		return mapErr(err, bucket)
	}
	if !ok {
		return fmt.Errorf("bucket %s: %w", bucket, os.ErrNotExist)
	}
	return nil
}

func (s *MinioStore) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	oi, err := s.core.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, mapErr(err, bucket+"/"+key)
	}
	return ObjectInfo{Key: oi.Key, Size: oi.Size, ETag: strings.Trim(oi.ETag, `"`), LastModified: oi.LastModified,
		ContentType: oi.ContentType, Meta: lowerKeys(oi.UserMetadata), VersionID: oi.VersionID, StorageClass: oi.StorageClass}, nil
}

func (s *MinioStore) List(ctx context.Context, bucket, prefix, token string, maxKeys int, withMeta bool) (ListPage, error) {
	if err := ctx.Err(); err != nil {
		return ListPage{}, err
	}
	if withMeta && s.meta != nil {
		return s.meta.list(ctx, bucket, prefix, token, maxKeys)
	}
	// Core.ListObjectsV2 takes no context; the HTTP client's timeouts bound it.
	r, err := s.core.ListObjectsV2(bucket, prefix, "", token, "/", maxKeys)
	if err != nil {
		return ListPage{}, mapErr(err, bucket+"/"+prefix)
	}
	p := ListPage{Objects: make([]ObjectInfo, 0, len(r.Contents)), Prefixes: make([]string, 0, len(r.CommonPrefixes))}
	for _, o := range r.Contents {
		p.Objects = append(p.Objects, ObjectInfo{Key: o.Key, Size: o.Size, ETag: strings.Trim(o.ETag, `"`), LastModified: o.LastModified})
	}
	for _, cp := range r.CommonPrefixes {
		p.Prefixes = append(p.Prefixes, cp.Prefix)
	}
	if r.IsTruncated {
		p.NextToken = r.NextContinuationToken
	}
	return p, nil
}

func (s *MinioStore) ReadAt(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, err
	}
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return 0, err
		}
	}
	body, _, _, err := s.core.GetObject(ctx, bucket, key, opts)
	if err != nil {
		err = mapErr(err, bucket+"/"+key)
		if errors.Is(err, io.EOF) {
			return 0, nil // off is at or past the end
		}
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil // the object ends inside the range
	}
	if err != nil {
		return n, fmt.Errorf("read %s/%s at %d: %w", bucket, key, off, err)
	}
	return n, nil
}

// mapErr turns an SDK error into one wrapping a sentinel the fs layer maps
// to an errno. The S3 code stays in the message for the log.
func mapErr(err error, what string) error {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var sentinel error
	switch {
	case er.Code == "NoSuchKey" || er.Code == "NoSuchBucket" || er.Code == "NotFound" || er.StatusCode == http.StatusNotFound:
		sentinel = os.ErrNotExist
	case er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed:
		sentinel = ErrStale
	case er.Code == "InvalidRange" || er.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s: %s: %w", what, er.Code, io.EOF)
	case er.Code == "XMinioAdminBucketQuotaExceeded" || er.Code == "QuotaExceeded":
		sentinel = syscall.EDQUOT
	case er.Code == "EntityTooLarge":
		sentinel = syscall.EFBIG
	case strings.Contains(er.Message, "missing ObjectLockConfiguration") || strings.Contains(er.Message, "Object Lock configuration does not exist"):
		sentinel = errors.ErrUnsupported
	case er.Code == "ObjectLocked" || strings.Contains(er.Message, "WORM protected") || strings.Contains(er.Message, "object lock"):
		sentinel = syscall.EPERM
	case er.Code == "AccessDenied" || er.Code == "InvalidAccessKeyId" || er.Code == "SignatureDoesNotMatch" || er.StatusCode == http.StatusForbidden:
		sentinel = os.ErrPermission
	case er.Code == "NotImplemented" || er.StatusCode == http.StatusNotImplemented:
		sentinel = errors.ErrUnsupported
	default:
		return fmt.Errorf("%s: S3 %s (HTTP %d): %s", what, er.Code, er.StatusCode, er.Message)
	}
	return fmt.Errorf("%s: S3 %s: %w", what, er.Code, sentinel)
}
