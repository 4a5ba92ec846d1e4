package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	Point, FSType, Source string
}

// MountTable parses /proc/self/mountinfo (the one parser of it in kfs).
func MountTable() ([]MountEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []MountEntry
	for _, line := range strings.Split(string(data), "\n") {
		// ... mountpoint (field 5) ... " - " fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		out = append(out, MountEntry{Point: unescape(f[4]), FSType: g[0], Source: unescape(g[1])})
	}
	return out, nil
}

// IsMounted says whether dir is a mount point.
func IsMounted(dir string) bool {
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		abs = dir
	}
	ms, _ := MountTable()
	for _, m := range ms {
		if m.Point == abs {
			return true
		}
	}
	return false
}

// Mounts lists the mount points of kfs filesystems on this machine.
func Mounts() ([]string, error) {
	ms, err := MountTable()
	var out []string
	for _, m := range ms {
		if m.FSType == "fuse.kfs" {
			out = append(out, m.Point)
		}
	}
	return out, err
}

// FindMount returns the kfs mount point holding path (the longest match).
func FindMount(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	mps, err := Mounts()
	if err != nil {
		return "", err
	}
	best := ""
	for _, mp := range mps {
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s is not inside a kfs mount", path)
	}
	return best, nil
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// Client talks to one mount's socket.
type Client struct {
	hc *http.Client
}

// Dial returns a client for the socket at path.
func Dial(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// ForPath finds the mount holding path and dials its socket.
func ForPath(path string) (*Client, string, error) {
	mp, err := FindMount(path)
	if err != nil {
		return nil, "", err
	}
	return Dial(SocketPath(mp)), mp, nil
}

func (c *Client) do(method, endpoint string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://kfs"+endpoint, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("control socket: HTTP %d", resp.StatusCode)
	}
	return json.Unmarshal(data, out)
}

// Presign asks for a presigned URL.
func (c *Client) Presign(r PresignRequest) (PresignResponse, error) {
	var out PresignResponse
	return out, c.do(http.MethodPost, "/v1/presign", r, &out)
}

// Stat asks for an object's facts.
func (c *Client) Stat(r StatRequest) (ObjectStat, error) {
	var out ObjectStat
	return out, c.do(http.MethodPost, "/v1/stat", r, &out)
}

// Buckets lists the buckets.
func (c *Client) Buckets() ([]Bucket, error) {
	var out []Bucket
	return out, c.do(http.MethodGet, "/v1/buckets", nil, &out)
}

// Status describes the mount.
func (c *Client) Status() (Status, error) {
	var out Status
	return out, c.do(http.MethodGet, "/v1/status", nil, &out)
}

// Versions lists an object's versions (or, recursive, a tree's).
func (c *Client) Versions(r VersionsRequest) ([]Version, error) {
	var out []Version
	return out, c.do(http.MethodPost, "/v1/versions", r, &out)
}

// List lists a directory in key order.
func (c *Client) List(r ListRequest) ([]ListEntry, error) {
	var out []ListEntry
	return out, c.do(http.MethodPost, "/v1/ls", r, &out)
}

// Remove deletes an object, a version, or (recursive) a tree.
func (c *Client) Remove(r RemoveRequest) (RemoveResponse, error) {
	var out RemoveResponse
	return out, c.do(http.MethodPost, "/v1/rm", r, &out)
}

// Copy copies server side.
func (c *Client) Copy(r CopyRequest) (ObjectStat, error) {
	var out ObjectStat
	return out, c.do(http.MethodPost, "/v1/copy", r, &out)
}

// Compose concatenates server side.
func (c *Client) Compose(r ComposeRequest) (ObjectStat, error) {
	var out ObjectStat
	return out, c.do(http.MethodPost, "/v1/compose", r, &out)
}

// Stream runs a streaming request (cat, select), copying the answer to w,
// and returns the response trailer.
func (c *Client) Stream(endpoint string, in any, w io.Writer) (http.Header, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	hc := *c.hc
	hc.Timeout = 0 // streams may run long
	resp, err := hc.Post("http://kfs"+endpoint, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("control socket: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("control socket: HTTP %d", resp.StatusCode)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return nil, err
	}
	return resp.Trailer, nil
}

// Call posts in to endpoint and decodes the answer into out.
func (c *Client) Call(endpoint string, in, out any) error {
	return c.do(http.MethodPost, endpoint, in, out)
}

// Metrics copies the mount process's metrics (Prometheus text format) to w.
func (c *Client) Metrics(w io.Writer) error {
	resp, err := c.hc.Get("http://kfs/v1/metrics")
	if err != nil {
		return fmt.Errorf("control socket: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control socket: HTTP %d (is this mount served by an older kfs?)", resp.StatusCode)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
