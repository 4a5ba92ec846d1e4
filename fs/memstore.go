package fs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemStore is an in-memory Store for fast tests of the fs layer. It follows
// the same conformance suite as the MinIO adapter (see storetest).
type MemStore struct {
	mu       sync.Mutex                       // protects the fields below
	buckets  map[string]map[string]*memObject // GUARDED_BY(mu)
	created  map[string]time.Time             // GUARDED_BY(mu)
	calls    map[string]int                   // GUARDED_BY(mu): method name -> number of calls
	uploads  map[string]*memUpload            // GUARDED_BY(mu): by upload id
	settings map[[2]string]string             // GUARDED_BY(mu): {bucket, kind} -> bucket setting
	nextID   int                              // GUARDED_BY(mu)
	failPut  error                            // GUARDED_BY(mu): returned by every write while set
}

type memObject struct {
	data      []byte
	info      ObjectInfo
	tags      map[string]string
	lockMode  string
	lockUntil time.Time
	legalHold bool
}

type memUpload struct {
	bucket, key string
	opts        PutOptions
	parts       map[int][]byte
	initiated   time.Time
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{buckets: map[string]map[string]*memObject{}, created: map[string]time.Time{}, calls: map[string]int{},
		uploads: map[string]*memUpload{}, settings: map[[2]string]string{}}
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

// PutBytes stores an object (test helper).
func (m *MemStore) PutBytes(bucket, key string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.storeLocked(bucket, key, data, PutOptions{})
}

// FailWrites makes every write method fail with err (nil to stop).
func (m *MemStore) FailWrites(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failPut = err
}

// Data returns an object's bytes (test helper).
func (m *MemStore) Data(bucket, key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.buckets[bucket][key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), o.data...), true
}

func (m *MemStore) storeLocked(bucket, key string, data []byte, opts PutOptions) ObjectInfo {
	sum := md5.Sum(data)
	info := ObjectInfo{Key: key, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:]),
		LastModified: time.Now().UTC().Truncate(time.Millisecond), ContentType: opts.ContentType, Meta: lowerKeys(opts.Meta)}
	o := &memObject{data: append([]byte(nil), data...), info: info, tags: map[string]string{}, lockMode: opts.LockMode, lockUntil: opts.LockUntil}
	for k, v := range opts.Tags {
		o.tags[k] = v
	}
	if opts.LegalHold != nil {
		o.legalHold = *opts.LegalHold
	}
	m.buckets[bucket][key] = o
	return info
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

func (m *MemStore) List(ctx context.Context, bucket, prefix, token string, maxKeys int, withMeta bool) (ListPage, error) {
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
			info := b[e.key].info
			info.ContentType = ""
			if withMeta {
				m.calls["ListWithMeta"]++
				if info.Meta == nil {
					info.Meta = map[string]string{}
				}
			} else {
				info.Meta = nil
			}
			p.Objects = append(p.Objects, info)
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

func (m *MemStore) writeLocked(method, bucket string) (map[string]*memObject, error) {
	b, err := m.bucketLocked(method, bucket)
	if err == nil && m.failPut != nil {
		err = m.failPut
	}
	return b, err
}

func (m *MemStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return ObjectInfo{}, err
	}
	if int64(len(data)) != size {
		return ObjectInfo{}, fmt.Errorf("put %s: %d of %d bytes: %w", key, len(data), size, io.ErrUnexpectedEOF)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.writeLocked("Put", bucket); err != nil {
		return ObjectInfo{}, err
	}
	return m.storeLocked(bucket, key, data, opts), nil
}

func (m *MemStore) NewUpload(ctx context.Context, bucket, key string, opts PutOptions) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.writeLocked("NewUpload", bucket); err != nil {
		return "", err
	}
	m.nextID++
	id := fmt.Sprintf("upload-%d", m.nextID)
	m.uploads[id] = &memUpload{bucket: bucket, key: key, opts: opts, parts: map[int][]byte{}, initiated: time.Now()}
	return id, nil
}

func (m *MemStore) uploadLocked(method, bucket, key, id string) (*memUpload, error) {
	if _, err := m.writeLocked(method, bucket); err != nil {
		return nil, err
	}
	u, ok := m.uploads[id]
	if !ok || u.bucket != bucket || u.key != key {
		return nil, fmt.Errorf("upload %s of %s: %w", id, key, os.ErrNotExist)
	}
	return u, nil
}

func partETag(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

func (m *MemStore) PutPart(ctx context.Context, bucket, key, id string, num int, data []byte) (Part, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.uploadLocked("PutPart", bucket, key, id)
	if err != nil {
		return Part{}, err
	}
	u.parts[num] = append([]byte(nil), data...)
	return Part{Number: num, ETag: partETag(data)}, nil
}

func (m *MemStore) CopyPart(ctx context.Context, bucket, key, id string, num int, srcKey, srcETag string, off, n int64) (Part, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.uploadLocked("CopyPart", bucket, key, id)
	if err != nil {
		return Part{}, err
	}
	src, ok := m.buckets[bucket][srcKey]
	if !ok {
		return Part{}, fmt.Errorf("copy part from %s: %w", srcKey, os.ErrNotExist)
	}
	if srcETag != "" && src.info.ETag != srcETag {
		return Part{}, fmt.Errorf("copy part from %s: %w", srcKey, ErrStale)
	}
	if off < 0 || off+n > int64(len(src.data)) {
		return Part{}, fmt.Errorf("copy part from %s: range %d+%d outside %d bytes", srcKey, off, n, len(src.data))
	}
	u.parts[num] = append([]byte(nil), src.data[off:off+n]...)
	return Part{Number: num, ETag: partETag(u.parts[num])}, nil
}

func (m *MemStore) CompleteUpload(ctx context.Context, bucket, key, id string, parts []Part) (ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.uploadLocked("CompleteUpload", bucket, key, id)
	if err != nil {
		return ObjectInfo{}, err
	}
	var data []byte
	for i, p := range parts {
		d, ok := u.parts[p.Number]
		if !ok || partETag(d) != p.ETag || (i > 0 && p.Number <= parts[i-1].Number) {
			return ObjectInfo{}, fmt.Errorf("complete %s: bad part %d", key, p.Number)
		}
		if i < len(parts)-1 && len(d) < MinPartSize {
			return ObjectInfo{}, fmt.Errorf("complete %s: part %d is %d bytes, under the S3 minimum (EntityTooSmall)", key, p.Number, len(d))
		}
		data = append(data, d...)
	}
	delete(m.uploads, id)
	return m.storeLocked(bucket, key, data, u.opts), nil
}

func (m *MemStore) AbortUpload(ctx context.Context, bucket, key, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.uploadLocked("AbortUpload", bucket, key, id); err != nil {
		return err
	}
	delete(m.uploads, id)
	return nil
}

func (m *MemStore) ListUploads(ctx context.Context, bucket, prefix string) ([]Upload, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.bucketLocked("ListUploads", bucket); err != nil {
		return nil, err
	}
	var out []Upload
	for id, u := range m.uploads {
		if u.bucket == bucket && strings.HasPrefix(u.key, prefix) {
			out = append(out, Upload{Key: u.key, ID: id, Initiated: u.initiated})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *MemStore) Copy(ctx context.Context, bucket, srcKey, srcETag, dstKey string, opts *PutOptions) (ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.writeLocked("Copy", bucket)
	if err != nil {
		return ObjectInfo{}, err
	}
	src, ok := b[srcKey]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("copy %s: %w", srcKey, os.ErrNotExist)
	}
	if srcETag != "" && src.info.ETag != srcETag {
		return ObjectInfo{}, fmt.Errorf("copy %s: %w", srcKey, ErrStale)
	}
	o := PutOptions{ContentType: src.info.ContentType, Meta: src.info.Meta}
	if opts != nil {
		o = *opts
	}
	return m.storeLocked(bucket, dstKey, src.data, o), nil
}

func (m *MemStore) Remove(ctx context.Context, bucket, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.writeLocked("Remove", bucket)
	if err != nil {
		return err
	}
	delete(b, key)
	return nil
}

func (m *MemStore) RemoveMany(ctx context.Context, bucket string, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.writeLocked("RemoveMany", bucket)
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(b, k)
	}
	return nil
}

func (m *MemStore) GetTags(ctx context.Context, bucket, key string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked("GetTags", bucket)
	if err != nil {
		return nil, err
	}
	o, ok := b[key]
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, os.ErrNotExist)
	}
	out := map[string]string{}
	for k, v := range o.tags {
		out[k] = v
	}
	return out, nil
}

func (m *MemStore) PutTags(ctx context.Context, bucket, key string, tags map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.writeLocked("PutTags", bucket)
	if err != nil {
		return err
	}
	o, ok := b[key]
	if !ok {
		return fmt.Errorf("%s/%s: %w", bucket, key, os.ErrNotExist)
	}
	o.tags = map[string]string{}
	for k, v := range tags {
		o.tags[k] = v
	}
	return nil
}

func (m *MemStore) objLocked(method, bucket, key string) (*memObject, error) {
	b, err := m.bucketLocked(method, bucket)
	if err != nil {
		return nil, err
	}
	o, ok := b[key]
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, os.ErrNotExist)
	}
	return o, nil
}

func (m *MemStore) GetRetention(ctx context.Context, bucket, key string) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.objLocked("GetRetention", bucket, key)
	if err != nil {
		return "", time.Time{}, err
	}
	return o.lockMode, o.lockUntil, nil
}

func (m *MemStore) PutRetention(ctx context.Context, bucket, key, mode string, until time.Time, bypass bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.objLocked("PutRetention", bucket, key)
	if err != nil {
		return err
	}
	o.lockMode, o.lockUntil = mode, until
	return nil
}

func (m *MemStore) GetLegalHold(ctx context.Context, bucket, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.objLocked("GetLegalHold", bucket, key)
	if err != nil {
		return false, err
	}
	return o.legalHold, nil
}

func (m *MemStore) PutLegalHold(ctx context.Context, bucket, key string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.objLocked("PutLegalHold", bucket, key)
	if err != nil {
		return err
	}
	o.legalHold = on
	return nil
}

func (m *MemStore) GetBucketSetting(ctx context.Context, bucket, kind string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.bucketLocked("GetBucketSetting", bucket); err != nil {
		return "", err
	}
	return m.settings[[2]string{bucket, kind}], nil
}

func (m *MemStore) PutBucketSetting(ctx context.Context, bucket, kind, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.bucketLocked("PutBucketSetting", bucket); err != nil {
		return err
	}
	m.settings[[2]string{bucket, kind}] = value
	return nil
}
