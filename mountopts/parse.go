package mountopts

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// spec is one option, reachable as --name on the command line and as
// -o name=value (or name_with_underscores=value) from fstab.
type spec struct {
	name    string
	help    string
	isBool  bool
	set     func(o *Options, v string) error
	current func(o *Options) string // for the default shown in --help
}

func strOpt(name, help string, f func(*Options) *string) spec {
	return spec{name: name, help: help,
		set:     func(o *Options, v string) error { *f(o) = v; return nil },
		current: func(o *Options) string { return *f(o) }}
}

func boolOpt(name, help string, f func(*Options) *bool) spec {
	return spec{name: name, help: help, isBool: true,
		set: func(o *Options, v string) error {
			b, err := ParseBool(v)
			*f(o) = b
			return err
		},
		current: func(o *Options) string { return strconv.FormatBool(*f(o)) }}
}

func durOpt(name, help string, f func(*Options) *time.Duration) spec {
	return spec{name: name, help: help,
		set: func(o *Options, v string) error {
			d, err := ParseDuration(v)
			*f(o) = d
			return err
		},
		current: func(o *Options) string { return FormatDuration(*f(o)) }}
}

// FormatDuration writes a duration as the docs do: 15m, 1h30m, 10s, 500ms.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func sizeOpt(name, help string, f func(*Options) *int64) spec {
	return spec{name: name, help: help,
		set: func(o *Options, v string) error {
			n, err := ParseSize(v)
			*f(o) = n
			return err
		},
		current: func(o *Options) string { return FormatSize(*f(o)) }}
}

func modeBits(m uint32) os.FileMode { return os.FileMode(m) }

var specs = []spec{
	strOpt("endpoint", "S3 endpoint URL, http:// or https:// (env KFS_ENDPOINT, AWS_ENDPOINT_URL); several, comma-separated, are nodes of one cluster: when one cannot be reached kfs goes on with the next", func(o *Options) *string { return &o.Endpoint }),
	strOpt("access-key", "access key (env KFS_ACCESS_KEY, AWS_ACCESS_KEY_ID)", func(o *Options) *string { return &o.AccessKey }),
	strOpt("secret-key", "secret key (env KFS_SECRET_KEY, AWS_SECRET_ACCESS_KEY); prefer the env or --config", func(o *Options) *string { return &o.SecretKey }),
	strOpt("session-token", "session token for temporary credentials (env KFS_SESSION_TOKEN, AWS_SESSION_TOKEN)", func(o *Options) *string { return &o.SessionToken }),
	strOpt("region", "S3 region (env KFS_REGION, AWS_REGION)", func(o *Options) *string { return &o.Region }),
	strOpt("ca-file", "PEM file of CA certificates for https endpoints (env KFS_CA_FILE, AWS_CA_BUNDLE)", func(o *Options) *string { return &o.CAFile }),
	strOpt("config", "JSON credentials file (ENDPOINT, ACCESS_KEY, SECRET_KEY, PUBLIC_BUCKET, PRIVATE_BUCKET, ...); env KFS_CONFIG", func(o *Options) *string { return &o.ConfigFile }),
	{name: "uid", help: "owner uid of every file (default: the caller's)",
		set:     func(o *Options, v string) error { return parseID(v, &o.UID) },
		current: func(o *Options) string { return strconv.Itoa(int(o.UID)) }},
	{name: "gid", help: "group gid of every file (default: the caller's)",
		set:     func(o *Options, v string) error { return parseID(v, &o.GID) },
		current: func(o *Options) string { return strconv.Itoa(int(o.GID)) }},
	{name: "file-mode", help: "permission bits of files (octal)",
		set: func(o *Options, v string) error {
			m, err := ParseMode(v)
			o.FileMode = modeBits(m)
			return err
		},
		current: func(o *Options) string { return fmt.Sprintf("%04o", uint32(o.FileMode)) }},
	{name: "dir-mode", help: "permission bits of directories (octal)",
		set: func(o *Options, v string) error {
			m, err := ParseMode(v)
			o.DirMode = modeBits(m)
			return err
		},
		current: func(o *Options) string { return fmt.Sprintf("%04o", uint32(o.DirMode)) }},
	boolOpt("allow-other", "let other users access the mount (needs user_allow_other in /etc/fuse.conf unless root)", func(o *Options) *bool { return &o.AllowOther }),
	boolOpt("read-only", "refuse every change with EROFS (-o ro)", func(o *Options) *bool { return &o.ReadOnly }),
	boolOpt("no-permission-checks", "do not have the kernel enforce modes and owners (only for single-user mounts; checks are on by default)", func(o *Options) *bool { return &o.NoPermissionChecks }),
	boolOpt("acl", "store POSIX ACLs (setfacl) with the objects and have the kernel enforce them", func(o *Options) *bool { return &o.ACL }),
	durOpt("attr-ttl", "how long the kernel may trust file attributes", func(o *Options) *time.Duration { return &o.AttrTTL }),
	durOpt("entry-ttl", "how long the kernel may trust a name -> file mapping (and kfs its directory listings)", func(o *Options) *time.Duration { return &o.EntryTTL }),
	durOpt("negative-ttl", "how long the kernel may remember that a name does not exist", func(o *Options) *time.Duration { return &o.NegativeTTL }),
	durOpt("revalidate-after", "without bucket events: a directory listing older than this is listed again before it says a name does not exist or serves ls (0: always)", func(o *Options) *time.Duration { return &o.Revalidate }),
	durOpt("request-timeout", "a request to the store that makes no progress this long (nothing sent or received) fails and is retried; copies and completions may wait 20 times as long for their answer", func(o *Options) *time.Duration { return &o.RequestTimeout }),
	durOpt("deadline", "longest time one store operation may take, retries included (then the caller gets EIO)", func(o *Options) *time.Duration { return &o.Deadline }),
	{name: "retries", help: "how many times a failed request to the store is sent again (with backoff and jitter; 0: never)",
		set: func(o *Options, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return fmt.Errorf("retries %q: want a number from 0 to 100", v)
			}
			o.Retries = n
			return nil
		},
		current: func(o *Options) string { return strconv.Itoa(o.Retries) }},
	sizeOpt("cache-size", "memory for the block cache, all files together", func(o *Options) *int64 { return &o.CacheSize }),
	sizeOpt("block-size", "block size: unit of range GETs and of the cache", func(o *Options) *int64 { return &o.BlockSize }),
	sizeOpt("max-readahead", "largest prefetch window of one sequential reader (at most half the cache)", func(o *Options) *int64 { return &o.MaxReadahead }),
	strOpt("cache-dir", "directory for staging files of files being modified, and the upload journals (default /var/tmp/kfs-UID)", func(o *Options) *string { return &o.CacheDir }),
	sizeOpt("cache-dir-size", "most bytes of staging files at once (writes past it get ENOSPC)", func(o *Options) *int64 { return &o.CacheDirSize }),
	sizeOpt("disk-cache-size", "keep whole objects read through the mount under cache-dir/objects, up to this many bytes, across remounts (0: off); see README: Dataset cache", func(o *Options) *int64 { return &o.DiskCache }),
	boolOpt("passthrough", "with the disk cache: files whole in it are read by the kernel straight from the cache file (FUSE passthrough); while such a reader is open, opening that file for writing waits up to 5s, then fails with ETXTBSY", func(o *Options) *bool { return &o.Passthrough }),
	sizeOpt("part-size", "first multipart part size (doubles every 1,000 parts)", func(o *Options) *int64 { return &o.PartSize }),
	sizeOpt("write-buffer", "memory for upload part buffers, all files together", func(o *Options) *int64 { return &o.WriteBuffer }),
	boolOpt("write-back", "close() of a small new file returns once it is durable on local disk (staging file and journal record synced under cache-dir); uploads follow in the background; fsync and kfs sync wait for them; see README: Write-back", func(o *Options) *bool { return &o.WriteBack }),
	strOpt("events-token", "auth token MinIO sends to the events webhook (MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>); POSTs without it are refused. Give it as env KFS_EVENTS_TOKEN or EVENTS_TOKEN in the credentials file: on the command line every user can read it", func(o *Options) *string { return &o.EventsToken }),
	strOpt("metrics-addr", "also serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, e.g. 127.0.0.1:9567); they are always at GET /v1/metrics on the control socket", func(o *Options) *string { return &o.MetricsAddr }),
	strOpt("events-webhook", "receive MinIO webhook events on this loopback address (127.0.0.1:PORT) for kfs watch; point MINIO_NOTIFY_WEBHOOK_ENDPOINT_<ID> at http://ADDR/", func(o *Options) *string { return &o.EventsWebhook }),
	boolOpt("daemon", "run in the background; return once the mount is live (what mount(8) and fstab need)", func(o *Options) *bool { return &o.Daemon }),
	strOpt("log-file", "append log lines to this file (default: stderr; a daemon: /var/log/kfs/kfs.log for root, ~/.local/state/kfs/kfs.log otherwise)", func(o *Options) *string { return &o.LogFile }),
	strOpt("log-level", "least important log lines kept: debug, info, warn or error", func(o *Options) *string { return &o.LogLevel }),
	strOpt("log-format", "log line format: text or json (for log collectors)", func(o *Options) *string { return &o.LogFormat }),
	boolOpt("debug", "log every FUSE request", func(o *Options) *bool { return &o.Debug }),
	strOpt("public-mountpoint", "with --config and no positional arguments: where PUBLIC_BUCKET is mounted (default /kfs_public)", func(o *Options) *string { return &o.publicMnt }),
	strOpt("private-mountpoint", "with --config and no positional arguments: where PRIVATE_BUCKET is mounted (default /kfs_private)", func(o *Options) *string { return &o.privateMnt }),
}

// Option names mount(8) and fstab pass along that mean nothing to kfs.
var ignoredMountOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "_netdev": true, "nofail": true, "dev": true, "nodev": true, "suid": true,
	"nosuid": true, "exec": true, "noexec": true, "async": true, "atime": true, "noatime": true,
	"relatime": true, "default_permissions": true,
}

// Parse reads `kfs mount` arguments (flags, -o options and positionals, in
// any order) with env for the environment, applies the credentials file and
// validates the result.
func Parse(args []string, env func(string) string) (Options, error) {
	o := Default()
	set := map[string]bool{}
	pos, err := parseArgs(&o, set, args, io.Discard)
	if err != nil {
		return o, err
	}
	for _, secret := range []struct{ opt, instead string }{
		{"secret-key", "KFS_SECRET_KEY or SECRET_KEY in the credentials file"},
		{"session-token", "KFS_SESSION_TOKEN or SESSION_TOKEN in the credentials file"},
		{"events-token", "KFS_EVENTS_TOKEN or EVENTS_TOKEN in the credentials file"},
	} {
		if set[secret.opt] {
			o.Warnings = append(o.Warnings, fmt.Sprintf("--%s on the command line can be read by every user of this machine (ps, /proc/PID/cmdline); use %s",
				secret.opt, secret.instead))
		}
	}
	if err := applyEnv(&o, set, env); err != nil {
		return o, err
	}
	if err := applyCredFile(&o, set); err != nil {
		return o, err
	}
	if err := o.setMounts(pos); err != nil {
		return o, err
	}
	if !set["max-readahead"] && o.MaxReadahead > o.CacheSize/2 {
		o.MaxReadahead = o.CacheSize / 2 // a smaller cache, left to its default: follows the cache
	}
	return o, o.Validate()
}

// FlagSet returns a flag set documenting every option, for --help.
func FlagSet(out io.Writer) *flag.FlagSet {
	o := Default()
	return newFlagSet(&o, map[string]bool{}, out)
}

func newFlagSet(o *Options, set map[string]bool, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kfs mount", flag.ContinueOnError)
	fs.SetOutput(out)
	for _, s := range specs {
		fs.Var(&specValue{s: s, o: o, set: set}, s.name, s.help)
	}
	fs.Var(&mountOptsValue{o: o, set: set}, "o", "comma-separated mount options k=v,...: any option above (with - or _), plus ro, rw, allow_other and the generic mount(8) options, which are ignored")
	return fs
}

func parseArgs(o *Options, set map[string]bool, args []string, out io.Writer) ([]string, error) {
	fs := newFlagSet(o, set, out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if bad, found := strings.CutPrefix(err.Error(), "flag provided but not defined: "); found {
				return nil, unknownFlag(fs, bad)
			}
			// One line, whatever the user typed.
			return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", `\n`))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// unknownFlag says which flag is unknown, with the closest known one.
func unknownFlag(fs *flag.FlagSet, bad string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	msg := fmt.Sprintf("unknown flag %q", bad)
	if s := SuggestFlag(bad, names); s != "" {
		msg += " (did you mean --" + s + "?)"
	}
	return errors.New(msg + "; see kfs mount --help")
}

type specValue struct {
	s   spec
	o   *Options
	set map[string]bool
}

func (v *specValue) String() string {
	if v == nil || v.o == nil {
		return ""
	}
	return v.s.current(v.o)
}
func (v *specValue) IsBoolFlag() bool { return v.s.isBool }
func (v *specValue) Set(val string) error {
	v.set[v.s.name] = true
	return v.s.set(v.o, val)
}

type mountOptsValue struct {
	o   *Options
	set map[string]bool
}

func (v *mountOptsValue) String() string { return "" }
func (v *mountOptsValue) Set(list string) error {
	for _, kv := range strings.Split(list, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if err := setMountOption(v.o, v.set, kv); err != nil {
				return err
			}
		}
	}
	return nil
}

func setMountOption(o *Options, set map[string]bool, kv string) error {
	k, val, hasVal := strings.Cut(kv, "=")
	switch k {
	case "ro":
		k, val, hasVal = "read-only", "true", true
	case "rw":
		k, val, hasVal = "read-only", "false", true
	}
	if !hasVal && ignoredMountOptions[k] {
		return nil
	}
	name := strings.ReplaceAll(k, "_", "-")
	for _, s := range specs {
		if s.name != name {
			continue
		}
		if !hasVal && !s.isBool {
			return fmt.Errorf("option %q needs a value (%s=...)", k, k)
		}
		set[s.name] = true
		if err := s.set(o, val); err != nil {
			return fmt.Errorf("option %s: %v", k, err)
		}
		return nil
	}
	var names []string
	for _, sp := range specs {
		names = append(names, strings.ReplaceAll(sp.name, "-", "_"))
	}
	if sug := Suggest(strings.ReplaceAll(k, "-", "_"), names); sug != "" {
		return fmt.Errorf("unknown mount option %q (did you mean %s?; see kfs mount --help)", k, sug)
	}
	return fmt.Errorf("unknown mount option %q (see kfs mount --help)", k)
}

func applyEnv(o *Options, set map[string]bool, env func(string) string) error {
	pairs := []struct {
		opt   string
		names []string
	}{
		{"endpoint", []string{"KFS_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}},
		{"access-key", []string{"KFS_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}},
		{"secret-key", []string{"KFS_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"}},
		{"session-token", []string{"KFS_SESSION_TOKEN", "AWS_SESSION_TOKEN"}},
		{"region", []string{"KFS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"}},
		{"ca-file", []string{"KFS_CA_FILE", "AWS_CA_BUNDLE"}},
		{"config", []string{"KFS_CONFIG"}},
		{"events-token", []string{"KFS_EVENTS_TOKEN"}},
	}
	for _, p := range pairs {
		if set[p.opt] {
			continue
		}
		for _, n := range p.names {
			if v := env(n); v != "" {
				if err := lookupSpec(p.opt).set(o, v); err != nil {
					return fmt.Errorf("%s: %v", n, err)
				}
				set[p.opt] = true
				break
			}
		}
	}
	return nil
}

func applyCredFile(o *Options, set map[string]bool) error {
	if o.ConfigFile == "" {
		return nil
	}
	c, err := ReadCredFile(o.ConfigFile)
	if err != nil {
		return err
	}
	o.cred = &c
	if len(c.Unknown) > 0 {
		o.Warnings = append(o.Warnings, fmt.Sprintf("credentials file %s: ignoring unknown keys %s", o.ConfigFile, strings.Join(c.Unknown, ", ")))
	}
	fill := func(opt string, v string) {
		if v != "" && !set[opt] {
			_ = lookupSpec(opt).set(o, v)
		}
	}
	fill("endpoint", c.Endpoint)
	fill("access-key", c.AccessKey)
	fill("secret-key", c.SecretKey)
	fill("session-token", c.SessionToken)
	fill("region", c.Region)
	fill("ca-file", c.CAFile)
	fill("public-mountpoint", c.PublicMountpoint)
	fill("private-mountpoint", c.PrivateMountpoint)
	fill("events-token", c.EventsToken)
	return nil
}

func (o *Options) setMounts(pos []string) error {
	switch len(pos) {
	case 0:
		if o.cred == nil {
			return errors.New("nothing to mount: give BUCKET[:PREFIX] MOUNTPOINT, MOUNTPOINT (all buckets), or --config FILE")
		}
		pub, priv := orDefault(o.publicMnt, "/kfs_public"), orDefault(o.privateMnt, "/kfs_private")
		if o.cred.PublicBucket != "" {
			o.Mounts = append(o.Mounts, Mount{Bucket: o.cred.PublicBucket, Mountpoint: pub})
		}
		if o.cred.PrivateBucket != "" {
			o.Mounts = append(o.Mounts, Mount{Bucket: o.cred.PrivateBucket, Mountpoint: priv})
		}
		if len(o.Mounts) == 0 {
			return fmt.Errorf("credentials file %s names neither PUBLIC_BUCKET nor PRIVATE_BUCKET", o.ConfigFile)
		}
	case 1:
		o.Mounts = []Mount{{Mountpoint: pos[0]}}
	case 2:
		b, p, err := ParseTarget(pos[0])
		if err != nil {
			return err
		}
		o.Mounts = []Mount{{Bucket: b, Prefix: p, Mountpoint: pos[1]}}
	default:
		return fmt.Errorf("too many arguments: %q (want [BUCKET[:PREFIX]] MOUNTPOINT)", pos)
	}
	for i := range o.Mounts {
		abs, err := filepath.Abs(o.Mounts[i].Mountpoint)
		if err != nil {
			return err
		}
		o.Mounts[i].Mountpoint = abs
	}
	return nil
}

func lookupSpec(name string) spec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
	}
	panic("mountopts: no option " + name)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func parseID(v string, dst *uint32) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("%q: want a numeric id", v)
	}
	*dst = uint32(n)
	return nil
}
