// Package store is the seam between kfs and the object store: the request
// and answer types every layer shares, the sentinel errors the adapter
// maps S3 answers to, and the store's capabilities as small interfaces
// (Objects, Multipart, ObjectMeta, Buckets, BucketSettings, Events,
// Selector). Each user (the filesystem, the upload pipeline, the control
// socket, the CSI controller) composes the ones it needs; package s3store
// implements All, and memstore fakes it.
//
// Errors: every failure of an adapter wraps exactly one of the sentinels
// below (or a context error, or a transport error for "could not reach the
// server"), so callers classify with errors.Is and never by message text.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"time"
)

// Sentinel errors. Each names the S3 answers it stands for.
var (
	// ErrNotFound: NoSuchKey, NoSuchBucket, NoSuchVersion, 404. Wraps
	// fs.ErrNotExist.
	ErrNotFound = wrap("not found", fs.ErrNotExist)
	// ErrStale: a condition on the ETag failed (PreconditionFailed, 412):
	// the object changed since it was read.
	ErrStale = errors.New("object changed (ETag no longer matches)")
	// ErrAccessDenied: AccessDenied, InvalidAccessKeyId,
	// SignatureDoesNotMatch, 403. Wraps fs.ErrPermission.
	ErrAccessDenied = wrap("access denied", fs.ErrPermission)
	// ErrLocked: object lock refuses the change (WORM protected, a
	// COMPLIANCE or GOVERNANCE retention, a legal hold).
	ErrLocked = errors.New("refused by object lock")
	// ErrNoObjectLock: a retention or legal-hold call on a bucket made
	// without object lock.
	ErrNoObjectLock = errors.New("bucket has no object lock configuration")
	// ErrUnsupported: the server does not implement the call
	// (NotImplemented, 501). Wraps errors.ErrUnsupported.
	ErrUnsupported = wrap("not supported by the server", errors.ErrUnsupported)
	// ErrInvalid: the server refused the request as malformed
	// (InvalidArgument, MalformedXML, InvalidRequest, a bad policy or
	// configuration, an unknown KMS key, a past retention date).
	ErrInvalid = errors.New("invalid request")
	// ErrQuota: a bucket quota is exhausted.
	ErrQuota = errors.New("quota exceeded")
	// ErrTooLarge: EntityTooLarge (past 5 TiB, or a part past 5 GiB).
	ErrTooLarge = errors.New("object too large")
	// ErrMetaTooLarge: MetadataTooLarge: the user metadata (x-amz-meta-*
	// names and values) is over the server's limit (2 KiB on S3 and MinIO).
	ErrMetaTooLarge = errors.New("user metadata over the server's limit")
	// ErrNameTooLong: KeyTooLongError, or a name the server will not store.
	ErrNameTooLong = errors.New("name too long")
	// ErrExists: BucketAlreadyExists, BucketAlreadyOwnedByYou.
	ErrExists = wrap("already exists", fs.ErrExist)
	// ErrNotEmpty: BucketNotEmpty.
	ErrNotEmpty = errors.New("not empty")
	// ErrUploadGone: NoSuchUpload from a part or a completion: the
	// multipart upload was aborted underneath (another client, a
	// lifecycle rule). The file is not missing: callers get EIO. Aborting
	// an upload that is gone succeeds.
	ErrUploadGone = errors.New("the multipart upload no longer exists on the server")
	// ErrUnavailable: the server answered 5xx (SlowDown, InternalError,
	// ServiceUnavailable) after the client's retries.
	ErrUnavailable = errors.New("server unavailable")
)

type wrapped struct {
	msg   string
	inner error
}

func (w wrapped) Error() string { return w.msg }
func (w wrapped) Unwrap() error { return w.inner }

func wrap(msg string, inner error) error { return wrapped{msg, inner} }

// Multipart limits of S3.
const (
	MinPartSize   = 5 << 20 // every part but the last
	MaxPartSize   = 5 << 30
	MaxParts      = 10000
	MaxObjectSize = 5 << 40
	MaxSingleCopy = 5 << 30 // larger objects are copied part by part
	MaxKeyLen     = 1024
)

// ObjectRef names one object, or one version of it. Calls that act on
// one version (Stat, Get, Remove, tags, retention, legal hold, a copy's
// source) honour VersionID; memstore keeps only the latest version, so
// another VersionID is not found there.
type ObjectRef struct {
	Bucket, Key string
	VersionID   string // "" = the latest
}

// Range is part of an object: Length bytes from Offset (0: to the end).
// The zero Range is the whole object.
type Range struct {
	Offset, Length int64
}

// ObjectInfo is what kfs knows about one object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // without quotes
	LastModified time.Time
	ContentType  string            // "" when the store did not say (listings)
	Meta         map[string]string // user metadata, keys lower-case without "x-amz-meta-"; nil when unknown
	VersionID    string            // HEAD only
	StorageClass string            // HEAD only
	TagCount     int               // HEAD only
	LockMode     string            // HEAD only: GOVERNANCE, COMPLIANCE or ""
	LockUntil    time.Time         // HEAD only
	LegalHold    bool              // HEAD only
}

// PutOptions are what a new object gets besides its bytes.
type PutOptions struct {
	ContentType string
	Meta        map[string]string // user metadata, keys without "x-amz-meta-"
	Tags        map[string]string // object tags (nil: none)
	LockMode    string            // retention mode, "" for none
	LockUntil   time.Time
	LegalHold   *bool

	// Conditions of a single Put (write-back's uploads: never over an
	// object another client wrote since): the store answers ErrStale when
	// they do not hold, or ErrNotFound for IfMatch where no object is
	// (SeaweedFS and AWS; MinIO says ErrStale). A multipart upload is not
	// conditioned.
	IfMatch  string // only over the object with this ETag
	IfAbsent bool   // only where no object is
}

// CopyOptions condition and shape a server-side copy.
type CopyOptions struct {
	IfMatch           string      // copy only if the source has this ETag
	IfNoneMatch       string      // copy only if the source does not have this ETag
	IfModifiedSince   time.Time   // copy only if the source changed after this
	IfUnmodifiedSince time.Time   // copy only if the source did not change after this
	Replace           *PutOptions // nil: keep the source's metadata; else replace it

	// SrcSize is the source's size when the caller knows it (SrcSizeKnown)
	// for the version IfMatch names: with Replace set the store need not
	// look the source up first (a HEAD per copy) to choose how to copy. A
	// wrong guess cannot copy wrong bytes: the ETag condition holds.
	SrcSize      int64
	SrcSizeKnown bool
}

// Unmet says which condition a source fails, as S3 judges them (ETags
// without quotes, times to the second), or "" when it meets them all. The
// server says only "precondition failed"; this names the condition.
func (o CopyOptions) Unmet(src ObjectInfo) string {
	etag := strings.Trim(src.ETag, `"`)
	mod := src.LastModified.Truncate(time.Second)
	switch {
	case o.IfMatch != "" && etag != strings.Trim(o.IfMatch, `"`):
		return fmt.Sprintf("--if-match: the source's ETag is %s, not %s", etag, o.IfMatch)
	case o.IfNoneMatch != "" && etag == strings.Trim(o.IfNoneMatch, `"`):
		return fmt.Sprintf("--if-none-match: the source's ETag is %s", etag)
	case !o.IfModifiedSince.IsZero() && !mod.After(o.IfModifiedSince):
		return fmt.Sprintf("--if-modified-since: the source was last modified %s, not after %s",
			mod.UTC().Format(time.RFC3339), o.IfModifiedSince.UTC().Format(time.RFC3339))
	case !o.IfUnmodifiedSince.IsZero() && mod.After(o.IfUnmodifiedSince):
		return fmt.Sprintf("--if-unmodified-since: the source was modified %s, after %s",
			mod.UTC().Format(time.RFC3339), o.IfUnmodifiedSince.UTC().Format(time.RFC3339))
	}
	return ""
}

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

// MakeBucketOptions are what a new bucket gets.
type MakeBucketOptions struct {
	Region     string
	ObjectLock bool // also turns versioning on
	Versioning bool
}

// ListRequest asks for one page of a listing.
type ListRequest struct {
	Bucket, Prefix string
	Token          string // continuation token, "" = start
	StartAfter     string // the first page starts after this key ("" = at the start)
	Max            int    // at most this many entries, 0 = server default (1000)
	Recursive      bool   // no delimiter: every key under Prefix
	Meta           bool   // ask for each object's user metadata (MinIO's metadata=true)
}

// ListPage is one page of a listing under a prefix.
type ListPage struct {
	Objects   []ObjectInfo // keys in key order; a delimited listing may include the prefix itself (a directory marker)
	Prefixes  []string     // common prefixes ("prefix/name/"), in key order; empty when recursive
	NextToken string       // "" when this was the last page
}

// Version is one version of an object, or a delete marker.
type Version struct {
	Key          string
	VersionID    string
	Size         int64
	ETag         string
	LastModified time.Time
	IsLatest     bool
	DeleteMarker bool
}

// KeyError is one object a batch removal left in place.
type KeyError struct {
	Key string
	Err error
}

// Event is one bucket event (object created or removed).
type Event struct {
	Name      string // e.g. s3:ObjectCreated:Put
	Bucket    string
	Key       string
	Size      int64
	ETag      string
	Time      time.Time
	Sequencer string
	Err       error // a broken stream (the source retries); the other fields are empty
}

// Encryption is a bucket's default encryption ("" Algorithm: none).
type Encryption struct {
	Algorithm string // "AES256" (SSE-S3) or "aws:kms" (SSE-KMS)
	KMSKeyID  string
}

// ObjectLock is a bucket's object lock configuration.
type ObjectLock struct {
	Enabled bool
	Mode    string // default retention mode: GOVERNANCE, COMPLIANCE or ""
	Days    int    // default retention in days (or Years)
	Years   int
}

// SelectOptions are an S3 Select request.
type SelectOptions struct {
	SQL         string
	Input       string // csv, json, parquet
	CSVHeader   string // use, ignore, none
	Delimiter   string
	JSONType    string // lines, document
	Compression string // none, gzip, bzip2
	Output      string // csv, json
}

// SelectStats are the scanned, processed and returned byte counts.
type SelectStats struct {
	BytesScanned, BytesProcessed, BytesReturned int64
}

// SelectStream is a running S3 Select: its records, then its statistics
// (valid once the records are read).
type SelectStream interface {
	Read(p []byte) (int, error)
	Close() error
	Stats() SelectStats
}

// CheckBucketName applies S3's bucket naming rules, saying which one a
// name breaks (wraps ErrInvalid).
func CheckBucketName(b string) error {
	bad := func(why string) error {
		return fmt.Errorf("bucket name %q: %s (S3 names are 3 to 63 characters of a-z, 0-9, '.' and '-', beginning and ending with a letter or digit): %w",
			b, why, ErrInvalid)
	}
	if len(b) < 3 || len(b) > 63 {
		return bad("wrong length")
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok {
			return bad(fmt.Sprintf("character %q is not allowed", c))
		}
		if (i == 0 || i == len(b)-1) && (c == '-' || c == '.') {
			return bad("must begin and end with a letter or digit")
		}
	}
	for _, s := range []string{"..", ".-", "-."} {
		if strings.Contains(b, s) {
			return bad("must not contain " + s)
		}
	}
	return nil
}

// ReadRequest is a ranged read of an object into a caller's buffer.
type ReadRequest struct {
	Bucket, Key string
	ETag        string // "" = any version; else the read fails with ErrStale once the object changed
	Offset      int64
}

// PutRequest is a whole object written in one request.
type PutRequest struct {
	Bucket, Key string
	Body        io.Reader
	Size        int64 // -1: unknown (the store then sends it in parts)
	Options     PutOptions
}

// UploadRef names one multipart upload.
type UploadRef struct {
	Bucket, Key, ID string
}

// PartRequest uploads part Number of an upload from Body.
type PartRequest struct {
	Upload UploadRef
	Number int
	Body   io.ReadSeeker
	Size   int64
}

// CopyPartRequest makes part Number of an upload from Length bytes at
// Offset of the object Src, which must still have SrcETag.
type CopyPartRequest struct {
	Upload         UploadRef
	Number         int
	Src            ObjectRef
	SrcETag        string
	Offset, Length int64
}

// CopyRequest is a server-side copy of Src to Dst.
type CopyRequest struct {
	Src, Dst ObjectRef
	Options  CopyOptions
}

// ComposeRequest makes Dst from the concatenation of Srcs, server side.
type ComposeRequest struct {
	Dst     ObjectRef
	Srcs    []ObjectRef
	Options *PutOptions // nil: the first source's metadata
}

// GetRequest is a streamed read of an object or a range of it.
type GetRequest struct {
	ObjectRef
	Range Range
}

// RemoveManyRequest removes many objects of one bucket in batches.
type RemoveManyRequest struct {
	Bucket string
	Keys   []string
}

// PrefixRequest names the keys of a bucket under a prefix (with Exact,
// the key Prefix alone).
type PrefixRequest struct {
	Bucket, Prefix string
	Exact          bool
}

// ListenRequest asks for the events of keys of a bucket under Prefix and
// ending in Suffix.
type ListenRequest struct {
	Bucket, Prefix, Suffix string
}

// Retention is an object's retention: Mode GOVERNANCE or COMPLIANCE until
// Until, or none ("" Mode).
type Retention struct {
	Mode  string
	Until time.Time
}

// RetentionRequest sets an object's retention; Bypass lifts GOVERNANCE.
type RetentionRequest struct {
	ObjectRef
	Retention
	Bypass bool
}

// PresignRequest asks for a URL that performs Method on an object until
// it expires.
type PresignRequest struct {
	ObjectRef
	Method  string
	Expires time.Duration
	Params  url.Values
}

// The store's capabilities, declared once. Each consumer composes the ones
// it uses; both stores (s3store, memstore) assert they implement All.
// Every method is safe for concurrent use, and every failure wraps one of
// the sentinels above.

// Objects reads, writes, copies and removes whole objects.
type Objects interface {
	Stat(ctx context.Context, o ObjectRef) (ObjectInfo, error)
	List(ctx context.Context, r ListRequest) (ListPage, error)
	ListVersions(ctx context.Context, r PrefixRequest) ([]Version, error)
	ReadAt(ctx context.Context, r ReadRequest, p []byte) (int, error)
	Get(ctx context.Context, r GetRequest) (io.ReadCloser, ObjectInfo, error)
	Put(ctx context.Context, r PutRequest) (ObjectInfo, error)
	Copy(ctx context.Context, r CopyRequest) (ObjectInfo, error)
	Remove(ctx context.Context, o ObjectRef) error
	RemoveMany(ctx context.Context, r RemoveManyRequest) ([]KeyError, error)
	Presign(ctx context.Context, r PresignRequest) (string, error)
}

// Multipart builds objects from parts, uploaded or copied server side.
type Multipart interface {
	NewUpload(ctx context.Context, o ObjectRef, opts PutOptions) (UploadRef, error)
	PutPart(ctx context.Context, r PartRequest) (Part, error)
	CopyPart(ctx context.Context, r CopyPartRequest) (Part, error)
	CompleteUpload(ctx context.Context, u UploadRef, parts []Part) (ObjectInfo, error)
	AbortUpload(ctx context.Context, u UploadRef) error
	ListUploads(ctx context.Context, r PrefixRequest) ([]Upload, error)
	Compose(ctx context.Context, r ComposeRequest) (ObjectInfo, error)
}

// ObjectMeta are an object's tags, retention and legal hold.
type ObjectMeta interface {
	GetTags(ctx context.Context, o ObjectRef) (map[string]string, error)
	PutTags(ctx context.Context, o ObjectRef, tags map[string]string) error
	GetRetention(ctx context.Context, o ObjectRef) (Retention, error)
	PutRetention(ctx context.Context, r RetentionRequest) error
	GetLegalHold(ctx context.Context, o ObjectRef) (bool, error)
	PutLegalHold(ctx context.Context, o ObjectRef, on bool) error
}

// Buckets lists, checks, makes and removes buckets.
type Buckets interface {
	ListBuckets(ctx context.Context) ([]BucketInfo, error)
	StatBucket(ctx context.Context, bucket string) error
	MakeBucket(ctx context.Context, bucket string, o MakeBucketOptions) error
	RemoveBucket(ctx context.Context, bucket string) error
}

// BucketSettings are a bucket's configuration documents.
type BucketSettings interface {
	GetVersioning(ctx context.Context, bucket string) (string, error)
	SetVersioning(ctx context.Context, bucket, status string) error
	GetEncryption(ctx context.Context, bucket string) (Encryption, error)
	SetEncryption(ctx context.Context, bucket string, e Encryption) error
	GetLifecycle(ctx context.Context, bucket string) ([]byte, error)
	SetLifecycle(ctx context.Context, bucket string, doc []byte) error
	GetBucketTags(ctx context.Context, bucket string) (map[string]string, error)
	SetBucketTags(ctx context.Context, bucket string, tags map[string]string) error
	GetObjectLock(ctx context.Context, bucket string) (ObjectLock, error)
	SetObjectLock(ctx context.Context, bucket string, l ObjectLock) error
	GetNotification(ctx context.Context, bucket string) ([]byte, error)
	SetNotification(ctx context.Context, bucket string, doc []byte) error
	GetPolicy(ctx context.Context, bucket string) (string, error)
	SetPolicy(ctx context.Context, bucket, policy string) error
}

// Events streams a bucket's changes.
type Events interface {
	// Listen streams bucket events until ctx ends (the channel then closes).
	Listen(ctx context.Context, r ListenRequest) <-chan Event
}

// Selector runs S3 Select queries.
type Selector interface {
	Select(ctx context.Context, o ObjectRef, r SelectOptions) (SelectStream, error)
}

// All is every capability: what the stores implement and the conformance
// suite checks.
type All interface {
	Objects
	Multipart
	ObjectMeta
	Buckets
	BucketSettings
	Events
	Selector
}
