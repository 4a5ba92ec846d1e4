package integration

import (
	"testing"

	kfs "kfs/fs"
	"kfs/fs/storetest"
)

func TestMinioStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		b := newBucket(t)
		st := kfs.NewMinioStore(client(t))
		st.EnableMetadataListing(srv.AccessKey, srv.SecretKey, "", "us-east-1", nil)
		return storetest.Env{Store: st, Bucket: b,
			Put: func(k string, d []byte) { put(t, b, k, d) }}
	})
}
