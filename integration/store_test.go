package integration

import (
	"testing"

	"kfs/fs/store/s3store"
	"kfs/fs/store/storetest"
)

var _ storetest.Store = (*s3store.Store)(nil)

// The MinIO adapter passes the same conformance suite as the fake.
func TestMinioStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		b := newBucket(t)
		st, err := srv.Store()
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Env{Store: st, Bucket: b, Put: func(k string, d []byte) { put(t, b, k, d) },
			NewBucketName: func() string { return "t-" + randomHex(6) }, History: true}
	})
}
