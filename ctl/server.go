package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kfs/fs/store"
)

// Config is what the server knows about its mount.
type Config struct {
	Mountpoint string
	Bucket     string // "" when the mount shows every bucket
	Prefix     string // "" or "a/b/"
	Endpoint   string
	MountedAt  time.Time
	Stats      func() any   // counters for /v1/status (may be nil)
	Metrics    http.Handler // serves GET /v1/metrics (nil: 404)
	Log        *slog.Logger
	Hub        *Hub // where bucket events arrive (nil: a new one)
	// Changed and ChangedPrefix tell the mount's caches (and the kernel's)
	// about a change the socket made, before the socket answers.
	Changed       func(bucket, key string)
	ChangedPrefix func(bucket, prefix string)
	// Settle sends what the mount still holds back of key and everything
	// under it (deletions waiting in its batch), so a request through the
	// socket sees what the filesystem shows: rm f; kfs stat f says no such
	// file. nil: nothing is held back.
	Settle func(ctx context.Context, bucket, key string) error
	// Sync uploads everything the mount wrote back and has not uploaded
	// yet, and waits for it (kfs sync). nil: nothing is ever pending.
	Sync func(ctx context.Context) error
	// Warm stores an object whole in the mount's disk cache from body (its
	// bytes, as GET answered with info), reporting whether it stored them
	// (false: already there). nil: the mount has none.
	Warm func(ctx context.Context, bucket string, info store.ObjectInfo, body io.Reader) (bool, error)

	// Who may do what (see allow): the mount's owner (the uid that
	// mounted it) and root may use every request; other users only when
	// AllowOther, each request checked by Access as the kernel would check
	// the same work through the mount. ReadOnly refuses every change.
	Owner      uint32
	AllowOther bool
	ReadOnly   bool
	Access     Access
}

// MaxExpiry is the longest presigned URL S3 accepts.
const MaxExpiry = 7 * 24 * time.Hour

const maxBody = 64 << 10

// RuntimeDir is where this process's sockets live: $KFS_RUNTIME_DIR, else
// DefaultRuntimeDir of its uid.
func RuntimeDir() string {
	if d := os.Getenv("KFS_RUNTIME_DIR"); d != "" {
		return d
	}
	return DefaultRuntimeDir(uint32(os.Geteuid()))
}

// SocketPath names the socket this process serves for mountpoint.
func SocketPath(mountpoint string) string {
	return filepath.Join(RuntimeDir(), socketName(mountpoint))
}

func socketName(mountpoint string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(mountpoint)))
	return hex.EncodeToString(sum[:8]) + ".sock"
}

// Server is one mount's control socket.
type Server struct {
	cfg  Config
	be   Backend
	hub  *Hub
	path string
	ln   net.Listener
	http *http.Server
	// stop ends the requests still running at Close (streams: watch, cat,
	// select), so an unmount does not wait on a client that went quiet.
	stop context.CancelFunc
}

// Listen creates the socket (mode 0600, replacing a stale one) and serves
// it in the background.
func Listen(cfg Config, be Backend) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Changed == nil {
		cfg.Changed = func(string, string) {}
	}
	if cfg.ChangedPrefix == nil {
		cfg.ChangedPrefix = func(string, string) {}
	}
	path := SocketPath(cfg.Mountpoint)
	if err := prepareDir(filepath.Dir(path), uint32(os.Geteuid()), 0o711); err != nil {
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
	// Connecting needs write permission on the socket: a shared mount's
	// socket is open to every user, each request then checked (allow).
	mode := os.FileMode(0o600)
	if cfg.AllowOther {
		mode = 0o666
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %v", err)
	}
	s := &Server{cfg: cfg, be: be, path: path, ln: ln, hub: cfg.Hub}
	if s.hub == nil {
		s.hub = NewHub()
	}
	base, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10, ConnContext: withPeer,
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	// Requests under way get a second to finish; then the rest (streams
	// whose client went quiet) are ended, with 4 s more to wind down.
	grace, cancelGrace := context.WithTimeout(context.Background(), time.Second)
	err := s.http.Shutdown(grace)
	cancelGrace()
	if err != nil {
		s.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		err = s.http.Shutdown(ctx)
		cancel()
	}
	s.stop()
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

// statusTable maps store sentinels to HTTP status codes; the first match
// wins, anything else is 502 (the store failed).
var statusTable = []struct {
	err  error
	code int
}{
	{store.ErrNotFound, http.StatusNotFound},
	{store.ErrStale, http.StatusPreconditionFailed},
	{store.ErrAccessDenied, http.StatusForbidden},
	{store.ErrLocked, http.StatusForbidden},
	{store.ErrInvalid, http.StatusBadRequest},
	{store.ErrNoObjectLock, http.StatusBadRequest},
	{store.ErrTooLarge, http.StatusBadRequest},
	{store.ErrNameTooLong, http.StatusBadRequest},
	{store.ErrExists, http.StatusConflict},
	{store.ErrNotEmpty, http.StatusConflict},
	{store.ErrQuota, http.StatusInsufficientStorage},
	{store.ErrUnsupported, http.StatusNotImplemented},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},
}

// httpStatus is the one mapping from errors to HTTP status codes.
func httpStatus(err error) int {
	var he httpError
	if errors.As(err, &he) {
		return he.code
	}
	for _, e := range statusTable {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return http.StatusBadGateway
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := httpStatus(err)
		if code >= 500 {
			s.cfg.Log.Warn("control socket request failed", "err", err)
		}
		w.WriteHeader(code)
		v = ErrorBody{Error: strings.ReplaceAll(err.Error(), "\n", " ")}
	}
	_ = writeJSON(w, v)
}

// post decodes a JSON body strictly (bounded, no unknown fields, nothing
// after it) into the handler's request type.
func (s *Server) post(h func(context.Context, []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.body(w, r)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
		defer cancel()
		v, err := h(ctx, body)
		s.reply(w, v, err)
	}
}

func (s *Server) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Method != http.MethodPost {
		s.reply(w, nil, httpError{http.StatusMethodNotAllowed, r.Method + " not allowed: use POST"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reply(w, nil, httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody)})
		return nil, false
	}
	return body, true
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

// stream serves handlers whose answer is a byte stream, not JSON; errors
// before the first byte are JSON like everywhere else.
func (s *Server) stream(h func(ctx context.Context, body []byte, w http.ResponseWriter) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.body(w, r)
		if !ok {
			return
		}
		if err := h(r.Context(), body, w); err != nil {
			s.reply(w, nil, err)
		}
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

// Resolve maps a local path inside the mount to bucket and key. The key is
// "" for a bucket's own directory (the root of a bucket mount, or a bucket
// of an all-buckets mount).
func (s *Server) Resolve(p string) (bucket, key string, err error) {
	if !filepath.IsAbs(p) {
		return "", "", badRequest("path %q: want an absolute path inside %s", p, s.cfg.Mountpoint)
	}
	clean, mp := filepath.Clean(p), filepath.Clean(s.cfg.Mountpoint)
	rel := ""
	if clean != mp {
		var ok bool
		if rel, ok = strings.CutPrefix(clean, strings.TrimSuffix(mp, "/")+"/"); !ok {
			return "", "", badRequest("path %q is not inside the mount %s", p, s.cfg.Mountpoint)
		}
	}
	switch {
	case s.cfg.Bucket == "" && rel == "":
		return "", "", badRequest("path %q is the root of an all-buckets mount: name a bucket or an object in one", p)
	case s.cfg.Bucket == "":
		bucket, key, _ = strings.Cut(rel, "/")
	case rel == "":
		bucket, key = s.cfg.Bucket, strings.TrimSuffix(s.cfg.Prefix, "/")
	default:
		bucket, key = s.cfg.Bucket, s.cfg.Prefix+rel
	}
	if s.cfg.Settle != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.cfg.Settle(ctx, bucket, key); err != nil {
			return "", "", err
		}
	}
	return bucket, key, nil
}

// resolveObject is Resolve for requests that need an object.
func (s *Server) resolveObject(p string) (store.ObjectRef, error) {
	b, k, err := s.Resolve(p)
	if err != nil {
		return store.ObjectRef{}, err
	}
	if k == "" {
		return store.ObjectRef{}, badRequest("%s is a bucket's directory, not a file", p)
	}
	return store.ObjectRef{Bucket: b, Key: k}, nil
}
