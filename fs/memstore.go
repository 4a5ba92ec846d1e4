package fs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemStore is an in-memory Store for fast tests of the fs layer. It follows
// the same conformance suite as the MinIO adapter (see storetest).
type MemStore struct {
	mu      sync.Mutex                       // protects the fields below
	buckets map[string]map[string]*memObject // GUARDED_BY(mu)
	created map[string]time.Time             // GUARDED_BY(mu)
	calls   map[string]int                   // GUARDED_BY(mu): method name -> number of calls
}

type memObject struct {
	data []byte
	info ObjectInfo
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{buckets: map[string]map[string]*memObject{}, created: map[string]time.Time{}, calls: map[string]int{}}
}

var _ Store = (*MemStore)(nil)

// MakeBucket creates a bucket (test helper).
func (m *MemStore) MakeBucket(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets[name] == nil {
		m.buckets[name] = map[string]*memObject{}
		m.created[name] = time.Now().UTC().Truncate(time.Second)
	}
}

// Put stores an object (test helper).
func (m *MemStore) Put(bucket, key string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := md5.Sum(data)
	m.buckets[bucket][key] = &memObject{data: append([]byte(nil), data...), info: ObjectInfo{
		Key: key, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:]), LastModified: time.Now().UTC().Truncate(time.Millisecond)}}
}

// Delete removes an object (test helper).
func (m *MemStore) Delete(bucket, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.buckets[bucket], key)
}

// Calls returns how often method was called.
func (m *MemStore) Calls(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

func (m *MemStore) bucketLocked(method, bucket string) (map[string]*memObject, error) {
	m.calls[method]++
	b, ok := m.buckets[bucket]
	if !ok {
		return nil, fmt.Errorf("bucket %s: %w", bucket, os.ErrNotExist)
	}
	return b, nil
}

func (m *MemStore) ListBuckets(ctx context.Context) ([]BucketInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["ListBuckets"]++
	var out []BucketInfo
	for n := range m.buckets {
		out = append(out, BucketInfo{Name: n, Created: m.created[n]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *MemStore) StatBucket(ctx context.Context, bucket string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.bucketLocked("StatBucket", bucket)
	return err
}

func (m *MemStore) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked("Stat", bucket)
	if err != nil {
		return ObjectInfo{}, err
	}
	o, ok := b[key]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("%s/%s: %w", bucket, key, os.ErrNotExist)
	}
	return o.info, nil
}

func (m *MemStore) List(ctx context.Context, bucket, prefix, token string, maxKeys int) (ListPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked("List", bucket)
	if err != nil {
		return ListPage{}, err
	}
	if maxKeys <= 0 || maxKeys > 1000 {
		maxKeys = 1000
	}
	// Collect the entries (objects and rolled-up prefixes) in key order.
	type ent struct {
		key   string
		isDir bool
	}
	seen := map[string]bool{}
	var ents []ent
	for k := range b {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if i := strings.Index(k[len(prefix):], "/"); i >= 0 {
			cp := k[:len(prefix)+i+1]
			if !seen[cp] {
				seen[cp] = true
				ents = append(ents, ent{cp, true})
			}
			continue
		}
		ents = append(ents, ent{k, false})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].key < ents[j].key })
	var p ListPage
	n := 0
	for _, e := range ents {
		if e.key <= token {
			continue // the token is the last key of the previous page
		}
		if n == maxKeys {
			p.NextToken = p.lastKey()
			break
		}
		n++
		if e.isDir {
			p.Prefixes = append(p.Prefixes, e.key)
		} else {
			p.Objects = append(p.Objects, b[e.key].info)
		}
	}
	return p, nil
}

func (p *ListPage) lastKey() string {
	last := ""
	if n := len(p.Objects); n > 0 {
		last = p.Objects[n-1].Key
	}
	if n := len(p.Prefixes); n > 0 && p.Prefixes[n-1] > last {
		last = p.Prefixes[n-1]
	}
	return last
}

func (m *MemStore) ReadAt(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked("ReadAt", bucket)
	if err != nil {
		return 0, err
	}
	o, ok := b[key]
	if !ok {
		return 0, fmt.Errorf("%s/%s: %w", bucket, key, os.ErrNotExist)
	}
	if etag != "" && etag != o.info.ETag {
		return 0, fmt.Errorf("%s/%s: %w", bucket, key, ErrStale)
	}
	if off >= int64(len(o.data)) {
		return 0, nil
	}
	return copy(p, o.data[off:]), nil
}
