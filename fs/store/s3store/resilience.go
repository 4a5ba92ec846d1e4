package s3store

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"kfs/fs/store"
)

// Faults between kfs and the store are bounded three ways:
//   - a watchdog per HTTP request fails it after Timeout without progress
//     (no byte of the request sent, no byte of the answer received), or
//     after SlowTimeout waiting for the answer to a request the server
//     works on before answering (copies, completions, batch deletes);
//   - failed requests are retried with backoff and jitter, Retries times
//     (minio-go's retries, and kfs's own for ranged reads cut short and
//     metadata listings);
//   - an operation, retries included, ends after Deadline.

// watchdog is the RoundTripper that enforces Timeout and SlowTimeout.
type watchdog struct {
	next       http.RoundTripper
	idle, slow time.Duration
}

// errNoProgress is the cause of a request the watchdog ended.
var errNoProgress = errors.New("no progress")

func (w watchdog) RoundTrip(r *http.Request) (*http.Response, error) {
	op := Operation(r.Method, r.URL.Path, r.URL.Query())
	if op == "ListenNotification" {
		return w.next.RoundTrip(r) // a stream that may stay silent for long
	}
	wait := w.idle
	if slowOp(op, r.Header) {
		wait = w.slow
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	stall := func() { cancel(fmt.Errorf("%s: %w for %v", op, errNoProgress, wait)) }
	t := time.AfterFunc(w.idle, stall)
	r = r.WithContext(ctx)
	var released chan struct{} // closed when the transport is done with the request body
	if r.Body != nil && r.Body != http.NoBody {
		released = make(chan struct{})
		r.Body = &progress{ReadCloser: r.Body, tick: func() { t.Reset(w.idle) }, done: func() { t.Reset(wait) },
			closed: func() { close(released) }}
	} else {
		t.Reset(wait)
	}
	resp, err := w.next.RoundTrip(r)
	if err != nil {
		t.Stop()
		if c := context.Cause(ctx); errors.Is(c, errNoProgress) {
			err = c
		}
		cancel(nil)
		w.awaitBody(released)
		return nil, err
	}
	if released != nil && resp.StatusCode >= 300 {
		// An error answered before the body was all sent: the transport
		// may still be reading the body while minio-go rewinds it for a
		// retry (two readers of one body: a data race and a corrupt
		// resend). Keep the answer, stop the send, wait for the body.
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		t.Stop()
		cancel(nil)
		w.awaitBody(released)
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	w.awaitBody(released)
	t.Reset(w.idle)
	resp.Body = &progress{ReadCloser: resp.Body, tick: func() { t.Reset(w.idle) },
		closed: func() { t.Stop(); cancel(nil) }, cause: func() error { return context.Cause(ctx) }}
	return resp, nil
}

// awaitBody waits until the transport has closed a request's body
// (released), so the caller may reuse it; bounded, as a transport that
// never closes it is a bug, not a reason to hang.
func (w watchdog) awaitBody(released chan struct{}) {
	if released == nil {
		return
	}
	select {
	case <-released:
	case <-time.After(w.idle):
	}
}

// slowOp says whether the server answers op only when it has done the work.
func slowOp(op string, h http.Header) bool {
	switch op {
	case "CompleteMultipartUpload", "DeleteObjects", "SelectObjectContent":
		return true
	case "PutObject", "UploadPart":
		return h.Get("X-Amz-Copy-Source") != "" // CopyObject, UploadPartCopy
	}
	return false
}

// progress resets the watchdog on every read.
type progress struct {
	io.ReadCloser
	tick   func()       // bytes moved
	done   func()       // the request body is all sent (may be nil)
	closed func()       // the answer's body is closed (may be nil)
	cause  func() error // why the request was ended (may be nil)
	once   sync.Once
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	if n > 0 {
		p.tick()
	}
	if err == io.EOF && p.done != nil {
		p.done()
	}
	if err != nil && err != io.EOF && p.cause != nil {
		if c := p.cause(); errors.Is(c, errNoProgress) {
			err = c
		}
	}
	return n, err
}

func (p *progress) Close() error {
	err := p.ReadCloser.Close()
	if p.closed != nil {
		p.once.Do(p.closed)
	}
	return err
}

// retryable says whether a failed request may succeed if sent again: the
// connection failed or was cut, the watchdog ended it, or the server said
// it could not serve it (5xx, SlowDown).
func retryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled) && !errors.Is(err, errNoProgress),
		errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, errNoProgress), errors.Is(err, store.ErrUnavailable), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	var se *xml.SyntaxError // an answer cut short
	return errors.As(err, &ne) || errors.As(err, &se)
}

// maxBackoff caps the wait before any retry, kfs's own and minio-go's.
const maxBackoff = 5 * time.Second

func init() {
	// minio-go retries PUTs, parts, copies and GETs itself, backing off up
	// to its DefaultRetryCap (1 s): ten retries were over in about 5 s,
	// shorter than a distributed MinIO answers SlowDownWrite while it
	// decides a node is gone. One policy for every request: the same cap
	// as kfs's own retries. Set once, before any client exists.
	minio.DefaultRetryCap = maxBackoff
}

// backoff waits before retry attempt+1: exponential from 100 ms, capped at
// maxBackoff, with full jitter.
func (s *Store) backoff(ctx context.Context, attempt int) error {
	d := min(100*time.Millisecond<<min(attempt, 6), maxBackoff)
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bound gives one operation its deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.deadline <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.deadline)
}
