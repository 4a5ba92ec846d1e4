package s3store

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// Connections to the endpoint go to the first node that accepts, starting
// from the current one; the current node changes only when it fails.
func TestNodesFailOverInTurn(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there: connection refused
	b, c := listen(t), listen(t)
	var switches []string
	n := &nodes{primary: deadAddr, addrs: []string{deadAddr, b.Addr().String(), c.Addr().String()}, perTry: time.Second,
		dial: (&net.Dialer{}).DialContext, onSwitch: func(from, to string) { switches = append(switches, from+">"+to) }}
	ctx := context.Background()
	conn, err := n.DialContext(ctx, "tcp", deadAddr)
	if err != nil {
		t.Fatal(err)
	}
	if conn.RemoteAddr().String() != b.Addr().String() || n.Current() != b.Addr().String() {
		t.Fatalf("connected to %v (current %s), want the second node %s", conn.RemoteAddr(), n.Current(), b.Addr())
	}
	conn.Close()
	if len(switches) != 1 {
		t.Fatalf("switches: %v", switches)
	}
	b.Close()
	conn, err = n.DialContext(ctx, "tcp", deadAddr)
	if err != nil || conn.RemoteAddr().String() != c.Addr().String() {
		t.Fatalf("after the second node went: %v, %v", conn, err)
	}
	conn.Close()
	c.Close()
	if _, err := n.DialContext(ctx, "tcp", deadAddr); err == nil {
		t.Fatal("with every node gone a connection was made")
	}
	other := listen(t)
	conn, err = n.DialContext(ctx, "tcp", other.Addr().String()) // not the endpoint: dialled as asked
	if err != nil || conn.RemoteAddr().String() != other.Addr().String() {
		t.Fatalf("another address: %v, %v", conn, err)
	}
	conn.Close()
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"http://minio:9000": "minio:9000", "http://minio": "minio:80", "https://s3.example": "s3.example:443",
		"http://[::1]:9000": "[::1]:9000", "http://[::1]": "[::1]:80",
	} {
		u, _ := url.Parse(in)
		if got := hostPort(u); got != want {
			t.Errorf("hostPort(%s) = %s, want %s", in, got, want)
		}
	}
}
