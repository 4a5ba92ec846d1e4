// Package memstore is an in-memory object store for fast tests of the
// filesystem, the upload pipeline and the control socket. It passes the
// same conformance suite (package storetest) as the MinIO adapter, counts
// calls per method and can inject failures and delays. Tests only: the
// kfs binary never links it.
package memstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kfs/fs/store"
)

// Store is the fake. Every method is safe for concurrent use.
type Store struct {
	hook atomic.Pointer[func(method, bucket, key string) error]

	mu      sync.Mutex         // protects the fields below
	buckets map[string]*bucket // GUARDED_BY(mu)
	calls   map[string]int     // GUARDED_BY(mu): method -> calls
	uploads map[string]*upload // GUARDED_BY(mu): by upload id
	nextID  int                // GUARDED_BY(mu)
	clock   time.Time          // GUARDED_BY(mu): last LastModified handed out
}

type bucket struct {
	created    time.Time
	objects    map[string]*object
	lock       bool
	versioning string
	enc        store.Encryption
	lifecycle  []byte
	notify     []byte
	policy     string
	tags       map[string]string
	lockCfg    store.ObjectLock
}

type object struct {
	data      []byte
	info      store.ObjectInfo
	tags      map[string]string
	lockMode  string
	lockUntil time.Time
	legalHold bool
}

type upload struct {
	bucket, key string
	opts        store.PutOptions
	parts       map[int][]byte
	initiated   time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{buckets: map[string]*bucket{}, calls: map[string]int{}, uploads: map[string]*upload{}}
}

// SetHook makes every call run hook(method, bucket, key) first; a non-nil
// result is the call's error (nil removes the hook).
func (m *Store) SetHook(hook func(method, bucket, key string) error) {
	if hook == nil {
		m.hook.Store(nil)
		return
	}
	m.hook.Store(&hook)
}

// MakeBucketNow creates a bucket (test helper).
func (m *Store) MakeBucketNow(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets[name] == nil {
		m.buckets[name] = newBucket()
	}
}

func newBucket() *bucket {
	return &bucket{created: time.Now().UTC().Truncate(time.Second), objects: map[string]*object{}, tags: map[string]string{}}
}

// PutBytes stores an object behind kfs's back (test helper).
func (m *Store) PutBytes(bucket, key string, data []byte) store.ObjectInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.storeLocked(m.buckets[bucket], key, data, store.PutOptions{})
}

// PutOwned is PutBytes for large test objects: the store keeps data
// itself (no copy); the caller must not change it afterwards.
func (m *Store) PutOwned(bucket, key string, data []byte) store.ObjectInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keepLocked(m.buckets[bucket], key, data, etagOf(data), store.PutOptions{})
}

// Data returns an object's bytes (test helper).
func (m *Store) Data(bucket, key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.buckets[bucket]
	if b == nil {
		return nil, false
	}
	o, ok := b.objects[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), o.data...), true
}

// Keys returns every key of a bucket in order (test helper).
func (m *Store) Keys(bucket string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.buckets[bucket].objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Calls returns how often method was called.
func (m *Store) Calls(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

// Uploads returns the number of incomplete multipart uploads (test helper).
func (m *Store) Uploads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.uploads)
}

// begin counts the call and runs the hook; it must be called without mu.
func (m *Store) begin(ctx context.Context, method, bucket, key string) error {
	m.mu.Lock()
	m.calls[method]++
	m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if h := m.hook.Load(); h != nil {
		if err := (*h)(method, bucket, key); err != nil {
			return err
		}
	}
	return ctx.Err() // cancelled during the call (a hook's delay): as a real store, the call fails
}

func (m *Store) bucketLocked(name string) (*bucket, error) {
	b, ok := m.buckets[name]
	if !ok {
		return nil, fmt.Errorf("bucket %s: %w", name, store.ErrNotFound)
	}
	return b, nil
}

func (m *Store) objectLocked(bkt, key string) (*bucket, *object, error) {
	b, err := m.bucketLocked(bkt)
	if err != nil {
		return nil, nil, err
	}
	o, ok := b.objects[key]
	if !ok {
		return b, nil, fmt.Errorf("%s/%s: %w", bkt, key, store.ErrNotFound)
	}
	return b, o, nil
}

// refLocked finds the object ref names: the fake keeps only the latest
// version, so another VersionID is not found.
func (m *Store) refLocked(ref store.ObjectRef) (*bucket, *object, error) {
	b, o, err := m.objectLocked(ref.Bucket, ref.Key)
	if err == nil && ref.VersionID != "" && ref.VersionID != o.info.VersionID {
		return b, nil, fmt.Errorf("%s/%s version %s: %w", ref.Bucket, ref.Key, ref.VersionID, store.ErrNotFound)
	}
	return b, o, err
}

// nowLocked hands out strictly increasing modification times.
func (m *Store) nowLocked() time.Time {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if !t.After(m.clock) {
		t = m.clock.Add(time.Millisecond)
	}
	m.clock = t
	return t
}

func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-")] = v
	}
	return out
}

func (m *Store) storeLocked(b *bucket, key string, data []byte, opts store.PutOptions) store.ObjectInfo {
	data = append([]byte(nil), data...)
	return m.keepLocked(b, key, data, etagOf(data), opts)
}

// keepLocked stores data as it is (object bytes are never changed in
// place, so a copy may share its source's).
func (m *Store) keepLocked(b *bucket, key string, data []byte, etag string, opts store.PutOptions) store.ObjectInfo {
	info := store.ObjectInfo{Key: key, Size: int64(len(data)), ETag: etag, LastModified: m.nowLocked(),
		ContentType: opts.ContentType, Meta: lowerKeys(opts.Meta), StorageClass: "STANDARD"}
	if info.ContentType == "" {
		info.ContentType = "application/octet-stream"
	}
	if b.versioning == "Enabled" {
		m.nextID++
		info.VersionID = fmt.Sprintf("v%d", m.nextID)
	}
	o := &object{data: data, info: info, tags: copyMap(opts.Tags),
		lockMode: opts.LockMode, lockUntil: opts.LockUntil}
	if opts.LegalHold != nil {
		o.legalHold = *opts.LegalHold
	}
	if o.lockMode == "" && b.lockCfg.Mode != "" {
		o.lockMode = b.lockCfg.Mode
		o.lockUntil = info.LastModified.AddDate(b.lockCfg.Years, 0, b.lockCfg.Days)
	}
	b.objects[key] = o
	return m.describe(o)
}

func (m *Store) describe(o *object) store.ObjectInfo {
	info := o.info
	info.Meta = copyMap(o.info.Meta)
	info.TagCount = len(o.tags)
	info.LockMode, info.LockUntil, info.LegalHold = o.lockMode, o.lockUntil, o.legalHold
	return info
}

// ListBuckets lists the buckets in name order.
func (m *Store) ListBuckets(ctx context.Context) ([]store.BucketInfo, error) {
	if err := m.begin(ctx, "ListBuckets", "", ""); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []store.BucketInfo{}
	for n, b := range m.buckets {
		out = append(out, store.BucketInfo{Name: n, Created: b.created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// StatBucket reports whether a bucket exists.
func (m *Store) StatBucket(ctx context.Context, name string) error {
	if err := m.begin(ctx, "StatBucket", name, ""); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.bucketLocked(name)
	return err
}

// MakeBucket creates a bucket.
func (m *Store) MakeBucket(ctx context.Context, name string, o store.MakeBucketOptions) error {
	if err := m.begin(ctx, "MakeBucket", name, ""); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets[name] != nil {
		return fmt.Errorf("bucket %s: %w", name, store.ErrExists)
	}
	b := newBucket()
	b.lock = o.ObjectLock
	b.lockCfg.Enabled = o.ObjectLock
	if o.ObjectLock || o.Versioning {
		b.versioning = "Enabled"
	}
	m.buckets[name] = b
	return nil
}

// RemoveBucket deletes an empty bucket.
func (m *Store) RemoveBucket(ctx context.Context, name string) error {
	if err := m.begin(ctx, "RemoveBucket", name, ""); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(name)
	if err != nil {
		return err
	}
	if len(b.objects) > 0 {
		return fmt.Errorf("bucket %s: %w", name, store.ErrNotEmpty)
	}
	delete(m.buckets, name)
	return nil
}

// Stat returns an object's facts.
func (m *Store) Stat(ctx context.Context, r store.ObjectRef) (store.ObjectInfo, error) {
	if err := m.begin(ctx, "Stat", r.Bucket, r.Key); err != nil {
		return store.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, o, err := m.objectLocked(r.Bucket, r.Key)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	if r.VersionID != "" && r.VersionID != o.info.VersionID {
		return store.ObjectInfo{}, fmt.Errorf("%s/%s version %s: %w", r.Bucket, r.Key, r.VersionID, store.ErrNotFound)
	}
	return m.describe(o), nil
}

// List returns one page of a listing.
func (m *Store) List(ctx context.Context, r store.ListRequest) (store.ListPage, error) {
	method := "List"
	if r.Meta {
		method = "ListWithMeta"
	}
	if err := m.begin(ctx, method, r.Bucket, r.Prefix); err != nil {
		return store.ListPage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(r.Bucket)
	if err != nil {
		return store.ListPage{}, err
	}
	max := r.Max
	if max <= 0 || max > 1000 {
		max = 1000
	}
	ents := listEntries(b, r)
	var p store.ListPage
	n, last := 0, ""
	for _, e := range ents {
		if e.key <= r.Token || e.key <= r.StartAfter {
			continue // the token is the last key of the previous page
		}
		if n == max {
			p.NextToken = last
			break
		}
		n, last = n+1, e.key
		if e.isDir {
			p.Prefixes = append(p.Prefixes, e.key)
			continue
		}
		o := b.objects[e.key]
		info := store.ObjectInfo{Key: e.key, Size: o.info.Size, ETag: o.info.ETag, LastModified: o.info.LastModified}
		if r.Meta {
			info.Meta, info.ContentType = copyMap(o.info.Meta), o.info.ContentType // as MinIO's metadata listing
		}
		p.Objects = append(p.Objects, info)
	}
	return p, nil
}

// listEnt is one key or common prefix of a listing.
type listEnt struct {
	key   string
	isDir bool
}

// listEntries are the keys under r.Prefix, with the keys under a further
// "/" folded into common prefixes unless r is recursive, in key order.
func listEntries(b *bucket, r store.ListRequest) []listEnt {
	seen := map[string]bool{}
	var ents []listEnt
	for k := range b.objects {
		if !strings.HasPrefix(k, r.Prefix) {
			continue
		}
		if i := strings.Index(k[len(r.Prefix):], "/"); i >= 0 && !r.Recursive {
			if cp := k[:len(r.Prefix)+i+1]; !seen[cp] {
				seen[cp] = true
				ents = append(ents, listEnt{cp, true})
			}
			continue
		}
		ents = append(ents, listEnt{k, false})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].key < ents[j].key })
	return ents
}

// ListVersions lists the (latest) versions under prefix: the fake keeps
// no history.
func (m *Store) ListVersions(ctx context.Context, req store.PrefixRequest) ([]store.Version, error) {
	bkt, prefix, exact := req.Bucket, req.Prefix, req.Exact
	if err := m.begin(ctx, "ListVersions", bkt, prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(bkt)
	if err != nil {
		return nil, err
	}
	var out []store.Version
	for k, o := range b.objects {
		if exact && k != prefix || !strings.HasPrefix(k, prefix) {
			continue
		}
		out = append(out, store.Version{Key: k, VersionID: o.info.VersionID, Size: o.info.Size, ETag: o.info.ETag,
			LastModified: o.info.LastModified, IsLatest: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ReadAt reads like the MinIO adapter: fewer bytes only at the end,
// ErrStale when etag no longer matches.
func (m *Store) ReadAt(ctx context.Context, req store.ReadRequest, p []byte) (int, error) {
	bkt, key, etag, off := req.Bucket, req.Key, req.ETag, req.Offset
	if err := m.begin(ctx, "ReadAt", bkt, key); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, o, err := m.objectLocked(bkt, key)
	if err != nil {
		return 0, err
	}
	if etag != "" && etag != o.info.ETag {
		return 0, fmt.Errorf("%s/%s: %w", bkt, key, store.ErrStale)
	}
	if off >= int64(len(o.data)) {
		return 0, nil
	}
	return copy(p, o.data[off:]), nil
}

// Get streams an object.
func (m *Store) Get(ctx context.Context, req store.GetRequest) (io.ReadCloser, store.ObjectInfo, error) {
	r, rg := req.ObjectRef, req.Range
	if err := m.begin(ctx, "Get", r.Bucket, r.Key); err != nil {
		return nil, store.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, o, err := m.objectLocked(r.Bucket, r.Key)
	if err != nil {
		return nil, store.ObjectInfo{}, err
	}
	data := o.data
	if rg.Offset > 0 || rg.Length > 0 {
		if rg.Offset >= int64(len(data)) {
			return nil, store.ObjectInfo{}, fmt.Errorf("get %s at %d: %w", r.Key, rg.Offset, io.EOF)
		}
		data = data[rg.Offset:]
		if rg.Length > 0 && rg.Length < int64(len(data)) {
			data = data[:rg.Length]
		}
	}
	return io.NopCloser(strings.NewReader(string(data))), m.describe(o), nil
}

// KeepsDirMeta: the fake keeps every object's metadata, markers too.
func (m *Store) KeepsDirMeta() bool { return true }

// FoldersVanish: the fake has keys, no folders.
func (m *Store) FoldersVanish() bool { return true }

// The store implements every capability.
var _ store.All = (*Store)(nil)
