package fs

import (
	"context"
	"errors"
	"io"
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
	ContentType  string            // empty when the store did not say (listings)
	Meta         map[string]string // user metadata, keys lower-case without "x-amz-meta-"; nil when unknown
	VersionID    string            // HEAD only
	StorageClass string            // HEAD only
}

// PutOptions are what a new object gets besides its bytes.
type PutOptions struct {
	ContentType string
	Meta        map[string]string // user metadata, keys without "x-amz-meta-"
	Tags        map[string]string // object tags (nil: none)
	LockMode    string            // retention mode, "" for none
	LockUntil   time.Time
	LegalHold   *bool
}

// S3 multipart limits.
const (
	MinPartSize = 5 << 20 // every part but the last
	MaxPartSize = 5 << 30
	MaxParts    = 10000
)

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int
	ETag   string
}

// Upload is one incomplete multipart upload.
type Upload struct {
	Key, ID   string
	Initiated time.Time
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
	// withMeta asks for each object's user metadata too (ObjectInfo.Meta
	// non-nil); a store that cannot do that leaves Meta nil.
	List(ctx context.Context, bucket, prefix, token string, maxKeys int, withMeta bool) (ListPage, error)
	// ReadAt fills p with the object's bytes at off, reading fewer only at
	// the end of the object. When etag is not empty the read is refused with
	// ErrStale unless the object still has that ETag.
	ReadAt(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, error)

	// Put stores an object of size bytes read from r.
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// NewUpload starts a multipart upload.
	NewUpload(ctx context.Context, bucket, key string, opts PutOptions) (uploadID string, err error)
	// PutPart uploads part number num (1-based) of an upload.
	PutPart(ctx context.Context, bucket, key, uploadID string, num int, data []byte) (Part, error)
	// CopyPart makes part num of an upload from n bytes at off of the object
	// srcKey, server side, refusing with ErrStale unless srcKey still has
	// ETag srcETag.
	CopyPart(ctx context.Context, bucket, key, uploadID string, num int, srcKey, srcETag string, off, n int64) (Part, error)
	// CompleteUpload assembles the parts (in order) into the object.
	CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []Part) (ObjectInfo, error)
	// AbortUpload discards an upload and its parts.
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
	// ListUploads lists incomplete uploads under prefix.
	ListUploads(ctx context.Context, bucket, prefix string) ([]Upload, error)
	// Copy copies srcKey to dstKey server side (any size), refusing with
	// ErrStale unless srcKey has ETag srcETag (when not empty). With opts
	// nil the copy keeps the source's metadata; otherwise it replaces it.
	Copy(ctx context.Context, bucket, srcKey, srcETag, dstKey string, opts *PutOptions) (ObjectInfo, error)
	// Remove deletes one object; removing a missing object is not an error.
	Remove(ctx context.Context, bucket, key string) error
	// RemoveMany deletes keys in batches; it reports the first failure.
	RemoveMany(ctx context.Context, bucket string, keys []string) error

	// GetTags returns an object's tag set (empty, not nil, when untagged).
	GetTags(ctx context.Context, bucket, key string) (map[string]string, error)
	// PutTags replaces an object's tag set; an empty set removes it.
	PutTags(ctx context.Context, bucket, key string, tags map[string]string) error

	// GetRetention returns the retention mode and date ("" when none).
	// Object-lock calls on a bucket without object lock wrap
	// errors.ErrUnsupported; refusals by the lock wrap syscall.EPERM.
	GetRetention(ctx context.Context, bucket, key string) (mode string, until time.Time, err error)
	// PutRetention sets retention; mode "" clears it. bypass lets GOVERNANCE
	// retention be shortened or cleared.
	PutRetention(ctx context.Context, bucket, key, mode string, until time.Time, bypass bool) error
	GetLegalHold(ctx context.Context, bucket, key string) (bool, error)
	PutLegalHold(ctx context.Context, bucket, key string, on bool) error

	// GetBucketSetting returns a bucket setting in the text form package
	// xattrs documents ("" when unset); kind is versioning, encryption,
	// lifecycle, tags, object-lock or notification.
	GetBucketSetting(ctx context.Context, bucket, kind string) (string, error)
	// PutBucketSetting changes one ("" removes it where S3 can).
	PutBucketSetting(ctx context.Context, bucket, kind, value string) error
}
