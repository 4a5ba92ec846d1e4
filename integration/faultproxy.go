package integration

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FaultKind is what the proxy does to a request it picks.
type FaultKind int

const (
	FaultNone       FaultKind = iota
	FaultLatency              // wait Fault.Latency, then pass the request on
	FaultSlowDown             // answer 503 SlowDown
	FaultInternal             // answer 500 InternalError
	FaultReset                // reset the connection half-way through the body (the request's if it has one, else the answer's)
	FaultShortBody            // send the answer's headers and half its body, then close
	FaultBlackHole            // accept the request and never answer (until the proxy closes)
	FaultLoseAnswer           // pass the request on, let MinIO do it, then reset the connection instead of answering
)

func (k FaultKind) String() string {
	return [...]string{"none", "latency", "503 SlowDown", "500 InternalError", "reset", "short body", "black hole", "lost answer"}[k]
}

// Fault says which requests the proxy spoils and how.
type Fault struct {
	Kind    FaultKind
	Rate    float64                    // fraction of the matching requests (0 means 1)
	Match   func(r *http.Request) bool // nil: every request
	Latency time.Duration              // for FaultLatency
	Limit   int64                      // spoil at most this many (0: no limit)
}

// FaultProxy is an HTTP proxy between kfs and MinIO, on loopback, that
// spoils requests as its current Fault says. Requests are signed for the
// proxy's address, so it keeps the Host header as sent.
type FaultProxy struct {
	Addr   string // 127.0.0.1:PORT to give kfs as its endpoint
	target string

	ln   net.Listener
	tr   *http.Transport
	srv  *http.Server
	stop chan struct{}

	mu    sync.Mutex // protects fault
	fault Fault

	Requests atomic.Int64 // requests seen
	Spoiled  atomic.Int64 // requests a fault was applied to
}

// NewFaultProxy starts a proxy to the server at target (host:port).
func NewFaultProxy(target string) (*FaultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{Addr: ln.Addr().String(), target: target, ln: ln, stop: make(chan struct{}),
		tr: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Set replaces the current fault (Fault{} passes everything).
func (p *FaultProxy) Set(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Close stops the proxy and releases black-holed requests.
func (p *FaultProxy) Close() {
	close(p.stop)
	p.srv.Close()
	p.tr.CloseIdleConnections()
}

// pick says which fault this request gets.
func (p *FaultProxy) pick(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if f.Kind == FaultNone || (f.Match != nil && !f.Match(r)) {
		return Fault{}
	}
	if f.Rate > 0 && rand.Float64() >= f.Rate {
		return Fault{}
	}
	if f.Limit > 0 {
		if f.Limit == 1 {
			p.fault = Fault{}
		} else {
			p.fault.Limit--
		}
	}
	return f
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.Requests.Add(1)
	f := p.pick(r)
	if os.Getenv("KFS_PROXY_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "proxy: %s %s len %d te %v fault %v\n", r.Method, r.URL, r.ContentLength, r.TransferEncoding, f.Kind)
	}
	if f.Kind != FaultNone {
		p.Spoiled.Add(1)
	}
	switch f.Kind {
	case FaultLatency:
		select {
		case <-time.After(f.Latency):
		case <-p.stop:
			return
		}
	case FaultSlowDown, FaultInternal:
		io.Copy(io.Discard, r.Body)
		code, s3code := http.StatusServiceUnavailable, "SlowDown"
		if f.Kind == FaultInternal {
			code, s3code = http.StatusInternalServerError, "InternalError"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test proxy</Message><Resource>%s</Resource><RequestId>fault</RequestId></Error>`, s3code, r.URL.Path)
		return
	case FaultBlackHole:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			<-p.stop
			conn.Close()
		}
		return
	case FaultReset:
		if r.ContentLength > 1 {
			io.CopyN(io.Discard, r.Body, r.ContentLength/2)
			reset(w, false)
			return
		}
	}
	p.forward(w, r, f.Kind)
}

// forward passes the request to MinIO and its answer back (spoiled as
// kind says for answer-side faults).
func (p *FaultProxy) forward(w http.ResponseWriter, r *http.Request, kind FaultKind) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.target+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host // the signature covers it
	out.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if kind == FaultLoseAnswer {
		io.Copy(io.Discard, resp.Body) // done on the server; the client never hears of it
		reset(w, false)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	cut := int64(-1)
	if (kind == FaultShortBody || kind == FaultReset) && resp.ContentLength > 1 {
		cut = resp.ContentLength / 2
	}
	w.WriteHeader(resp.StatusCode)
	if cut < 0 {
		io.Copy(w, resp.Body)
		return
	}
	io.CopyN(w, resp.Body, cut)
	if kind == FaultReset {
		reset(w, true)
		return
	}
	w.(http.Flusher).Flush()
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close() // the client has the headers' Content-Length and half the bytes
	}
}

// reset ends the connection with a TCP reset; answering says an answer
// was started (its bytes so far are sent first).
func reset(w http.ResponseWriter, answering bool) {
	if f, ok := w.(http.Flusher); ok && answering {
		f.Flush()
	}
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// IsMethod matches requests by HTTP method.
func IsMethod(methods ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		return false
	}
}

// IsListing matches ListObjectsV2 requests.
func IsListing(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2"
}

// IsObjectGet matches GETs of object bytes.
func IsObjectGet(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.RawQuery == "" || r.Method == http.MethodGet && r.Header.Get("Range") != ""
}
