package s3store

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/minio/minio-go/v7"

	"kfs/fs/store"
)

func putOpts(o store.PutOptions) minio.PutObjectOptions {
	po := minio.PutObjectOptions{ContentType: o.ContentType, UserMetadata: o.Meta, UserTags: o.Tags,
		DisableContentSha256: true}
	if o.LockMode != "" {
		po.Mode, po.RetainUntilDate = minio.RetentionMode(o.LockMode), o.LockUntil
	}
	if o.LegalHold != nil {
		po.LegalHold = minio.LegalHoldDisabled
		if *o.LegalHold {
			po.LegalHold = minio.LegalHoldEnabled
		}
	}
	if o.IfMatch != "" {
		po.SetMatchETag(o.IfMatch)
	}
	if o.IfAbsent {
		po.SetMatchETagExcept("*")
	}
	return po
}

// orNow stands in for the modification time upload responses lack.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t
}

func uploaded(key string, u minio.UploadInfo, size int64, o store.PutOptions) store.ObjectInfo {
	return store.ObjectInfo{Key: key, Size: size, ETag: trimETag(u.ETag), LastModified: orNow(u.LastModified),
		ContentType: o.ContentType, Meta: lowerKeys(o.Meta), VersionID: u.VersionID}
}

// Put stores an object of size bytes read from r in one request.
func (s *Store) Put(ctx context.Context, req store.PutRequest) (store.ObjectInfo, error) {
	bucket, key, r, size, opts := req.Bucket, req.Key, req.Body, req.Size, req.Options
	defer s.lm.forget(bucket, key)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	po := putOpts(opts)
	po.DisableMultipart = true
	u, err := s.c.PutObject(ctx, bucket, key, r, size, po)
	if err != nil {
		return store.ObjectInfo{}, mapErr(err, "put "+bucket+"/"+key)
	}
	if u.ETag == "" { // S3 always names what it stored; an answer that does not is not a store's
		return store.ObjectInfo{}, fmt.Errorf("put %s/%s: the answer carries no ETag: %w", bucket, key, store.ErrUnavailable)
	}
	info := uploaded(key, u, size, opts)
	if info.Meta == nil {
		info.Meta = map[string]string{}
	}
	return info, nil
}

// NewUpload starts a multipart upload.
func (s *Store) NewUpload(ctx context.Context, o store.ObjectRef, opts store.PutOptions) (store.UploadRef, error) {
	id, err := s.newUpload(ctx, o.Bucket, o.Key, opts)
	return store.UploadRef{Bucket: o.Bucket, Key: o.Key, ID: id}, err
}

func (s *Store) newUpload(ctx context.Context, bucket, key string, opts store.PutOptions) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	id, err := s.core.NewMultipartUpload(ctx, bucket, key, putOpts(opts))
	if err != nil {
		return "", mapErr(err, "start upload of "+bucket+"/"+key)
	}
	return id, nil
}

// PutPart uploads part num (1-based) of an upload from size bytes of r
// (rewound on a retry).
func (s *Store) PutPart(ctx context.Context, req store.PartRequest) (store.Part, error) {
	bucket, key, uploadID, num, r, size := req.Upload.Bucket, req.Upload.Key, req.Upload.ID, req.Number, req.Body, req.Size
	ctx, cancel := s.bound(ctx)
	defer cancel()
	p, err := s.core.PutObjectPart(ctx, bucket, key, uploadID, num, r, size, minio.PutObjectPartOptions{DisableContentSha256: true})
	if err != nil {
		return store.Part{}, mapErr(err, fmt.Sprintf("upload part %d of %s/%s", num, bucket, key))
	}
	if p.ETag == "" {
		return store.Part{}, fmt.Errorf("upload part %d of %s/%s: the answer carries no ETag: %w", num, bucket, key, store.ErrUnavailable)
	}
	return store.Part{Number: num, ETag: p.ETag}, nil
}

// CopyPart makes part num from n bytes at off of srcKey (same bucket),
// server side, refusing with ErrStale unless srcKey still has srcETag.
func (s *Store) CopyPart(ctx context.Context, req store.CopyPartRequest) (store.Part, error) {
	bucket, key, uploadID, num, srcKey, srcETag, off, n := req.Upload.Bucket, req.Upload.Key, req.Upload.ID, req.Number, req.Src.Key, req.SrcETag, req.Offset, req.Length
	ctx, cancel := s.bound(ctx)
	defer cancel()
	hdr := map[string]string{}
	if srcETag != "" {
		hdr["x-amz-copy-source-if-match"] = srcETag
	}
	p, err := s.core.CopyObjectPart(ctx, bucket, srcKey, bucket, key, uploadID, num, off, n, hdr)
	if err != nil {
		return store.Part{}, mapErr(err, fmt.Sprintf("copy part %d of %s/%s from %s", num, bucket, key, srcKey))
	}
	return store.Part{Number: num, ETag: p.ETag}, nil
}

// CompleteUpload assembles the parts (in order) into the object.
func (s *Store) CompleteUpload(ctx context.Context, ref store.UploadRef, parts []store.Part) (store.ObjectInfo, error) {
	bucket, key, uploadID := ref.Bucket, ref.Key, ref.ID
	defer s.lm.forget(bucket, key)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cps := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cps[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	u, err := s.core.CompleteMultipartUpload(ctx, bucket, key, uploadID, cps, minio.PutObjectOptions{})
	if err != nil {
		err = mapErr(err, "complete upload of "+bucket+"/"+key)
		if errors.Is(err, store.ErrUploadGone) {
			// A retry after an answer that was lost finds the upload gone:
			// if the object is the one these parts make, it was completed.
			if info, ok := s.completedAs(ctx, bucket, key, parts); ok {
				return info, nil
			}
		}
		return store.ObjectInfo{}, err
	}
	if u.ETag == "" {
		return store.ObjectInfo{}, fmt.Errorf("complete upload of %s/%s: the answer carries no ETag: %w", bucket, key, store.ErrUnavailable)
	}
	return store.ObjectInfo{Key: key, ETag: trimETag(u.ETag), LastModified: orNow(u.LastModified), VersionID: u.VersionID}, nil
}

// completedAs says whether bucket/key is the object completing parts
// makes: its ETag is the MD5 of the parts' MD5s followed by the number of
// parts, which S3 and MinIO give a multipart object (not with SSE-KMS or
// SSE-C, whose part ETags are not MD5s: such an upload is reported failed).
func (s *Store) completedAs(ctx context.Context, bucket, key string, parts []store.Part) (store.ObjectInfo, bool) {
	want, ok := multipartETag(parts)
	if !ok {
		return store.ObjectInfo{}, false
	}
	info, err := s.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: key})
	if err != nil || info.ETag != want {
		return store.ObjectInfo{}, false
	}
	return info, true
}

func multipartETag(parts []store.Part) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(trimETag(p.ETag))
		if err != nil || len(b) != md5.Size {
			return "", false
		}
		h.Write(b)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(parts)), len(parts) > 0
}

// AbortUpload discards an upload and its parts.
func (s *Store) AbortUpload(ctx context.Context, u store.UploadRef) error {
	bucket, key, uploadID := u.Bucket, u.Key, u.ID
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := mapErr(s.core.AbortMultipartUpload(ctx, bucket, key, uploadID), "abort upload of "+bucket+"/"+key)
	if errors.Is(err, store.ErrUploadGone) {
		return nil // nothing left to discard
	}
	return err
}

// ListUploads lists the incomplete uploads under prefix.
func (s *Store) ListUploads(ctx context.Context, req store.PrefixRequest) ([]store.Upload, error) {
	bucket, prefix := req.Bucket, req.Prefix
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out []store.Upload
	keyMarker, idMarker := "", ""
	for {
		r, err := s.core.ListMultipartUploads(ctx, bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, mapErr(err, "list uploads in "+bucket)
		}
		for _, u := range r.Uploads {
			out = append(out, store.Upload{Key: u.Key, ID: u.UploadID, Initiated: u.Initiated})
		}
		if !r.IsTruncated {
			return out, nil
		}
		keyMarker, idMarker = r.NextKeyMarker, r.NextUploadIDMarker
	}
}

// Copy copies src to dst server side, within or across buckets and of any
// size: up to 5 GiB in one CopyObject, larger part by part (tags are copied
// too). Conditions refuse with ErrStale.
func (s *Store) Copy(ctx context.Context, req store.CopyRequest) (store.ObjectInfo, error) {
	src, dst, o := req.Src, req.Dst, req.Options
	defer s.lm.forget(dst.Bucket, dst.Key)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("copy %s/%s to %s/%s", src.Bucket, src.Key, dst.Bucket, dst.Key)
	so := minio.CopySrcOptions{Bucket: src.Bucket, Object: src.Key, VersionID: src.VersionID, MatchETag: o.IfMatch,
		NoMatchETag: o.IfNoneMatch, MatchModifiedSince: o.IfModifiedSince, MatchUnmodifiedSince: o.IfUnmodifiedSince}
	do := minio.CopyDestOptions{Bucket: dst.Bucket, Object: dst.Key}
	if o.Replace != nil {
		do.ReplaceMetadata, do.UserMetadata = true, o.Replace.Meta
		do.ContentType = o.Replace.ContentType
		if o.Replace.Tags != nil {
			do.ReplaceTags, do.UserTags = true, o.Replace.Tags
		}
	}
	if o.SrcSizeKnown && o.IfMatch != "" && o.Replace != nil && o.SrcSize <= store.MaxSingleCopy {
		u, err := s.c.CopyObject(ctx, do, so) // no HEAD first: the caller knows the version
		if err != nil {
			return store.ObjectInfo{}, mapErr(err, what)
		}
		meta := lowerKeys(o.Replace.Meta)
		if meta == nil {
			meta = map[string]string{}
		}
		return store.ObjectInfo{Key: dst.Key, Size: o.SrcSize, ETag: trimETag(u.ETag), LastModified: orNow(u.LastModified),
			ContentType: o.Replace.ContentType, Meta: meta, VersionID: u.VersionID}, nil
	}
	st, err := s.c.StatObject(ctx, src.Bucket, src.Key, minio.StatObjectOptions{VersionID: src.VersionID})
	if err != nil {
		return store.ObjectInfo{}, mapErr(err, what)
	}
	u, err := s.copyAnySize(ctx, st, do, so, o.Replace == nil)
	if err != nil {
		return store.ObjectInfo{}, mapErr(err, what)
	}
	info := store.ObjectInfo{Key: dst.Key, Size: st.Size, ETag: trimETag(u.ETag), LastModified: orNow(u.LastModified),
		ContentType: st.ContentType, Meta: lowerKeys(st.UserMetadata), VersionID: u.VersionID}
	if o.Replace != nil {
		info.ContentType, info.Meta = o.Replace.ContentType, lowerKeys(o.Replace.Meta)
	}
	if info.Meta == nil {
		info.Meta = map[string]string{}
	}
	return info, nil
}

// copyAnySize copies the object st describes: in one CopyObject up to
// 5 GiB, else part by part, carrying its metadata (keep) and tags over.
func (s *Store) copyAnySize(ctx context.Context, st minio.ObjectInfo, do minio.CopyDestOptions, so minio.CopySrcOptions, keep bool) (minio.UploadInfo, error) {
	if st.Size <= store.MaxSingleCopy {
		return s.c.CopyObject(ctx, do, so)
	}
	if keep {
		do.ReplaceMetadata, do.UserMetadata, do.ContentType = true, st.UserMetadata, st.ContentType
	}
	if !do.ReplaceTags && st.UserTagCount > 0 {
		t, err := s.c.GetObjectTagging(ctx, so.Bucket, so.Object, minio.GetObjectTaggingOptions{VersionID: so.VersionID})
		if err != nil {
			return minio.UploadInfo{}, err
		}
		do.ReplaceTags, do.UserTags = true, t.ToMap()
	}
	return s.c.ComposeObject(ctx, do, so)
}

// Compose concatenates srcs into dst server side. Every source but the
// last must be at least 5 MiB (S3's part minimum).
func (s *Store) Compose(ctx context.Context, req store.ComposeRequest) (store.ObjectInfo, error) {
	dst, srcs, opts := req.Dst, req.Srcs, req.Options
	defer s.lm.forget(dst.Bucket, dst.Key)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	so := make([]minio.CopySrcOptions, len(srcs))
	for i, r := range srcs {
		so[i] = minio.CopySrcOptions{Bucket: r.Bucket, Object: r.Key, VersionID: r.VersionID}
	}
	do := minio.CopyDestOptions{Bucket: dst.Bucket, Object: dst.Key}
	if opts != nil {
		do.ReplaceMetadata, do.UserMetadata, do.ContentType = true, maps.Clone(opts.Meta), opts.ContentType
		if opts.ContentType != "" {
			// minio-go's multipart compose drops ContentType; a standard
			// header among the metadata is sent as itself.
			if do.UserMetadata == nil {
				do.UserMetadata = map[string]string{}
			}
			do.UserMetadata["Content-Type"] = opts.ContentType
		}
	}
	if _, err := s.c.ComposeObject(ctx, do, so...); err != nil {
		return store.ObjectInfo{}, mapErr(err, "compose "+dst.Bucket+"/"+dst.Key)
	}
	return s.Stat(ctx, dst)
}

// Remove deletes one object (or version); removing a missing object is
// not an error.
func (s *Store) Remove(ctx context.Context, o store.ObjectRef) error {
	defer s.lm.forget(o.Bucket, o.Key)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return mapErr(s.c.RemoveObject(ctx, o.Bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID}), "remove "+o.Bucket+"/"+o.Key)
}

// RemoveMany deletes keys in batches of up to 1,000, reporting each key
// left in place.
func (s *Store) RemoveMany(ctx context.Context, req store.RemoveManyRequest) ([]store.KeyError, error) {
	bucket, keys := req.Bucket, req.Keys
	defer s.lm.forget(bucket, keys...)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	var failed []store.KeyError
	for e := range s.c.RemoveObjects(ctx, bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			failed = append(failed, store.KeyError{Key: e.ObjectName, Err: mapErr(e.Err, "remove "+bucket+"/"+e.ObjectName)})
		}
	}
	if err := ctx.Err(); err != nil {
		return failed, err
	}
	return failed, nil
}
