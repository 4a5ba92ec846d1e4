package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/notification"
)

// Event is one bucket event as `kfs watch` prints it (one JSON line each).
type Event struct {
	Event  string    `json:"event"` // e.g. s3:ObjectCreated:Put
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	Path   string    `json:"path,omitempty"` // the local path in the mount
	Size   int64     `json:"size,omitempty"`
	ETag   string    `json:"etag,omitempty"`
	Time   time.Time `json:"time"`
	Source string    `json:"source"` // webhook or listen
	seq    string
}

// WatchRequest subscribes to events under a path.
type WatchRequest struct {
	Path   string   `json:"path"`
	Events []string `json:"events,omitempty"` // created, removed, accessed, or full names; default created,removed
	Suffix string   `json:"suffix,omitempty"`
}

// FromNotification turns what MinIO sends (a webhook POST body or a listen
// stream line) into events.
func FromNotification(info notification.Info, source string) []Event {
	var out []Event
	for _, r := range info.Records {
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			key = r.S3.Object.Key
		}
		t, _ := time.Parse(time.RFC3339Nano, r.EventTime)
		out = append(out, Event{Event: "s3:" + strings.TrimPrefix(r.EventName, "s3:"), Bucket: r.S3.Bucket.Name, Key: key,
			Size: r.S3.Object.Size, ETag: r.S3.Object.ETag, Time: t, Source: source, seq: r.S3.Object.Sequencer})
	}
	return out
}

// Hub fans events from every source out to the watchers. Each watcher gets
// a buffered channel; a watcher too slow to keep up loses events (counted)
// rather than stalling the sources.
type Hub struct {
	mu   sync.Mutex            // protects the fields below
	subs map[chan Event]filter // GUARDED_BY(mu)
	seen map[string]time.Time  // GUARDED_BY(mu): recent event identities, to drop one seen from both sources
	lost int                   // GUARDED_BY(mu)
}

type filter struct {
	bucket, prefix, suffix string
	kinds                  []string
}

func (f filter) match(e Event) bool {
	if e.Bucket != f.bucket || !strings.HasPrefix(e.Key, f.prefix) || !strings.HasSuffix(e.Key, f.suffix) {
		return false
	}
	for _, k := range f.kinds {
		if strings.HasPrefix(e.Event, k) {
			return true
		}
	}
	return false
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan Event]filter{}, seen: map[string]time.Time{}} }

// Publish hands e to every matching watcher once.
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := e.Event + "\x00" + e.Bucket + "\x00" + e.Key + "\x00" + e.seq
	if e.seq != "" {
		if _, dup := h.seen[id]; dup {
			return
		}
		h.seen[id] = time.Now()
		if len(h.seen) > 10000 {
			for k, t := range h.seen {
				if time.Since(t) > time.Minute {
					delete(h.seen, k)
				}
			}
		}
	}
	for ch, f := range h.subs {
		if !f.match(e) {
			continue
		}
		select {
		case ch <- e:
		default:
			h.lost++
		}
	}
}

func (h *Hub) subscribe(f filter) chan Event {
	ch := make(chan Event, 1024)
	h.mu.Lock()
	h.subs[ch] = f
	h.mu.Unlock()
	return ch
}

func (h *Hub) unsubscribe(ch chan Event) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

// kinds maps the short names `kfs watch --events` takes to event prefixes.
func kinds(names []string) ([]string, error) {
	if len(names) == 0 {
		names = []string{"created", "removed"}
	}
	var out []string
	for _, n := range names {
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "created":
			out = append(out, "s3:ObjectCreated:")
		case "removed":
			out = append(out, "s3:ObjectRemoved:")
		case "accessed":
			out = append(out, "s3:ObjectAccessed:")
		default:
			if !strings.HasPrefix(n, "s3:") {
				return nil, badRequest("event %q: want created, removed, accessed or a full name such as s3:ObjectCreated:Put", n)
			}
			out = append(out, strings.TrimSuffix(n, "*"))
		}
	}
	return out, nil
}

// ServeWebhook receives MinIO webhook notifications on addr (loopback only)
// and publishes them; it returns the listener's address.
func ServeWebhook(ctx context.Context, addr string, hub *Hub, l *log.Logger) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("events webhook address %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("events webhook address %q: kfs listens on loopback only (127.0.0.1:PORT)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("events webhook: %v", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusOK) // MinIO probes the target with other methods
			return
		}
		var info notification.Info
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&info); err != nil {
			http.Error(w, "bad event body", http.StatusBadRequest)
			return
		}
		for _, e := range FromNotification(info, "webhook") {
			hub.Publish(e)
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return ln.Addr().String(), nil
}

func (s *Server) watch(ctx context.Context, body []byte, w http.ResponseWriter) error {
	var req WatchRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	ks, err := kinds(req.Events)
	if err != nil {
		return err
	}
	bucket, prefix, err := s.resolveDir(req.Path)
	if err != nil {
		return err
	}
	f := filter{bucket: bucket, prefix: prefix, suffix: req.Suffix, kinds: ks}
	ch := s.hub.subscribe(f)
	defer s.hub.unsubscribe(ch)
	// The listen API is a second source; on servers whose listen stream
	// does not deliver (see README) the webhook carries the events.
	go func() {
		for e := range s.be.Listen(ctx, bucket, prefix, req.Suffix) {
			s.hub.Publish(e)
		}
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	enc := json.NewEncoder(fw)
	fw.Write(nil) // headers out now: the watcher knows it is subscribed
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-ch:
			e.Path = s.localPath(e.Bucket, e.Key)
			if err := enc.Encode(e); err != nil {
				return nil
			}
		}
	}
}

// resolveDir maps a directory (or the mount root) to bucket and key prefix.
func (s *Server) resolveDir(p string) (bucket, prefix string, err error) {
	if clean := strings.TrimSuffix(p, "/"); clean == strings.TrimSuffix(s.cfg.Mountpoint, "/") {
		if s.cfg.Bucket == "" {
			return "", "", badRequest("watch a bucket directory, not the root of an all-buckets mount")
		}
		return s.cfg.Bucket, s.cfg.Prefix, nil
	}
	bucket, key, err := s.Resolve(p)
	if err != nil {
		if s.cfg.Bucket == "" && strings.Contains(err.Error(), "names a bucket") {
			rel := strings.TrimPrefix(p, strings.TrimSuffix(s.cfg.Mountpoint, "/")+"/")
			return strings.Trim(rel, "/"), "", nil
		}
		return "", "", err
	}
	return bucket, key, nil
}

// localPath is where bucket/key shows in this mount ("" if it does not).
func (s *Server) localPath(bucket, key string) string {
	mp := strings.TrimSuffix(s.cfg.Mountpoint, "/")
	if s.cfg.Bucket == "" {
		return mp + "/" + bucket + "/" + key
	}
	if bucket != s.cfg.Bucket || !strings.HasPrefix(key, s.cfg.Prefix) {
		return ""
	}
	return mp + "/" + strings.TrimPrefix(key, s.cfg.Prefix)
}
