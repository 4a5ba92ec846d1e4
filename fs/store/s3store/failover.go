package s3store

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"time"
)

// nodes is the failover list of a store: the endpoint's own address first,
// then the other nodes of the same cluster. A connection to the
// endpoint's host:port is made to the current node; when that cannot be
// reached, the next nodes are tried in turn and the first one that
// accepts becomes current (it stays current until it fails in turn).
// Requests keep the endpoint's Host header, which they are signed for and
// which every node of a cluster accepts; with https every node's
// certificate must be valid for the endpoint's name.
type nodes struct {
	primary  string   // host:port of the endpoint URL
	addrs    []string // primary first
	perTry   time.Duration
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	onSwitch func(from, to string) // told when the current node changes (nil: nobody)

	cur atomic.Int32 // index into addrs
}

// DialContext is the transport's dialer.
func (n *nodes) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != n.primary {
		return n.dial(ctx, network, addr)
	}
	start := int(n.cur.Load())
	var last error
	for k := range n.addrs {
		i := (start + k) % len(n.addrs)
		try, cancel := context.WithTimeout(ctx, n.perTry)
		c, err := n.dial(try, network, n.addrs[i])
		cancel()
		if err == nil {
			if i != start && n.cur.CompareAndSwap(int32(start), int32(i)) && n.onSwitch != nil {
				n.onSwitch(n.addrs[start], n.addrs[i])
			}
			return c, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// Current is the address connections go to now.
func (n *nodes) Current() string { return n.addrs[n.cur.Load()] }

// hostPort is u's host:port, with the scheme's port when it names none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
