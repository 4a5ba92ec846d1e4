package fs

import (
	"context"
	"errors"
	"time"
)

// ErrStale says an object changed (its ETag no longer matches) under an
// open reader. It maps to ESTALE.
var ErrStale = errors.New("object changed since it was opened")

// ObjectInfo is what kfs needs to know about one object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // without quotes
	LastModified time.Time
}

// BucketInfo is one bucket of ListBuckets.
type BucketInfo struct {
	Name    string
	Created time.Time
}

// ListPage is one page of a delimited ("/") listing under a prefix.
type ListPage struct {
	Objects   []ObjectInfo // keys directly under the prefix, in key order; may include the prefix itself (a directory marker)
	Prefixes  []string     // common prefixes ("prefix/name/"), in key order
	NextToken string       // continuation token; "" when this was the last page
}

// Store is the only way the filesystem reaches the object store.
//
// "Not found" is always reported as an error wrapping os.ErrNotExist;
// access refusals wrap os.ErrPermission; a conditional read whose ETag no
// longer matches wraps ErrStale. Every method is safe for concurrent use.
type Store interface {
	// ListBuckets lists the buckets the credentials can see.
	ListBuckets(ctx context.Context) ([]BucketInfo, error)
	// StatBucket returns nil when the bucket exists and can be accessed.
	StatBucket(ctx context.Context, bucket string) error
	// Stat returns the object's info (HEAD).
	Stat(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// List returns one page (at most maxKeys entries, 0 = server default)
	// of the delimited listing of prefix, continuing at token ("" = start).
	List(ctx context.Context, bucket, prefix, token string, maxKeys int) (ListPage, error)
	// ReadAt fills p with the object's bytes at off, reading fewer only at
	// the end of the object. When etag is not empty the read is refused with
	// ErrStale unless the object still has that ETag.
	ReadAt(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, error)
}
