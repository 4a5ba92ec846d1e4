package ctl

import (
	"context"
	"io"
	"net/url"
	"time"
)

// Backend is what the control socket needs from the object store.
type Backend interface {
	Presign(ctx context.Context, method, bucket, key string, expires time.Duration, params url.Values) (string, error)
	Stat(ctx context.Context, bucket, key, versionID string) (ObjectStat, error)
	Buckets(ctx context.Context) ([]Bucket, error)
	Extended
}

// Extended is the rest of what the subcommands need.
type Extended interface {
	Versions(ctx context.Context, bucket, key string) ([]Version, error)
	Get(ctx context.Context, o ObjectRef) (io.ReadCloser, error)
	Remove(ctx context.Context, o ObjectRef) error
	RemovePrefix(ctx context.Context, bucket, prefix string) (RemoveResponse, error)
	Copy(ctx context.Context, src, dst ObjectRef, r CopyRequest) (ObjectStat, error)
	Compose(ctx context.Context, dst ObjectRef, srcs []ObjectRef) (ObjectStat, error)
	Select(ctx context.Context, o ObjectRef, r SelectRequest) (SelectStream, error)
	// Listen streams bucket events until ctx ends (the channel then closes).
	Listen(ctx context.Context, bucket, prefix, suffix string) <-chan Event
}

// SelectStream is a running S3 Select: its records, then its statistics.
type SelectStream interface {
	io.ReadCloser
	Stats() SelectStats
}
