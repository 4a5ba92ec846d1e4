package integration

import (
	"testing"

	kfs "kfs/fs"
	"kfs/fs/storetest"
)

func TestMinioStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		b := newBucket(t)
		return storetest.Env{Store: kfs.NewMinioStore(client(t)), Bucket: b,
			Put: func(k string, d []byte) { put(t, b, k, d) }}
	})
}
