package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"kfs/fs/store"
)

// A server that accepts and never answers costs one idle timeout, and the
// error says so.
func TestWatchdogEndsSilentRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	hc := &http.Client{Transport: watchdog{next: &http.Transport{}, idle: 200 * time.Millisecond, slow: time.Second}}
	t0 := time.Now()
	_, err = hc.Get("http://" + ln.Addr().String() + "/b/k")
	if d := time.Since(t0); err == nil || d > 2*time.Second {
		t.Fatalf("silent server: %v after %v", err, d)
	}
	if !errors.Is(err, errNoProgress) || !retryable(err) {
		t.Fatalf("error %v: want errNoProgress, retryable", err)
	}
}

// A PUT answered 503 before its body was read is sent again only once the
// transport has let go of the body: the resend carries every byte, and the
// race detector sees one reader at a time (a distributed MinIO short of
// write quorum answers this way).
func TestEarlyErrorAnswerThenResendIsWhole(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	var attempts atomic.Int32
	got := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusOK)
			return
		}
		if attempts.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable) // without reading the body
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDownWrite</Code><Message>reduce your request rate</Message></Error>`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- b
		w.Header().Set("ETag", `"abc"`)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s, err := New(Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "secret-key", Region: "us-east-1", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), store.PutRequest{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if attempts.Load() < 2 {
		t.Fatalf("%d attempts", attempts.Load())
	}
	b := <-got
	if !bytes.Contains(b, data[:1024]) || len(b) < len(data) {
		t.Fatalf("the resend carried %d bytes of %d", len(b), len(data))
	}
}
