package s3store

import (
	"net/http"
	"strings"
	"time"
)

// Observer learns of every HTTP request sent to the store: the S3
// operation it is, its HTTP status (0 when no answer came) and how long
// it took until the answer's headers.
type Observer func(op string, status int, d time.Duration)

// Tracer learns of every request with its target: the operation, the
// path (/bucket/key), the copy source of a copy, the status and the time
// until the answer's headers.
type Tracer func(op, path, copySource string, status int, d time.Duration)

// observed is a RoundTripper that reports each request to obs and trace
// (either may be nil).
type observed struct {
	next  http.RoundTripper
	obs   Observer
	trace Tracer
}

func (o observed) RoundTrip(r *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := o.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	op := Operation(r.Method, r.URL.Path, r.URL.Query())
	if o.obs != nil {
		o.obs(op, status, time.Since(t0))
	}
	if o.trace != nil {
		o.trace(op, r.URL.Path, r.Header.Get("X-Amz-Copy-Source"), status, time.Since(t0))
	}
	return resp, err
}

// Operation names the S3 API call of a request (path-style addressing,
// as kfs uses): PutObject, UploadPart, ListObjectsV2, GetObjectTagging...
func Operation(method, path string, q map[string][]string) string {
	has := func(k string) bool { _, ok := q[k]; return ok }
	p := strings.TrimPrefix(path, "/")
	bucketOnly := p != "" && !strings.Contains(strings.TrimSuffix(p, "/"), "/")
	switch {
	case p == "":
		return "ListBuckets"
	case has("uploadId") && method == http.MethodPut && has("partNumber"):
		return "UploadPart" // also UploadPartCopy (the header says which)
	case has("uploadId") && method == http.MethodPost:
		return "CompleteMultipartUpload"
	case has("uploadId") && method == http.MethodDelete:
		return "AbortMultipartUpload"
	case has("uploadId"):
		return "ListParts"
	case has("uploads"):
		if method == http.MethodPost {
			return "CreateMultipartUpload"
		}
		return "ListMultipartUploads"
	case has("delete"):
		return "DeleteObjects"
	case has("select"):
		return "SelectObjectContent"
	case has("events"):
		return "ListenNotification"
	}
	if op := subresourceOp(method, bucketOnly, has); op != "" {
		return op
	}
	if bucketOnly {
		switch method {
		case http.MethodGet:
			return "ListObjectsV2"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPut:
			return "CreateBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		}
	}
	switch method {
	case http.MethodGet:
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodPut:
		return "PutObject" // also CopyObject
	case http.MethodDelete:
		return "DeleteObject"
	}
	return method
}

// subresourceOp names a call on a subresource of an object or a bucket
// (?tagging, ?retention, ?versioning, ...), "" when the query names none.
func subresourceOp(method string, bucketOnly bool, has func(string) bool) string {
	for _, sub := range []struct{ q, name string }{
		{"tagging", "Tagging"}, {"retention", "Retention"}, {"legal-hold", "LegalHold"},
		{"versioning", "Versioning"}, {"encryption", "Encryption"}, {"lifecycle", "Lifecycle"},
		{"notification", "Notification"}, {"policy", "Policy"}, {"object-lock", "ObjectLockConfiguration"},
		{"location", "Location"}, {"versions", "Versions"},
	} {
		if !has(sub.q) {
			continue
		}
		what := "Object"
		if bucketOnly {
			what = "Bucket"
		}
		switch {
		case sub.q == "versions":
			return "ListObjectVersions"
		case sub.q == "location":
			return "GetBucketLocation"
		case method == http.MethodGet:
			return "Get" + what + sub.name
		case method == http.MethodDelete:
			return "Delete" + what + sub.name
		default:
			return "Put" + what + sub.name
		}
	}
	return ""
}
