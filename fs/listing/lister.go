package listing

import (
	"context"
	"strings"
	"time"

	"kfs/fs/store"
)

// Lister streams one directory's entries page by page, every object with
// its metadata (so mode, owner, times and symlinks show on any bucket, on a
// fresh mount). With readahead on, the next page is requested as soon as
// the previous one arrives, so the store's listing time overlaps the
// kernel's consumption of entries; at most one page is fetched ahead. It
// merges objects and common prefixes, keeps the directory's own marker
// object aside, skips keys that cannot be file names (one log line each),
// and lets a prefix win over an object of the same name: such an object is
// held back until no prefix of its name can follow in key order
// ("a" < "a.txt" < "a/").
type Lister struct {
	cfg            ListerConfig
	bucket, prefix string
	pageSize       int
	// Readahead requests the next page as soon as one arrives.
	Readahead bool

	token   string
	done    bool
	queue   []Entry // ready to hand out
	pending []Entry // objects that a later prefix may still replace
	// Marker is the directory's own marker object, once listed.
	Marker store.ObjectInfo

	ahead  chan pageResult    // the next page, while it is fetched in the background
	cancel context.CancelFunc // stops that fetch
}

type pageResult struct {
	page store.ListPage
	err  error
}

// ListerConfig is what a lister needs of the mount.
type ListerConfig struct {
	Store interface {
		List(ctx context.Context, r store.ListRequest) (store.ListPage, error)
	}
	// Background is a context for a page fetched ahead (it outlives the
	// request that started it).
	Background func() (context.Context, context.CancelFunc)
	// Hidden says a key is on its way out (a deletion not yet sent):
	// listed, it is left out.
	Hidden func(bucket, key string) bool
	// IsDir says an object stands for a directory (s3fs's "name" objects).
	IsDir func(o store.ObjectInfo) bool
	// LogOnce logs a message once per mount.
	LogOnce func(msg string, args ...any)
}

// NewLister lists bucket/prefix (prefix "" or ending in "/").
func NewLister(cfg ListerConfig, bucket, prefix string) *Lister {
	return &Lister{cfg: cfg, bucket: bucket, prefix: prefix, pageSize: 1000}
}

func (l *Lister) request(token string) store.ListRequest {
	return store.ListRequest{Bucket: l.bucket, Prefix: l.prefix, Token: token, Max: l.pageSize, Meta: true}
}

// Next returns the next entry; ok is false at the end.
func (l *Lister) Next(ctx context.Context) (e Entry, ok bool, err error) {
	for len(l.queue) == 0 {
		if l.done {
			return Entry{}, false, nil
		}
		if err := l.fetchPage(ctx); err != nil {
			return Entry{}, false, err
		}
	}
	e = l.queue[0]
	l.queue = l.queue[1:]
	return e, true, nil
}

// fetchPage reads one page into the queue.
func (l *Lister) fetchPage(ctx context.Context) error {
	var page store.ListPage
	var err error
	if l.ahead != nil {
		select {
		case r := <-l.ahead:
			page, err = r.page, r.err
		case <-ctx.Done():
			return ctx.Err()
		}
		l.ahead = nil
	} else {
		page, err = l.cfg.Store.List(ctx, l.request(l.token))
	}
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(page.Objects) || j < len(page.Prefixes) {
		if j == len(page.Prefixes) || (i < len(page.Objects) && page.Objects[i].Key < page.Prefixes[j]) {
			l.pushObject(page.Objects[i])
			i++
		} else {
			l.pushPrefix(page.Prefixes[j])
			j++
		}
	}
	l.token = page.NextToken
	if l.token == "" {
		l.done = true
		l.queue = append(l.queue, l.pending...)
		l.pending = nil
	} else if l.Readahead {
		l.fetchAhead()
	}
	return nil
}

func (l *Lister) fetchAhead() {
	ctx, cancel := l.cfg.Background()
	ch := make(chan pageResult, 1)
	req := l.request(l.token)
	l.ahead, l.cancel = ch, cancel
	go func() {
		p, err := l.cfg.Store.List(ctx, req)
		ch <- pageResult{p, err}
	}()
}

// Close stops a background fetch.
func (l *Lister) Close() {
	if l.cancel != nil {
		l.cancel()
	}
}

func (l *Lister) flushBefore(key string) {
	for len(l.pending) > 0 && l.pending[0].Info.Key+"/" < key {
		l.queue = append(l.queue, l.pending[0])
		l.pending = l.pending[1:]
	}
}

func (l *Lister) pushObject(o store.ObjectInfo) {
	l.flushBefore(o.Key)
	if o.Key == l.prefix {
		l.Marker = o
		return
	}
	if !strings.HasPrefix(o.Key, l.prefix) {
		return
	}
	name := o.Key[len(l.prefix):]
	if !l.usable(o.Key, name) || l.cfg.Hidden(l.bucket, o.Key) {
		return
	}
	// An s3fs directory object ("name", empty, application/x-directory)
	// is a directory; its attributes are its own.
	l.pending = append(l.pending, Entry{Name: name, Info: o, IsDir: l.cfg.IsDir(o)})
}

func (l *Lister) pushPrefix(p string) {
	l.flushBefore(p)
	if !strings.HasPrefix(p, l.prefix) {
		return
	}
	name := strings.TrimSuffix(p[len(l.prefix):], "/")
	var info store.ObjectInfo
	for k, e := range l.pending {
		if e.Name == name {
			if e.IsDir {
				info = e.Info // s3fs's directory object of this prefix: the same directory
			} else {
				l.cfg.LogOnce("a key is both an object and a prefix: showing the directory, hiding the object", "bucket", l.bucket, "key", e.Info.Key)
			}
			l.pending = append(l.pending[:k], l.pending[k+1:]...)
			break
		}
	}
	if !l.usable(p, name) {
		return
	}
	l.queue = append(l.queue, Entry{Name: name, IsDir: true, Info: info})
}

func (l *Lister) usable(key, name string) bool {
	if reason := CheckName(name); reason != "" {
		l.cfg.LogOnce("skipping a key that cannot be a file name", "bucket", l.bucket, "key", key, "reason", reason)
		return false
	}
	return true
}

// Queued are the entries ready to hand out (to look ahead at).
func (l *Lister) Queued() []Entry { return l.queue }

// FirstPage is a listing of the first page alone (complete when it was the
// only one), made at now, with the directory's marker.
func (l *Lister) FirstPage(ctx context.Context, now time.Time) (*Listing, error) {
	defer l.Close()
	if err := l.fetchPage(ctx); err != nil {
		return nil, err
	}
	out := New(now)
	out.Marker, out.Complete = l.Marker, l.done
	for _, e := range l.queue {
		out.Add(e)
	}
	if l.done {
		for _, e := range l.pending {
			out.Add(e)
		}
	}
	return out, nil
}
