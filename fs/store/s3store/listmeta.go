package s3store

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"kfs/fs/store"
)

// Servers without MinIO's metadata listing (SeaweedFS, AWS S3, most
// others) answer a metadata listing without each object's metadata. The
// store contract says a Meta listing carries it, so the objects that came
// without are looked up with HEADs, headsAtOnce at a time, through a
// cache keyed by object version (key, ETag, size, LastModified: any
// change of metadata in S3 makes a new LastModified), so a directory
// listed again costs no HEAD for what did not change.
//
// LastModified may count whole seconds, and a metadata change (a copy
// onto itself) keeps ETag and size: a version changed again within the
// second it was written would look the same. So an object is cached only
// once it is settled (its LastModified more than settledAfter old when
// looked up, by this machine's clock: a server clock behind it by more
// than that narrows the guard), and every write of this store to a key
// forgets it.

const (
	headsAtOnce   = 16
	metaCacheSize = 32 << 10 // objects
	settledAfter  = 2 * time.Second
)

type cachedMeta struct {
	etag        string
	size        int64
	modified    time.Time
	meta        map[string]string
	contentType string
}

type metaFiller struct {
	once  sync.Once
	cache *lru.Cache[string, cachedMeta]
	noted sync.Once // NoListMeta told
}

func (m *metaFiller) get() *lru.Cache[string, cachedMeta] {
	m.once.Do(func() { m.cache, _ = lru.New[string, cachedMeta](metaCacheSize) })
	return m.cache
}

// forget drops what is cached of keys (this store just wrote them).
func (m *metaFiller) forget(bucket string, keys ...string) {
	m.once.Do(func() { m.cache, _ = lru.New[string, cachedMeta](metaCacheSize) })
	if m.cache.Len() == 0 {
		return // servers with metadata listings never fill it
	}
	for _, k := range keys {
		m.cache.Remove(bucket + "\x00" + k)
	}
}

// fillMeta gives every object of a metadata listing its metadata: from
// the cache when the same version was seen, else from a HEAD. An object
// gone by the time of its HEAD is left out of the page (the listing was
// a moment old); one changed meanwhile is described as it is now.
func (s *Store) fillMeta(ctx context.Context, bucket string, p *store.ListPage) error {
	var need []int
	cache := s.lm.get()
	for i := range p.Objects {
		o := &p.Objects[i]
		if o.Meta != nil {
			continue
		}
		if c, ok := cache.Get(bucket + "\x00" + o.Key); ok && c.etag == o.ETag && c.size == o.Size && c.modified.Equal(o.LastModified) {
			o.Meta, o.ContentType = c.meta, c.contentType
			continue
		}
		need = append(need, i)
	}
	if len(need) == 0 {
		return nil
	}
	s.lm.noted.Do(func() {
		if s.noListMeta != nil {
			s.noListMeta()
		}
	})
	gone := make([]bool, len(p.Objects))
	errs := make([]error, len(need))
	sem := make(chan struct{}, headsAtOnce)
	var wg sync.WaitGroup
	for j, i := range need {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			gone[i], errs[j] = s.headInto(ctx, bucket, &p.Objects[i], cache)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	kept := p.Objects[:0]
	for i, o := range p.Objects {
		if !gone[i] {
			kept = append(kept, o)
		}
	}
	p.Objects = kept
	return nil
}

// headInto describes o as a HEAD finds it now, metadata included, and
// caches what it found once settled; gone when the object is.
func (s *Store) headInto(ctx context.Context, bucket string, o *store.ObjectInfo, cache *lru.Cache[string, cachedMeta]) (gone bool, err error) {
	info, err := s.Stat(ctx, store.ObjectRef{Bucket: bucket, Key: o.Key})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	if info.Meta == nil {
		info.Meta = map[string]string{}
	}
	key := o.Key
	*o = store.ObjectInfo{Key: key, Size: info.Size, ETag: info.ETag, LastModified: info.LastModified,
		Meta: info.Meta, ContentType: info.ContentType}
	if time.Since(info.LastModified) > settledAfter {
		cache.Add(bucket+"\x00"+key, cachedMeta{etag: info.ETag, size: info.Size, modified: info.LastModified,
			meta: info.Meta, contentType: info.ContentType})
	}
	return false, nil
}

// serverName remembers the Server header of the server's answers.
type serverName struct {
	next http.RoundTripper
	name *atomic.Value // string
}

func (s serverName) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil {
		if v := resp.Header.Get("Server"); v != "" {
			if old, _ := s.name.Load().(string); old != v {
				s.name.Store(v)
			}
		}
	}
	return resp, err
}

// KeepsDirMeta says whether the server is known to keep the metadata of
// directory marker objects ("dir/") as of any other object: MinIO does
// (it says its name in every answer). Elsewhere kfs looks once.
func (s *Store) KeepsDirMeta() bool { return s.isMinIO() }

// FoldersVanish says whether the server is known to list a prefix only
// while objects are under it (MinIO); SeaweedFS keeps emptied folders.
func (s *Store) FoldersVanish() bool { return s.isMinIO() }

func (s *Store) isMinIO() bool {
	name, _ := s.server.Load().(string)
	return strings.HasPrefix(name, "MinIO")
}
