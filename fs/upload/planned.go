package upload

import (
	"context"
	"fmt"
	"io"

	"kfs/fs/store"
)

// span is one part of a planned commit: [lo, hi) copied from the base
// object server side, or sent from the staging file.
type span struct {
	lo, hi int64
	copy   bool
}

// plan groups the layout's parts for a commit made at once: consecutive
// runs of unchanged base bytes become one server-side copy each, up to the
// 5 GiB S3 allows in one UploadPartCopy; changed parts go as they are.
// Every part but the last is whole layout parts, so at least 5 MiB.
func (f *File) plan() []span {
	l := f.layout()
	var out []span
	for n, count := 1, l.count(f.size); n <= count; n++ {
		lo, hi := l.start(n), min(l.start(n)+l.size(n), f.size)
		c := f.canCopy(lo, hi)
		if k := len(out) - 1; c && k >= 0 && out[k].copy && out[k].hi == lo && hi-out[k].lo <= store.MaxPartSize {
			out[k].hi = hi
			continue
		}
		out = append(out, span{lo, hi, c})
	}
	return out
}

// plannedLocked commits an edited file none of whose parts were sent
// ahead: one multipart upload of plan(), so an edit of a few bytes in the
// middle of a large object costs its changed part, two copies, and the
// upload's start and completion, not one request per part. A failure
// aborts the upload: the content stays for a retry, which plans anew.
func (f *File) plannedLocked(ctx context.Context, opts store.PutOptions) (store.ObjectInfo, error) {
	plan := f.plan()
	if err := f.startLocked(ctx, opts); err != nil {
		return store.ObjectInfo{}, err
	}
	m, sf, src, etag := f.mp, f.f, f.base.Key, f.base.ETag
	for i, s := range plan {
		num, s := i+1, s
		var err error
		if s.copy { // no bytes pass through kfs: no memory budget
			err = m.run(ctx, num, 0, s.hi-s.lo, 0, func(ctx context.Context) (store.Part, error) {
				return f.p.cfg.Store.CopyPart(ctx, store.CopyPartRequest{Upload: m.up, Number: num, Src: store.ObjectRef{Bucket: m.up.Bucket, Key: src}, SrcETag: etag, Offset: s.lo, Length: s.hi - s.lo})
			})
		} else {
			err = m.goPart(ctx, num, 0, s.hi-s.lo, func(ctx context.Context) (store.Part, error) {
				return f.p.cfg.Store.PutPart(ctx, store.PartRequest{Upload: m.up, Number: num, Body: io.NewSectionReader(sf, s.lo, s.hi-s.lo), Size: s.hi - s.lo})
			})
		}
		if err != nil {
			f.abortLocked()
			return store.ObjectInfo{}, err
		}
	}
	m.wg.Wait()
	parts := make([]store.Part, len(plan))
	for i, s := range plan {
		m.mu.Lock()
		p, ok := m.sent[i+1]
		m.mu.Unlock()
		if !ok || p.size != s.hi-s.lo {
			f.abortLocked()
			return store.ObjectInfo{}, fmt.Errorf("upload of %s/%s: part %d was not stored: %w", f.bucket, f.key, i+1, store.ErrUnavailable)
		}
		parts[i] = p.part
	}
	cctx, cancel := context.WithTimeout(ctx, f.p.cfg.Timeout)
	defer cancel()
	info, err := f.p.cfg.Store.CompleteUpload(cctx, m.up, parts)
	if err != nil {
		f.abortLocked()
		return store.ObjectInfo{}, err
	}
	f.mp = nil
	if j := f.p.cfg.Journal; j != nil {
		j.Record(m.up, false)
	}
	return info, nil
}
