package s3store

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/minio/minio-go/v7/pkg/sse"
	"github.com/minio/minio-go/v7/pkg/tags"

	"kfs/fs/store"
)

// Bucket settings. "Not configured" is a zero value and no error; S3's
// documents (lifecycle, notification) travel as their S3 XML.

// notConfigured says whether err is S3's "this setting is not set".
func notConfigured(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	switch er.Code {
	case "ServerSideEncryptionConfigurationNotFoundError", "NoSuchLifecycleConfiguration", "NoSuchTagSet",
		"ObjectLockConfigurationNotFoundError", "NoSuchBucketPolicy":
		return true
	}
	return false
}

// GetVersioning returns Enabled, Suspended or "" (never enabled).
func (s *Store) GetVersioning(ctx context.Context, bucket string) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.c.GetBucketVersioning(ctx, bucket)
	if err != nil {
		return "", mapErr(err, "versioning of bucket "+bucket)
	}
	return v.Status, nil
}

// SetVersioning sets Enabled or Suspended.
func (s *Store) SetVersioning(ctx context.Context, bucket, status string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	switch status {
	case "Enabled":
		err = s.c.EnableVersioning(ctx, bucket)
	case "Suspended":
		err = s.c.SuspendVersioning(ctx, bucket)
	default:
		return fmt.Errorf("versioning %q: want Enabled or Suspended: %w", status, store.ErrInvalid)
	}
	return mapErr(err, "set versioning of bucket "+bucket)
}

// GetEncryption returns the default encryption (zero when none).
func (s *Store) GetEncryption(ctx context.Context, bucket string) (store.Encryption, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cfg, err := s.c.GetBucketEncryption(ctx, bucket)
	if err != nil {
		if notConfigured(err) {
			return store.Encryption{}, nil
		}
		return store.Encryption{}, mapErr(err, "encryption of bucket "+bucket)
	}
	if cfg == nil || len(cfg.Rules) == 0 {
		return store.Encryption{}, nil
	}
	a := cfg.Rules[0].Apply
	return store.Encryption{Algorithm: a.SSEAlgorithm, KMSKeyID: a.KmsMasterKeyID}, nil
}

// SetEncryption sets the default encryption; a zero value removes it.
func (s *Store) SetEncryption(ctx context.Context, bucket string, e store.Encryption) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	switch e.Algorithm {
	case "":
		err = s.c.RemoveBucketEncryption(ctx, bucket)
	case "AES256":
		err = s.c.SetBucketEncryption(ctx, bucket, sse.NewConfigurationSSES3())
	case "aws:kms":
		err = s.c.SetBucketEncryption(ctx, bucket, sse.NewConfigurationSSEKMS(e.KMSKeyID))
	default:
		return fmt.Errorf("encryption %q: %w", e.Algorithm, store.ErrInvalid)
	}
	return mapErr(err, "set encryption of bucket "+bucket)
}

// GetLifecycle returns the lifecycle configuration as S3 XML (nil: none).
func (s *Store) GetLifecycle(ctx context.Context, bucket string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cfg, err := s.c.GetBucketLifecycle(ctx, bucket)
	if err != nil {
		if notConfigured(err) {
			return nil, nil
		}
		return nil, mapErr(err, "lifecycle of bucket "+bucket)
	}
	if cfg.Empty() {
		return nil, nil
	}
	return xml.Marshal(cfg)
}

// SetLifecycle replaces the lifecycle configuration (S3 XML); nil removes it.
func (s *Store) SetLifecycle(ctx context.Context, bucket string, doc []byte) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cfg := lifecycle.NewConfiguration()
	if doc != nil {
		if err := xml.Unmarshal(doc, cfg); err != nil {
			return fmt.Errorf("lifecycle: %v: %w", err, store.ErrInvalid)
		}
	}
	return mapErr(s.c.SetBucketLifecycle(ctx, bucket, cfg), "set lifecycle of bucket "+bucket)
}

// GetBucketTags returns the bucket's tags (empty when none).
func (s *Store) GetBucketTags(ctx context.Context, bucket string) (map[string]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := s.c.GetBucketTagging(ctx, bucket)
	if err != nil {
		if notConfigured(err) {
			return map[string]string{}, nil
		}
		return nil, mapErr(err, "tags of bucket "+bucket)
	}
	return t.ToMap(), nil
}

// SetBucketTags replaces the bucket's tags; an empty set removes them.
func (s *Store) SetBucketTags(ctx context.Context, bucket string, m map[string]string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(m) == 0 {
		return mapErr(s.c.RemoveBucketTagging(ctx, bucket), "remove tags of bucket "+bucket)
	}
	t, err := tags.NewTags(m, false)
	if err != nil {
		return fmt.Errorf("bucket tags: %v: %w", err, store.ErrInvalid)
	}
	return mapErr(s.c.SetBucketTagging(ctx, bucket, t), "set tags of bucket "+bucket)
}

// GetObjectLock returns the object lock configuration (zero: none).
func (s *Store) GetObjectLock(ctx context.Context, bucket string) (store.ObjectLock, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	enabled, mode, validity, unit, err := s.c.GetObjectLockConfig(ctx, bucket)
	if err != nil {
		if notConfigured(err) {
			return store.ObjectLock{}, nil
		}
		return store.ObjectLock{}, mapErr(err, "object lock of bucket "+bucket)
	}
	l := store.ObjectLock{Enabled: enabled == "Enabled"}
	if mode != nil && validity != nil && unit != nil {
		l.Mode = string(*mode)
		if *unit == minio.Years {
			l.Years = int(*validity)
		} else {
			l.Days = int(*validity)
		}
	}
	return l, nil
}

// SetObjectLock sets (Mode non-empty) or clears the default retention of
// a bucket made with object lock.
func (s *Store) SetObjectLock(ctx context.Context, bucket string, l store.ObjectLock) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	if l.Mode == "" {
		err = s.c.SetObjectLockConfig(ctx, bucket, nil, nil, nil)
	} else {
		mode := minio.RetentionMode(l.Mode)
		v, u := uint(l.Days), minio.Days
		if l.Years > 0 {
			v, u = uint(l.Years), minio.Years
		}
		err = s.c.SetObjectLockConfig(ctx, bucket, &mode, &v, &u)
	}
	return mapErr(err, "set object lock of bucket "+bucket)
}

// GetNotification returns the notification configuration as S3 XML (nil: none).
func (s *Store) GetNotification(ctx context.Context, bucket string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cfg, err := s.c.GetBucketNotification(ctx, bucket)
	if err != nil {
		return nil, mapErr(err, "notification of bucket "+bucket)
	}
	if len(cfg.QueueConfigs)+len(cfg.TopicConfigs)+len(cfg.LambdaConfigs) == 0 {
		return nil, nil
	}
	return xml.Marshal(cfg)
}

// SetNotification replaces the notification configuration (S3 XML); nil
// removes every target.
func (s *Store) SetNotification(ctx context.Context, bucket string, doc []byte) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if doc == nil {
		return mapErr(s.c.RemoveAllBucketNotification(ctx, bucket), "remove notification of bucket "+bucket)
	}
	var cfg notification.Configuration
	if err := xml.Unmarshal(doc, &cfg); err != nil {
		return fmt.Errorf("notification: %v: %w", err, store.ErrInvalid)
	}
	return mapErr(s.c.SetBucketNotification(ctx, bucket, cfg), "set notification of bucket "+bucket)
}

// GetPolicy returns the bucket policy JSON ("" when none).
func (s *Store) GetPolicy(ctx context.Context, bucket string) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	p, err := s.c.GetBucketPolicy(ctx, bucket)
	if err != nil {
		if notConfigured(err) {
			return "", nil
		}
		return "", mapErr(err, "policy of bucket "+bucket)
	}
	return p, nil
}

// SetPolicy replaces the bucket policy; "" deletes it.
func (s *Store) SetPolicy(ctx context.Context, bucket, policy string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return mapErr(s.c.SetBucketPolicy(ctx, bucket, policy), "set policy of bucket "+bucket)
}
