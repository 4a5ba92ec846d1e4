// Package ctl is the control socket every kfs mount serves: HTTP with JSON
// bodies over a unix socket (mode 0600, owned by whoever mounted), for what
// a filesystem cannot say — presigned URLs, object facts, buckets, status.
// Paths in requests are local paths inside the mount, never bucket/key
// pairs; the server maps them and refuses anything outside the mount.
//
// Protocol (curl --unix-socket SOCKET http://kfs/v1/...):
//
//	POST /v1/presign  {"path", "method", "expires", "version_id", "response_headers"} -> {"url", "expires_at"}
//	POST /v1/stat     {"path", "version_id"}                                           -> object facts
//	GET  /v1/buckets                                                                    -> [{"name", "created"}]
//	GET  /v1/status                                                                     -> mount facts
//
// Errors are 4xx/5xx with {"error": "one line"}.
package ctl

import "time"

// PresignRequest asks for a presigned URL.
type PresignRequest struct {
	Path            string            `json:"path"`
	Method          string            `json:"method"`  // GET (default), PUT, DELETE, HEAD
	Expires         string            `json:"expires"` // Go duration, default and maximum 7 days
	VersionID       string            `json:"version_id,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"` // e.g. response-content-type
}

// PresignResponse carries the URL.
type PresignResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// StatRequest asks for an object's facts.
type StatRequest struct {
	Path      string `json:"path"`
	VersionID string `json:"version_id,omitempty"`
}

// ObjectStat is what stat_object gave.
type ObjectStat struct {
	Bucket       string            `json:"bucket"`
	Key          string            `json:"key"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	VersionID    string            `json:"version_id,omitempty"`
	LastModified time.Time         `json:"last_modified"`
	ContentType  string            `json:"content_type"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	TagCount     int               `json:"tag_count"`
	LockMode     string            `json:"lock_mode,omitempty"`
	LockUntil    *time.Time        `json:"lock_until,omitempty"`
	LegalHold    string            `json:"legal_hold,omitempty"`
	StorageClass string            `json:"storage_class,omitempty"`
}

// Bucket is one of ListBuckets.
type Bucket struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Status describes the mount serving the socket.
type Status struct {
	Mountpoint string    `json:"mountpoint"`
	Bucket     string    `json:"bucket,omitempty"` // empty: every bucket
	Prefix     string    `json:"prefix,omitempty"`
	Endpoint   string    `json:"endpoint"`
	MountedAt  time.Time `json:"mounted_at"`
	PID        int       `json:"pid"`
	Extra      any       `json:"stats,omitempty"` // cache and upload counters
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// VersionsRequest lists an object's versions, or (Recursive) those of
// every object under a directory.
type VersionsRequest struct {
	Path      string `json:"path"`
	Recursive bool   `json:"recursive,omitempty"`
}

// Version is one version of an object (or a delete marker).
type Version struct {
	Path         string    `json:"path"`
	VersionID    string    `json:"version_id"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified"`
	IsLatest     bool      `json:"is_latest"`
	DeleteMarker bool      `json:"delete_marker"`
}

// ListRequest lists a directory in key order, as list_objects does:
// everything under it with Recursive, starting after StartAfter (a name,
// or a path under the directory), at most Max entries (0: all).
type ListRequest struct {
	Path       string `json:"path"`
	Recursive  bool   `json:"recursive,omitempty"`
	StartAfter string `json:"start_after,omitempty"`
	Max        int    `json:"max,omitempty"`
}

// ListEntry is one object or (not recursive) subdirectory of a listing.
type ListEntry struct {
	Path         string    `json:"path"`
	Key          string    `json:"key"`
	Dir          bool      `json:"dir,omitempty"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified,omitzero"`
}

// WarmRequest fetches a file whole into the mount's disk cache.
type WarmRequest struct {
	Path string `json:"path"`
}

// WarmResponse says what warming a file did.
type WarmResponse struct {
	Size    int64 `json:"size"`
	Fetched bool  `json:"fetched"` // false: it was in the cache already
}

// CatRequest streams an object (or one version of it).
type CatRequest struct {
	Path      string `json:"path"`
	VersionID string `json:"version_id,omitempty"`
	Offset    int64  `json:"offset,omitempty"` // first byte
	Length    int64  `json:"length,omitempty"` // bytes from Offset (0: to the end)
}

// RemoveRequest deletes one object (version), or with Recursive every
// object under a directory in batches.
type RemoveRequest struct {
	Path      string `json:"path"`
	VersionID string `json:"version_id,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// RemoveResponse reports what a removal did.
type RemoveResponse struct {
	Removed int      `json:"removed"`
	Errors  []string `json:"errors,omitempty"` // "key: message" per object that stayed
}

// CopyRequest is a server-side copy between two paths of mounts of one
// endpoint, with optional conditions and metadata replacement.
type CopyRequest struct {
	Src             string            `json:"src"`
	Dst             string            `json:"dst"`
	IfMatch         string            `json:"if_match,omitempty"`
	IfNoneMatch     string            `json:"if_none_match,omitempty"`
	IfModifiedSince *time.Time        `json:"if_modified_since,omitempty"`
	IfUnmodified    *time.Time        `json:"if_unmodified_since,omitempty"`
	SrcVersionID    string            `json:"src_version_id,omitempty"` // copy this version of the source
	Metadata        map[string]string `json:"metadata,omitempty"`
	ReplaceMetadata bool              `json:"replace_metadata,omitempty"`
	ContentType     string            `json:"content_type,omitempty"`
	// With another mount of the same endpoint, the client resolves that
	// side through its socket and names the object here instead.
	SrcBucket string `json:"src_bucket,omitempty"`
	SrcKey    string `json:"src_key,omitempty"`
	DstBucket string `json:"dst_bucket,omitempty"`
	DstKey    string `json:"dst_key,omitempty"`
}

// ObjectName is an object named by bucket and key.
type ObjectName struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// ComposeRequest concatenates sources into dst, server side.
type ComposeRequest struct {
	Dst         string            `json:"dst"`
	Srcs        []string          `json:"srcs"`
	SrcRefs     []ObjectName      `json:"src_refs,omitempty"` // sources in other mounts of the endpoint, by index
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"` // user metadata of the result
}

// SelectRequest runs S3 Select on an object; records stream back, and the
// statistics follow in the X-Kfs-Select-Stats trailer.
type SelectRequest struct {
	Path        string `json:"path"`
	SQL         string `json:"sql"`
	Input       string `json:"input,omitempty"`       // csv (default), json, parquet
	CSVHeader   string `json:"csv_header,omitempty"`  // use (default), ignore, none
	Delimiter   string `json:"delimiter,omitempty"`   // CSV field delimiter, default ","
	JSONType    string `json:"json_type,omitempty"`   // lines (default), document
	Compression string `json:"compression,omitempty"` // none (default), gzip, bzip2
	Output      string `json:"output,omitempty"`      // csv (default), json
}

// SelectStats are the scanned, processed and returned byte counts.
type SelectStats struct {
	BytesScanned   int64 `json:"bytes_scanned"`
	BytesProcessed int64 `json:"bytes_processed"`
	BytesReturned  int64 `json:"bytes_returned"`
}
