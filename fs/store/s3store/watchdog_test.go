package s3store

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
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
