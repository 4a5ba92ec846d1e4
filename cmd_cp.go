package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"kfs/ctl"
)

func cpCmd() *command {
	c := &command{name: "cp", args: "[--server-side [conditions]] SRC DST",
		summary: "copy a file between a local path and a mount with a progress bar, or inside the store (--server-side)",
		examples: []string{"kfs cp ~/big.bin /kfs_private/",
			"kfs cp --server-side --if-modified-since 2026-01-01T00:00:00Z --metadata owner=me /kfs_public/a.csv /kfs_private/a.csv"}}
	c.run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.flags(stdout)
		serverSide := fs.Bool("server-side", false, "copy inside the store (both paths in kfs mounts of one endpoint)")
		ifMatch := fs.String("if-match", "", "copy only if the source has this ETag")
		ifNoneMatch := fs.String("if-none-match", "", "copy only if the source does not have this ETag")
		ifModSince := fs.String("if-modified-since", "", "copy only if the source changed after this time (RFC 3339)")
		ifUnmod := fs.String("if-unmodified-since", "", "copy only if the source did not change after this time (RFC 3339)")
		versionID := fs.String("version-id", "", "copy this version of the source (with --server-side)")
		replace := fs.Bool("replace-metadata", false, "replace the metadata with --metadata instead of adding to it")
		ct := fs.String("content-type", "", "Content-Type of the copy (needs --server-side; default: the source's, or the destination extension's)")
		meta := headerFlags{}
		fs.Var(meta, "metadata", "metadata k=v for the copy (repeatable; needs --server-side)")
		pos, code, ok := c.parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) != 2 {
			return c.usageError(stderr)
		}
		if !*serverSide {
			if *ifMatch != "" || *ifNoneMatch != "" || *ifModSince != "" || *ifUnmod != "" || *versionID != "" || len(meta) > 0 || *replace || *ct != "" {
				fmt.Fprintln(stderr, "kfs cp: conditions, --version-id, metadata and content type need --server-side")
				return 2
			}
			_, errSrc := ctl.FindMount(pos[0])
			_, errDst := ctl.FindMount(pos[1])
			if errSrc != nil && errDst != nil {
				fmt.Fprintln(stderr, "kfs cp: one of SRC and DST must be in a kfs mount (see kfs cp --help)")
				return 2
			}
			errw, _ := stderr.(*os.File)
			if errw == nil {
				errw = os.Stderr
			}
			if err := copyFile(pos[0], pos[1], errw); err != nil {
				return fail(c, stderr, err)
			}
			return 0
		}
		req := ctl.CopyRequest{IfMatch: *ifMatch, IfNoneMatch: *ifNoneMatch, SrcVersionID: *versionID, Metadata: meta,
			ReplaceMetadata: *replace, ContentType: *ct}
		for _, f := range []struct {
			flag, val string
			to        **time.Time
		}{{"if-modified-since", *ifModSince, &req.IfModifiedSince}, {"if-unmodified-since", *ifUnmod, &req.IfUnmodified}} {
			if f.val == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, f.val)
			if err != nil {
				fmt.Fprintf(stderr, "kfs cp: --%s %q: want RFC 3339, e.g. 2026-01-01T00:00:00Z\n", f.flag, f.val)
				return 2
			}
			*f.to = &t
		}
		cl, src, err := clientFor(pos[0])
		if err != nil {
			return fail(c, stderr, err)
		}
		dst, err := filepath.Abs(pos[1])
		if err != nil {
			return fail(c, stderr, err)
		}
		if st, err := os.Stat(dst); err == nil && st.IsDir() {
			dst = filepath.Join(dst, filepath.Base(src))
		}
		req.Src, req.Dst = src, dst
		if !sameMount(src, dst) {
			n, _, err := resolveElsewhere(dst, cl)
			if err != nil {
				return fail(c, stderr, err)
			}
			req.DstBucket, req.DstKey = n.Bucket, n.Key
		}
		st, err := cl.Copy(req)
		if err != nil {
			return fail(c, stderr, err)
		}
		return printJSON(stdout, st)
	}
	return c
}

// copyFile copies a regular file between a local path and a mount (either
// way), showing a progress line (bytes, rate, ETA) when stderr is a
// terminal. The copy counts as done only when the destination's close
// succeeds: on a mount, that is when the object is in the bucket.
func copyFile(src, dst string, stderr *os.File) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	if dstInfo, err := os.Stat(dst); err == nil && dstInfo.IsDir() {
		dst = filepath.Join(dst, st.Name())
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	var w io.Writer = out
	var p *progress
	if isTerminal(stderr) {
		p = &progress{total: st.Size(), start: time.Now(), out: stderr}
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
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(p.out, "\r%10s / %-10s %8s/s  ETA %-6s", human(p.done), human(p.total), human(int64(rate)), eta)
}

func (p *progress) finish(ok bool) {
	p.draw()
	if ok {
		fmt.Fprintf(p.out, "\r%10s / %-10s done in %s\n", human(p.done), human(p.total), time.Since(p.start).Round(time.Millisecond))
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
