package ctl

import (
	"context"
	"io"
	"net/url"
	"time"

	"kfs/fs/store"
)

// Backend is what the control socket needs of the object store (package
// s3store implements it). Errors wrap store's sentinels.
type Backend interface {
	Presign(ctx context.Context, method string, o store.ObjectRef, expires time.Duration, params url.Values) (string, error)
	Stat(ctx context.Context, o store.ObjectRef) (store.ObjectInfo, error)
	ListBuckets(ctx context.Context) ([]store.BucketInfo, error)
	ListVersions(ctx context.Context, bucket, prefix string, exact bool) ([]store.Version, error)
	List(ctx context.Context, r store.ListRequest) (store.ListPage, error)
	Get(ctx context.Context, o store.ObjectRef, r store.Range) (io.ReadCloser, store.ObjectInfo, error)
	Remove(ctx context.Context, o store.ObjectRef) error
	RemoveMany(ctx context.Context, bucket string, keys []string) ([]store.KeyError, error)
	Copy(ctx context.Context, src, dst store.ObjectRef, o store.CopyOptions) (store.ObjectInfo, error)
	Compose(ctx context.Context, dst store.ObjectRef, srcs []store.ObjectRef, opts *store.PutOptions) (store.ObjectInfo, error)
	Select(ctx context.Context, o store.ObjectRef, r store.SelectOptions) (store.SelectStream, error)
	// Listen streams bucket events until ctx ends (the channel then closes).
	Listen(ctx context.Context, bucket, prefix, suffix string) <-chan store.Event
}
