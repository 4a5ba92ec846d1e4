package ctl

import (
	"context"
	"net/url"
	"time"
)

// Backend is what the control socket needs from the object store.
type Backend interface {
	Presign(ctx context.Context, method, bucket, key string, expires time.Duration, params url.Values) (string, error)
	Stat(ctx context.Context, bucket, key, versionID string) (ObjectStat, error)
	Buckets(ctx context.Context) ([]Bucket, error)
}
