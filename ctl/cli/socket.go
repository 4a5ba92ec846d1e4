package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

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

// Fail reports a command's error on one line of stderr; the exit code is 1.
func Fail(c *Command, stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "kfs %s: %v\n", c.Name, err)
	return 1
}

// clientFor finds the mount holding path and dials its socket.
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
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

// onePath runs a command taking exactly one path.
func onePath(c *Command, pos []string, stderr io.Writer) (string, bool) {
	if len(pos) != 1 {
		c.UsageError(stderr)
		return "", false
	}
	return pos[0], true
}

func presignCmd() *Command {
	c := &Command{Name: "presign", Args: "[flags] PATH", Summary: "print a presigned URL of a file (GET by default, 7 days)",
		Examples: []string{"kfs presign /kfs_public/movies_data/2020.csv",
			"kfs presign --method PUT --expires 2h /kfs_private/upload.bin",
			"kfs presign --expires 1d --response-header response-content-type=text/csv /kfs_private/report.csv"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		method := fs.String("method", "GET", "GET, PUT, DELETE or HEAD")
		expires := fs.String("expires", "7d", "how long the URL works: 90m, 2h, 1d ... at most 7d")
		version := fs.String("version-id", "", "a version of the object")
		headers := headerFlags{}
		fs.Var(headers, "response-header", "a response-* parameter of the URL, e.g. response-content-type=text/csv (repeatable)")
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
		r, err := cl.Presign(ctl.PresignRequest{Path: abs, Method: *method, Expires: *expires, VersionID: *version, ResponseHeaders: headers})
		if err != nil {
			return Fail(c, stderr, err)
		}
		fmt.Fprintln(stdout, r.URL)
		return 0
	}
	return c
}

func statCmd() *Command {
	c := &Command{Name: "stat", Args: "[--version-id V] PATH", Summary: "everything stat_object says of a file, as JSON",
		Examples: []string{"kfs stat /kfs_private/report.csv", "kfs stat --version-id 3f2a... /kfs_private/report.csv"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		version := fs.String("version-id", "", "a version of the object")
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
		st, err := cl.Stat(ctl.StatRequest{Path: abs, VersionID: *version})
		if err != nil {
			return Fail(c, stderr, err)
		}
		return printJSON(stdout, st)
	}
	return c
}

func versionsCmd() *Command {
	c := &Command{Name: "versions", Args: "[-r] PATH", Summary: "list the versions and delete markers of a file (-r: of every file under a directory)",
		Examples: []string{"kfs versions /kfs_private/report.csv", "kfs versions -r /kfs_private/data"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		rec := fs.Bool("r", false, "every version of every file under the directory")
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
		vs, err := cl.Versions(ctl.VersionsRequest{Path: abs, Recursive: *rec})
		if err != nil {
			return Fail(c, stderr, err)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		if *rec {
			fmt.Fprintln(tw, "PATH\tVERSION\tSIZE\tLAST MODIFIED\tLATEST\tDELETE MARKER")
		} else {
			fmt.Fprintln(tw, "VERSION\tSIZE\tLAST MODIFIED\tLATEST\tDELETE MARKER")
		}
		for _, v := range vs {
			if *rec {
				fmt.Fprintf(tw, "%s\t", v.Path)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%v\t%v\n", v.VersionID, v.Size, v.LastModified.UTC().Format(time.RFC3339), v.IsLatest, v.DeleteMarker)
		}
		tw.Flush()
		return 0
	}
	return c
}

func restoreCmd() *Command {
	c := &Command{Name: "restore", Args: "[--version-id V] PATH", Summary: "bring back a deleted file of a versioned bucket (or an older version)",
		Examples: []string{"kfs restore /kfs_private/report.csv", "kfs restore --version-id 3f2a... /kfs_private/report.csv"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		version := fs.String("version-id", "", "copy this version over the current one instead")
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
		var st ctl.ObjectStat
		if err := cl.Call("/v1/restore", ctl.RestoreRequest{Path: abs, VersionID: *version}, &st); err != nil {
			return Fail(c, stderr, err)
		}
		return printJSON(stdout, st)
	}
	return c
}

func catCmd() *Command {
	c := &Command{Name: "cat", Args: "[--version-id V] [--offset N] [--length N] PATH", Summary: "print a file, one version of it, or a byte range (a ranged GET)",
		Examples: []string{"kfs cat --version-id 3f2a... /kfs_private/report.csv > old.csv",
			"kfs cat --version-id 3f2a... --offset 1048576 --length 4096 /kfs_private/big.bin | xxd"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		version := fs.String("version-id", "", "the version to print")
		offset := fs.Int64("offset", 0, "first byte to print")
		length := fs.Int64("length", 0, "bytes to print from --offset (0: to the end)")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if *offset < 0 || *length < 0 {
			fmt.Fprintln(stderr, "kfs cat: --offset and --length must not be negative")
			return 2
		}

		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		cl, abs, err := clientFor(path)
		if err != nil {
			return Fail(c, stderr, err)
		}
		if _, err := cl.Stream("/v1/cat", ctl.CatRequest{Path: abs, VersionID: *version, Offset: *offset, Length: *length}, stdout); err != nil {
			return Fail(c, stderr, err)
		}
		return 0
	}
	return c
}

func rmCmd() *Command {
	c := &Command{Name: "rm", Args: "[--version-id V | -r] PATH...", Summary: "delete files (one version of a file, or every file under a directory in batches)",
		Examples: []string{"kfs rm --version-id 3f2a... /kfs_private/report.csv", "kfs rm -r /kfs_private/old", "kfs rm /kfs_private/a.csv /kfs_private/b.csv"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		version := fs.String("version-id", "", "delete this version only")
		recursive := fs.Bool("r", false, "delete every object under the directory, in batches")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) == 0 || *version != "" && len(pos) > 1 {
			return c.UsageError(stderr)
		}
		removed, failed := 0, false
		for _, path := range pos {
			cl, abs, err := clientFor(path)
			if err == nil {
				var r ctl.RemoveResponse
				r, err = cl.Remove(ctl.RemoveRequest{Path: abs, VersionID: *version, Recursive: *recursive})
				removed += r.Removed
				for _, e := range r.Errors {
					fmt.Fprintf(stderr, "kfs rm: not removed: %s\n", e)
					failed = true
				}
			}
			if err != nil {
				fmt.Fprintf(stderr, "kfs rm: %s: %v\n", path, err)
				failed = true
			}
		}
		fmt.Fprintf(stdout, "removed %d\n", removed)
		if failed {
			return 1
		}
		return 0
	}
	return c
}

func lsCmd() *Command {
	c := &Command{Name: "ls", Args: "[-r] [-l] [--start-after NAME] [--max N] DIR",
		Summary: "list a directory in S3 key order, from a given name on (list_objects with start_after)",
		Examples: []string{"kfs ls --start-after 2019.csv --max 10 /kfs_public/movies_data",
			"kfs ls -r -l /kfs_private/data"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		rec := fs.Bool("r", false, "every file under the directory, not its subdirectories")
		long := fs.Bool("l", false, "size, last modified and ETag before each path")
		after := fs.String("start-after", "", "start after this name (or path) in key order")
		max := fs.Int("max", 0, "at most this many entries (0: all)")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		path, ok := onePath(c, pos, stderr)
		if !ok {
			return 2
		}
		if *max < 0 {
			fmt.Fprintln(stderr, "kfs ls: --max must not be negative")
			return 2
		}
		cl, abs, err := clientFor(path)
		if err != nil {
			return Fail(c, stderr, err)
		}
		ents, err := cl.List(ctl.ListRequest{Path: abs, Recursive: *rec, StartAfter: *after, Max: *max})
		if err != nil {
			return Fail(c, stderr, err)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		for _, e := range ents {
			p := e.Path
			if e.Dir {
				p += "/"
			}
			if *long {
				mod := ""
				if !e.LastModified.IsZero() {
					mod = e.LastModified.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Size, mod, e.ETag, p)
			} else {
				fmt.Fprintln(tw, p)
			}
		}
		tw.Flush()
		return 0
	}
	return c
}
