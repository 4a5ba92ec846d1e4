package fs

import (
	"context"
	"time"

	"kfs/fs/store"
	"kfs/fs/upload"
)

// Store is what the filesystem asks of the object store (package s3store
// implements it; memstore fakes it). "Not found" wraps store.ErrNotFound,
// a failed ETag condition store.ErrStale; see package store for the rest.
// Every method is safe for concurrent use.
type Store interface {
	upload.Store

	ListBuckets(ctx context.Context) ([]store.BucketInfo, error)
	MakeBucket(ctx context.Context, bucket string, o store.MakeBucketOptions) error
	RemoveBucket(ctx context.Context, bucket string) error
	Stat(ctx context.Context, o store.ObjectRef) (store.ObjectInfo, error)
	List(ctx context.Context, r store.ListRequest) (store.ListPage, error)
	Copy(ctx context.Context, src, dst store.ObjectRef, o store.CopyOptions) (store.ObjectInfo, error)
	Remove(ctx context.Context, o store.ObjectRef) error
	RemoveMany(ctx context.Context, bucket string, keys []string) ([]store.KeyError, error)

	GetTags(ctx context.Context, bucket, key string) (map[string]string, error)
	PutTags(ctx context.Context, bucket, key string, tags map[string]string) error
	GetRetention(ctx context.Context, bucket, key string) (string, time.Time, error)
	PutRetention(ctx context.Context, bucket, key, mode string, until time.Time, bypass bool) error
	GetLegalHold(ctx context.Context, bucket, key string) (bool, error)
	PutLegalHold(ctx context.Context, bucket, key string, on bool) error

	BucketSettings
}

// BucketSettings are the bucket configuration calls behind the bucket
// directories' extended attributes.
type BucketSettings interface {
	GetVersioning(ctx context.Context, bucket string) (string, error)
	SetVersioning(ctx context.Context, bucket, status string) error
	GetEncryption(ctx context.Context, bucket string) (store.Encryption, error)
	SetEncryption(ctx context.Context, bucket string, e store.Encryption) error
	GetLifecycle(ctx context.Context, bucket string) ([]byte, error)
	SetLifecycle(ctx context.Context, bucket string, doc []byte) error
	GetBucketTags(ctx context.Context, bucket string) (map[string]string, error)
	SetBucketTags(ctx context.Context, bucket string, tags map[string]string) error
	GetObjectLock(ctx context.Context, bucket string) (store.ObjectLock, error)
	SetObjectLock(ctx context.Context, bucket string, l store.ObjectLock) error
	GetNotification(ctx context.Context, bucket string) ([]byte, error)
	SetNotification(ctx context.Context, bucket string, doc []byte) error
	GetPolicy(ctx context.Context, bucket string) (string, error)
	SetPolicy(ctx context.Context, bucket, policy string) error
}
