package memstore

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"time"

	"kfs/fs/store"
)

// GetTags returns an object's tags.
func (m *Store) GetTags(ctx context.Context, ref store.ObjectRef) (map[string]string, error) {
	bkt, key := ref.Bucket, ref.Key
	if err := m.begin(ctx, "GetTags", bkt, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, o, err := m.refLocked(ref)
	if err != nil {
		return nil, err
	}
	return copyMap(o.tags), nil
}

// PutTags replaces an object's tags.
func (m *Store) PutTags(ctx context.Context, ref store.ObjectRef, tags map[string]string) error {
	bkt, key := ref.Bucket, ref.Key
	if err := m.begin(ctx, "PutTags", bkt, key); err != nil {
		return err
	}
	if len(tags) > 10 {
		return fmt.Errorf("more than 10 tags: %w", store.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, o, err := m.refLocked(ref)
	if err != nil {
		return err
	}
	o.tags = copyMap(tags)
	return nil
}

func (m *Store) lockedObject(ref store.ObjectRef) (*object, error) {
	b, o, err := m.refLocked(ref)
	if err != nil {
		return nil, err
	}
	if !b.lock {
		return nil, fmt.Errorf("bucket %s: %w", ref.Bucket, store.ErrNoObjectLock)
	}
	return o, nil
}

// GetRetention answers an object's retention (none: "" Mode).
func (m *Store) GetRetention(ctx context.Context, o store.ObjectRef) (store.Retention, error) {
	mode, until, err := m.getRetention(ctx, o)
	return store.Retention{Mode: mode, Until: until}, err
}

func (m *Store) getRetention(ctx context.Context, ref store.ObjectRef) (string, time.Time, error) {
	bkt, key := ref.Bucket, ref.Key
	if err := m.begin(ctx, "GetRetention", bkt, key); err != nil {
		return "", time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lockedObject(ref)
	if err != nil {
		return "", time.Time{}, err
	}
	return o.lockMode, o.lockUntil, nil
}

// PutRetention sets an object's retention.
func (m *Store) PutRetention(ctx context.Context, req store.RetentionRequest) error {
	bkt, key, mode, until, ref := req.Bucket, req.Key, req.Mode, req.Until, req.ObjectRef
	if err := m.begin(ctx, "PutRetention", bkt, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lockedObject(ref)
	if err != nil {
		return err
	}
	if mode != "" && !until.After(time.Now()) {
		return fmt.Errorf("retention date in the past: %w", store.ErrInvalid)
	}
	o.lockMode, o.lockUntil = mode, until
	return nil
}

// GetLegalHold reports an object's legal hold.
func (m *Store) GetLegalHold(ctx context.Context, ref store.ObjectRef) (bool, error) {
	bkt, key := ref.Bucket, ref.Key
	if err := m.begin(ctx, "GetLegalHold", bkt, key); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lockedObject(ref)
	if err != nil {
		return false, err
	}
	return o.legalHold, nil
}

// PutLegalHold sets an object's legal hold.
func (m *Store) PutLegalHold(ctx context.Context, ref store.ObjectRef, on bool) error {
	bkt, key := ref.Bucket, ref.Key
	if err := m.begin(ctx, "PutLegalHold", bkt, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lockedObject(ref)
	if err != nil {
		return err
	}
	o.legalHold = on
	return nil
}

// withBucket runs f on a bucket under the lock.
func (m *Store) withBucket(ctx context.Context, method, name string, f func(b *bucket) error) error {
	if err := m.begin(ctx, method, name, ""); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.bucketLocked(name)
	if err != nil {
		return err
	}
	return f(b)
}

// GetVersioning returns the versioning status.
func (m *Store) GetVersioning(ctx context.Context, name string) (v string, err error) {
	err = m.withBucket(ctx, "GetVersioning", name, func(b *bucket) error { v = b.versioning; return nil })
	return v, err
}

// SetVersioning sets the versioning status.
func (m *Store) SetVersioning(ctx context.Context, name, status string) error {
	if status != "Enabled" && status != "Suspended" {
		return fmt.Errorf("versioning %q: %w", status, store.ErrInvalid)
	}
	return m.withBucket(ctx, "SetVersioning", name, func(b *bucket) error { b.versioning = status; return nil })
}

// GetEncryption returns the default encryption.
func (m *Store) GetEncryption(ctx context.Context, name string) (e store.Encryption, err error) {
	err = m.withBucket(ctx, "GetEncryption", name, func(b *bucket) error { e = b.enc; return nil })
	return e, err
}

// SetEncryption sets the default encryption.
func (m *Store) SetEncryption(ctx context.Context, name string, e store.Encryption) error {
	return m.withBucket(ctx, "SetEncryption", name, func(b *bucket) error { b.enc = e; return nil })
}

// GetLifecycle returns the lifecycle XML.
func (m *Store) GetLifecycle(ctx context.Context, name string) (doc []byte, err error) {
	err = m.withBucket(ctx, "GetLifecycle", name, func(b *bucket) error { doc = b.lifecycle; return nil })
	return doc, err
}

// SetLifecycle replaces the lifecycle XML.
func (m *Store) SetLifecycle(ctx context.Context, name string, doc []byte) error {
	return m.withBucket(ctx, "SetLifecycle", name, func(b *bucket) error { b.lifecycle = doc; return nil })
}

// GetBucketTags returns the bucket's tags.
func (m *Store) GetBucketTags(ctx context.Context, name string) (t map[string]string, err error) {
	err = m.withBucket(ctx, "GetBucketTags", name, func(b *bucket) error { t = copyMap(b.tags); return nil })
	return t, err
}

// SetBucketTags replaces the bucket's tags.
func (m *Store) SetBucketTags(ctx context.Context, name string, t map[string]string) error {
	return m.withBucket(ctx, "SetBucketTags", name, func(b *bucket) error { b.tags = copyMap(t); return nil })
}

// GetObjectLock returns the object lock configuration.
func (m *Store) GetObjectLock(ctx context.Context, name string) (l store.ObjectLock, err error) {
	err = m.withBucket(ctx, "GetObjectLock", name, func(b *bucket) error { l = b.lockCfg; return nil })
	return l, err
}

// SetObjectLock sets the default retention.
func (m *Store) SetObjectLock(ctx context.Context, name string, l store.ObjectLock) error {
	return m.withBucket(ctx, "SetObjectLock", name, func(b *bucket) error {
		if !b.lock {
			return fmt.Errorf("bucket %s: %w", name, store.ErrNoObjectLock)
		}
		b.lockCfg = store.ObjectLock{Enabled: true, Mode: l.Mode, Days: l.Days, Years: l.Years}
		return nil
	})
}

// GetNotification returns the notification XML.
func (m *Store) GetNotification(ctx context.Context, name string) (doc []byte, err error) {
	err = m.withBucket(ctx, "GetNotification", name, func(b *bucket) error { doc = b.notify; return nil })
	return doc, err
}

// SetNotification replaces the notification XML (nil: none); a document
// that is not XML is refused, as S3 does.
func (m *Store) SetNotification(ctx context.Context, name string, doc []byte) error {
	if doc != nil {
		var v struct{}
		if err := xml.Unmarshal(doc, &v); err != nil {
			return fmt.Errorf("notification: %v: %w", err, store.ErrInvalid)
		}
	}
	return m.withBucket(ctx, "SetNotification", name, func(b *bucket) error { b.notify = doc; return nil })
}

// GetPolicy returns the bucket policy.
func (m *Store) GetPolicy(ctx context.Context, name string) (p string, err error) {
	err = m.withBucket(ctx, "GetPolicy", name, func(b *bucket) error { p = b.policy; return nil })
	return p, err
}

// SetPolicy replaces the bucket policy.
func (m *Store) SetPolicy(ctx context.Context, name, p string) error {
	return m.withBucket(ctx, "SetPolicy", name, func(b *bucket) error { b.policy = p; return nil })
}

// Presign returns a fake URL naming the request.
func (m *Store) Presign(ctx context.Context, req store.PresignRequest) (string, error) {
	method, o, expires, params := req.Method, req.ObjectRef, req.Expires, req.Params
	if err := m.begin(ctx, "Presign", o.Bucket, o.Key); err != nil {
		return "", err
	}
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q.Set("X-Method", method)
	q.Set("X-Amz-Expires", fmt.Sprint(int(expires.Seconds())))
	return "http://memstore/" + o.Bucket + "/" + url.PathEscape(o.Key) + "?" + q.Encode(), nil
}

// Select is not implemented by the fake.
func (m *Store) Select(ctx context.Context, o store.ObjectRef, r store.SelectOptions) (store.SelectStream, error) {
	return nil, fmt.Errorf("select: %w", store.ErrUnsupported)
}

// Listen delivers nothing: the fake has no event stream.
func (m *Store) Listen(ctx context.Context, req store.ListenRequest) <-chan store.Event {
	ch := make(chan store.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}
