package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"kfs/ctl"
	"kfs/xattrs"
)

// cpFlags are kfs cp's flags.
type cpFlags struct {
	serverSide, replace                                *bool
	ifMatch, ifNoneMatch, ifModSince, ifUnmod, version *string
	ct, tags                                           *string
	meta                                               headerFlags
}

func cpCmd() *Command {
	c := &Command{Name: "cp", Args: "[--server-side [conditions]] [--metadata k=v]... [--content-type T] [--tags k=v&...] SRC|- DST",
		Summary: "copy a file between a local path (or stdin: -) and a mount with a progress bar, or inside the store (--server-side)",
		Examples: []string{"kfs cp ~/big.bin /kfs_private/",
			"kfs cp --metadata owner=me --content-type text/csv --tags 'project=kfs' data.csv /kfs_private/data.csv   # one PUT, one version",
			"produce | kfs cp - /kfs_private/out.bin",
			"kfs cp --server-side --if-modified-since 2026-01-01T00:00:00Z --metadata owner=me /kfs_public/a.csv /kfs_private/a.csv"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		f := cpFlags{meta: headerFlags{}}
		f.serverSide = fs.Bool("server-side", false, "copy inside the store (both paths in kfs mounts of one endpoint)")
		f.ifMatch = fs.String("if-match", "", "copy only if the source has this ETag")
		f.ifNoneMatch = fs.String("if-none-match", "", "copy only if the source does not have this ETag")
		f.ifModSince = fs.String("if-modified-since", "", "copy only if the source changed after this time (RFC 3339)")
		f.ifUnmod = fs.String("if-unmodified-since", "", "copy only if the source did not change after this time (RFC 3339)")
		f.version = fs.String("version-id", "", "copy this version of the source (with --server-side)")
		f.replace = fs.Bool("replace-metadata", false, "replace the metadata with --metadata instead of adding to it")
		f.ct = fs.String("content-type", "", "Content-Type of the copy (default: the source's, or the destination extension's)")
		f.tags = fs.String("tags", "", "object tags of the copy, URL-query form k1=v1&k2=v2 (into a mount: with the upload)")
		fs.Var(f.meta, "metadata", "user metadata k=v of the copy (repeatable); into a mount they travel with the upload (one PUT)")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) != 2 {
			return c.UsageError(stderr)
		}
		if !*f.serverSide {
			return c.cpThrough(f, pos[0], pos[1], stderr)
		}
		return c.cpServerSide(f, pos[0], pos[1], stdout, stderr)
	}
	return c
}

// cpThrough copies bytes between a local path (or stdin) and a mount.
func (c *Command) cpThrough(f cpFlags, src, dst string, stderr io.Writer) int {
	if *f.ifMatch != "" || *f.ifNoneMatch != "" || *f.ifModSince != "" || *f.ifUnmod != "" || *f.version != "" || *f.replace {
		fmt.Fprintln(stderr, "kfs cp: conditions, --version-id and --replace-metadata need --server-side")
		return 2
	}
	_, errSrc := ctl.FindMount(src)
	_, errDst := ctl.FindMount(dst)
	if errSrc != nil && errDst != nil && src != "-" {
		fmt.Fprintln(stderr, "kfs cp: one of SRC and DST must be in a kfs mount (see kfs cp --help)")
		return 2
	}
	attrs, err := uploadAttrs(f.meta, *f.ct, *f.tags)
	if err != nil {
		fmt.Fprintf(stderr, "kfs cp: %v\n", err)
		return 2
	}
	if len(attrs) > 0 && errDst != nil {
		fmt.Fprintln(stderr, "kfs cp: --metadata, --content-type and --tags need DST in a kfs mount (or --server-side)")
		return 2
	}
	errw, _ := stderr.(*os.File)
	if errw == nil {
		errw = os.Stderr
	}
	if err := copyFile(src, dst, errw, attrs); err != nil {
		return Fail(c, stderr, err)
	}
	return 0
}

// cpServerSide asks the source's mount to copy inside the store.
func (c *Command) cpServerSide(f cpFlags, srcPath, dstPath string, stdout, stderr io.Writer) int {
	if *f.tags != "" {
		fmt.Fprintln(stderr, "kfs cp: --tags is for copies into a mount; a server-side copy keeps the source's tags")
		return 2
	}
	req := ctl.CopyRequest{IfMatch: *f.ifMatch, IfNoneMatch: *f.ifNoneMatch, SrcVersionID: *f.version, Metadata: f.meta,
		ReplaceMetadata: *f.replace, ContentType: *f.ct}
	for _, t := range []struct {
		flag, val string
		to        **time.Time
	}{{"if-modified-since", *f.ifModSince, &req.IfModifiedSince}, {"if-unmodified-since", *f.ifUnmod, &req.IfUnmodified}} {
		if t.val == "" {
			continue
		}
		when, err := time.Parse(time.RFC3339, t.val)
		if err != nil {
			fmt.Fprintf(stderr, "kfs cp: --%s %q: want RFC 3339, e.g. 2026-01-01T00:00:00Z\n", t.flag, t.val)
			return 2
		}
		*t.to = &when
	}
	cl, src, err := clientFor(srcPath)
	if err != nil {
		return Fail(c, stderr, err)
	}
	dst, err := filepath.Abs(dstPath)
	if err != nil {
		return Fail(c, stderr, err)
	}
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		dst = filepath.Join(dst, filepath.Base(src))
	}
	req.Src, req.Dst = src, dst
	if !sameMount(src, dst) {
		n, _, err := resolveElsewhere(dst, cl, true)
		if err != nil {
			return Fail(c, stderr, err)
		}
		req.DstBucket, req.DstKey = n.Bucket, n.Key
	}
	st, err := cl.Copy(req)
	if err != nil {
		return Fail(c, stderr, err)
	}
	return printJSON(stdout, st)
}

// uploadAttrs are the extended attributes that carry --metadata,
// --content-type and --tags into a mount's upload.
func uploadAttrs(meta headerFlags, ct, tags string) (map[string]string, error) {
	attrs := map[string]string{}
	for k, v := range meta {
		if err := xattrs.CheckMetaName(k); err != nil {
			return nil, err
		}
		attrs["user.s3.meta."+strings.ToLower(k)] = v
	}
	if ct != "" {
		attrs["user.s3.content-type"] = ct
	}
	if tags != "" {
		if _, err := xattrs.ParseTags(tags); err != nil {
			return nil, fmt.Errorf("--tags %q: %v", tags, err)
		}
		attrs["user.s3.tags"] = tags
	}
	return attrs, nil
}

// copyFile copies a regular file (or stdin, "-") to a path, between a
// local path and a mount (either way), showing a progress line (bytes,
// rate, ETA) when stderr is a terminal. attrs are set on the open
// destination before the first byte, so on a mount they travel with the
// upload: metadata, Content-Type and tags in the one PUT (or the
// multipart upload's start), one version. The copy counts as done only
// when the destination's close succeeds: on a mount, that is when the
// object is in the bucket.
func copyFile(src, dst string, stderr *os.File, attrs map[string]string) error {
	in, name, size, perm, err := openSource(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if dstInfo, err := os.Stat(dst); err == nil && dstInfo.IsDir() {
		if name == "" {
			return fmt.Errorf("%s is a directory: name the file to write stdin to", dst)
		}
		dst = filepath.Join(dst, name)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if err := unix.Fsetxattr(int(out.Fd()), k, []byte(attrs[k]), 0); err != nil {
			out.Close()
			return fmt.Errorf("%s: setting %s: %w", dst, k, err)
		}
	}
	st := struct{ size int64 }{size}
	var w io.Writer = out
	var p *progress
	if isTerminal(stderr) {
		p = &progress{total: st.size, start: time.Now(), out: stderr}
		w = io.MultiWriter(out, p)
	}
	_, err = io.CopyBuffer(w, in, make([]byte, 1<<20))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if p != nil {
		p.finish(err == nil)
	}
	return err
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress draws "copied / total  rate  ETA" at most 10 times a second.
type progress struct {
	total, done int64
	start, last time.Time
	out         io.Writer
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if time.Since(p.last) >= 100*time.Millisecond {
		p.last = time.Now()
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	el := time.Since(p.start).Seconds()
	rate := float64(p.done) / max(el, 1e-3)
	if p.total < 0 { // stdin: no size known
		fmt.Fprintf(p.out, "\r%10s %8s/s", human(p.done), human(int64(rate)))
		return
	}
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(p.out, "\r%10s / %-10s %8s/s  ETA %-6s", human(p.done), human(p.total), human(int64(rate)), eta)
}

func (p *progress) finish(ok bool) {
	p.draw()
	if ok {
		total := p.total
		if total < 0 {
			total = p.done
		}
		fmt.Fprintf(p.out, "\r%10s / %-10s done in %s\n", human(p.done), human(total), time.Since(p.start).Round(time.Millisecond))
	} else {
		fmt.Fprintln(p.out)
	}
}

func human(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return fmt.Sprintf("%.1f TiB", f)
}

// openSource opens a regular file, or stdin for "-" (size -1: unknown).
func openSource(src string) (f *os.File, name string, size int64, perm os.FileMode, err error) {
	if src == "-" {
		return os.Stdin, "", -1, 0o644, nil
	}
	f, err = os.Open(src)
	if err != nil {
		return nil, "", 0, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", 0, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, "", 0, 0, fmt.Errorf("%s is not a regular file", src)
	}
	return f, st.Name(), st.Size(), st.Mode().Perm(), nil
}
