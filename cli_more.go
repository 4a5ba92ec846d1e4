package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"kfs/ctl"
)

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "kfs: %v\n", err)
	return 1
}

func runVersions(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs versions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path, ok := parseOne(fs, args, "kfs versions PATH", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	vs, err := c.Versions(abs)
	if err != nil {
		return fail(stderr, err)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSIZE\tLAST MODIFIED\tLATEST\tDELETE MARKER")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%v\t%v\n", v.VersionID, v.Size, v.LastModified.UTC().Format(time.RFC3339), v.IsLatest, v.DeleteMarker)
	}
	tw.Flush()
	return 0
}

func runCat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs cat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version-id", "", "the version to print")
	path, ok := parseOne(fs, args, "kfs cat [--version-id V] PATH", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	if _, err := c.Stream("/v1/cat", ctl.CatRequest{Path: abs, VersionID: *version}, stdout); err != nil {
		return fail(stderr, err)
	}
	return 0
}

func runRm(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs rm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version-id", "", "delete this version only")
	recursive := fs.Bool("r", false, "delete every object under the directory, in batches")
	path, ok := parseOne(fs, args, "kfs rm [--version-id V | -r] PATH", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	r, err := c.Remove(ctl.RemoveRequest{Path: abs, VersionID: *version, Recursive: *recursive})
	if err != nil {
		return fail(stderr, err)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(stderr, "kfs: not removed: %s\n", e)
	}
	fmt.Fprintf(stdout, "removed %d\n", r.Removed)
	if len(r.Errors) > 0 {
		return 1
	}
	return 0
}

func runCp(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs cp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serverSide := fs.Bool("server-side", false, "copy inside the store (both paths in kfs mounts of one endpoint)")
	ifMatch := fs.String("if-match", "", "copy only if the source has this ETag")
	ifModSince := fs.String("if-modified-since", "", "copy only if the source changed after this time (RFC 3339)")
	replace := fs.Bool("replace-metadata", false, "replace the metadata with --metadata instead of copying it")
	meta := headerFlags{}
	fs.Var(meta, "metadata", "metadata k=v for the copy (repeatable; implies --replace-metadata)")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "kfs: usage: kfs cp --server-side [--if-match E] [--if-modified-since T] [--metadata k=v]... [--replace-metadata] SRC DST")
		return 2
	}
	if !*serverSide {
		if *ifMatch != "" || *ifModSince != "" || len(meta) > 0 || *replace {
			fmt.Fprintln(stderr, "kfs: conditions and metadata need --server-side")
			return 2
		}
		_, errSrc := ctl.FindMount(pos[0])
		_, errDst := ctl.FindMount(pos[1])
		if errSrc != nil && errDst != nil {
			fmt.Fprintf(stderr, "kfs: %v\n", errUsageCp)
			return 2
		}
		errw, _ := stderr.(*os.File)
		if errw == nil {
			errw = os.Stderr
		}
		if err := copyFile(pos[0], pos[1], errw); err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	req := ctl.CopyRequest{IfMatch: *ifMatch, Metadata: meta, ReplaceMetadata: *replace}
	if *ifModSince != "" {
		t, err := time.Parse(time.RFC3339, *ifModSince)
		if err != nil {
			fmt.Fprintf(stderr, "kfs: --if-modified-since %q: want RFC 3339\n", *ifModSince)
			return 2
		}
		req.IfModifiedSince = &t
	}
	c, src, err := clientFor(pos[0])
	if err != nil {
		return fail(stderr, err)
	}
	dst, err := filepath.Abs(pos[1])
	if err != nil {
		return fail(stderr, err)
	}
	req.Src, req.Dst = src, dst
	st, err := c.Copy(req)
	if err != nil {
		return fail(stderr, err)
	}
	return printJSON(stdout, st)
}

func runCompose(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "kfs: usage: kfs compose DST SRC...")
		return 2
	}
	c, dst, err := clientFor(args[0])
	if err != nil {
		return fail(stderr, err)
	}
	req := ctl.ComposeRequest{Dst: dst}
	for _, s := range args[1:] {
		abs, err := filepath.Abs(s)
		if err != nil {
			return fail(stderr, err)
		}
		req.Srcs = append(req.Srcs, abs)
	}
	st, err := c.Compose(req)
	if err != nil {
		return fail(stderr, err)
	}
	return printJSON(stdout, st)
}

func runSelect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs select", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var r ctl.SelectRequest
	fs.StringVar(&r.SQL, "sql", "", "the query, e.g. \"select * from S3Object\"")
	fs.StringVar(&r.Input, "input", "csv", "csv, json or parquet")
	fs.StringVar(&r.CSVHeader, "csv-header", "use", "use, ignore or none")
	fs.StringVar(&r.Delimiter, "delimiter", ",", "CSV field delimiter")
	fs.StringVar(&r.JSONType, "json-type", "lines", "lines or document")
	fs.StringVar(&r.Compression, "compression", "none", "none, gzip or bzip2")
	fs.StringVar(&r.Output, "output", "csv", "csv or json")
	stats := fs.Bool("stats", false, "print bytes scanned, processed and returned to stderr")
	path, ok := parseOne(fs, args, "kfs select PATH --sql QUERY [flags]", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	r.Path = abs
	trailer, err := c.Stream("/v1/select", r, stdout)
	if err != nil {
		return fail(stderr, err)
	}
	var st ctl.SelectStats
	if raw := trailer.Get(ctl.StatsTrailer); raw != "" {
		var e struct{ Error string }
		if json.Unmarshal([]byte(raw), &e) == nil && e.Error != "" {
			return fail(stderr, fmt.Errorf("select stopped: %s", e.Error))
		}
		_ = json.Unmarshal([]byte(raw), &st)
	}
	if *stats {
		fmt.Fprintf(stderr, "bytes scanned %d, processed %d, returned %d\n", st.BytesScanned, st.BytesProcessed, st.BytesReturned)
	}
	return 0
}

func runWatch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.String("events", "created,removed", "comma-separated: created, removed, accessed, or full names (s3:ObjectCreated:Put)")
	suffix := fs.String("suffix", "", "only keys ending so, e.g. .csv")
	path, ok := parseOne(fs, args, "kfs watch [--events created,removed] [--suffix .csv] DIR", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	req := ctl.WatchRequest{Path: abs, Suffix: *suffix, Events: strings.Split(*events, ",")}
	if _, err := c.Stream("/v1/watch", req, stdout); err != nil {
		return fail(stderr, err)
	}
	return 0
}
