package fs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// Write-side methods of the MinIO adapter.

func putOpts(o PutOptions) minio.PutObjectOptions {
	po := minio.PutObjectOptions{ContentType: o.ContentType, UserMetadata: o.Meta, UserTags: o.Tags,
		DisableContentSha256: true, SendContentMd5: false}
	if o.LockMode != "" {
		po.Mode, po.RetainUntilDate = minio.RetentionMode(o.LockMode), o.LockUntil
	}
	if o.LegalHold != nil {
		po.LegalHold = minio.LegalHoldDisabled
		if *o.LegalHold {
			po.LegalHold = minio.LegalHoldEnabled
		}
	}
	return po
}

func fromUpload(bucket string, u minio.UploadInfo, size int64, o PutOptions) ObjectInfo {
	return ObjectInfo{Key: u.Key, Size: size, ETag: strings.Trim(u.ETag, `"`), LastModified: orNow(u.LastModified),
		ContentType: o.ContentType, Meta: lowerKeys(o.Meta)}
}

// orNow stands in for the modification time the upload responses lack.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t
}

func (s *MinioStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	po := putOpts(opts)
	po.DisableMultipart = true
	u, err := s.core.Client.PutObject(ctx, bucket, key, r, size, po)
	if err != nil {
		return ObjectInfo{}, mapErr(err, "put "+bucket+"/"+key)
	}
	return fromUpload(bucket, u, size, opts), nil
}

func (s *MinioStore) NewUpload(ctx context.Context, bucket, key string, opts PutOptions) (string, error) {
	id, err := s.core.NewMultipartUpload(ctx, bucket, key, putOpts(opts))
	if err != nil {
		return "", mapErr(err, "start upload of "+bucket+"/"+key)
	}
	return id, nil
}

func (s *MinioStore) PutPart(ctx context.Context, bucket, key, uploadID string, num int, data []byte) (Part, error) {
	p, err := s.core.PutObjectPart(ctx, bucket, key, uploadID, num, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectPartOptions{DisableContentSha256: true})
	if err != nil {
		return Part{}, mapErr(err, fmt.Sprintf("upload part %d of %s/%s", num, bucket, key))
	}
	return Part{Number: num, ETag: p.ETag}, nil
}

func (s *MinioStore) CopyPart(ctx context.Context, bucket, key, uploadID string, num int, srcKey, srcETag string, off, n int64) (Part, error) {
	hdr := map[string]string{}
	if srcETag != "" {
		hdr["x-amz-copy-source-if-match"] = srcETag
	}
	p, err := s.core.CopyObjectPart(ctx, bucket, srcKey, bucket, key, uploadID, num, off, n, hdr)
	if err != nil {
		return Part{}, mapErr(err, fmt.Sprintf("copy part %d of %s/%s from %s", num, bucket, key, srcKey))
	}
	return Part{Number: num, ETag: p.ETag}, nil
}

func (s *MinioStore) CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []Part) (ObjectInfo, error) {
	cps := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cps[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	u, err := s.core.CompleteMultipartUpload(ctx, bucket, key, uploadID, cps, minio.PutObjectOptions{})
	if err != nil {
		return ObjectInfo{}, mapErr(err, "complete upload of "+bucket+"/"+key)
	}
	return ObjectInfo{Key: key, ETag: strings.Trim(u.ETag, `"`), LastModified: orNow(u.LastModified)}, nil
}

func (s *MinioStore) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	if err := s.core.AbortMultipartUpload(ctx, bucket, key, uploadID); err != nil {
		return mapErr(err, "abort upload of "+bucket+"/"+key)
	}
	return nil
}

func (s *MinioStore) ListUploads(ctx context.Context, bucket, prefix string) ([]Upload, error) {
	var out []Upload
	keyMarker, idMarker := "", ""
	for {
		r, err := s.core.ListMultipartUploads(ctx, bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, mapErr(err, "list uploads in "+bucket)
		}
		for _, u := range r.Uploads {
			out = append(out, Upload{Key: u.Key, ID: u.UploadID, Initiated: u.Initiated})
		}
		if !r.IsTruncated {
			return out, nil
		}
		keyMarker, idMarker = r.NextKeyMarker, r.NextUploadIDMarker
	}
}

const maxSingleCopy = 5 << 30

func (s *MinioStore) Copy(ctx context.Context, bucket, srcKey, srcETag, dstKey string, opts *PutOptions) (ObjectInfo, error) {
	src := minio.CopySrcOptions{Bucket: bucket, Object: srcKey, MatchETag: srcETag}
	dst := minio.CopyDestOptions{Bucket: bucket, Object: dstKey}
	if opts != nil {
		dst.ReplaceMetadata, dst.UserMetadata, dst.ContentType = true, opts.Meta, opts.ContentType
	}
	st, err := s.core.StatObject(ctx, bucket, srcKey, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, mapErr(err, "copy "+bucket+"/"+srcKey)
	}
	var u minio.UploadInfo
	if st.Size > maxSingleCopy {
		u, err = s.core.Client.ComposeObject(ctx, dst, src)
	} else {
		u, err = s.core.Client.CopyObject(ctx, dst, src)
	}
	if err != nil {
		return ObjectInfo{}, mapErr(err, fmt.Sprintf("copy %s/%s to %s", bucket, srcKey, dstKey))
	}
	info := ObjectInfo{Key: dstKey, Size: st.Size, ETag: strings.Trim(u.ETag, `"`), LastModified: orNow(u.LastModified),
		ContentType: st.ContentType, Meta: lowerKeys(st.UserMetadata)}
	if opts != nil {
		info.ContentType, info.Meta = opts.ContentType, lowerKeys(opts.Meta)
	}
	return info, nil
}

func (s *MinioStore) Remove(ctx context.Context, bucket, key string) error {
	if err := s.core.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return mapErr(err, "remove "+bucket+"/"+key)
	}
	return nil
}

func (s *MinioStore) RemoveMany(ctx context.Context, bucket string, keys []string) error {
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	var first error
	for e := range s.core.RemoveObjects(ctx, bucket, ch, minio.RemoveObjectsOptions{}) {
		if first == nil && e.Err != nil {
			first = mapErr(e.Err, "remove "+bucket+"/"+e.ObjectName)
		}
	}
	return first
}

func lowerKeys(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))] = v
	}
	return out
}

func (s *MinioStore) GetTags(ctx context.Context, bucket, key string) (map[string]string, error) {
	t, err := s.core.Client.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{})
	if err != nil {
		return nil, mapErr(err, "get tags of "+bucket+"/"+key)
	}
	m := t.ToMap()
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

func (s *MinioStore) PutTags(ctx context.Context, bucket, key string, m map[string]string) error {
	var err error
	if len(m) == 0 {
		err = s.core.Client.RemoveObjectTagging(ctx, bucket, key, minio.RemoveObjectTaggingOptions{})
	} else {
		t, terr := tags.MapToObjectTags(m)
		if terr != nil {
			return fmt.Errorf("tags of %s/%s: %v: %w", bucket, key, terr, syscall.EINVAL)
		}
		err = s.core.Client.PutObjectTagging(ctx, bucket, key, t, minio.PutObjectTaggingOptions{})
	}
	if err != nil {
		return mapErr(err, "set tags of "+bucket+"/"+key)
	}
	return nil
}
