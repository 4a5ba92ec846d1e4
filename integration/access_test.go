package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// readOnlyCreds asks MinIO's STS for temporary credentials limited by an
// inline policy to reading bucket.
func readOnlyCreds(t *testing.T, bucket string) credentials.Value {
	t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:GetBucketLocation","s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`, bucket, bucket)
	c, err := credentials.NewSTSAssumeRole(srv.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Policy: policy, Location: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetWithContext(&credentials.CredContext{Endpoint: srv.Endpoint})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	return v
}

// The store refusing a change (AccessDenied) reaches the caller as EACCES,
// with a log line naming the S3 error; reading still works.
func TestAccessDeniedIsEACCES(t *testing.T) {
	b := newBucket(t)
	put(t, b, "readable.txt", []byte("you may read this"))
	v := readOnlyCreds(t, b)
	dir := t.TempDir()
	mnt := dir + "/mnt"
	os.Mkdir(mnt, 0o755)
	env := []string{"PATH=" + os.Getenv("PATH"), "KFS_ENDPOINT=" + srv.Endpoint, "KFS_ACCESS_KEY=" + v.AccessKeyID,
		"KFS_SECRET_KEY=" + v.SecretAccessKey, "KFS_SESSION_TOKEN=" + v.SessionToken}
	logPath := dir + "/kfs.log"
	if code, stderr := runKFS(t, env, "mount", "--daemon", "--log-file", logPath, b, mnt); code != 0 {
		t.Fatalf("mount with read-only credentials: %d %s", code, stderr)
	}
	defer runKFS(t, env, "unmount", mnt)
	if got, err := os.ReadFile(mnt + "/readable.txt"); err != nil || string(got) != "you may read this" {
		t.Fatalf("read: %q %v", got, err)
	}
	err := os.WriteFile(mnt+"/new.txt", []byte("no"), 0o644)
	if !errors.Is(err, syscall.EACCES) {
		t.Fatalf("write with read-only credentials: %v, want EACCES", err)
	}
	if err := os.Mkdir(mnt+"/d", 0o755); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("mkdir with read-only credentials: %v, want EACCES", err)
	}
	logText, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logText), "AccessDenied") {
		t.Fatalf("no log line names the S3 error:\n%s", logText)
	}
	if _, err := client(t).StatObject(context.Background(), b, "new.txt", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a refused write left an object")
	}
}
