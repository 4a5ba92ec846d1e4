package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/pkg/xattr"
)

func newLockedBucket(t *testing.T) string {
	t.Helper()
	name := "l-" + strings.ToLower(randomHex(6))
	if err := client(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestRetentionAndLegalHold(t *testing.T) {
	b := newLockedBucket(t)
	plain := newBucket(t)
	put(t, b, "gov.txt", []byte("g"))
	put(t, b, "comp.txt", []byte("c"))
	put(t, plain, "p.txt", []byte("p"))
	m := mountKFS(t)
	ctx := context.Background()
	gov, comp := m.path(b, "gov.txt"), m.path(b, "comp.txt")
	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	sooner := later.Add(-24 * time.Hour)

	sh(t, "setfattr", "-n", "user.s3.retention", "-v", "GOVERNANCE "+later.Format(time.RFC3339), gov)
	mode, until, err := client(t).GetObjectRetention(ctx, b, "gov.txt", "")
	if err != nil || mode == nil || *mode != minio.Governance || !until.Equal(later) {
		t.Fatalf("SDK retention: %v %v %v", mode, until, err)
	}
	if out := sh(t, "getfattr", "--only-values", "-n", "user.s3.retention", gov); out != "GOVERNANCE "+later.Format(time.RFC3339) {
		t.Fatalf("getfattr retention: %q", out)
	}
	if err := xattr.Set(gov, "user.s3.retention", []byte("GOVERNANCE "+sooner.Format(time.RFC3339))); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("shortening GOVERNANCE without bypass: %v, want EPERM", err)
	}
	sh(t, "setfattr", "-n", "user.s3.retention", "-v", "GOVERNANCE "+sooner.Format(time.RFC3339)+" bypass", gov)
	if _, until, _ := client(t).GetObjectRetention(ctx, b, "gov.txt", ""); !until.Equal(sooner) {
		t.Fatalf("after bypass: %v", until)
	}
	sh(t, "setfattr", "-n", "user.s3.retention", "-v", "NONE bypass", gov)
	if mode, _, _ := client(t).GetObjectRetention(ctx, b, "gov.txt", ""); mode != nil && *mode != "" {
		t.Fatalf("retention not cleared: %v", *mode)
	}

	sh(t, "setfattr", "-n", "user.s3.retention", "-v", "COMPLIANCE "+sooner.Format(time.RFC3339), comp)
	for _, v := range []string{"COMPLIANCE " + sooner.Add(-time.Hour).Format(time.RFC3339) + " bypass", "NONE bypass", "GOVERNANCE " + later.Format(time.RFC3339)} {
		if err := xattr.Set(comp, "user.s3.retention", []byte(v)); !errors.Is(err, syscall.EPERM) {
			t.Errorf("weakening COMPLIANCE with %q: %v, want EPERM", v, err)
		}
	}
	if err := xattr.Set(comp, "user.s3.retention", []byte("GOVERNANCE someday")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("malformed date: %v", err)
	}
	if err := xattr.Set(comp, "user.s3.retention", []byte("LOCKED "+later.Format(time.RFC3339))); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unknown mode: %v", err)
	}

	sh(t, "setfattr", "-n", "user.s3.legal-hold", "-v", "ON", gov)
	if st, err := client(t).GetObjectLegalHold(ctx, b, "gov.txt", minio.GetObjectLegalHoldOptions{}); err != nil || *st != minio.LegalHoldEnabled {
		t.Fatalf("SDK legal hold: %v %v", st, err)
	}
	if v, _ := xattr.Get(gov, "user.s3.legal-hold"); string(v) != "ON" {
		t.Fatalf("get legal hold: %q", v)
	}
	sh(t, "setfattr", "-n", "user.s3.legal-hold", "-v", "OFF", gov)
	if st, _ := client(t).GetObjectLegalHold(ctx, b, "gov.txt", minio.GetObjectLegalHoldOptions{}); *st != minio.LegalHoldDisabled {
		t.Fatalf("legal hold still on: %v", *st)
	}
	if v, err := xattr.Get(gov, "user.s3.version-id"); err != nil || len(v) == 0 {
		t.Fatalf("version id on a versioned bucket: %q %v", v, err)
	}
	if list := sh(t, "getfattr", "-n", "user.s3.retention", comp); !strings.Contains(list, "user.s3.retention=") {
		t.Errorf("getfattr -n of the retention:\n%s", list)
	}

	// A bucket without object lock: ENOTSUP.
	pp := m.path(plain, "p.txt")
	if err := xattr.Set(pp, "user.s3.retention", []byte("GOVERNANCE "+later.Format(time.RFC3339))); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("retention without object lock: %v, want ENOTSUP", err)
	}
	if err := xattr.Set(pp, "user.s3.legal-hold", []byte("ON")); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("legal hold without object lock: %v, want ENOTSUP", err)
	}
}

// Attributes set on a file still being written go with its upload.
func TestXattrsOnFileBeingWritten(t *testing.T) {
	b := newLockedBucket(t)
	m := mountKFS(t, b)
	f, err := os.Create(m.path("report.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("a,b\n")
	later := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	for name, v := range map[string]string{"user.s3.tag.stage": "draft", "user.s3.meta.owner": "me",
		"user.s3.retention": "GOVERNANCE " + later.Format(time.RFC3339), "user.s3.legal-hold": "ON"} {
		if err := xattr.FSet(f, name, []byte(v)); err != nil {
			t.Fatalf("setxattr %s on an open file: %v", name, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := sdkTags(t, b, "report.csv"); fmt.Sprint(got) != "map[stage:draft]" {
		t.Errorf("tags: %v", got)
	}
	st, _ := client(t).StatObject(ctx, b, "report.csv", minio.StatObjectOptions{})
	if st.UserMetadata["Owner"] != "me" || !strings.HasPrefix(st.ContentType, "text/csv") {
		t.Errorf("metadata %v, content type %q", st.UserMetadata, st.ContentType)
	}
	if mode, until, err := client(t).GetObjectRetention(ctx, b, "report.csv", ""); err != nil || mode == nil || *mode != minio.Governance || !until.Equal(later) {
		t.Errorf("retention: %v %v %v", mode, until, err)
	}
	if lh, err := client(t).GetObjectLegalHold(ctx, b, "report.csv", minio.GetObjectLegalHoldOptions{}); err != nil || *lh != minio.LegalHoldEnabled {
		t.Errorf("legal hold: %v %v", lh, err)
	}
	// cp then setfattr on the closed file also works.
	sh(t, "cp", writeLocal(t, []byte("x")), m.path("after.txt"))
	sh(t, "setfattr", "-n", "user.s3.tag.k", "-v", "v", m.path("after.txt"))
	if got := sdkTags(t, b, "after.txt"); got["k"] != "v" {
		t.Errorf("tag after cp: %v", got)
	}
	// Editing a tagged file keeps its tags.
	sh(t, "sh", "-c", "echo more >> "+m.path("after.txt"))
	if got := sdkTags(t, b, "after.txt"); got["k"] != "v" {
		t.Errorf("tags after an append: %v", got)
	}
}

func TestBucketSettingsAsXattrs(t *testing.T) {
	locked := newLockedBucket(t)
	b := newBucket(t)
	m := mountKFS(t)
	ctx := context.Background()
	if v, _ := xattr.Get(m.path(locked), "user.s3.versioning"); string(v) != "Enabled" {
		t.Errorf("versioning of a locked bucket: %q", v)
	}
	if v, _ := xattr.Get(m.path(locked), "user.s3.object-lock"); !strings.HasPrefix(string(v), "Enabled") {
		t.Errorf("object-lock: %q", v)
	}
	if _, err := xattr.Get(m.path(b), "user.s3.versioning"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("versioning never set: %v", err)
	}
	sh(t, "setfattr", "-n", "user.s3.versioning", "-v", "Enabled", m.path(b))
	if v, _ := client(t).GetBucketVersioning(ctx, b); v.Status != "Enabled" {
		t.Errorf("SDK versioning: %q", v.Status)
	}
	sh(t, "setfattr", "-n", "user.s3.versioning", "-v", "Suspended", m.path(b))
	if v, _ := client(t).GetBucketVersioning(ctx, b); v.Status != "Suspended" {
		t.Errorf("SDK versioning: %q", v.Status)
	}
	if err := xattr.Set(m.path(b), "user.s3.versioning", []byte("Sometimes")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad versioning value: %v", err)
	}
	sh(t, "setfattr", "-n", "user.s3.encryption", "-v", "SSE-S3", m.path(b))
	if cfg, err := client(t).GetBucketEncryption(ctx, b); err != nil || len(cfg.Rules) == 0 {
		t.Errorf("SDK encryption: %v %v", cfg, err)
	}
	if v, _ := xattr.Get(m.path(b), "user.s3.encryption"); string(v) != "SSE-S3" {
		t.Errorf("get encryption: %q", v)
	}
	sh(t, "setfattr", "-x", "user.s3.encryption", m.path(b))
	if _, err := client(t).GetBucketEncryption(ctx, b); err == nil {
		t.Error("encryption still configured after removal")
	}
	sh(t, "setfattr", "-n", "user.s3.tag.cost-center", "-v", "42", m.path(b))
	if tg, err := client(t).GetBucketTagging(ctx, b); err != nil || tg.ToMap()["cost-center"] != "42" {
		t.Errorf("SDK bucket tags: %v %v", tg, err)
	}
	rule := `{"Rules":[{"ID":"expire-tmp","Status":"Enabled","Filter":{"Prefix":"tmp/"},"Expiration":{"Days":7}}]}`
	sh(t, "setfattr", "-n", "user.s3.lifecycle", "-v", rule, m.path(b))
	if lc, err := client(t).GetBucketLifecycle(ctx, b); err != nil || len(lc.Rules) != 1 || lc.Rules[0].Expiration.Days != 7 {
		t.Errorf("SDK lifecycle: %+v %v", lc, err)
	}
	if v, _ := xattr.Get(m.path(b), "user.s3.lifecycle"); !strings.Contains(string(v), "expire-tmp") {
		t.Errorf("get lifecycle: %s", v)
	}
	if err := xattr.Set(m.path(b), "user.s3.lifecycle", []byte("{not json")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad lifecycle: %v", err)
	}
	for _, name := range []string{"user.s3.versioning", "user.s3.lifecycle", "user.s3.tag.cost-center"} {
		if out := sh(t, "getfattr", "-n", name, m.path(b)); !strings.Contains(out, name+"=") {
			t.Errorf("getfattr -n %s of the bucket:\n%s", name, out)
		}
	}
	if out := sh(t, "getfattr", "-d", "-m", "-", m.path(b)); strings.Contains(out, "user.s3.") {
		t.Errorf("getfattr -d of the bucket lists its settings (a copy of the directory would try to carry them):\n%s", out)
	}
}
