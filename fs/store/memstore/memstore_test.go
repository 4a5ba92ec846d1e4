package memstore

import (
	"fmt"
	"sync/atomic"
	"testing"

	"kfs/fs/store/storetest"
)

var _ storetest.Store = (*Store)(nil)

func TestConformance(t *testing.T) {
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) storetest.Env {
		m := New()
		m.MakeBucketNow("bkt")
		return storetest.Env{Store: m, Bucket: "bkt", Put: func(k string, d []byte) { m.PutBytes("bkt", k, d) },
			NewBucketName: func() string { return fmt.Sprintf("other-%d", n.Add(1)) },
			Limits:        storetest.Limits{NoSelect: true}}
	})
}
