package s3store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"

	"kfs/fs/store"
)

// GetTags returns an object's tag set (empty, not nil, when untagged).
func (s *Store) GetTags(ctx context.Context, ref store.ObjectRef) (map[string]string, error) {
	bucket, key := ref.Bucket, ref.Key
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := s.c.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{VersionID: ref.VersionID})
	if err != nil {
		return nil, mapErr(err, "tags of "+bucket+"/"+key)
	}
	m := t.ToMap()
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// PutTags replaces an object's tag set; an empty set removes it.
func (s *Store) PutTags(ctx context.Context, ref store.ObjectRef, m map[string]string) error {
	bucket, key := ref.Bucket, ref.Key
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(m) == 0 {
		return mapErr(s.c.RemoveObjectTagging(ctx, bucket, key, minio.RemoveObjectTaggingOptions{VersionID: ref.VersionID}), "remove tags of "+bucket+"/"+key)
	}
	t, err := tags.MapToObjectTags(m)
	if err != nil {
		return fmt.Errorf("tags of %s/%s: %v: %w", bucket, key, err, store.ErrInvalid)
	}
	return mapErr(s.c.PutObjectTagging(ctx, bucket, key, t, minio.PutObjectTaggingOptions{VersionID: ref.VersionID}), "set tags of "+bucket+"/"+key)
}

// GetRetention answers an object's retention ("" Mode when none). On a
// bucket without object lock it wraps ErrNoObjectLock.
func (s *Store) GetRetention(ctx context.Context, o store.ObjectRef) (store.Retention, error) {
	mode, until, err := s.getRetention(ctx, o)
	return store.Retention{Mode: mode, Until: until}, err
}

func (s *Store) getRetention(ctx context.Context, o store.ObjectRef) (string, time.Time, error) {
	bucket, key := o.Bucket, o.Key
	ctx, cancel := s.bound(ctx)
	defer cancel()
	mode, until, err := s.c.GetObjectRetention(ctx, bucket, key, o.VersionID)
	if err != nil {
		if noneOnObject(err) {
			return "", time.Time{}, nil
		}
		err = s.lockErr(ctx, bucket, mapErr(err, "retention of "+bucket+"/"+key))
		if errors.Is(err, store.ErrNoObjectLock) {
			// SeaweedFS says so of an object without retention in a
			// lock bucket: the bucket's configuration tells.
			if l, lerr := s.GetObjectLock(ctx, bucket); lerr == nil && l.Enabled {
				return "", time.Time{}, nil
			}
		}
		return "", time.Time{}, err
	}
	if mode == nil || until == nil {
		return "", time.Time{}, nil
	}
	return string(*mode), until.UTC(), nil
}

// noneOnObject is S3's answer for an object of a lock bucket that has no
// retention or legal hold (a bucket without lock answers InvalidRequest).
func noneOnObject(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == "NoSuchObjectLockConfiguration" || er.Code == "NoSuchObjectLegalHold") // the second: SeaweedFS
}

// PutRetention sets retention; mode "" clears it. bypass lets GOVERNANCE
// retention be shortened or cleared.
func (s *Store) PutRetention(ctx context.Context, req store.RetentionRequest) error {
	bucket, key, mode, until, bypass := req.Bucket, req.Key, req.Mode, req.Until, req.Bypass
	ctx, cancel := s.bound(ctx)
	defer cancel()
	opts := minio.PutObjectRetentionOptions{GovernanceBypass: bypass, VersionID: req.VersionID}
	if mode != "" {
		m := minio.RetentionMode(mode)
		u := until.UTC()
		opts.Mode, opts.RetainUntilDate = &m, &u
	}
	return s.lockErr(ctx, bucket, mapErr(s.c.PutObjectRetention(ctx, bucket, key, opts), "set retention of "+bucket+"/"+key))
}

// GetLegalHold reports whether a legal hold is on.
func (s *Store) GetLegalHold(ctx context.Context, ref store.ObjectRef) (bool, error) {
	bucket, key := ref.Bucket, ref.Key
	ctx, cancel := s.bound(ctx)
	defer cancel()
	st, err := s.c.GetObjectLegalHold(ctx, bucket, key, minio.GetObjectLegalHoldOptions{VersionID: ref.VersionID})
	if err != nil {
		if noneOnObject(err) {
			return false, nil
		}
		return false, s.lockErr(ctx, bucket, mapErr(err, "legal hold of "+bucket+"/"+key))
	}
	return st != nil && *st == minio.LegalHoldEnabled, nil
}

// PutLegalHold sets or clears the legal hold.
func (s *Store) PutLegalHold(ctx context.Context, ref store.ObjectRef, on bool) error {
	bucket, key := ref.Bucket, ref.Key
	ctx, cancel := s.bound(ctx)
	defer cancel()
	st := minio.LegalHoldDisabled
	if on {
		st = minio.LegalHoldEnabled
	}
	return s.lockErr(ctx, bucket, mapErr(s.c.PutObjectLegalHold(ctx, bucket, key, minio.PutObjectLegalHoldOptions{Status: &st, VersionID: ref.VersionID}), "set legal hold of "+bucket+"/"+key))
}

// lockErr names a refusal of a retention or legal-hold call that the
// server gave as a plain InvalidRequest (SeaweedFS says only "Invalid
// Request"): when the bucket has no object lock, that is the cause.
func (s *Store) lockErr(ctx context.Context, bucket string, err error) error {
	if !errors.Is(err, store.ErrInvalid) {
		return err
	}
	if l, lerr := s.GetObjectLock(ctx, bucket); lerr == nil && !l.Enabled {
		return fmt.Errorf("%v: %w", err, store.ErrNoObjectLock)
	}
	return err
}
