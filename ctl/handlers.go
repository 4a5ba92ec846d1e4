package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"kfs/fs/store"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/presign", s.post(s.presign))
	mux.HandleFunc("/v1/stat", s.post(s.stat))
	mux.HandleFunc("/v1/buckets", s.get(s.buckets))
	mux.HandleFunc("/v1/status", s.get(s.status))
	mux.HandleFunc("/v1/sync", s.post(s.sync))
	mux.HandleFunc("/v1/versions", s.post(s.versions))
	mux.HandleFunc("/v1/ls", s.post(s.list))
	mux.HandleFunc("/v1/rm", s.post(s.remove))
	mux.HandleFunc("/v1/copy", s.post(s.copyObject))
	mux.HandleFunc("/v1/compose", s.post(s.compose))
	mux.HandleFunc("/v1/cat", s.stream(s.cat))
	mux.HandleFunc("/v1/warm", s.stream(s.warm))
	mux.HandleFunc("/v1/select", s.stream(s.selectObject))
	mux.HandleFunc("/v1/watch", s.stream(s.watch))
	mux.HandleFunc("/v1/mb", s.post(s.makeBucket))
	mux.HandleFunc("/v1/rb", s.post(s.removeBucket))
	mux.HandleFunc("/v1/restore", s.post(s.restore))
	mux.HandleFunc("/v1/resolve", s.post(s.resolve))
	if s.cfg.Metrics != nil {
		mux.HandleFunc("GET /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
			if err := s.allow(r.Context(), "metrics", s.cfg.Mountpoint, 0); err != nil {
				s.reply(w, nil, err)
				return
			}
			s.cfg.Metrics.ServeHTTP(w, r)
		})
	}
	return mux
}

// explain turns "not found" into a plain line: the name is a bucket root
// or a directory (not a file), or there is no such file.
func (s *Server) explain(ctx context.Context, o store.ObjectRef, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	where := s.localPath(o.Bucket, o.Key)
	if o.Key == "" {
		return badRequest("%s is a bucket's directory, not a file", where)
	}
	p, lerr := s.be.List(ctx, store.ListRequest{Bucket: o.Bucket, Prefix: o.Key + "/", Max: 1})
	if lerr == nil && len(p.Objects)+len(p.Prefixes) > 0 {
		return badRequest("%s is a directory, not a file", where)
	}
	if o.VersionID != "" {
		return httpError{http.StatusNotFound, fmt.Sprintf("%s: no version %s", where, o.VersionID)}
	}
	return httpError{http.StatusNotFound, where + ": no such file"}
}

// ParseExpiry reads "2h", "90m", "7d", "3600" (seconds); default MaxExpiry.
func ParseExpiry(v string) (time.Duration, error) {
	if v == "" {
		return MaxExpiry, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		days, isDays := strings.CutSuffix(v, "d")
		if n, err2 := strconv.ParseFloat(days, 64); isDays && err2 == nil && n < 1e6 {
			d = time.Duration(n * float64(24*time.Hour))
		} else if n, err2 := strconv.ParseInt(v, 10, 64); err2 == nil && n < 1e12 {
			d = time.Duration(n) * time.Second
		} else {
			return 0, badRequest("expires %q: want a duration such as 2h, 90m, 7d or a number of seconds", v)
		}
	}
	if d <= 0 || d > MaxExpiry {
		return 0, badRequest("expires %s: want more than 0 and at most 7 days (168h, 7d)", v)
	}
	return d, nil
}

func (s *Server) presign(ctx context.Context, body []byte) (any, error) {
	var req PresignRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	o, err := s.resolveObject(req.Path)
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead:
	default:
		return nil, badRequest("method %q: want GET, PUT, DELETE or HEAD", req.Method)
	}
	expires, err := ParseExpiry(req.Expires)
	if err != nil {
		return nil, err
	}
	if method == http.MethodPut || method == http.MethodDelete {
		err = s.allowChange(ctx, "presign "+method, req.Path)
	} else {
		err = s.allowRead(ctx, "presign "+method, req.Path)
	}
	if err != nil {
		return nil, err
	}
	if method != http.MethodPut { // a URL for a directory would only ever answer 404
		if _, err := s.be.Stat(ctx, o); errors.Is(err, store.ErrNotFound) {
			if err := s.explain(ctx, o, err); httpStatus(err) == http.StatusBadRequest {
				return nil, err
			}
		}
	}
	params := url.Values{}
	if req.VersionID != "" {
		params.Set("versionId", req.VersionID)
	}
	for k, v := range req.ResponseHeaders {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "response-") {
			return nil, badRequest("response header %q: want a response-* parameter such as response-content-type", k)
		}
		params.Set(lk, v)
	}
	u, err := s.be.Presign(ctx, store.PresignRequest{ObjectRef: o, Method: method, Expires: expires, Params: params})
	if err != nil {
		return nil, err
	}
	if method == http.MethodPut || method == http.MethodDelete {
		s.changed(ctx, "presigned a "+method+" URL", "path", req.Path, "expires_in", expires.String()) // never the URL
	}
	return PresignResponse{URL: u, ExpiresAt: time.Now().Add(expires).UTC().Truncate(time.Second)}, nil
}

func statOf(bucket string, i store.ObjectInfo) ObjectStat {
	st := ObjectStat{Bucket: bucket, Key: i.Key, Size: i.Size, ETag: i.ETag, VersionID: i.VersionID, LastModified: i.LastModified,
		ContentType: i.ContentType, Metadata: i.Meta, TagCount: i.TagCount, LockMode: i.LockMode, StorageClass: i.StorageClass}
	if !i.LockUntil.IsZero() {
		t := i.LockUntil
		st.LockUntil = &t
	}
	if i.LegalHold {
		st.LegalHold = "ON"
	}
	if len(st.Metadata) == 0 {
		st.Metadata = nil
	}
	return st
}

func (s *Server) stat(ctx context.Context, body []byte) (any, error) {
	var req StatRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	o, err := s.resolveObject(req.Path)
	if err != nil {
		return nil, err
	}
	if err := s.allowRead(ctx, "stat", req.Path); err != nil {
		return nil, err
	}
	o.VersionID = req.VersionID
	info, err := s.be.Stat(ctx, o)
	if err != nil {
		return nil, s.explain(ctx, o, err)
	}
	return statOf(o.Bucket, info), nil
}

func (s *Server) buckets(ctx context.Context) (any, error) {
	if err := s.allow(ctx, "buckets", s.cfg.Mountpoint, 0); err != nil {
		return nil, err
	}
	bs, err := s.be.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Bucket, len(bs))
	for i, b := range bs {
		out[i] = Bucket{Name: b.Name, Created: b.Created}
	}
	return out, nil
}

func (s *Server) status(ctx context.Context) (any, error) {
	if err := s.allow(ctx, "status", s.cfg.Mountpoint, 0); err != nil {
		return nil, err
	}
	st := Status{Mountpoint: s.cfg.Mountpoint, Bucket: s.cfg.Bucket, Prefix: s.cfg.Prefix,
		Endpoint: s.cfg.Endpoint, MountedAt: s.cfg.MountedAt, PID: os.Getpid()}
	if s.cfg.Stats != nil {
		st.Extra = s.cfg.Stats()
	}
	return st, nil
}

// sync waits until what the mount wrote back is in the bucket.
func (s *Server) sync(ctx context.Context, body []byte) (any, error) {
	if err := s.allow(ctx, "sync", s.cfg.Mountpoint, 0); err != nil {
		return nil, err
	}
	if s.cfg.Sync != nil {
		if err := s.cfg.Sync(ctx); err != nil {
			return nil, fmt.Errorf("sync of %s: %w", s.cfg.Mountpoint, err)
		}
	}
	return struct{}{}, nil
}

func (s *Server) versions(ctx context.Context, body []byte) (any, error) {
	var req VersionsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	if req.Recursive {
		err = s.allow(ctx, "versions -r", req.Path, needList)
	} else {
		err = s.allowRead(ctx, "versions", req.Path)
	}
	if err != nil {
		return nil, err
	}
	prefix := key
	if req.Recursive && key != "" {
		prefix = strings.TrimSuffix(key, "/") + "/"
	}
	vs, err := s.be.ListVersions(ctx, store.PrefixRequest{Bucket: bucket, Prefix: prefix, Exact: !req.Recursive})
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 && !req.Recursive {
		err := s.explain(ctx, store.ObjectRef{Bucket: bucket, Key: key}, store.ErrNotFound)
		if httpStatus(err) == http.StatusBadRequest {
			return nil, badRequest("%s (kfs versions -r lists every version under a directory)", err)
		}
		return nil, err
	}
	out := make([]Version, len(vs))
	for i, v := range vs {
		out[i] = Version{Path: s.localPath(bucket, v.Key), VersionID: v.VersionID, Size: v.Size, ETag: v.ETag,
			LastModified: v.LastModified, IsLatest: v.IsLatest, DeleteMarker: v.DeleteMarker}
	}
	return out, nil
}

func (s *Server) remove(ctx context.Context, body []byte) (any, error) {
	var req RemoveRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	if err := s.allowChange(ctx, "rm", req.Path); err != nil {
		return nil, err
	}
	if req.Recursive {
		if err := s.allow(ctx, "rm -r", req.Path, needWrite|needList); err != nil {
			return nil, err
		}
		if req.VersionID != "" {
			return nil, badRequest("recursive removal takes no version id")
		}
		prefix := ""
		if key != "" {
			prefix = strings.TrimSuffix(key, "/") + "/"
		}
		r, err := s.removePrefix(ctx, bucket, prefix)
		s.cfg.ChangedPrefix(bucket, prefix)
		s.changed(ctx, "rm -r", "path", req.Path, "removed", r.Removed, "failed", len(r.Errors))
		return r, err
	}
	o := store.ObjectRef{Bucket: bucket, Key: key, VersionID: req.VersionID}
	if key == "" {
		return nil, badRequest("%s is a bucket's directory: use -r to remove what is in it", req.Path)
	}
	if req.VersionID == "" {
		if _, err := s.be.Stat(ctx, o); err != nil {
			return nil, s.explain(ctx, o, err)
		}
	}
	if err := s.be.Remove(ctx, o); err != nil {
		return nil, err
	}
	s.cfg.Changed(bucket, key)
	s.changed(ctx, "rm", "path", req.Path, "version_id", req.VersionID)
	return RemoveResponse{Removed: 1}, nil
}

// removePrefix deletes every object under prefix in batches, listing
// again until a listing finds nothing: MinIO's listings stop at a key that
// is an object and a prefix at once (a and a/b: only a is listed), so the
// keys under such an object show only once it is gone.
func (s *Server) removePrefix(ctx context.Context, bucket, prefix string) (RemoveResponse, error) {
	var r RemoveResponse
	for pass := 0; pass < 64; pass++ {
		before := r.Removed
		if err := s.removeListed(ctx, bucket, prefix, &r); err != nil || r.Removed == before || len(r.Errors) > 0 {
			return r, err
		}
	}
	return r, nil
}

// removeListed is one pass of removePrefix.
func (s *Server) removeListed(ctx context.Context, bucket, prefix string, r *RemoveResponse) error {
	req := store.ListRequest{Bucket: bucket, Prefix: prefix, Recursive: true}
	for {
		p, err := s.be.List(ctx, req)
		if err != nil {
			return err
		}
		keys := make([]string, len(p.Objects))
		for i, o := range p.Objects {
			keys[i] = o.Key
		}
		if len(keys) > 0 {
			failed, err := s.be.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: keys})
			if err != nil {
				return err
			}
			for _, f := range failed {
				r.Errors = append(r.Errors, f.Key+": "+f.Err.Error())
			}
			r.Removed += len(keys) - len(failed)
		}
		if req.Token = p.NextToken; req.Token == "" {
			return nil
		}
	}
}
