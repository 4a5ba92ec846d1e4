package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is what the server knows about its mount.
type Config struct {
	Mountpoint string
	Bucket     string // "" when the mount shows every bucket
	Prefix     string // "" or "a/b/"
	Endpoint   string
	MountedAt  time.Time
	Stats      func() any // counters for /v1/status (may be nil)
	Log        *log.Logger
	Hub        *Hub // where bucket events arrive (nil: a new one)
}

// MaxExpiry is the longest presigned URL S3 accepts.
const MaxExpiry = 7 * 24 * time.Hour

const maxBody = 64 << 10

// RuntimeDir is where sockets live: $KFS_RUNTIME_DIR, else /run/kfs for
// root, else $XDG_RUNTIME_DIR/kfs, else /tmp/kfs-UID.
func RuntimeDir() string {
	if d := os.Getenv("KFS_RUNTIME_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/kfs"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "kfs")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("kfs-%d", os.Geteuid()))
}

// SocketPath names the socket of the mount at mountpoint.
func SocketPath(mountpoint string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(mountpoint)))
	return filepath.Join(RuntimeDir(), hex.EncodeToString(sum[:8])+".sock")
}

// Server is one mount's control socket.
type Server struct {
	cfg  Config
	be   Backend
	hub  *Hub
	path string
	ln   net.Listener
	http *http.Server
}

// Listen creates the socket (mode 0600, replacing a stale one) and serves
// it in the background.
func Listen(cfg Config, be Backend) (*Server, error) {
	path := SocketPath(cfg.Mountpoint)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %v", err)
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s is in use by another kfs", path)
		}
		os.Remove(path) // stale, from a process that died
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %v", err)
	}
	s := &Server{cfg: cfg, be: be, path: path, ln: ln, hub: cfg.Hub}
	if s.hub == nil {
		s.hub = NewHub()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/presign", s.post(s.presign))
	mux.HandleFunc("/v1/stat", s.post(s.stat))
	mux.HandleFunc("/v1/buckets", s.get(s.buckets))
	mux.HandleFunc("/v1/status", s.get(s.status))
	s.routeMore(mux)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		ErrorLog: cfg.Log}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

// httpError is an answer with a status code.
type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusBadGateway
		var he httpError
		switch {
		case errors.As(err, &he):
			code = he.code
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		}
		if code >= 500 && s.cfg.Log != nil {
			s.cfg.Log.Printf("control socket: %v", err)
		}
		w.WriteHeader(code)
		v = ErrorBody{Error: strings.ReplaceAll(err.Error(), "\n", " ")}
	}
	_ = json.NewEncoder(w).Encode(v)
}

// post decodes a JSON body strictly (bounded, no unknown fields, nothing
// after it) into the handler's request type.
func (s *Server) post(h func(context.Context, json.RawMessage) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.reply(w, nil, httpError{http.StatusMethodNotAllowed, r.Method + " not allowed: use POST"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			s.reply(w, nil, httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		v, err := h(ctx, body)
		s.reply(w, v, err)
	}
}

func (s *Server) get(h func(context.Context) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			s.reply(w, nil, httpError{http.StatusMethodNotAllowed, r.Method + " not allowed: use GET"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		v, err := h(ctx)
		s.reply(w, v, err)
	}
}

// decode parses body into v, refusing unknown fields and trailing data.
func decode(body []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	if d.More() {
		return badRequest("malformed JSON: data after the object")
	}
	return nil
}

// Resolve maps a local path inside the mount to bucket and key.
func (s *Server) Resolve(p string) (bucket, key string, err error) {
	if !filepath.IsAbs(p) {
		return "", "", badRequest("path %q: want an absolute path inside %s", p, s.cfg.Mountpoint)
	}
	clean := filepath.Clean(p)
	rel, ok := strings.CutPrefix(clean, filepath.Clean(s.cfg.Mountpoint)+"/")
	if !ok || rel == "" {
		return "", "", badRequest("path %q is not inside the mount %s", p, s.cfg.Mountpoint)
	}
	if s.cfg.Bucket == "" {
		bucket, key, _ = strings.Cut(rel, "/")
		if key == "" {
			return "", "", badRequest("path %q names a bucket, not an object", p)
		}
		return bucket, key, nil
	}
	return s.cfg.Bucket, s.cfg.Prefix + rel, nil
}

// ParseExpiry reads "2h", "90m", "3600" (seconds); default MaxExpiry.
func ParseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return MaxExpiry, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, err2 := strconv.ParseInt(s, 10, 64)
		if err2 != nil {
			return 0, badRequest("expires %q: want a duration such as 2h or a number of seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 || d > MaxExpiry {
		return 0, badRequest("expires %s: want more than 0 and at most 7 days (168h)", d)
	}
	return d, nil
}

func (s *Server) presign(ctx context.Context, body json.RawMessage) (any, error) {
	var req PresignRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bucket, key, err := s.Resolve(req.Path)
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
	u, err := s.be.Presign(ctx, method, bucket, key, expires, params)
	if err != nil {
		return nil, err
	}
	return PresignResponse{URL: u, ExpiresAt: time.Now().Add(expires).UTC().Truncate(time.Second)}, nil
}

func (s *Server) stat(ctx context.Context, body json.RawMessage) (any, error) {
	var req StatRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bucket, key, err := s.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	return s.be.Stat(ctx, bucket, key, req.VersionID)
}

func (s *Server) buckets(ctx context.Context) (any, error) { return s.be.Buckets(ctx) }

func (s *Server) status(ctx context.Context) (any, error) {
	st := Status{Mountpoint: s.cfg.Mountpoint, Bucket: s.cfg.Bucket, Prefix: s.cfg.Prefix,
		Endpoint: s.cfg.Endpoint, MountedAt: s.cfg.MountedAt, PID: os.Getpid()}
	if s.cfg.Stats != nil {
		st.Extra = s.cfg.Stats()
	}
	return st, nil
}
