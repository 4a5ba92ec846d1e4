package fs

import (
	"kfs/fs/store"
)

// Store is what the filesystem asks of the object store: every capability
// but events and select, which the mount process and the control socket
// use (package s3store implements it; memstore fakes it). "Not found"
// wraps store.ErrNotFound, a failed ETag condition store.ErrStale; see
// package store for the rest. Every method is safe for concurrent use.
type Store interface {
	store.Objects
	store.Multipart
	store.ObjectMeta
	store.Buckets
	store.BucketSettings
}
