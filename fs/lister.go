package fs

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// dirEntry is one name in a directory listing.
type dirEntry struct {
	name  string
	isDir bool
	info  ObjectInfo // files only
}

// lister streams one directory's entries page by page. With readahead on,
// the next page is requested as soon as the previous one arrives, so the
// store's listing time overlaps the kernel's consumption of entries; at most
// one page is ever fetched ahead. It merges objects and common
// prefixes, skips the directory's own marker object and keys that cannot be
// file names (one log line each), and lets a prefix win over an object of
// the same name: such an object is held back until no prefix of its name
// can follow in key order ("a" < "a.txt" < "a/").
type lister struct {
	fsys           *FS
	bucket, prefix string
	pageSize       int

	readahead bool
	meta      listMeta // whether pages are asked for with user metadata

	token   string
	done    bool
	queue   []dirEntry // ready to hand out
	pending []dirEntry // objects that a later prefix may still replace

	ahead  chan pageResult    // the next page, while it is fetched in the background
	cancel context.CancelFunc // stops that fetch
}

type pageResult struct {
	page ListPage
	err  error
}

func newLister(f *FS, bucket, prefix string) *lister {
	return &lister{fsys: f, bucket: bucket, prefix: prefix, pageSize: 1000}
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

// fetchPage reads one page into the queue and reports whether the listing
// was complete in it.
func (l *lister) fetchPage(ctx context.Context) error {
	var page ListPage
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
		page, err = l.fsys.store.List(ctx, l.bucket, l.prefix, l.token, l.pageSize, l.meta == metaOn)
	}
	if err == nil && l.meta == metaUnknown {
		page, err = l.decideMeta(ctx, page)
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	ch := make(chan pageResult, 1)
	token, meta := l.token, l.meta == metaOn
	l.ahead, l.cancel = ch, cancel
	go func() {
		p, err := l.fsys.store.List(ctx, l.bucket, l.prefix, token, l.pageSize, meta)
		ch <- pageResult{p, err}
	}()
}

// listMeta says whether a directory's pages are listed with user metadata.
type listMeta int

const (
	metaUnknown listMeta = iota
	metaOn
	metaOff
)

// decideMeta settles, on a directory's first plain page, whether to list it
// with metadata: a listing with metadata costs MinIO about 2.5 times a plain
// one (it reads every object's metadata), so kfs asks only when the first
// object of the directory, sampled with one HEAD, carries POSIX metadata (it
// was written through kfs or s3fs). Then the page is listed again with
// metadata. Files of a directory judged plain show the mount's defaults
// until a HEAD (the attribute refresh) says otherwise.
func (l *lister) decideMeta(ctx context.Context, page ListPage) (ListPage, error) {
	l.meta = metaOff
	var first *ObjectInfo
	for i := range page.Objects {
		if page.Objects[i].Key != l.prefix {
			first = &page.Objects[i]
			break
		}
	}
	if first == nil {
		return page, nil
	}
	info, err := l.fsys.store.Stat(ctx, l.bucket, first.Key)
	if err != nil || !hasPosixMeta(info.Meta) {
		return page, nil // a vanished sample decides nothing worth a failure
	}
	l.meta = metaOn
	return l.fsys.store.List(ctx, l.bucket, l.prefix, l.token, l.pageSize, true)
}

func hasPosixMeta(m map[string]string) bool {
	for _, k := range []string{metaMode, metaUID, metaGID, metaMtime} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
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

func (l *lister) pushObject(o ObjectInfo) {
	l.flushBefore(o.Key)
	if o.Key == l.prefix || !strings.HasPrefix(o.Key, l.prefix) {
		return // the directory's own marker object
	}
	name := o.Key[len(l.prefix):]
	if !l.usable(o.Key, name) || l.fsys.del.isPending(l.bucket, o.Key) {
		return
	}
	l.pending = append(l.pending, dirEntry{name: name, info: o})
}

func (l *lister) pushPrefix(p string) {
	l.flushBefore(p)
	if !strings.HasPrefix(p, l.prefix) {
		return
	}
	name := strings.TrimSuffix(p[len(l.prefix):], "/")
	for k, e := range l.pending {
		if e.name == name {
			l.fsys.logOnce(fmt.Sprintf("%s/%s is both an object and a prefix: showing the directory, hiding the object", l.bucket, e.info.Key))
			l.pending = append(l.pending[:k], l.pending[k+1:]...)
			break
		}
	}
	if !l.usable(p, name) {
		return
	}
	l.queue = append(l.queue, dirEntry{name: name, isDir: true})
}

func (l *lister) usable(key, name string) bool {
	if reason := checkName(name); reason != "" {
		l.fsys.logOnce(fmt.Sprintf("skipping key %q in bucket %s: %s", key, l.bucket, reason))
		return false
	}
	return true
}
