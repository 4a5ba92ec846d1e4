package ctl

// The read-side requests that stream or page: cat, select, ls.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"

	"kfs/fs/store"
)

func (s *Server) cat(ctx context.Context, body []byte, w http.ResponseWriter) error {
	var req CatRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	o, err := s.resolveObject(req.Path)
	if err != nil {
		return err
	}
	if err := s.allowRead(ctx, "cat", req.Path); err != nil {
		return err
	}
	o.VersionID = req.VersionID
	if req.Offset < 0 || req.Length < 0 {
		return badRequest("offset and length must not be negative")
	}
	rc, _, err := s.be.Get(ctx, store.GetRequest{ObjectRef: o, Range: store.Range{Offset: req.Offset, Length: req.Length}})
	if errors.Is(err, io.EOF) {
		w.Header().Set("Content-Type", "application/octet-stream")
		return nil // from past the end: nothing, as dd or tail would print
	}
	if err != nil {
		return s.explain(ctx, o, err)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, rc) // a failure now can only cut the stream short
	return nil
}

// warm fetches a file into the disk cache. It is a stream (no deadline:
// a large file takes what it takes) answering one JSON object.
func (s *Server) warm(ctx context.Context, body []byte, w http.ResponseWriter) error {
	var req WarmRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	o, err := s.resolveObject(req.Path)
	if err != nil {
		return err
	}
	if err := s.allowRead(ctx, "warm", req.Path); err != nil {
		return err
	}
	if s.cfg.Warm == nil {
		return badRequest("%s has no disk cache (mount it with --disk-cache-size)", s.cfg.Mountpoint)
	}
	rc, info, err := s.be.Get(ctx, store.GetRequest{ObjectRef: o})
	if err != nil {
		return s.explain(ctx, o, err)
	}
	defer rc.Close()
	info.Key = o.Key
	fetched, err := s.cfg.Warm(ctx, o.Bucket, info, rc)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(WarmResponse{Size: info.Size, Fetched: fetched})
}

// StatsTrailer carries select statistics after the records.
const StatsTrailer = "X-Kfs-Select-Stats"

func (s *Server) selectObject(ctx context.Context, body []byte, w http.ResponseWriter) error {
	var req SelectRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.SQL) == "" {
		return badRequest("select needs --sql")
	}
	o, err := s.resolveObject(req.Path)
	if err != nil {
		return err
	}
	if err := s.allowRead(ctx, "select", req.Path); err != nil {
		return err
	}
	st, err := s.be.Select(ctx, o, store.SelectOptions{SQL: req.SQL, Input: req.Input, CSVHeader: req.CSVHeader,
		Delimiter: req.Delimiter, JSONType: req.JSONType, Compression: req.Compression, Output: req.Output})
	if err != nil {
		return s.explain(ctx, o, err)
	}
	defer st.Close()
	w.Header().Set("Trailer", StatsTrailer)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, copyErr := io.Copy(flushWriter{w}, st)
	ss := st.Stats()
	stats, _ := json.Marshal(SelectStats{BytesScanned: ss.BytesScanned, BytesProcessed: ss.BytesProcessed, BytesReturned: ss.BytesReturned})
	if copyErr != nil {
		stats, _ = json.Marshal(map[string]string{"error": copyErr.Error()})
	}
	w.Header().Set(StatsTrailer, string(stats))
	return nil
}

// flushWriter sends records as they come.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// list pages a directory's listing from StartAfter until Max entries.
func (s *Server) list(ctx context.Context, body []byte) (any, error) {
	var req ListRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.Max < 0 {
		return nil, badRequest("max must not be negative")
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	if err := s.allow(ctx, "ls", req.Path, needList); err != nil {
		return nil, err
	}
	prefix := ""
	if key != "" {
		prefix = strings.TrimSuffix(key, "/") + "/"
	}
	r := store.ListRequest{Bucket: bucket, Prefix: prefix, Recursive: req.Recursive}
	if after := strings.TrimPrefix(req.StartAfter, "/"); after != "" {
		if filepath.IsAbs(req.StartAfter) {
			b, k, err := s.Resolve(req.StartAfter)
			if err != nil || b != bucket || !strings.HasPrefix(k, prefix) {
				return nil, badRequest("--start-after %q is not under %s", req.StartAfter, req.Path)
			}
			after = strings.TrimPrefix(k, prefix)
		}
		r.StartAfter = prefix + after
	}
	out := []ListEntry{}
	for {
		p, err := s.be.List(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, o := range p.Objects {
			if o.Key == prefix {
				continue // the directory's own marker
			}
			out = append(out, ListEntry{Path: s.localPath(bucket, o.Key), Key: o.Key, Dir: strings.HasSuffix(o.Key, "/"),
				Size: o.Size, ETag: strings.Trim(o.ETag, `"`), LastModified: o.LastModified})
		}
		for _, cp := range p.Prefixes {
			out = append(out, ListEntry{Path: s.localPath(bucket, strings.TrimSuffix(cp, "/")), Key: cp, Dir: true})
		}
		if r.Token = p.NextToken; r.Token == "" || req.Max > 0 && len(out) >= req.Max {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if req.Max > 0 && len(out) > req.Max {
		out = out[:req.Max]
	}
	return out, nil
}
