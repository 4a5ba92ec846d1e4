package memstore

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"kfs/fs/store"
)

// Put stores an object.
func (m *Store) Put(ctx context.Context, req store.PutRequest) (store.ObjectInfo, error) {
	bkt, key, r, size, opts := req.Bucket, req.Key, req.Body, req.Size, req.Options
	if err := m.begin(ctx, "Put", bkt, key); err != nil {
		return store.ObjectInfo{}, err
	}
	if len(key) > store.MaxKeyLen {
		return store.ObjectInfo{}, fmt.Errorf("put %s: %w", key, store.ErrNameTooLong)
	}
	if err := checkMeta(opts.Meta); err != nil {
		return store.ObjectInfo{}, err
	}
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return store.ObjectInfo{}, err
	}
	if int64(len(data)) != size {
		return store.ObjectInfo{}, fmt.Errorf("put %s: %d of %d bytes: %w", key, len(data), size, io.ErrUnexpectedEOF)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(bkt)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	if opts.IfMatch != "" || opts.IfAbsent {
		_, cur, err := m.objectLocked(bkt, key)
		switch {
		case err == nil && opts.IfAbsent, err == nil && cur.info.ETag != opts.IfMatch:
			return store.ObjectInfo{}, fmt.Errorf("put %s: %w", key, store.ErrStale)
		case err != nil && opts.IfMatch != "":
			return store.ObjectInfo{}, fmt.Errorf("put %s: %w", key, store.ErrStale)
		}
	}
	return m.storeLocked(b, key, data, opts), nil
}

// NewUpload starts a multipart upload.
func (m *Store) NewUpload(ctx context.Context, o store.ObjectRef, opts store.PutOptions) (store.UploadRef, error) {
	id, err := m.newUpload(ctx, o.Bucket, o.Key, opts)
	return store.UploadRef{Bucket: o.Bucket, Key: o.Key, ID: id}, err
}

func (m *Store) newUpload(ctx context.Context, bkt, key string, opts store.PutOptions) (string, error) {
	if err := m.begin(ctx, "NewUpload", bkt, key); err != nil {
		return "", err
	}
	if err := checkMeta(opts.Meta); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.bucketLocked(bkt); err != nil {
		return "", err
	}
	m.nextID++
	id := fmt.Sprintf("upload-%d", m.nextID)
	m.uploads[id] = &upload{bucket: bkt, key: key, opts: opts, parts: map[int][]byte{}, initiated: time.Now()}
	return id, nil
}

func (m *Store) uploadLocked(bkt, key, id string) (*upload, error) {
	u, ok := m.uploads[id]
	if !ok || u.bucket != bkt || u.key != key {
		return nil, fmt.Errorf("upload %s of %s: %w", id, key, store.ErrUploadGone)
	}
	return u, nil
}

// PutPart uploads one part.
func (m *Store) PutPart(ctx context.Context, req store.PartRequest) (store.Part, error) {
	bkt, key, id, num, r, size := req.Upload.Bucket, req.Upload.Key, req.Upload.ID, req.Number, req.Body, req.Size
	if err := m.begin(ctx, "PutPart", bkt, key); err != nil {
		return store.Part{}, err
	}
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return store.Part{}, err
	}
	if int64(len(data)) != size {
		return store.Part{}, fmt.Errorf("part %d: %d of %d bytes: %w", num, len(data), size, io.ErrUnexpectedEOF)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.uploadLocked(bkt, key, id)
	if err != nil {
		return store.Part{}, err
	}
	u.parts[num] = data
	return store.Part{Number: num, ETag: etagOf(data)}, nil
}

// CopyPart makes a part from a range of another object of the bucket.
func (m *Store) CopyPart(ctx context.Context, req store.CopyPartRequest) (store.Part, error) {
	bkt, key, id, num, srcKey, srcETag, off, n := req.Upload.Bucket, req.Upload.Key, req.Upload.ID, req.Number, req.Src.Key, req.SrcETag, req.Offset, req.Length
	if err := m.begin(ctx, "CopyPart", bkt, key); err != nil {
		return store.Part{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.uploadLocked(bkt, key, id)
	if err != nil {
		return store.Part{}, err
	}
	_, src, err := m.objectLocked(bkt, srcKey)
	if err != nil {
		return store.Part{}, err
	}
	if srcETag != "" && src.info.ETag != srcETag {
		return store.Part{}, fmt.Errorf("copy part from %s: %w", srcKey, store.ErrStale)
	}
	if off < 0 || off+n > int64(len(src.data)) {
		return store.Part{}, fmt.Errorf("copy part from %s: range %d+%d outside %d bytes: %w", srcKey, off, n, len(src.data), store.ErrInvalid)
	}
	u.parts[num] = append([]byte(nil), src.data[off:off+n]...)
	return store.Part{Number: num, ETag: etagOf(u.parts[num])}, nil
}

// CompleteUpload assembles the parts.
func (m *Store) CompleteUpload(ctx context.Context, ref store.UploadRef, parts []store.Part) (store.ObjectInfo, error) {
	bkt, key, id := ref.Bucket, ref.Key, ref.ID
	if err := m.begin(ctx, "CompleteUpload", bkt, key); err != nil {
		return store.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.uploadLocked(bkt, key, id)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	var data []byte
	for i, p := range parts {
		d, ok := u.parts[p.Number]
		if !ok || etagOf(d) != p.ETag || (i > 0 && p.Number <= parts[i-1].Number) {
			return store.ObjectInfo{}, fmt.Errorf("complete %s: bad part %d: %w", key, p.Number, store.ErrInvalid)
		}
		if i < len(parts)-1 && len(d) < store.MinPartSize {
			return store.ObjectInfo{}, fmt.Errorf("complete %s: part %d is %d bytes (EntityTooSmall): %w", key, p.Number, len(d), store.ErrInvalid)
		}
		data = append(data, d...)
	}
	b, err := m.bucketLocked(bkt)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	delete(m.uploads, id)
	info := m.storeLocked(b, key, data, u.opts)
	info.Meta, info.ContentType = nil, ""
	return info, nil
}

// AbortUpload discards an upload.
func (m *Store) AbortUpload(ctx context.Context, u store.UploadRef) error {
	bkt, key, id := u.Bucket, u.Key, u.ID
	if err := m.begin(ctx, "AbortUpload", bkt, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.uploadLocked(bkt, key, id); err != nil {
		return nil // nothing left to discard: MinIO says so with success
	}
	delete(m.uploads, id)
	return nil
}

// ListUploads lists incomplete uploads under prefix.
func (m *Store) ListUploads(ctx context.Context, req store.PrefixRequest) ([]store.Upload, error) {
	bkt, prefix := req.Bucket, req.Prefix
	if err := m.begin(ctx, "ListUploads", bkt, prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.bucketLocked(bkt); err != nil {
		return nil, err
	}
	var out []store.Upload
	for id, u := range m.uploads {
		if u.bucket == bkt && strings.HasPrefix(u.key, prefix) {
			out = append(out, store.Upload{Key: u.key, ID: id, Initiated: u.initiated})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Copy copies an object, within or across buckets.
func (m *Store) Copy(ctx context.Context, req store.CopyRequest) (store.ObjectInfo, error) {
	src, dst, o := req.Src, req.Dst, req.Options
	if err := m.begin(ctx, "Copy", src.Bucket, src.Key); err != nil {
		return store.ObjectInfo{}, err
	}
	if o.Replace != nil {
		if err := checkMeta(o.Replace.Meta); err != nil {
			return store.ObjectInfo{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, so, err := m.objectLocked(src.Bucket, src.Key)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	if o.Unmet(so.info) != "" {
		return store.ObjectInfo{}, fmt.Errorf("copy %s: %w", src.Key, store.ErrStale)
	}
	db, err := m.bucketLocked(dst.Bucket)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	opts := store.PutOptions{ContentType: so.info.ContentType, Meta: so.info.Meta, Tags: so.tags}
	if o.Replace != nil {
		opts.ContentType, opts.Meta = o.Replace.ContentType, o.Replace.Meta
		if o.Replace.Tags != nil {
			opts.Tags = o.Replace.Tags
		}
	}
	return m.keepLocked(db, dst.Key, so.data, so.info.ETag, opts), nil
}

// Compose concatenates sources.
func (m *Store) Compose(ctx context.Context, req store.ComposeRequest) (store.ObjectInfo, error) {
	dst, srcs, opts := req.Dst, req.Srcs, req.Options
	if err := m.begin(ctx, "Compose", dst.Bucket, dst.Key); err != nil {
		return store.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var data []byte
	var first *object
	for i, r := range srcs {
		_, o, err := m.objectLocked(r.Bucket, r.Key)
		if err != nil {
			return store.ObjectInfo{}, err
		}
		if i < len(srcs)-1 && len(o.data) < store.MinPartSize {
			return store.ObjectInfo{}, fmt.Errorf("compose: source %s under 5 MiB: %w", r.Key, store.ErrInvalid)
		}
		if first == nil {
			first = o
		}
		data = append(data, o.data...)
	}
	b, err := m.bucketLocked(dst.Bucket)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	po := store.PutOptions{ContentType: first.info.ContentType, Meta: first.info.Meta}
	if opts != nil {
		po = *opts
	}
	return m.storeLocked(b, dst.Key, data, po), nil
}

// Remove deletes an object; a missing one is no error.
func (m *Store) Remove(ctx context.Context, r store.ObjectRef) error {
	if err := m.begin(ctx, "Remove", r.Bucket, r.Key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(r.Bucket)
	if err != nil {
		return err
	}
	delete(b.objects, r.Key)
	return nil
}

// RemoveMany deletes keys.
func (m *Store) RemoveMany(ctx context.Context, req store.RemoveManyRequest) ([]store.KeyError, error) {
	bkt, keys := req.Bucket, req.Keys
	if err := m.begin(ctx, "RemoveMany", bkt, ""); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(bkt)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		delete(b.objects, k)
	}
	return nil, nil
}

// MaxUserMeta is the most bytes of user metadata (x-amz-meta- names and
// values) the fake takes, as S3 and MinIO.
const MaxUserMeta = 2 << 10

func checkMeta(meta map[string]string) error {
	n := 0
	for k, v := range meta {
		n += len("x-amz-meta-") + len(k) + len(v)
	}
	if n > MaxUserMeta {
		return fmt.Errorf("%d bytes of user metadata: %w", n, store.ErrMetaTooLarge)
	}
	return nil
}
