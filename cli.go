package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"kfs/ctl"
)

// Subcommands that talk to a mount's control socket.

type headerFlags map[string]string

func (h headerFlags) String() string { return "" }
func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	h[k] = val
	return nil
}

func runPresign(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs presign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	method := fs.String("method", "GET", "GET, PUT, DELETE or HEAD")
	expires := fs.String("expires", "168h", "how long the URL works (at most 7 days)")
	version := fs.String("version-id", "", "a version of the object")
	headers := headerFlags{}
	fs.Var(headers, "response-header", "response-* parameter for the URL, e.g. response-content-type=text/csv (repeatable)")
	path, ok := parseOne(fs, args, "kfs presign [flags] PATH", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	r, err := c.Presign(ctl.PresignRequest{Path: abs, Method: *method, Expires: *expires, VersionID: *version, ResponseHeaders: headers})
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, r.URL)
	return 0
}

func runStat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs stat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version-id", "", "a version of the object")
	path, ok := parseOne(fs, args, "kfs stat [--version-id V] PATH", stderr)
	if !ok {
		return 2
	}
	c, abs, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	st, err := c.Stat(ctl.StatRequest{Path: abs, VersionID: *version})
	if err != nil {
		return fail(stderr, err)
	}
	return printJSON(stdout, st)
}

// runMountInfo serves `kfs buckets PATH` and `kfs status [PATH]` (every
// kfs mount without a path).
func runMountInfo(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if cmd == "status" && len(args) == 0 {
		mps, err := ctl.Mounts()
		if err != nil {
			return fail(stderr, err)
		}
		all := []any{}
		for _, mp := range mps {
			st, err := ctl.Dial(ctl.SocketPath(mp)).Status()
			if err != nil {
				all = append(all, map[string]string{"mountpoint": mp, "error": err.Error()})
				continue
			}
			all = append(all, st)
		}
		return printJSON(stdout, all)
	}
	path, ok := parseOne(fs, args, "kfs "+cmd+" PATH-IN-A-MOUNT", stderr)
	if !ok {
		return 2
	}
	c, _, err := clientFor(path)
	if err != nil {
		return fail(stderr, err)
	}
	if cmd == "status" {
		st, err := c.Status()
		if err != nil {
			return fail(stderr, err)
		}
		return printJSON(stdout, st)
	}
	bs, err := c.Buckets()
	if err != nil {
		return fail(stderr, err)
	}
	for _, b := range bs {
		fmt.Fprintf(stdout, "%s\t%s\n", b.Created.Format("2006-01-02T15:04:05Z"), b.Name)
	}
	return 0
}

func parseOne(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) (string, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "kfs: usage: %s\n", usage)
		return "", false
	}
	return pos[0], true
}

func clientFor(path string) (*ctl.Client, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	c, _, err := ctl.ForPath(abs)
	return c, abs, err
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}
