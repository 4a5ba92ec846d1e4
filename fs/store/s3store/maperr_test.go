package s3store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"kfs/fs/store"
)

// The classifier of S3 answers, case by case: the code first, the
// message where S3 gives one code for several causes, the status last.
func TestMapErr(t *testing.T) {
	resp := func(status int, code, msg string) error {
		return minio.ErrorResponse{StatusCode: status, Code: code, Message: msg}
	}
	for _, c := range []struct {
		err  error
		want error
	}{
		{resp(404, "NoSuchKey", "The specified key does not exist."), store.ErrNotFound},
		{resp(404, "NoSuchBucket", ""), store.ErrNotFound},
		{resp(404, "NoSuchVersion", ""), store.ErrNotFound},
		{resp(404, "NoSuchBucketPolicy", ""), store.ErrNotFound},
		{resp(404, "NoSuchUpload", ""), store.ErrUploadGone},
		{resp(412, "PreconditionFailed", ""), store.ErrStale},
		{resp(416, "InvalidRange", ""), io.EOF},
		{resp(403, "AccessDenied", ""), store.ErrAccessDenied},
		{resp(403, "InvalidAccessKeyId", ""), store.ErrAccessDenied},
		{resp(403, "SignatureDoesNotMatch", ""), store.ErrAccessDenied},
		{resp(400, "XMinioAdminBucketQuotaExceeded", ""), store.ErrQuota},
		{resp(400, "EntityTooLarge", ""), store.ErrTooLarge},
		{resp(400, "MetadataTooLarge", ""), store.ErrMetaTooLarge},
		{resp(400, "KeyTooLongError", ""), store.ErrNameTooLong},
		{resp(404, "ObjectLockConfigurationNotFoundError", ""), store.ErrNoObjectLock},
		{resp(400, "ObjectLocked", ""), store.ErrLocked},
		{resp(409, "BucketAlreadyOwnedByYou", ""), store.ErrExists},
		{resp(409, "BucketAlreadyExists", ""), store.ErrExists},
		{resp(409, "BucketNotEmpty", ""), store.ErrNotEmpty},
		{resp(501, "NotImplemented", ""), store.ErrUnsupported},
		{resp(400, "InvalidRequest", "Bucket is missing Object Lock Configuration"), store.ErrNoObjectLock},
		{resp(400, "InvalidRequest", "Object is WORM protected and cannot be overwritten"), store.ErrLocked},
		{resp(400, "InvalidRequest", "Invalid Request"), store.ErrInvalid},
		{resp(400, "KMS.NotFoundException", ""), store.ErrInvalid},
		{resp(400, "XMinioKMSKeyNotFound", ""), store.ErrInvalid},
		{resp(503, "SlowDown", ""), store.ErrUnavailable},
		{resp(500, "InternalError", ""), store.ErrUnavailable},
		{resp(404, "", ""), store.ErrNotFound},
		{resp(412, "", ""), store.ErrStale},
		{resp(403, "", ""), store.ErrAccessDenied},
		{resp(501, "", ""), store.ErrUnsupported},
		{resp(502, "", ""), store.ErrUnavailable},
		{resp(400, "SomethingNew", ""), store.ErrInvalid},
		{context.Canceled, context.Canceled},
		{context.DeadlineExceeded, context.DeadlineExceeded},
	} {
		got := mapErr(c.err, "op")
		if !errors.Is(got, c.want) {
			t.Errorf("mapErr(%v) = %v, want %v", c.err, got, c.want)
		}
		if !strings.HasPrefix(got.Error(), "op: ") {
			t.Errorf("mapErr(%v) = %q: the operation is not named first", c.err, got)
		}
	}
	if mapErr(nil, "op") != nil {
		t.Error("mapErr(nil) is not nil")
	}
	// A transport failure stays what it was (retried, then EIO).
	netErr := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	if got := mapErr(netErr, "op"); !errors.As(got, new(*net.OpError)) {
		t.Errorf("a transport error lost its type: %v", got)
	}
}
