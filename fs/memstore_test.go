package fs_test

import (
	"testing"

	kfs "kfs/fs"
	"kfs/fs/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		m := kfs.NewMemStore()
		m.MakeBucket("bkt")
		return storetest.Env{Store: m, Bucket: "bkt", Put: func(k string, d []byte) { m.PutBytes("bkt", k, d) }}
	})
}
