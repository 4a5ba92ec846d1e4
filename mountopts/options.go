// Package mountopts turns everything a user can say to `kfs mount` — flags,
// `-o k=v` mount options (fstab), environment variables and the JSON
// credentials file — into one validated Options value.
//
// Precedence, highest first: command-line flags and -o options (in the order
// given), environment variables, the credentials file, Default().
package mountopts

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kfs/fs/store"
)

// Mount is one bucket (or bucket prefix) mounted at one directory.
// An empty Bucket means "every bucket the credentials can list".
type Mount struct {
	Bucket     string
	Prefix     string // without leading slash; ends in "/" when non-empty
	Mountpoint string
}

// Options is the whole configuration of one `kfs mount` invocation.
type Options struct {
	// Connection.
	Endpoint     string   // http(s)://host[:port]; as given, a comma-separated list (Validate splits it)
	Failover     []string // the other nodes of the list, same scheme: tried when the current one cannot be reached
	AccessKey    string
	SecretKey    string
	SessionToken string
	Region       string
	CAFile       string // PEM bundle for https endpoints; empty = system roots
	ConfigFile   string // the credentials file the values above may come from

	Mounts []Mount

	// Presentation.
	UID, GID           uint32
	FileMode           os.FileMode
	DirMode            os.FileMode
	AllowOther         bool
	ReadOnly           bool
	NoPermissionChecks bool // do not have the kernel enforce modes and owners
	ACL                bool // store and enforce POSIX ACLs

	// Kernel caching.
	AttrTTL     time.Duration
	EntryTTL    time.Duration
	NegativeTTL time.Duration
	// Revalidate: without bucket events reaching the mount, a listing
	// older than this is listed again before it answers "no such name"
	// or readdir (names missing from a younger one are still checked in
	// the store, a few a second per directory).
	Revalidate time.Duration

	// Faults.
	RequestTimeout time.Duration // a request without progress this long fails (and is retried)
	Retries        int           // retries of a failed request
	Deadline       time.Duration // bound on one store operation, retries included

	// Read path.
	CacheSize    int64 // bytes of block cache (all files together)
	BlockSize    int64 // bytes per cached block / range GET
	MaxReadahead int64 // most bytes one sequential reader prefetches
	DiskCache    int64 // bytes of whole objects kept under CacheDir/objects across mounts (0: none)
	Passthrough  bool  // hand files whole in the disk cache to the kernel (FUSE passthrough)

	// Write path.
	CacheDir     string // staging files and the upload journals; "" = /var/tmp/kfs-UID
	CacheDirSize int64  // most bytes of staging files
	PartSize     int64  // first multipart part size
	WriteBuffer  int64  // memory for part buffers, all files together
	WriteBack    bool   // close() durable on local disk (journaled), uploads in the background

	// Events.
	EventsWebhook string // loopback address where kfs receives MinIO webhook events ("" = none)
	EventsToken   string // auth token MinIO sends to the webhook ("" = none asked)
	MetricsAddr   string // host:port where Prometheus metrics are served over HTTP ("" = only on the control socket)

	// Process.
	Daemon    bool   // fork, return once the mount is live
	LogFile   string // append log lines here; empty = stderr (a daemon: DefaultLogFile)
	LogLevel  string // debug, info, warn, error
	LogFormat string // text or json
	Debug     bool

	// Warnings are things worth a log line that do not stop the mount.
	Warnings []string

	publicMnt, privateMnt string    // --public-mountpoint, --private-mountpoint
	cred                  *CredFile // the parsed --config file, if any
}

// Default returns the documented defaults. uid/gid default to the caller's.
func Default() Options {
	return Options{
		Region:         "us-east-1",
		UID:            uint32(os.Getuid()),
		GID:            uint32(os.Getgid()),
		FileMode:       0o644,
		DirMode:        0o755,
		AttrTTL:        10 * time.Second,
		EntryTTL:       10 * time.Second,
		NegativeTTL:    5 * time.Second,
		Revalidate:     time.Second,
		RequestTimeout: 30 * time.Second,
		Retries:        5,
		Deadline:       15 * time.Minute,
		CacheSize:      64 << 20,
		BlockSize:      4 << 20,
		MaxReadahead:   32 << 20,
		CacheDirSize:   10 << 30,
		Passthrough:    true,
		PartSize:       16 << 20,
		WriteBuffer:    96 << 20,
		LogLevel:       "info",
		LogFormat:      "text",
	}
}

// Validate checks every field and returns the first problem as one clear
// sentence. It does not touch the network or the mount points.
func (o *Options) Validate() error {
	for _, check := range []func() error{o.validateEndpoint, o.validateMounts, o.validateSizes, o.validateRest} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateEndpoint checks the endpoint list (one scheme, no paths), the
// credentials and the region, and splits the list into Endpoint and
// Failover.
func (o *Options) validateEndpoint() error {
	if strings.TrimSpace(o.Endpoint) == "" {
		return errors.New("no endpoint: give --endpoint, KFS_ENDPOINT or ENDPOINT in the credentials file")
	}
	var list []string
	for _, e := range strings.Split(o.Endpoint, ",") {
		if e = strings.TrimSpace(e); e != "" {
			list = append(list, e)
		}
	}
	var u *url.URL
	for i, e := range list {
		v, err := url.Parse(e)
		if err != nil || (v.Scheme != "http" && v.Scheme != "https") || v.Host == "" {
			return fmt.Errorf("endpoint %q: want http://host[:port] or https://host[:port]", e)
		}
		if v.Path != "" && v.Path != "/" {
			return fmt.Errorf("endpoint %q: must not have a path", e)
		}
		if i == 0 {
			u = v
		} else if v.Scheme != u.Scheme {
			return fmt.Errorf("endpoint %q: the nodes of one endpoint list share a scheme (%s)", e, u.Scheme)
		}
	}
	if len(list) == 0 {
		return fmt.Errorf("endpoint %q: no URL in it", o.Endpoint)
	}
	o.Endpoint, o.Failover = strings.TrimSuffix(list[0], "/"), list[1:]
	if o.AccessKey == "" || o.SecretKey == "" {
		return errors.New("no credentials: give --access-key/--secret-key, KFS_ACCESS_KEY/KFS_SECRET_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a --config file")
	}
	if o.Region == "" {
		return errors.New("region must not be empty")
	}
	if o.CAFile != "" && u.Scheme == "https" {
		if _, err := os.Stat(o.CAFile); err != nil {
			return fmt.Errorf("ca file: %v", err)
		}
	}
	return nil
}

// validateMounts checks that there is something to mount, each mount point
// once, with valid bucket names.
func (o *Options) validateMounts() error {
	if len(o.Mounts) == 0 {
		return errors.New("nothing to mount: give BUCKET[:PREFIX] MOUNTPOINT, MOUNTPOINT, or --config with PUBLIC_BUCKET/PRIVATE_BUCKET")
	}
	seen := map[string]bool{}
	for _, m := range o.Mounts {
		if m.Mountpoint == "" {
			return fmt.Errorf("bucket %q: no mount point", m.Bucket)
		}
		if seen[filepath.Clean(m.Mountpoint)] {
			return fmt.Errorf("mount point %s given twice", m.Mountpoint)
		}
		seen[filepath.Clean(m.Mountpoint)] = true
		if m.Bucket != "" {
			if err := CheckBucketName(m.Bucket); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateSizes checks the block, cache, part, buffer and readahead sizes
// against each other and S3's limits.
func (o *Options) validateSizes() error {
	const minBlock, maxBlock = 64 << 10, 128 << 20
	switch {
	case o.BlockSize < minBlock || o.BlockSize > maxBlock:
		return fmt.Errorf("block-size %s: want between 64KiB and 128MiB", FormatSize(o.BlockSize))
	case o.CacheSize < 2*o.BlockSize:
		return fmt.Errorf("cache-size %s: want at least two blocks (%s)", FormatSize(o.CacheSize), FormatSize(2*o.BlockSize))
	case o.PartSize < 5<<20 || o.PartSize > 1<<30:
		return fmt.Errorf("part-size %s: want between 5MiB (the S3 minimum) and 1GiB", FormatSize(o.PartSize))
	case o.WriteBuffer < o.PartSize:
		return fmt.Errorf("write-buffer %s: want at least one part (%s)", FormatSize(o.WriteBuffer), FormatSize(o.PartSize))
	case o.DiskCache != 0 && o.DiskCache < 64<<20:
		return fmt.Errorf("disk-cache-size %s: want 0 (off) or at least 64MiB", FormatSize(o.DiskCache))
	case o.CacheDirSize < 64<<20:
		return fmt.Errorf("cache-dir-size %s: want at least 64MiB", FormatSize(o.CacheDirSize))
	case o.MaxReadahead < 0 || o.MaxReadahead > o.CacheSize/2:
		return fmt.Errorf("max-readahead %s: want between 0 and half the cache (%s)", FormatSize(o.MaxReadahead), FormatSize(o.CacheSize/2))
	}
	return nil
}

// validateRest checks modes, TTLs, timeouts, addresses and logging.
func (o *Options) validateRest() error {
	if o.FileMode&^0o7777 != 0 || o.DirMode&^0o7777 != 0 {
		return errors.New("file-mode and dir-mode take permission bits only (at most 07777)")
	}
	if o.WriteBack && o.ReadOnly {
		return errors.New("write-back and read-only exclude each other: a read-only mount writes nothing")
	}
	if o.AttrTTL < 0 || o.EntryTTL < 0 || o.NegativeTTL < 0 || o.Revalidate < 0 {
		return errors.New("TTLs must not be negative")
	}
	if o.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(o.MetricsAddr); err != nil || port == "" {
			return fmt.Errorf("metrics-addr %q: want HOST:PORT such as 127.0.0.1:9567", o.MetricsAddr)
		}
	}
	if o.RequestTimeout < 100*time.Millisecond || o.Deadline < o.RequestTimeout {
		return fmt.Errorf("request-timeout %v, deadline %v: want request-timeout of at least 100ms and a deadline no shorter", o.RequestTimeout, o.Deadline)
	}
	if o.EventsWebhook != "" {
		host, _, err := net.SplitHostPort(o.EventsWebhook)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("events-webhook %q: want a loopback address such as 127.0.0.1:9911", o.EventsWebhook)
		}
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level %q: want debug, info, warn or error", o.LogLevel)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return fmt.Errorf("log-format %q: want text or json", o.LogFormat)
	}
	return nil
}

// CheckBucketName applies the S3 bucket naming rules.
func CheckBucketName(b string) error { return store.CheckBucketName(b) }

// ParseTarget splits "BUCKET[:PREFIX]" into a bucket and a normalised prefix
// ("" or "a/b/").
func ParseTarget(s string) (bucket, prefix string, err error) {
	bucket, prefix, _ = strings.Cut(s, ":")
	if err := CheckBucketName(bucket); err != nil {
		return "", "", err
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		for _, seg := range strings.Split(prefix, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return "", "", fmt.Errorf("prefix %q: empty, '.' or '..' path segment", prefix)
			}
		}
		prefix += "/"
	}
	return bucket, prefix, nil
}
