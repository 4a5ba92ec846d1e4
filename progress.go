package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"kfs/mountopts"
)

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
		dst = dst + "/" + st.Name()
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
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return mountopts.FormatSize(n)
}

var errUsageCp = errors.New("usage: kfs cp SRC DST (one of them in a kfs mount), or kfs cp --server-side ...")
