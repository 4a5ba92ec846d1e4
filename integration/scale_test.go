package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Memory bound of a kfs process (README: Performance): cache-size, half
// of it again for prefetches in flight, write-buffer, a fixed allowance
// (the Go runtime, buffers) and a little per file the mount knows (its
// listing entry and inode; the kernel decides how many it keeps).
const (
	rssAllowance = 96 << 20
	rssPerFile   = 2 << 10
)

// scaleMount is the mount of the scale workload: small caches, so the
// bound is tight and measured.
var scaleArgs = []string{"--cache-size", "32MiB", "--write-buffer", "32MiB", "--part-size", "5MiB",
	"--attr-ttl", "10s", "--entry-ttl", "10s", "--negative-ttl", "1s"}

func scaleBound(files int) int64 {
	return 32<<20 + 16<<20 + 32<<20 + rssAllowance + int64(files)*rssPerFile
}

// peakRSS is the high-water mark of a process's resident memory.
func peakRSS(pid int) (int64, error) {
	return procStatus(pid, "VmHWM:")
}

func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// scaleReport collects figures of one run.
type scaleReport struct {
	tb   testing.TB
	rows []string
}

func (r *scaleReport) add(name string, d time.Duration, note string) {
	r.rows = append(r.rows, fmt.Sprintf("%-34s %10s  %s", name, d.Round(time.Millisecond), note))
	r.tb.Logf("%s: %v %s", name, d.Round(time.Millisecond), note)
}

// runScale drives a mount holding big/ (n objects in one directory) and
// files/ (nfiles objects of 1 MiB) with the tools users use: the first
// name of an unsorted ls arrives before the full listing; ls -l and find
// see all n; nopen files held open at once; 64 concurrent readers
// (sha256-checked); 16 concurrent writers (read back); the process's peak
// RSS stays within scaleBound.
func runScale(tb testing.TB, mnt string, pid, n, nfiles, nopen int, sums map[string][32]byte, r *scaleReport) {
	count := func(cmdline string) (int, time.Duration) {
		t0 := time.Now()
		out, err := exec.Command("sh", "-c", cmdline).Output()
		if err != nil {
			tb.Fatalf("%s: %v", cmdline, err)
		}
		k, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return k, time.Since(t0)
	}
	big := filepath.Join(mnt, "big")
	// The first name: unsorted one-per-line ls prints as it reads.
	t0 := time.Now()
	out, err := exec.Command("sh", "-c", "ls -1U "+big+" | head -n 1").Output()
	first := time.Since(t0)
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		tb.Fatalf("ls | head: %q %v", out, err)
	}
	k, full := count("ls -1U " + big + " | wc -l")
	if k != n {
		tb.Fatalf("ls -1U lists %d of %d", k, n)
	}
	r.add("ls -1U | head -1 (fresh)", first, fmt.Sprintf("full listing %v", full.Round(time.Millisecond)))
	if n >= 5000 && first >= full {
		tb.Errorf("the first name (%v) came no sooner than the full listing (%v): the listing does not stream", first, full)
	}
	k, d := count("ls -l " + big + " | tail -n +2 | wc -l")
	if k != n {
		tb.Fatalf("ls -l lists %d of %d", k, n)
	}
	r.add(fmt.Sprintf("ls -l of %d", n), d, "")
	k, d = count("find " + mnt + " -type f | wc -l")
	if k != n+nfiles {
		tb.Fatalf("find sees %d files, want %d", k, n+nfiles)
	}
	r.add(fmt.Sprintf("find (%d files)", n+nfiles), d, "")

	// Files held open at once.
	t0 = time.Now()
	fds := make([]*os.File, 0, nopen)
	defer func() {
		for _, f := range fds {
			f.Close()
		}
	}()
	buf := make([]byte, 1)
	for i := 0; i < nopen; i++ {
		f, err := os.Open(filepath.Join(big, fmt.Sprintf("o%06d", i)))
		if err != nil {
			tb.Fatalf("open %d of %d at once: %v", i+1, nopen, err)
		}
		fds = append(fds, f)
		if _, err := f.Read(buf); err != nil {
			tb.Fatalf("read from open file %d: %v", i, err)
		}
	}
	for _, f := range fds {
		f.Close()
	}
	fds = fds[:0]
	r.add(fmt.Sprintf("%d files open at once", nopen), time.Since(t0), "each read")

	// 64 readers of different files.
	parallel := func(workers int, fn func(i int) error) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			tb.Fatal(err)
		}
		return time.Since(t0)
	}
	d = parallel(64, func(i int) error {
		name := fmt.Sprintf("f%03d", i%nfiles)
		b, err := os.ReadFile(filepath.Join(mnt, "files", name))
		if err != nil {
			return err
		}
		if sha256.Sum256(b) != sums[name] {
			return fmt.Errorf("reader %d: %s has wrong bytes", i, name)
		}
		return nil
	})
	r.add("64 concurrent readers", d, fmt.Sprintf("%d files of 1 MiB", min(64, nfiles)))
	d = parallel(16, func(i int) error {
		data := randBytes(8<<20 + i)
		p := filepath.Join(mnt, "out", fmt.Sprintf("w%02d", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
			return fmt.Errorf("writer %d: read back differs", i)
		}
		return nil
	})
	r.add("16 concurrent writers", d, "8 MiB each, read back")
	rss, err := peakRSS(pid)
	if err != nil {
		tb.Fatal(err)
	}
	bound := scaleBound(n + nfiles + 16)
	r.rows = append(r.rows, fmt.Sprintf("%-34s %7d MiB  bound %d MiB (cache 32 + prefetch 16 + write-buffer 32 + %d + 2 KiB x %d files)",
		"peak RSS", rss>>20, bound>>20, rssAllowance>>20, n+nfiles+16))
	tb.Logf("peak RSS %d MiB (bound %d MiB)", rss>>20, bound>>20)
	if rss > bound {
		tb.Errorf("peak RSS %d MiB over the documented bound %d MiB", rss>>20, bound>>20)
	}
}

// scaleData fills bucket b: big/ with n tiny objects, files/ with nfiles
// of 1 MiB (their sums returned), out/ made as a directory.
func scaleData(tb testing.TB, b string, n, nfiles int) map[string][32]byte {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("big/o%06d", i)
	}
	putMany(tb, b, keys, func(k string) []byte { return []byte(k) })
	sums := map[string][32]byte{}
	var mu sync.Mutex
	files := make([]string, nfiles)
	for i := range files {
		files[i] = fmt.Sprintf("files/f%03d", i)
	}
	putMany(tb, b, files, func(k string) []byte {
		d := randBytes(1 << 20)
		mu.Lock()
		sums[strings.TrimPrefix(k, "files/")] = sha256.Sum256(d)
		mu.Unlock()
		return d
	})
	put(tb, b, "out/", nil)
	return sums
}

// The scale workload at test size (the benchmark runs it at 100,000).
func TestScale(t *testing.T) {
	b := newBucket(t)
	const n, nfiles = 5000, 64
	sums := scaleData(t, b, n, nfiles)
	m := mountBin(t, plainKFS(t), append([]string{b}, scaleArgs...)...)
	runScale(t, m.dir, m.cmd.Process.Pid, n, nfiles, 1000, sums, &scaleReport{tb: t})
}
