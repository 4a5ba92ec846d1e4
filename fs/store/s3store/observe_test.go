package s3store

import (
	"net/url"
	"testing"
)

func TestOperation(t *testing.T) {
	for _, c := range []struct{ method, target, want string }{
		{"GET", "/", "ListBuckets"},
		{"GET", "/b/?list-type=2&prefix=a%2F&delimiter=%2F", "ListObjectsV2"},
		{"GET", "/b?list-type=2&metadata=true", "ListObjectsV2"},
		{"HEAD", "/b/", "HeadBucket"},
		{"PUT", "/b", "CreateBucket"},
		{"DELETE", "/b/", "DeleteBucket"},
		{"GET", "/b/?location=", "GetBucketLocation"},
		{"GET", "/b/k", "GetObject"},
		{"GET", "/b/dir/k.csv", "GetObject"},
		{"HEAD", "/b/k", "HeadObject"},
		{"PUT", "/b/k", "PutObject"},
		{"DELETE", "/b/k", "DeleteObject"},
		{"POST", "/b/?delete=", "DeleteObjects"},
		{"POST", "/b/k?uploads=", "CreateMultipartUpload"},
		{"GET", "/b/?uploads=&prefix=k", "ListMultipartUploads"},
		{"PUT", "/b/k?partNumber=3&uploadId=x", "UploadPart"},
		{"POST", "/b/k?uploadId=x", "CompleteMultipartUpload"},
		{"DELETE", "/b/k?uploadId=x", "AbortMultipartUpload"},
		{"GET", "/b/k?uploadId=x", "ListParts"},
		{"GET", "/b/k?tagging=", "GetObjectTagging"},
		{"PUT", "/b/k?tagging=", "PutObjectTagging"},
		{"DELETE", "/b/k?tagging=", "DeleteObjectTagging"},
		{"GET", "/b/?tagging=", "GetBucketTagging"},
		{"PUT", "/b/k?retention=", "PutObjectRetention"},
		{"GET", "/b/k?legal-hold=", "GetObjectLegalHold"},
		{"PUT", "/b/?versioning=", "PutBucketVersioning"},
		{"GET", "/b/?encryption=", "GetBucketEncryption"},
		{"DELETE", "/b/?lifecycle=", "DeleteBucketLifecycle"},
		{"PUT", "/b/?notification=", "PutBucketNotification"},
		{"GET", "/b/?policy=", "GetBucketPolicy"},
		{"PUT", "/b/?object-lock=", "PutBucketObjectLockConfiguration"},
		{"GET", "/b/?versions=&prefix=k", "ListObjectVersions"},
		{"POST", "/b/k?select=&select-type=2", "SelectObjectContent"},
		{"GET", "/b/?events=s3%3AObjectCreated%3A%2A", "ListenNotification"},
	} {
		u, err := url.Parse(c.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := Operation(c.method, u.Path, u.Query()); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.method, c.target, got, c.want)
		}
	}
}
