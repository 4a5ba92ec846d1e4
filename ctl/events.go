package ctl

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"kfs/fs/store"
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

// FromStore turns an event of the store's listen stream into an Event.
func FromStore(e store.Event, source string) Event {
	return Event{Event: e.Name, Bucket: e.Bucket, Key: e.Key, Size: e.Size, ETag: e.ETag, Time: e.Time, Source: source, seq: e.Sequencer}
}

// notification is the part of MinIO's event JSON (a webhook POST body,
// one line of a listen stream) kfs reads.
type notification struct {
	EventName string
	Key       string
	Records   []struct {
		EventName string `json:"eventName"`
		EventTime string `json:"eventTime"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				Size      int64  `json:"size"`
				ETag      string `json:"eTag"`
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		} `json:"s3"`
	}
}

// maxEventBody bounds a webhook POST (MinIO sends one record per POST).
const maxEventBody = 1 << 20

// ParseEvents reads one MinIO event document. Anything malformed is an
// error and yields no events.
func ParseEvents(body []byte, source string) ([]Event, error) {
	var n notification
	d := json.NewDecoder(strings.NewReader(string(body)))
	if err := d.Decode(&n); err != nil {
		return nil, fmt.Errorf("event: %v", err)
	}
	if d.More() {
		return nil, errors.New("event: data after the JSON object")
	}
	if len(n.Records) == 0 {
		return nil, errors.New("event: no Records")
	}
	out := make([]Event, 0, len(n.Records))
	for _, r := range n.Records {
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("event: key %q: %v", r.S3.Object.Key, err)
		}
		name := "s3:" + strings.TrimPrefix(r.EventName, "s3:")
		if r.S3.Bucket.Name == "" || key == "" || !strings.HasPrefix(name, "s3:Object") {
			return nil, fmt.Errorf("event: incomplete record (%q %q %q)", r.EventName, r.S3.Bucket.Name, key)
		}
		t, _ := time.Parse(time.RFC3339Nano, r.EventTime)
		out = append(out, Event{Event: name, Bucket: r.S3.Bucket.Name, Key: key, Size: r.S3.Object.Size,
			ETag: r.S3.Object.ETag, Time: t, Source: source, seq: r.S3.Object.Sequencer})
	}
	return out, nil
}

// Hub fans events from every source out to the watchers and to the
// mounts' caches. Each watcher gets a buffered channel; a watcher too slow
// to keep up loses events (counted) rather than stalling the sources.
type Hub struct {
	mu    sync.Mutex            // protects the fields below
	subs  map[chan Event]filter // GUARDED_BY(mu)
	sinks []func(Event)         // GUARDED_BY(mu): called for every new event, in order
	seen  map[string]time.Time  // GUARDED_BY(mu): recent event identities, to drop one seen from both sources
	lost  int                   // GUARDED_BY(mu)
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

// OnEvent adds a sink that sees every event once (mounts drop what they
// cached of the key). Sinks must not block.
func (h *Hub) OnEvent(f func(Event)) {
	h.mu.Lock()
	h.sinks = append(h.sinks, f)
	h.mu.Unlock()
}

// Publish hands e to every matching watcher and every sink once.
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	id := e.Event + "\x00" + e.Bucket + "\x00" + e.Key + "\x00" + e.seq
	if e.seq != "" {
		if _, dup := h.seen[id]; dup {
			h.mu.Unlock()
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
	sinks := h.sinks
	h.mu.Unlock()
	for _, s := range sinks {
		s(e)
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
// and publishes them; it returns the listener's address. With token set,
// a POST must carry it (MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>: MinIO sends
// "Authorization: Bearer <token>"). A forged or malformed POST changes
// nothing but a counter and a log line.
// maxWebhookConcurrent bounds the POSTs the webhook receiver handles at
// once; more are answered 503 (MinIO queues and retries).
const maxWebhookConcurrent = 16

func ServeWebhook(ctx context.Context, addr, token string, hub *Hub, st *SourceStats, l *slog.Logger) (string, error) {
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
	if token == "" {
		l.Warn("the events webhook has no auth token: any local user can send it events (give KFS_EVENTS_TOKEN or EVENTS_TOKEN in the credentials file)")
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		Handler: &webhook{token: token, hub: hub, st: st, l: l, busy: make(chan struct{}, maxWebhookConcurrent)}}
	st.SetState("live", nil)
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return ln.Addr().String(), nil
}

// webhook receives MinIO's event POSTs.
type webhook struct {
	token string
	hub   *Hub
	st    *SourceStats
	l     *slog.Logger
	busy  chan struct{} // one token per POST being handled
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusOK) // MinIO probes the target with other methods
		return
	}
	select {
	case h.busy <- struct{}{}:
		defer func() { <-h.busy }()
	default:
		http.Error(w, "busy", http.StatusServiceUnavailable) // MinIO retries
		return
	}
	if h.token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+h.token)) != 1 {
		h.st.reject("webhook POST without the auth token", h.l)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody+1))
	if err == nil && len(body) > maxEventBody {
		err = fmt.Errorf("body over %d bytes", maxEventBody)
	}
	var events []Event
	if err == nil {
		events, err = ParseEvents(body, "webhook")
	}
	if err != nil {
		h.st.reject("malformed webhook event: "+err.Error(), h.l)
		http.Error(w, "bad event body", http.StatusBadRequest)
		return
	}
	h.st.Received(len(events))
	for _, e := range events {
		h.hub.Publish(e)
	}
	w.WriteHeader(http.StatusOK)
}

// SourceState is one event source's state as `kfs status` shows it.
type SourceState struct {
	Name      string    `json:"name"`
	State     string    `json:"state"` // live, retrying, off
	LastEvent time.Time `json:"last_event,omitempty"`
	Events    int64     `json:"events"`
	Rejected  int64     `json:"rejected"`
	LastError string    `json:"last_error,omitempty"`
}

// SourceStats keeps a SourceState up to date.
type SourceStats struct {
	mu sync.Mutex  // protects st
	st SourceState // GUARDED_BY(mu)
}

// NewSourceStats starts the stats of a source.
func NewSourceStats(name string) *SourceStats {
	return &SourceStats{st: SourceState{Name: name, State: "off"}}
}

// Received counts n events.
func (s *SourceStats) Received(n int) {
	s.mu.Lock()
	s.st.Events += int64(n)
	s.st.LastEvent = time.Now().UTC()
	s.mu.Unlock()
}

func (s *SourceStats) reject(why string, l *slog.Logger) {
	s.mu.Lock()
	s.st.Rejected++
	name := s.st.Name
	s.mu.Unlock()
	l.Warn("events: rejected", "source", name, "why", why)
}

// SetState records the source's state (and the error that caused it).
func (s *SourceStats) SetState(state string, err error) {
	s.mu.Lock()
	s.st.State = state
	if err != nil {
		s.st.LastError = err.Error()
	}
	s.mu.Unlock()
}

// Snapshot copies the state.
func (s *SourceStats) Snapshot() SourceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
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
	bucket, prefix, err := s.Resolve(req.Path)
	if err != nil {
		return err
	}
	if err := s.allow(ctx, "watch", req.Path, needRead); err != nil {
		return err
	}
	if prefix != "" {
		prefix = strings.TrimSuffix(prefix, "/") + "/"
	}
	f := filter{bucket: bucket, prefix: prefix, suffix: req.Suffix, kinds: ks}
	ch := s.hub.subscribe(f)
	defer s.hub.unsubscribe(ch)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	fw.Write(nil) // headers out now: the watcher knows it is subscribed
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-ch:
			e.Path = s.localPath(e.Bucket, e.Key)
			if err := writeJSON(fw, e); err != nil {
				return nil
			}
		}
	}
}

// localPath is where bucket/key shows in this mount ("" if it does not).
func (s *Server) localPath(bucket, key string) string {
	mp := strings.TrimSuffix(s.cfg.Mountpoint, "/")
	join := func(dir, rest string) string {
		if rest == "" {
			return dir // a bucket root or the mounted prefix itself
		}
		return dir + "/" + rest
	}
	if s.cfg.Bucket == "" {
		return join(mp+"/"+bucket, key)
	}
	if bucket != s.cfg.Bucket || !strings.HasPrefix(key, s.cfg.Prefix) {
		return ""
	}
	return join(mp, strings.TrimPrefix(key, s.cfg.Prefix))
}
