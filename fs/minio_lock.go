package fs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
	"github.com/minio/minio-go/v7/pkg/sse"
	"github.com/minio/minio-go/v7/pkg/tags"

	"kfs/xattrs"
)

// Object lock and bucket settings of the MinIO adapter.

func (s *MinioStore) GetRetention(ctx context.Context, bucket, key string) (string, time.Time, error) {
	mode, until, err := s.core.Client.GetObjectRetention(ctx, bucket, key, "")
	if err != nil {
		if er := minio.ToErrorResponse(err); er.Code == "NoSuchObjectLockConfiguration" {
			return "", time.Time{}, nil
		}
		return "", time.Time{}, mapErr(err, "retention of "+bucket+"/"+key)
	}
	if mode == nil || until == nil {
		return "", time.Time{}, nil
	}
	return string(*mode), until.UTC(), nil
}

func (s *MinioStore) PutRetention(ctx context.Context, bucket, key, mode string, until time.Time, bypass bool) error {
	opts := minio.PutObjectRetentionOptions{GovernanceBypass: bypass}
	if mode != "" {
		m := minio.RetentionMode(mode)
		u := until.UTC()
		opts.Mode, opts.RetainUntilDate = &m, &u
	}
	if err := s.core.Client.PutObjectRetention(ctx, bucket, key, opts); err != nil {
		return mapErr(err, "set retention of "+bucket+"/"+key)
	}
	return nil
}

func (s *MinioStore) GetLegalHold(ctx context.Context, bucket, key string) (bool, error) {
	st, err := s.core.Client.GetObjectLegalHold(ctx, bucket, key, minio.GetObjectLegalHoldOptions{})
	if err != nil {
		if er := minio.ToErrorResponse(err); er.Code == "NoSuchObjectLockConfiguration" {
			return false, nil
		}
		return false, mapErr(err, "legal hold of "+bucket+"/"+key)
	}
	return st != nil && *st == minio.LegalHoldEnabled, nil
}

func (s *MinioStore) PutLegalHold(ctx context.Context, bucket, key string, on bool) error {
	st := minio.LegalHoldDisabled
	if on {
		st = minio.LegalHoldEnabled
	}
	if err := s.core.Client.PutObjectLegalHold(ctx, bucket, key, minio.PutObjectLegalHoldOptions{Status: &st}); err != nil {
		return mapErr(err, "set legal hold of "+bucket+"/"+key)
	}
	return nil
}

// notFoundCodes are "this setting is not configured" answers.
var notFoundCodes = map[string]bool{
	"ServerSideEncryptionConfigurationNotFoundError": true,
	"NoSuchLifecycleConfiguration":                   true,
	"NoSuchTagSet":                                   true,
	"ObjectLockConfigurationNotFoundError":           true,
}

func (s *MinioStore) GetBucketSetting(ctx context.Context, bucket, kind string) (string, error) {
	v, err := s.getBucketSetting(ctx, bucket, kind)
	if err != nil {
		if notFoundCodes[minio.ToErrorResponse(err).Code] {
			return "", nil
		}
		return "", mapErr(err, kind+" of bucket "+bucket)
	}
	return v, nil
}

func (s *MinioStore) getBucketSetting(ctx context.Context, bucket, kind string) (string, error) {
	c := s.core.Client
	switch kind {
	case "versioning":
		v, err := c.GetBucketVersioning(ctx, bucket)
		return v.Status, err
	case "encryption":
		cfg, err := c.GetBucketEncryption(ctx, bucket)
		if err != nil || cfg == nil || len(cfg.Rules) == 0 {
			return "", err
		}
		r := cfg.Rules[0].Apply
		if r.SSEAlgorithm == "aws:kms" {
			return strings.TrimSpace("SSE-KMS " + r.KmsMasterKeyID), nil
		}
		return "SSE-S3", nil
	case "lifecycle":
		cfg, err := c.GetBucketLifecycle(ctx, bucket)
		if err != nil || cfg == nil || len(cfg.Rules) == 0 {
			return "", err
		}
		b, err := json.Marshal(cfg)
		return string(b), err
	case "tags":
		t, err := c.GetBucketTagging(ctx, bucket)
		if err != nil || t == nil {
			return "", err
		}
		return xattrs.FormatTags(t.ToMap()), nil
	case "object-lock":
		enabled, mode, validity, unit, err := c.GetObjectLockConfig(ctx, bucket)
		if err != nil || enabled == "" {
			return "", err
		}
		v := enabled
		if mode != nil && validity != nil && unit != nil {
			u := "d"
			if *unit == minio.Years {
				u = "y"
			}
			v += fmt.Sprintf(" %s %d%s", *mode, *validity, u)
		}
		return v, nil
	case "notification":
		cfg, err := c.GetBucketNotification(ctx, bucket)
		if err != nil {
			return "", err
		}
		if len(cfg.QueueConfigs)+len(cfg.TopicConfigs)+len(cfg.LambdaConfigs) == 0 {
			return "", nil
		}
		b, err := json.Marshal(cfg)
		return string(b), err
	}
	return "", errors.ErrUnsupported
}

func (s *MinioStore) PutBucketSetting(ctx context.Context, bucket, kind, value string) error {
	if err := s.putBucketSetting(ctx, bucket, kind, value); err != nil {
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		return mapErr(err, "set "+kind+" of bucket "+bucket)
	}
	return nil
}

func (s *MinioStore) putBucketSetting(ctx context.Context, bucket, kind, value string) error {
	c := s.core.Client
	switch kind {
	case "versioning":
		switch value {
		case "Enabled":
			return c.EnableVersioning(ctx, bucket)
		case "Suspended":
			return c.SuspendVersioning(ctx, bucket)
		}
		return fmt.Errorf("versioning %q: want Enabled or Suspended: %w", value, syscall.EINVAL)
	case "encryption":
		switch value {
		case "":
			return c.RemoveBucketEncryption(ctx, bucket)
		case "SSE-S3":
			return c.SetBucketEncryption(ctx, bucket, sse.NewConfigurationSSES3())
		}
		if key, ok := strings.CutPrefix(value, "SSE-KMS "); ok && key != "" {
			return c.SetBucketEncryption(ctx, bucket, sse.NewConfigurationSSEKMS(key))
		}
		return fmt.Errorf("encryption %q: want SSE-S3 or SSE-KMS KEY: %w", value, syscall.EINVAL)
	case "lifecycle":
		cfg := lifecycle.NewConfiguration()
		if value != "" {
			if err := json.Unmarshal([]byte(value), cfg); err != nil {
				return fmt.Errorf("lifecycle: not the JSON getfattr shows: %v: %w", err, syscall.EINVAL)
			}
		}
		return c.SetBucketLifecycle(ctx, bucket, cfg)
	case "tags":
		m, err := xattrs.ParseTags(value)
		if err != nil {
			return err
		}
		if len(m) == 0 {
			return c.RemoveBucketTagging(ctx, bucket)
		}
		t, err := tags.NewTags(m, false)
		if err != nil {
			return fmt.Errorf("bucket tags: %v: %w", err, syscall.EINVAL)
		}
		return c.SetBucketTagging(ctx, bucket, t)
	}
	return fmt.Errorf("%s cannot be set through kfs: %w", kind, errors.ErrUnsupported)
}
