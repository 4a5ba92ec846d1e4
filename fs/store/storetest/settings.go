package storetest

import (
	"errors"
	"fmt"
	"kfs/fs/store"
	"net/url"
	"strings"
	"testing"
	"time"
)

func retention(t *testing.T, e Env) {
	e.Put("plain", []byte("x"))
	if _, err := e.Store.GetRetention(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "plain"}); !errors.Is(err, store.ErrNoObjectLock) {
		t.Fatalf("retention on a bucket without lock: %v, want ErrNoObjectLock", err)
	}
	if err := e.Store.PutLegalHold(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "plain"}, true); !errors.Is(err, store.ErrNoObjectLock) {
		t.Fatalf("legal hold on a bucket without lock: %v, want ErrNoObjectLock", err)
	}
	lb := e.NewBucketName()
	if err := e.Store.MakeBucket(ctx, lb, store.MakeBucketOptions{ObjectLock: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: lb, Key: "f", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if r, err := e.Store.GetRetention(ctx, store.ObjectRef{Bucket: lb, Key: "f"}); err != nil || r.Mode != "" {
		t.Fatalf("retention of an object without one: %+v %v", r, err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := e.Store.PutRetention(ctx, store.RetentionRequest{ObjectRef: store.ObjectRef{Bucket: lb, Key: "f"}, Retention: store.Retention{Mode: "GOVERNANCE", Until: until}}); err != nil {
		t.Fatal(err)
	}
	r, err := e.Store.GetRetention(ctx, store.ObjectRef{Bucket: lb, Key: "f"})
	mode, got := r.Mode, r.Until
	if err != nil || mode != "GOVERNANCE" || !got.Equal(until) {
		t.Fatalf("retention = %q %v %v", mode, got, err)
	}
	if err := e.Store.PutRetention(ctx, store.RetentionRequest{ObjectRef: store.ObjectRef{Bucket: lb, Key: "f"}, Retention: store.Retention{Mode: "GOVERNANCE", Until: time.Now().Add(-time.Hour)}, Bypass: true}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("retention in the past: %v, want ErrInvalid", err)
	}
	err = e.Store.PutRetention(ctx, store.RetentionRequest{ObjectRef: store.ObjectRef{Bucket: lb, Key: "f"}, Bypass: true})
	switch {
	case e.Limits.NoRetentionClear && !errors.Is(err, store.ErrInvalid):
		t.Fatalf("clearing GOVERNANCE with bypass on a server that refuses it: %v, want ErrInvalid", err)
	case !e.Limits.NoRetentionClear && err != nil:
		t.Fatalf("clearing GOVERNANCE with bypass: %v", err)
	}
	if on, err := e.Store.GetLegalHold(ctx, store.ObjectRef{Bucket: lb, Key: "f"}); err != nil || on {
		t.Fatalf("legal hold before: %v %v", on, err)
	}
	if err := e.Store.PutLegalHold(ctx, store.ObjectRef{Bucket: lb, Key: "f"}, true); err != nil {
		t.Fatal(err)
	}
	if on, err := e.Store.GetLegalHold(ctx, store.ObjectRef{Bucket: lb, Key: "f"}); err != nil || !on {
		t.Fatalf("legal hold after: %v %v", on, err)
	}
	if err := e.Store.PutLegalHold(ctx, store.ObjectRef{Bucket: lb, Key: "f"}, false); err != nil {
		t.Fatal(err)
	}
	objectLockConfig(t, e, lb)
}

// objectLockConfig: a lock bucket's default retention, set and cleared.
func objectLockConfig(t *testing.T, e Env, lb string) {
	l, err := e.Store.GetObjectLock(ctx, lb)
	if err != nil || !l.Enabled || l.Mode != "" {
		t.Fatalf("object lock of a new lock bucket: %+v %v", l, err)
	}
	if err := e.Store.SetObjectLock(ctx, lb, store.ObjectLock{Enabled: true, Mode: "GOVERNANCE", Days: 1}); err != nil {
		t.Fatal(err)
	}
	if l, err := e.Store.GetObjectLock(ctx, lb); err != nil || l.Mode != "GOVERNANCE" || l.Days != 1 {
		t.Fatalf("default retention: %+v %v", l, err)
	}
	if err := e.Store.SetObjectLock(ctx, lb, store.ObjectLock{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.Store.GetObjectLock(ctx, e.Bucket); l.Enabled {
		t.Fatalf("a plain bucket reports object lock: %+v", l)
	}
}

func bucketSettings(t *testing.T, e Env) {
	b := e.Bucket
	if v, err := e.Store.GetVersioning(ctx, b); err != nil || v != "" {
		t.Fatalf("versioning of a new bucket: %q %v", v, err)
	}
	if err := e.Store.SetVersioning(ctx, b, "Sometimes"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad versioning: %v", err)
	}
	for _, s := range []string{"Enabled", "Suspended"} {
		if err := e.Store.SetVersioning(ctx, b, s); err != nil {
			t.Fatal(err)
		}
		if v, _ := e.Store.GetVersioning(ctx, b); v != s {
			t.Fatalf("versioning %q, want %q", v, s)
		}
	}
	if enc, err := e.Store.GetEncryption(ctx, b); err != nil || enc.Algorithm != "" {
		t.Fatalf("encryption of a new bucket: %+v %v", enc, err)
	}
	if err := e.Store.SetEncryption(ctx, b, store.Encryption{Algorithm: "AES256"}); err != nil {
		t.Fatal(err)
	}
	if enc, _ := e.Store.GetEncryption(ctx, b); enc.Algorithm != "AES256" {
		t.Fatalf("encryption = %+v", enc)
	}
	if err := e.Store.SetEncryption(ctx, b, store.Encryption{}); err != nil {
		t.Fatal(err)
	}
	bucketDocs(t, e)
}

// bucketDocs: lifecycle, tags and policy, set, read back and removed.
func bucketDocs(t *testing.T, e Env) {
	b := e.Bucket
	if doc, err := e.Store.GetLifecycle(ctx, b); err != nil || doc != nil {
		t.Fatalf("lifecycle of a new bucket: %s %v", doc, err)
	}
	lc := `<LifecycleConfiguration><Rule><ID>tmp</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter><Expiration><Days>7</Days></Expiration></Rule></LifecycleConfiguration>`
	if err := e.Store.SetLifecycle(ctx, b, []byte(lc)); err != nil {
		t.Fatal(err)
	}
	if doc, err := e.Store.GetLifecycle(ctx, b); err != nil || !strings.Contains(string(doc), "<ID>tmp</ID>") || !strings.Contains(string(doc), "<Days>7</Days>") {
		t.Fatalf("lifecycle = %s %v", doc, err)
	}
	if err := e.Store.SetLifecycle(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	if doc, _ := e.Store.GetLifecycle(ctx, b); doc != nil {
		t.Fatalf("lifecycle after removal: %s", doc)
	}
	if m, err := e.Store.GetBucketTags(ctx, b); err != nil || len(m) != 0 {
		t.Fatalf("bucket tags of a new bucket: %v %v", m, err)
	}
	if err := e.Store.SetBucketTags(ctx, b, map[string]string{"team": "ds"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.Store.GetBucketTags(ctx, b); m["team"] != "ds" {
		t.Fatalf("bucket tags = %v", m)
	}
	if err := e.Store.SetBucketTags(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	bucketPolicy(t, e)
}

func bucketPolicy(t *testing.T, e Env) {
	b := e.Bucket
	if p, err := e.Store.GetPolicy(ctx, b); err != nil || p != "" {
		t.Fatalf("policy of a new bucket: %q %v", p, err)
	}
	pol := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/public/*"]}]}`, b)
	if err := e.Store.SetPolicy(ctx, b, pol); err != nil {
		t.Fatal(err)
	}
	if p, err := e.Store.GetPolicy(ctx, b); err != nil || !strings.Contains(p, "s3:GetObject") {
		t.Fatalf("policy = %q %v", p, err)
	}
	if err := e.Store.SetPolicy(ctx, b, ""); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.Store.GetPolicy(ctx, b); p != "" {
		t.Fatalf("policy after removal: %q", p)
	}
}

func presign(t *testing.T, e Env) {
	u, err := e.Store.Presign(ctx, store.PresignRequest{ObjectRef: store.ObjectRef{Bucket: e.Bucket, Key: "dir/a b.csv"}, Method: "GET", Expires: time.Hour, Params: url.Values{"response-content-type": {"text/csv"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(u)
	if err != nil || !strings.Contains(p.Path, e.Bucket) || !strings.Contains(p.Path, "a b.csv") || p.Query().Get("response-content-type") != "text/csv" ||
		p.Query().Get("X-Amz-Expires") != "3600" {
		t.Fatalf("presigned URL %q (%v)", u, err)
	}
}

func versions(t *testing.T, e Env) {
	if err := e.Store.SetVersioning(ctx, e.Bucket, "Enabled"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one", "two"} {
		if _, err := e.Store.Put(ctx, store.PutRequest{Bucket: e.Bucket, Key: "v/f", Body: strings.NewReader(s), Size: int64(len(s))}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := e.Store.ListVersions(ctx, store.PrefixRequest{Bucket: e.Bucket, Prefix: "v/f", Exact: true})
	if err != nil || len(vs) == 0 || !vs[0].IsLatest || vs[0].Size != 3 || vs[0].VersionID == "" {
		t.Fatalf("versions = %+v %v", vs, err)
	}
	if !e.History {
		return
	}
	if len(vs) != 2 || vs[1].IsLatest {
		t.Fatalf("versions = %+v, want two, the newest first", vs)
	}
	old, err := e.Store.Stat(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "v/f", VersionID: vs[1].VersionID})
	if err != nil || old.Size != 3 || old.VersionID != vs[1].VersionID {
		t.Fatalf("stat of the old version: %+v %v", old, err)
	}
	if err := e.Store.Remove(ctx, store.ObjectRef{Bucket: e.Bucket, Key: "v/f"}); err != nil {
		t.Fatal(err)
	}
	vs, _ = e.Store.ListVersions(ctx, store.PrefixRequest{Bucket: e.Bucket, Prefix: "v/"})
	if len(vs) != 3 || !vs[0].DeleteMarker || !vs[0].IsLatest {
		t.Fatalf("versions after a delete = %+v, want a delete marker first", vs)
	}
}
