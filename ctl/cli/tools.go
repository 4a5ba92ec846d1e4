package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"kfs/ctl"
	"path/filepath"
	"strings"
)

// resolveElsewhere names path's object through its own mount's socket, for
// server-side work run by another mount's socket of the same endpoint.
func resolveElsewhere(path string, via *ctl.Client, write bool) (ctl.ObjectName, bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ctl.ObjectName{}, false, err
	}
	other, _, err := ctl.ForPath(abs)
	if err != nil {
		return ctl.ObjectName{}, false, err
	}
	var here, there ctl.ResolveResponse
	if err := other.Call("/v1/resolve", ctl.ResolveRequest{Path: abs, Write: write}, &there); err != nil {
		return ctl.ObjectName{}, false, err
	}
	st, err := via.Status()
	if err != nil {
		return ctl.ObjectName{}, false, err
	}
	here.Endpoint = st.Endpoint
	if here.Endpoint != there.Endpoint {
		return ctl.ObjectName{}, false, fmt.Errorf("%s is on %s, not %s: server-side copy works between mounts of one endpoint (use plain cp)", path, there.Endpoint, here.Endpoint)
	}
	return ctl.ObjectName{Bucket: there.Bucket, Key: there.Key}, true, nil
}

func sameMount(a, b string) bool {
	ma, err1 := ctl.FindMount(a)
	mb, err2 := ctl.FindMount(b)
	return err1 == nil && err2 == nil && ma == mb
}

func composeCmd() *Command {
	c := &Command{Name: "compose", Args: "[--content-type T] [--metadata k=v]... DST SRC...", Summary: "concatenate files into DST server side (all sources but the last >= 5 MiB)",
		Examples: []string{"kfs compose /kfs_private/all.csv /kfs_private/part1.csv /kfs_private/part2.csv",
			"kfs compose --content-type text/csv --metadata source=export /kfs_private/all.dat /kfs_private/p1 /kfs_private/p2"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		ct := fs.String("content-type", "", "Content-Type of the result (default: from DST's extension, else application/octet-stream)")
		meta := headerFlags{}
		fs.Var(meta, "metadata", "user metadata k=v of the result (repeatable)")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) < 2 {
			return c.UsageError(stderr)
		}
		cl, dst, err := clientFor(pos[0])
		if err != nil {
			return Fail(c, stderr, err)
		}
		req := ctl.ComposeRequest{Dst: dst, ContentType: *ct, Metadata: meta}
		for i, s := range pos[1:] {
			abs, err := filepath.Abs(s)
			if err != nil {
				return Fail(c, stderr, err)
			}
			req.Srcs = append(req.Srcs, abs)
			if !sameMount(dst, abs) {
				n, _, err := resolveElsewhere(abs, cl, false)
				if err != nil {
					return Fail(c, stderr, err)
				}
				for len(req.SrcRefs) < i {
					req.SrcRefs = append(req.SrcRefs, ctl.ObjectName{})
				}
				req.SrcRefs = append(req.SrcRefs, n)
			}
		}
		st, err := cl.Compose(req)
		if err != nil {
			return Fail(c, stderr, err)
		}
		return printJSON(stdout, st)
	}
	return c
}

func selectCmd() *Command {
	c := &Command{Name: "select", Args: "PATH --sql QUERY [flags]", Summary: "run S3 Select on a CSV, JSON or Parquet file; records go to stdout",
		Examples: []string{`kfs select /kfs_public/movies_data/2020.csv --sql "select title from S3Object where rating > '7.5'"`,
			`kfs select data.json.gz --sql "select * from S3Object s" --output json   # input and compression from the name`}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		var r ctl.SelectRequest
		fs.StringVar(&r.SQL, "sql", "", "the query, e.g. \"select * from S3Object\"")
		fs.StringVar(&r.Input, "input", "", "csv, json or parquet (default: from the file name, else csv)")
		fs.StringVar(&r.CSVHeader, "csv-header", "use", "use, ignore or none")
		fs.StringVar(&r.Delimiter, "delimiter", ",", "CSV field delimiter")
		fs.StringVar(&r.JSONType, "json-type", "lines", "lines or document")
		fs.StringVar(&r.Compression, "compression", "", "none, gzip or bzip2 (default: from the file name)")
		fs.StringVar(&r.Output, "output", "csv", "csv or json")
		stats := fs.Bool("stats", false, "print bytes scanned, processed and returned to stderr")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		if strings.TrimSpace(r.SQL) == "" {
			fmt.Fprintf(stderr, "kfs select: --sql QUERY is required, e.g. --sql \"select * from S3Object\"; see kfs select --help\n")
			return 2
		}
		inferSelect(&r, path)
		cl, abs, err := clientFor(path)
		if err != nil {
			return Fail(c, stderr, err)
		}
		r.Path = abs
		trailer, err := cl.Stream("/v1/select", r, stdout)
		if err != nil {
			return Fail(c, stderr, err)
		}
		var st ctl.SelectStats
		if raw := trailer.Get(ctl.StatsTrailer); raw != "" {
			var e struct{ Error string }
			if json.Unmarshal([]byte(raw), &e) == nil && e.Error != "" {
				return Fail(c, stderr, fmt.Errorf("select stopped: %s", e.Error))
			}
			_ = json.Unmarshal([]byte(raw), &st)
		}
		if *stats {
			fmt.Fprintf(stderr, "bytes scanned %d, processed %d, returned %d\n", st.BytesScanned, st.BytesProcessed, st.BytesReturned)
		}
		return 0
	}
	return c
}

// inferSelect fills input format and compression from the file name.
func inferSelect(r *ctl.SelectRequest, path string) {
	name := strings.ToLower(filepath.Base(path))
	if r.Compression == "" {
		switch {
		case strings.HasSuffix(name, ".gz"):
			r.Compression = "gzip"
		case strings.HasSuffix(name, ".bz2"):
			r.Compression = "bzip2"
		default:
			r.Compression = "none"
		}
		name = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".bz2")
	}
	if r.Input == "" {
		switch filepath.Ext(name) {
		case ".json", ".jsonl", ".ndjson":
			r.Input = "json"
		case ".parquet":
			r.Input = "parquet"
		default:
			r.Input = "csv"
		}
	}
}

func watchCmd() *Command {
	c := &Command{Name: "watch", Args: "[--events E,...] [--suffix S] DIR", Summary: "print one JSON line per bucket event under DIR",
		Examples: []string{"kfs watch /kfs_private", "kfs watch --events created --suffix .csv /kfs_private/incoming"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		events := fs.String("events", "created,removed", "comma-separated: created, removed, accessed, or full names (s3:ObjectCreated:Put)")
		suffix := fs.String("suffix", "", "only keys ending so, e.g. .csv")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		cl, abs, err := clientFor(path)
		if err != nil {
			return Fail(c, stderr, err)
		}
		if st, err := cl.Status(); err == nil && !eventSourceLive(st) {
			fmt.Fprintln(stderr, "kfs watch: this mount has no live event source, so only the listen API can deliver events (the pinned MinIO never flushes it);"+
				" mount with --events-webhook 127.0.0.1:PORT and point a MinIO webhook target at it (README: Events)")
		}
		req := ctl.WatchRequest{Path: abs, Suffix: *suffix, Events: strings.Split(*events, ",")}
		if _, err := cl.Stream("/v1/watch", req, stdout); err != nil {
			return Fail(c, stderr, err)
		}
		return 0
	}
	return c
}

// eventSourceLive reads the event sources of a mount's status.
func eventSourceLive(st ctl.Status) bool {
	b, _ := json.Marshal(st.Extra)
	var x struct {
		Sources []ctl.SourceState `json:"event_sources"`
	}
	_ = json.Unmarshal(b, &x)
	for _, s := range x.Sources {
		if s.State == "live" {
			return true
		}
	}
	return false
}

func mbCmd() *Command {
	c := &Command{Name: "mb", Args: "[--with-lock] [--versioning] [--region R] DIR/NAME", Summary: "make a bucket (DIR: the root of an all-buckets mount)",
		Examples: []string{"kfs mb /mnt/s3/reports", "kfs mb --with-lock /mnt/s3/audit   # object lock is chosen at creation only"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		lock := fs.Bool("with-lock", false, "with object lock (and versioning); it cannot be added later")
		ver := fs.Bool("versioning", false, "with versioning enabled")
		region := fs.String("region", "", "region of the bucket (default: the server's)")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		cl, abs, err := clientFor(filepath.Dir(path))
		if err != nil {
			return Fail(c, stderr, err)
		}
		var b ctl.Bucket
		req := ctl.MakeBucketRequest{Path: filepath.Join(abs, filepath.Base(path)), ObjectLock: *lock, Versioning: *ver, Region: *region}
		if err := cl.Call("/v1/mb", req, &b); err != nil {
			return Fail(c, stderr, err)
		}
		fmt.Fprintf(stdout, "made bucket %s\n", b.Name)
		return 0
	}
	return c
}

func rbCmd() *Command {
	c := &Command{Name: "rb", Args: "DIR/NAME", Summary: "remove an empty bucket", Examples: []string{"kfs rb /mnt/s3/reports"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		cl, abs, err := clientFor(path)
		if err != nil {
			return Fail(c, stderr, err)
		}
		var b ctl.Bucket
		if err := cl.Call("/v1/rb", ctl.RemoveBucketRequest{Path: abs}, &b); err != nil {
			return Fail(c, stderr, err)
		}
		fmt.Fprintf(stdout, "removed bucket %s\n", b.Name)
		return 0
	}
	return c
}

func bucketsCmd() *Command {
	c := &Command{Name: "buckets", Args: "PATH", Summary: "list the buckets the credentials of the mount holding PATH see",
		Examples: []string{"kfs buckets /kfs_public"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		cl, _, err := clientFor(path)
		if err != nil {
			return Fail(c, stderr, err)
		}
		bs, err := cl.Buckets()
		if err != nil {
			return Fail(c, stderr, err)
		}
		for _, b := range bs {
			fmt.Fprintf(stdout, "%s\t%s\n", b.Created.Format("2006-01-02T15:04:05Z"), b.Name)
		}
		return 0
	}
	return c
}

func syncCmd() *Command {
	c := &Command{Name: "sync", Args: "PATH...", Summary: "wait until every file the mount holding PATH wrote back (--write-back) is in the bucket; exit 1 naming a file that cannot be uploaded now",
		Examples: []string{"kfs sync /kfs_private", "tar xf data.tar -C /kfs_private/x && kfs sync /kfs_private/x"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) == 0 {
			return c.UsageError(stderr)
		}
		failed := 0
		for _, p := range pos {
			cl, _, err := clientFor(p)
			if err == nil {
				err = cl.Sync()
			}
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "kfs sync: %s: %v\n", p, err)
			}
		}
		if failed > 0 {
			return 1
		}
		return 0
	}
	return c
}

func statusCmd() *Command {
	c := &Command{Name: "status", Args: "[PATH]", Summary: "the mount serving PATH (every kfs mount without PATH): bucket, endpoint, cache, uploads, events, problems",
		Examples: []string{"kfs status", "kfs status /kfs_private"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		switch len(pos) {
		case 0:
			mps, err := ctl.Mounts()
			if err != nil {
				return Fail(c, stderr, err)
			}
			all := []any{}
			failed := 0
			for _, mp := range mps {
				var st ctl.Status
				cl, err := ctl.ForMount(mp)
				if err == nil {
					st, err = cl.Status()
				}
				if errors.Is(err, ctl.ErrDeadMount) {
					// known and reported: its process is gone, not silent
					all = append(all, map[string]string{"mountpoint": mp, "state": "dead", "error": err.Error()})
					fmt.Fprintf(stderr, "kfs status: %v\n", err)
					continue
				}
				if err != nil {
					failed++
					all = append(all, map[string]string{"mountpoint": mp, "error": err.Error()})
					fmt.Fprintf(stderr, "kfs status: %s: %v\n", mp, err)
					continue
				}
				all = append(all, st)
			}
			if code := printJSON(stdout, all); code != 0 {
				return code
			}
			if failed > 0 {
				return 1 // some mount could not say how it is
			}
			return 0
		case 1:
			cl, _, err := clientFor(pos[0])
			if err != nil {
				return Fail(c, stderr, err)
			}
			st, err := cl.Status()
			if err != nil {
				return Fail(c, stderr, err)
			}
			return printJSON(stdout, st)
		}
		return c.UsageError(stderr)
	}
	return c
}

func metricsCmd() *Command {
	c := &Command{Name: "metrics", Args: "[PATH]", Summary: "print the Prometheus metrics of the kfs process serving PATH (of every mount without PATH)",
		Examples: []string{"kfs metrics /kfs_private | grep kfs_s3_requests_total", "kfs mount --metrics-addr 127.0.0.1:9567 ...   # for a scraper"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		switch len(pos) {
		case 0:
			return allMetrics(c, stdout, stderr)
		case 1:
			cl, _, err := clientFor(pos[0])
			if err != nil {
				return Fail(c, stderr, err)
			}
			if err := cl.Metrics(stdout); err != nil {
				return Fail(c, stderr, err)
			}
			return 0
		}
		return c.UsageError(stderr)
	}
	return c
}

// allMetrics prints the metrics of every kfs process with a mount, once
// per process (its mounts share them).
func allMetrics(c *Command, stdout, stderr io.Writer) int {
	mps, err := ctl.Mounts()
	if err != nil {
		return Fail(c, stderr, err)
	}
	seen := map[int]bool{}
	for _, mp := range mps {
		cl, err := ctl.ForMount(mp)
		var st ctl.Status
		if err == nil {
			st, err = cl.Status()
		}
		if errors.Is(err, ctl.ErrDeadMount) {
			fmt.Fprintf(stderr, "kfs metrics: %v\n", err)
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "kfs metrics: %s: %v\n", mp, err)
			continue
		}
		if seen[st.PID] {
			continue
		}
		seen[st.PID] = true
		fmt.Fprintf(stdout, "# kfs process %d, serving %s\n", st.PID, mp)
		if err := cl.Metrics(stdout); err != nil {
			return Fail(c, stderr, err)
		}
	}
	if len(seen) == 0 {
		return Fail(c, stderr, fmt.Errorf("no kfs mount answered"))
	}
	return 0
}
