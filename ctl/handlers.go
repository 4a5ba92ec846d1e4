package ctl

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// Handlers beyond presign/stat: versions, cat, rm, copy, compose, select.

func (s *Server) routeMore(mux *http.ServeMux) {
	mux.HandleFunc("/v1/versions", s.post(s.versions))
	mux.HandleFunc("/v1/rm", s.post(s.remove))
	mux.HandleFunc("/v1/copy", s.post(s.copyObject))
	mux.HandleFunc("/v1/compose", s.post(s.compose))
	mux.HandleFunc("/v1/cat", s.stream(s.cat))
	mux.HandleFunc("/v1/select", s.stream(s.selectObject))
	mux.HandleFunc("/v1/watch", s.stream(s.watch))
}

func (s *Server) versions(ctx context.Context, body json.RawMessage) (any, error) {
	var req VersionsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	return s.be.Versions(ctx, bucket, key)
}

func (s *Server) remove(ctx context.Context, body json.RawMessage) (any, error) {
	var req RemoveRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	if req.Recursive {
		if req.VersionID != "" {
			return nil, badRequest("recursive removal takes no version id")
		}
		return s.be.RemovePrefix(ctx, bucket, strings.TrimSuffix(key, "/")+"/")
	}
	if err := s.be.Remove(ctx, ObjectRef{Bucket: bucket, Key: key, VersionID: req.VersionID}); err != nil {
		return nil, err
	}
	return RemoveResponse{Removed: 1}, nil
}

func (s *Server) copyObject(ctx context.Context, body json.RawMessage) (any, error) {
	var req CopyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	sb, sk, err := s.Resolve(req.Src)
	if err != nil {
		return nil, err
	}
	db, dk, err := s.Resolve(req.Dst)
	if err != nil {
		return nil, err
	}
	return s.be.Copy(ctx, ObjectRef{Bucket: sb, Key: sk}, ObjectRef{Bucket: db, Key: dk}, req)
}

func (s *Server) compose(ctx context.Context, body json.RawMessage) (any, error) {
	var req ComposeRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.Srcs) == 0 || len(req.Srcs) > 10000 {
		return nil, badRequest("compose takes 1 to 10000 sources")
	}
	db, dk, err := s.Resolve(req.Dst)
	if err != nil {
		return nil, err
	}
	srcs := make([]ObjectRef, len(req.Srcs))
	for i, p := range req.Srcs {
		b, k, err := s.Resolve(p)
		if err != nil {
			return nil, err
		}
		srcs[i] = ObjectRef{Bucket: b, Key: k}
	}
	return s.be.Compose(ctx, ObjectRef{Bucket: db, Key: dk}, srcs)
}

// stream serves handlers whose answer is a byte stream, not JSON; errors
// before the first byte are JSON like everywhere else.
func (s *Server) stream(h func(ctx context.Context, body []byte, w http.ResponseWriter) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.reply(w, nil, httpError{http.StatusMethodNotAllowed, r.Method + " not allowed: use POST"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			s.reply(w, nil, httpError{http.StatusRequestEntityTooLarge, "request body too large"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*24*time.Hour)
		defer cancel()
		if err := h(ctx, body, w); err != nil {
			s.reply(w, nil, err)
		}
	}
}

func (s *Server) cat(ctx context.Context, body []byte, w http.ResponseWriter) error {
	var req CatRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return err
	}
	rc, err := s.be.Get(ctx, ObjectRef{Bucket: bucket, Key: key, VersionID: req.VersionID})
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, rc) // a failure now can only cut the stream short
	return nil
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
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return err
	}
	st, err := s.be.Select(ctx, ObjectRef{Bucket: bucket, Key: key}, req)
	if err != nil {
		return err
	}
	defer st.Close()
	w.Header().Set("Trailer", StatsTrailer)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, copyErr := io.Copy(flushWriter{w}, st)
	stats, _ := json.Marshal(st.Stats())
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
