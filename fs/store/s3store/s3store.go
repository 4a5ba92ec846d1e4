// Package s3store is kfs's only way to the object store: one adapter over
// minio-go used by the filesystem, the upload pipeline and the control
// socket alike. It is the only package that imports minio-go. Every error
// it returns wraps one of package store's sentinels (mapErr is the one
// place S3 answers are classified), a context error, or a transport error.
package s3store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"kfs/fs/store"
)

// Config says how to reach the store.
type Config struct {
	Endpoint     string // http(s)://host[:port]
	AccessKey    string
	SecretKey    string
	SessionToken string
	Region       string
	CAFile       string        // PEM bundle for https; "" = system roots
	Retries      int           // retries of a failed request (0 = DefaultRetries; negative = none)
	Timeout      time.Duration // longest time a request may make no progress (0 = DefaultTimeout)
	Deadline     time.Duration // longest time one operation may take, retries included (0 = DefaultDeadline)
	Observe      Observer      // told of every request (nil: nobody)
	Trace        Tracer        // told of every request with its target (nil: nobody; --log-level debug)
	// Failover lists other nodes of the endpoint's cluster (URLs of the
	// same scheme): when the current node cannot be reached, connections
	// go to the next one that can (see nodes). OnFailover is told.
	Failover   []string
	OnFailover func(from, to string)
	// NoListMeta is told, once, that the server answered a metadata
	// listing without metadata (it lacks MinIO's extension): objects'
	// metadata then come from HEADs (cached per object version).
	NoListMeta func()
}

// Defaults of the fault bounds (see resilience.go).
const (
	failoverDialTimeout = 2 * time.Second // one connection attempt to one node, when there are several
	DefaultRetries      = 5
	DefaultTimeout      = 30 * time.Second
	DefaultDeadline     = 15 * time.Minute
)

// Store is the adapter. Safe for concurrent use.
type Store struct {
	retries  int           // retries of kfs's own requests
	deadline time.Duration // of one operation

	c    *minio.Client
	core minio.Core
	hc   *http.Client // for the signed metadata listings minio-go cannot make page by page

	regionName string

	lm         metaFiller // metadata of listings from servers without the extension
	noListMeta func()
	server     *atomic.Value // string: the Server header of the answers
}

// New builds the client. It does not touch the network.
func New(cfg Config) (*Store, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	tr, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = 256
	tr.ResponseHeaderTimeout = 0 // the watchdog bounds waiting, by kind of request
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	cfg.Retries = max(cfg.Retries, 0)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	tr.WriteBufferSize, tr.ReadBufferSize = 256<<10, 256<<10
	if err := failover(tr, u, cfg); err != nil {
		return nil, err
	}
	if u.Scheme == "https" && cfg.CAFile != "" {
		if tr.TLSClientConfig, err = caPool(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	server := &atomic.Value{}
	var rt http.RoundTripper = serverName{next: watchdog{next: tr, idle: cfg.Timeout, slow: 20 * cfg.Timeout}, name: server}
	if cfg.Observe != nil || cfg.Trace != nil {
		rt = observed{next: rt, obs: cfg.Observe, trace: cfg.Trace}
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:     u.Scheme == "https",
		Region:     cfg.Region,
		Transport:  rt,
		MaxRetries: cfg.Retries + 1, // minio-go counts attempts
	})
	if err != nil {
		return nil, err
	}
	return &Store{c: c, core: minio.Core{Client: c}, hc: &http.Client{Transport: rt}, regionName: cfg.Region,
		retries: cfg.Retries, deadline: cfg.Deadline, noListMeta: cfg.NoListMeta, server: server}, nil
}

// failover makes tr dial the next node of cfg.Failover when the one in use
// does not answer (nothing without a failover list).
func failover(tr *http.Transport, u *url.URL, cfg Config) error {
	if len(cfg.Failover) == 0 {
		return nil
	}
	n := &nodes{primary: hostPort(u), addrs: []string{hostPort(u)}, perTry: failoverDialTimeout,
		dial: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext}
	for _, f := range cfg.Failover {
		fu, err := url.Parse(f)
		if err != nil || fu.Scheme != u.Scheme || fu.Host == "" {
			return fmt.Errorf("failover endpoint %q: want %s://host[:port] like the endpoint", f, u.Scheme)
		}
		n.addrs = append(n.addrs, hostPort(fu))
	}
	n.onSwitch = func(from, to string) {
		tr.CloseIdleConnections() // kept connections may lead to the node that went
		if cfg.OnFailover != nil {
			cfg.OnFailover(from, to)
		}
	}
	tr.DialContext = n.DialContext
	return nil
}

// caPool is a TLS configuration trusting the certificates of file.
func caPool(file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s: no PEM certificates in it", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// mapErr turns an SDK error into one wrapping a store sentinel, keeping
// the S3 code and message for the log. It is the only classifier of S3
// answers in kfs.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return fmt.Errorf("%s: %w", what, err) // transport: could not reach the server
	}
	s := sentinel(er)
	if s == io.EOF {
		return fmt.Errorf("%s: %s: %w", what, er.Code, io.EOF)
	}
	msg := er.Message
	if msg == "" {
		msg = http.StatusText(er.StatusCode)
	}
	return fmt.Errorf("%s: S3 %s: %s: %w", what, er.Code, msg, s)
}

// codeSentinels maps S3 error codes to the store's sentinels.
var codeSentinels = map[string]error{
	"NoSuchKey": store.ErrNotFound, "NoSuchBucket": store.ErrNotFound, "NoSuchVersion": store.ErrNotFound,
	"NotFound": store.ErrNotFound, "NoSuchBucketPolicy": store.ErrNotFound,
	"NoSuchUpload":       store.ErrUploadGone, // the upload is gone (aborted underneath), not the file
	"PreconditionFailed": store.ErrStale,
	"InvalidRange":       io.EOF,
	"AccessDenied":       store.ErrAccessDenied, "InvalidAccessKeyId": store.ErrAccessDenied,
	"SignatureDoesNotMatch": store.ErrAccessDenied, "AllAccessDisabled": store.ErrAccessDenied,
	"XMinioAdminBucketQuotaExceeded": store.ErrQuota, "QuotaExceeded": store.ErrQuota,
	"EntityTooLarge":   store.ErrTooLarge,
	"MetadataTooLarge": store.ErrMetaTooLarge,
	"KeyTooLongError":  store.ErrNameTooLong, "XMinioInvalidObjectName": store.ErrNameTooLong,
	"ObjectLockConfigurationNotFoundError": store.ErrNoObjectLock,
	"ObjectLocked":                         store.ErrLocked,
	"BucketAlreadyExists":                  store.ErrExists, "BucketAlreadyOwnedByYou": store.ErrExists,
	"BucketNotEmpty": store.ErrNotEmpty,
	"NotImplemented": store.ErrUnsupported,
}

func sentinel(er minio.ErrorResponse) error {
	if strings.HasPrefix(strings.ToLower(er.Code), "kms") || strings.HasPrefix(er.Code, "XMinioKMS") {
		return store.ErrInvalid // a missing or refused KMS key is a bad request, not a missing object
	}
	if er.Code == "InvalidRequest" {
		// S3 gives one code for several causes; its message is the only
		// way to tell a bucket without object lock or a locked version
		// from a malformed request.
		switch m := strings.ToLower(er.Message); {
		case strings.Contains(m, "objectlockconfiguration") || strings.Contains(m, "object lock configuration"):
			return store.ErrNoObjectLock
		case strings.Contains(m, "worm"):
			return store.ErrLocked
		}
		return store.ErrInvalid
	}
	if s, ok := codeSentinels[er.Code]; ok {
		return s
	}
	switch {
	case er.StatusCode == http.StatusNotFound:
		return store.ErrNotFound
	case er.StatusCode == http.StatusPreconditionFailed:
		return store.ErrStale
	case er.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return io.EOF
	case er.StatusCode == http.StatusForbidden:
		return store.ErrAccessDenied
	case er.StatusCode == http.StatusNotImplemented:
		return store.ErrUnsupported
	case er.StatusCode >= 500:
		return store.ErrUnavailable
	case er.StatusCode >= 400:
		return store.ErrInvalid
	}
	return store.ErrUnavailable
}

func trimETag(s string) string { return strings.Trim(s, `"`) }

// lowerKeys keeps user metadata keyed lower-case without "x-amz-meta-".
func lowerKeys(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-")] = v
	}
	return out
}

func fromObjectInfo(oi minio.ObjectInfo) store.ObjectInfo {
	info := store.ObjectInfo{Key: oi.Key, Size: oi.Size, ETag: trimETag(oi.ETag), LastModified: oi.LastModified,
		ContentType: oi.ContentType, Meta: lowerKeys(oi.UserMetadata), VersionID: oi.VersionID,
		StorageClass: oi.StorageClass, TagCount: oi.UserTagCount}
	if info.Meta == nil {
		info.Meta = map[string]string{}
	}
	if m := oi.Metadata.Get("X-Amz-Object-Lock-Mode"); m != "" {
		info.LockMode = m
		if t, err := time.Parse(time.RFC3339, oi.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date")); err == nil {
			info.LockUntil = t.UTC()
		}
	}
	info.LegalHold = oi.Metadata.Get("X-Amz-Object-Lock-Legal-Hold") == "ON"
	return info
}

// ListBuckets lists the buckets the credentials can see.
func (s *Store) ListBuckets(ctx context.Context) ([]store.BucketInfo, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	bs, err := s.c.ListBuckets(ctx)
	if err != nil {
		return nil, mapErr(err, "list buckets")
	}
	out := make([]store.BucketInfo, len(bs))
	for i, b := range bs {
		out[i] = store.BucketInfo{Name: b.Name, Created: b.CreationDate}
	}
	return out, nil
}

// StatBucket returns nil when the bucket exists and can be reached.
func (s *Store) StatBucket(ctx context.Context, bucket string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ok, err := s.c.BucketExists(ctx, bucket)
	if err != nil {
		return mapErr(err, "bucket "+bucket)
	}
	if !ok {
		return fmt.Errorf("bucket %s: %w", bucket, store.ErrNotFound)
	}
	return nil
}

// MakeBucket creates a bucket.
func (s *Store) MakeBucket(ctx context.Context, bucket string, o store.MakeBucketOptions) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: o.Region, ObjectLocking: o.ObjectLock}); err != nil {
		return mapErr(err, "make bucket "+bucket)
	}
	if o.Versioning && !o.ObjectLock {
		if err := s.c.EnableVersioning(ctx, bucket); err != nil {
			return mapErr(err, "enable versioning of "+bucket)
		}
	}
	return nil
}

// RemoveBucket deletes an empty bucket.
func (s *Store) RemoveBucket(ctx context.Context, bucket string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return mapErr(s.c.RemoveBucket(ctx, bucket), "remove bucket "+bucket)
}

// Stat returns an object's (or a version's) facts: a HEAD.
func (s *Store) Stat(ctx context.Context, o store.ObjectRef) (store.ObjectInfo, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	oi, err := s.c.StatObject(ctx, o.Bucket, o.Key, minio.StatObjectOptions{VersionID: o.VersionID})
	if err != nil {
		return store.ObjectInfo{}, mapErr(err, o.Bucket+"/"+o.Key)
	}
	return fromObjectInfo(oi), nil
}

// ReadAt reads len(p) bytes at off of the object; fewer only where the
// object ends. With etag set, the read is refused with ErrStale unless the
// object still has that ETag. An answer
// cut short (a reset, a proxy giving up) is resumed where it stopped, a
// bounded number of times with backoff: a short body is never taken for
// the end of the object.
func (s *Store) ReadAt(ctx context.Context, req store.ReadRequest, p []byte) (int, error) {
	bucket, key, etag, off := req.Bucket, req.Key, req.ETag, req.Offset
	ctx, cancel := s.bound(ctx)
	defer cancel()
	got := 0
	for attempt := 0; got < len(p); attempt++ {
		n, end, err := s.readRange(ctx, bucket, key, etag, p[got:], off+int64(got))
		got += n
		if err == nil && (end || n == 0) {
			return got, nil // the object ends here
		}
		if err == nil && n > 0 {
			attempt = -1 // progress: the next cut gets its full retries again
			continue
		}
		if !retryable(err) || attempt >= s.retries {
			return got, err
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return got, err
		}
	}
	return got, nil
}

// readRange is one ranged GET into p: the bytes it got, whether the object
// ends within the range, and an error when the answer was cut short.
func (s *Store) readRange(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, bool, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, false, err
	}
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return 0, false, err
		}
	}
	body, info, _, err := s.core.GetObject(ctx, bucket, key, opts)
	if err != nil {
		err = mapErr(err, bucket+"/"+key)
		if errors.Is(err, io.EOF) {
			return 0, true, nil // off is at or past the end
		}
		return 0, false, err
	}
	defer body.Close()
	want := min(info.Size, int64(len(p))) // the length of the range the server sends
	n, err := io.ReadFull(body, p[:want])
	if err != nil {
		return n, false, fmt.Errorf("read %s/%s at %d: got %d of %d bytes: %w: %w", bucket, key, off, n, want, err, store.ErrUnavailable)
	}
	return n, want < int64(len(p)), nil
}

// Get streams an object (or a version) from the start.
func (s *Store) Get(ctx context.Context, req store.GetRequest) (io.ReadCloser, store.ObjectInfo, error) {
	o, r := req.ObjectRef, req.Range
	opts := minio.GetObjectOptions{VersionID: o.VersionID}
	if r.Offset > 0 || r.Length > 0 {
		end := int64(0)
		if r.Length > 0 {
			end = r.Offset + r.Length - 1
		}
		if err := opts.SetRange(r.Offset, end); err != nil {
			return nil, store.ObjectInfo{}, fmt.Errorf("range %d+%d: %w", r.Offset, r.Length, store.ErrInvalid)
		}
	}
	body, oi, _, err := s.core.GetObject(ctx, o.Bucket, o.Key, opts)
	if err != nil {
		return nil, store.ObjectInfo{}, mapErr(err, o.Bucket+"/"+o.Key)
	}
	return body, fromObjectInfo(oi), nil
}

// The store implements every capability.
var _ store.All = (*Store)(nil)
