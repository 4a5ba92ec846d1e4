package fs

import (
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
)

// S3 errors become the errno the issue names, each through one sentinel.
func TestMapErrToErrno(t *testing.T) {
	cases := []struct {
		er   minio.ErrorResponse
		want syscall.Errno
	}{
		{minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, syscall.ENOENT},
		{minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, syscall.ENOENT},
		{minio.ErrorResponse{Code: "PreconditionFailed", StatusCode: 412}, syscall.ESTALE},
		{minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, syscall.EACCES},
		{minio.ErrorResponse{Code: "XMinioAdminBucketQuotaExceeded", StatusCode: 400}, syscall.EDQUOT},
		{minio.ErrorResponse{Code: "InvalidRequest", Message: "Object is WORM protected and cannot be overwritten", StatusCode: 400}, syscall.EPERM},
		{minio.ErrorResponse{Code: "NotImplemented", StatusCode: 501}, syscall.ENOTSUP},
		{minio.ErrorResponse{Code: "EntityTooLarge", StatusCode: 400}, syscall.EFBIG},
		{minio.ErrorResponse{Code: "InternalError", StatusCode: http.StatusInternalServerError}, syscall.EIO},
	}
	for _, c := range cases {
		err := mapErr(c.er, "op")
		if got := toErrno(nil, "", err); got != c.want {
			t.Errorf("%s: %v, want %v (%v)", c.er.Code, got, c.want, err)
		}
	}
	if err := mapErr(minio.ErrorResponse{Code: "InvalidRange", StatusCode: 416}, "op"); !errors.Is(err, io.EOF) {
		t.Errorf("InvalidRange: %v", err)
	}
}
