package fs

import (
	"context"
	"strings"

	"kfs/fs/store"
)

// lister streams one directory's entries page by page, every object with
// its metadata (so mode, owner, times and symlinks show on any bucket, on a
// fresh mount). With readahead on, the next page is requested as soon as
// the previous one arrives, so the store's listing time overlaps the
// kernel's consumption of entries; at most one page is fetched ahead. It
// merges objects and common prefixes, keeps the directory's own marker
// object aside, skips keys that cannot be file names (one log line each),
// and lets a prefix win over an object of the same name: such an object is
// held back until no prefix of its name can follow in key order
// ("a" < "a.txt" < "a/").
type lister struct {
	fsys           *FS
	bucket, prefix string
	pageSize       int
	readahead      bool

	token   string
	done    bool
	queue   []dirEntry       // ready to hand out
	pending []dirEntry       // objects that a later prefix may still replace
	marker  store.ObjectInfo // the directory's own marker object, if listed

	ahead  chan pageResult    // the next page, while it is fetched in the background
	cancel context.CancelFunc // stops that fetch
}

type pageResult struct {
	page store.ListPage
	err  error
}

func newLister(f *FS, bucket, prefix string) *lister {
	return &lister{fsys: f, bucket: bucket, prefix: prefix, pageSize: 1000}
}

func (l *lister) request(token string) store.ListRequest {
	return store.ListRequest{Bucket: l.bucket, Prefix: l.prefix, Token: token, Max: l.pageSize, Meta: true}
}

// next returns the next entry; ok is false at the end.
func (l *lister) next(ctx context.Context) (e dirEntry, ok bool, err error) {
	for len(l.queue) == 0 {
		if l.done {
			return dirEntry{}, false, nil
		}
		if err := l.fetchPage(ctx); err != nil {
			return dirEntry{}, false, err
		}
	}
	e = l.queue[0]
	l.queue = l.queue[1:]
	return e, true, nil
}

// fetchPage reads one page into the queue.
func (l *lister) fetchPage(ctx context.Context) error {
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
		page, err = l.fsys.store.List(ctx, l.request(l.token))
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
	} else if l.readahead {
		l.fetchAhead()
	}
	return nil
}

func (l *lister) fetchAhead() {
	ctx, cancel := l.fsys.background()
	ch := make(chan pageResult, 1)
	req := l.request(l.token)
	l.ahead, l.cancel = ch, cancel
	go func() {
		p, err := l.fsys.store.List(ctx, req)
		ch <- pageResult{p, err}
	}()
}

// close stops a background fetch.
func (l *lister) close() {
	if l.cancel != nil {
		l.cancel()
	}
}

func (l *lister) flushBefore(key string) {
	for len(l.pending) > 0 && l.pending[0].info.Key+"/" < key {
		l.queue = append(l.queue, l.pending[0])
		l.pending = l.pending[1:]
	}
}

func (l *lister) pushObject(o store.ObjectInfo) {
	l.flushBefore(o.Key)
	if o.Key == l.prefix {
		l.marker = o
		return
	}
	if !strings.HasPrefix(o.Key, l.prefix) {
		return
	}
	name := o.Key[len(l.prefix):]
	if !l.usable(o.Key, name) || l.fsys.del.isPending(l.bucket, o.Key) {
		return
	}
	// An s3fs directory object ("name", empty, application/x-directory)
	// is a directory; its attributes are its own.
	l.pending = append(l.pending, dirEntry{name: name, info: o, isDir: isDirObject(o)})
}

func (l *lister) pushPrefix(p string) {
	l.flushBefore(p)
	if !strings.HasPrefix(p, l.prefix) {
		return
	}
	name := strings.TrimSuffix(p[len(l.prefix):], "/")
	var info store.ObjectInfo
	for k, e := range l.pending {
		if e.name == name {
			if e.isDir {
				info = e.info // s3fs's directory object of this prefix: the same directory
			} else {
				l.fsys.logOnce("a key is both an object and a prefix: showing the directory, hiding the object", "bucket", l.bucket, "key", e.info.Key)
			}
			l.pending = append(l.pending[:k], l.pending[k+1:]...)
			break
		}
	}
	if !l.usable(p, name) {
		return
	}
	l.queue = append(l.queue, dirEntry{name: name, isDir: true, info: info})
}

func (l *lister) usable(key, name string) bool {
	if reason := checkName(name); reason != "" {
		l.fsys.logOnce("skipping a key that cannot be a file name", "bucket", l.bucket, "key", key, "reason", reason)
		return false
	}
	return true
}
