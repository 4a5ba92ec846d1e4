package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	Point, FSType, Source string
	Options               string // the superblock's options (a FUSE mount's say user_id=UID)
}

// Owner is the uid that made a FUSE mount (its user_id= option).
func (m MountEntry) Owner() (uint32, bool) {
	for _, o := range strings.Split(m.Options, ",") {
		if v, ok := strings.CutPrefix(o, "user_id="); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
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
		e := MountEntry{Point: unescape(f[4]), FSType: g[0], Source: unescape(g[1])}
		if len(g) > 2 {
			e.Options = g[2]
		}
		out = append(out, e)
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
	m, err := findEntry(path)
	return m.Point, err
}

func findEntry(path string) (MountEntry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return MountEntry{}, err
	}
	ms, err := MountTable()
	if err != nil {
		return MountEntry{}, err
	}
	var best MountEntry
	for _, m := range ms {
		mp := m.Point
		if m.FSType == "fuse.kfs" && (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best.Point) {
			best = m
		}
	}
	if best.Point == "" {
		return MountEntry{}, fmt.Errorf("%s is not inside a kfs mount", path)
	}
	return best, nil
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// Client talks to one mount's socket.
type Client struct {
	hc         *http.Client
	mountpoint string // for telling a dead mount from a refusing socket; "" from Dial
}

// Dial returns a client for the socket at path, trusting whoever serves it
// (tests, tools that know the path); the subcommands use ForPath.
func Dial(path string) *Client { return dial(path, nil) }

// dialChecked is Dial that checks, on every connection, that the server's
// process runs as owner or root (SO_PEERCRED).
func dialChecked(path string, owner uint32, mountpoint string) *Client {
	c := dial(path, func(cr Cred) error {
		if cr.UID != owner && cr.UID != 0 {
			return fmt.Errorf("refusing the control socket %s: it is served by uid %d, not by the mount's owner (uid %d) or root", path, cr.UID, owner)
		}
		return nil
	})
	c.mountpoint = mountpoint
	return c
}

// ErrDeadMount is a kfs mount whose process has exited: the kernel still
// lists it, every access to it fails with ENOTCONN, and only an unmount
// clears it.
var ErrDeadMount = errors.New("dead mount")

// deadMount reports whether mountpoint is a FUSE mount whose server is gone.
// It is asked only after its socket refused or was missing, so a live but
// busy mount is not asked; a statfs that does not answer within 2s counts
// as alive.
func deadMount(mountpoint string) error {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t // always asks the server; a stat may be answered from cached attributes
		done <- syscall.Statfs(mountpoint, &st)
	}()
	select {
	case err := <-done:
		if errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("%s is a %w: the kfs process serving it has exited (run kfs unmount %s, then mount it again)", mountpoint, ErrDeadMount, mountpoint)
		}
	case <-time.After(2 * time.Second):
	}
	return nil
}

func dial(path string, check func(Cred) error) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if errors.Is(err, syscall.EACCES) && check != nil {
			return nil, errors.New("this mount is not shared (mounted without allow_other): only its owner and root may use its control socket")
		}
		if err != nil || check == nil {
			return c, err
		}
		cr, err := peerCred(c)
		if err == nil {
			err = check(cr)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// ForPath finds the mount holding path and dials its socket (ForMount).
func ForPath(path string) (*Client, string, error) {
	m, err := findEntry(path)
	if err != nil {
		return nil, "", err
	}
	c, err := forEntry(m)
	return c, m.Point, err
}

// ForMount dials the socket of the kfs mount at mountpoint.
func ForMount(mountpoint string) (*Client, error) {
	ms, err := MountTable()
	if err != nil {
		return nil, err
	}
	for i := len(ms) - 1; i >= 0; i-- { // the top one, when stacked
		if ms[i].Point == mountpoint && ms[i].FSType == "fuse.kfs" {
			return forEntry(ms[i])
		}
	}
	return nil, fmt.Errorf("%s is not a kfs mount", mountpoint)
}

// forEntry finds and checks the socket of a mount: in the directory of the
// mount's owner (from mountinfo, never from the caller's environment:
// $KFS_RUNTIME_DIR is looked at first when set), a directory and socket
// owned by that owner or root and not writable by others, served by a
// process of that owner or root (checked on every connection). Anything
// else is refused with the reason: a socket another user planted is never
// talked to.
func forEntry(m MountEntry) (*Client, error) {
	owner, ok := m.Owner()
	if !ok {
		return nil, fmt.Errorf("%s: mountinfo does not say who mounted it (no user_id=)", m.Point)
	}
	var dirs []string
	if d := os.Getenv("KFS_RUNTIME_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, DefaultRuntimeDir(owner))
	var firstErr error
	for _, dir := range dirs {
		sock := filepath.Join(dir, socketName(m.Point))
		err := checkOwned(dir, owner, true)
		if err == nil {
			err = checkOwned(sock, owner, false)
		}
		if err == nil {
			return dialChecked(sock, owner, m.Point), nil
		}
		if firstErr == nil || errors.Is(firstErr, os.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
			firstErr = err
		}
	}
	if errors.Is(firstErr, os.ErrNotExist) {
		if err := deadMount(m.Point); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no control socket for %s (is its kfs running? sockets of uid %d's mounts live in %s)", m.Point, owner, DefaultRuntimeDir(owner))
	}
	return nil, fmt.Errorf("refusing the control socket of %s: %v", m.Point, firstErr)
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
		return c.transportErr(err)
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

// Sync waits until everything the mount wrote back is uploaded.
func (c *Client) Sync() error {
	var out struct{}
	return c.do(http.MethodPost, "/v1/sync", struct{}{}, &out)
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
		return nil, c.transportErr(err)
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

// Warm fetches a file whole into the mount's disk cache (no deadline).
func (c *Client) Warm(path string) (WarmResponse, error) {
	var buf bytes.Buffer
	var out WarmResponse
	if _, err := c.Stream("/v1/warm", WarmRequest{Path: path}, &buf); err != nil {
		return out, err
	}
	return out, json.Unmarshal(buf.Bytes(), &out)
}

// Call posts in to endpoint and decodes the answer into out.
func (c *Client) Call(endpoint string, in, out any) error {
	return c.do(http.MethodPost, endpoint, in, out)
}

// Metrics copies the mount process's metrics (Prometheus text format) to w.
func (c *Client) Metrics(w io.Writer) error {
	resp, err := c.hc.Get("http://kfs/v1/metrics")
	if err != nil {
		return c.transportErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control socket: HTTP %d (is this mount served by an older kfs?)", resp.StatusCode)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// transportErr words a failed connection: a refused socket of a dead mount
// says so; otherwise the request line Go's HTTP client puts before the
// error ("Post \"http://kfs/v1/stat\": ...") is dropped, as the socket's
// own words are what the user reads.
func (c *Client) transportErr(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) && c.mountpoint != "" {
		if dead := deadMount(c.mountpoint); dead != nil {
			return dead
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("control socket: %v", err)
}
