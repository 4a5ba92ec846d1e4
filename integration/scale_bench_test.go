package integration

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// envInt reads a size from the environment (benchmarks scale with it).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// writeReport prints rows and, with KFS_BENCH_OUT set, writes them there.
func writeReport(b *testing.B, title string, rows []string) {
	text := title + "\n" + strings.Join(rows, "\n") + "\n"
	fmt.Print(text)
	if out := os.Getenv("KFS_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkScale runs the scale workload at KFS_SCALE_N objects in one
// directory (default 100,000): time to the first name, ls -l, find, 1,000
// open files, 64 readers, 16 writers, peak RSS against the bound.
//
//	go test -run XXX -bench Scale -benchtime 1x ./integration/
func BenchmarkScale(b *testing.B) {
	n := envInt("KFS_SCALE_N", 100000)
	{
		t := b
		bkt := newBucket(t)
		t0 := time.Now()
		sums := scaleData(t, bkt, n, 64)
		r := &scaleReport{tb: t}
		r.rows = append(r.rows, fmt.Sprintf("%-34s %10s", fmt.Sprintf("making %d objects (SDK)", n), time.Since(t0).Round(time.Second)))
		m := mountBin(t, plainKFS(t), append([]string{bkt}, scaleArgs...)...)
		runScale(t, m.dir, m.cmd.Process.Pid, n, 64, 1000, sums, r)
		writeReport(b, fmt.Sprintf("scale: %d objects in one directory", n), r.rows)
	}
}

// sample is one look at the kfs process.
type sample struct {
	at         time.Duration
	rss        int64
	goroutines int
	fds        int
}

func look(pid int, metrics string, start time.Time) (sample, error) {
	s := sample{at: time.Since(start)}
	var err error
	if s.rss, err = procStatus(pid, "VmRSS:"); err != nil {
		return s, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			s.goroutines, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return s, nil
}

// BenchmarkSoak runs a mixed workload for KFS_SOAK (default 10m): 8
// workers writing (4–256 KiB, read back), renaming, tagging, listing and
// deleting their own files, sampling the process's RSS, goroutines and
// open fds every 10 s. At the end they must be flat: the last sample
// within 10 goroutines, 10 fds and 32 MiB of the one after the first
// minute (or the first, on short runs). The bytes written are bounded
// (about 3 MiB/s), so MinIO's trash stays small.
func BenchmarkSoak(b *testing.B) {
	d, err := time.ParseDuration(os.Getenv("KFS_SOAK"))
	if err != nil || d <= 0 {
		d = 10 * time.Minute
	}
	{
		t := b
		bkt := newBucket(t)
		maddr, _ := FreeAddr()
		m := mountBin(t, plainKFS(t), append([]string{bkt, "--metrics-addr", maddr}, scaleArgs...)...)
		pid := m.cmd.Process.Pid
		start := time.Now()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ops, failures int
		var firstErr error
		for w := 0; w < 8; w++ {
			dir := m.path(fmt.Sprintf("w%d", w))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(time.Duration(150+rng.IntN(100)) * time.Millisecond):
					}
					err := soakStep(dir, i, rng)
					mu.Lock()
					ops++
					if err != nil {
						failures++
						if firstErr == nil {
							firstErr = err
						}
					}
					mu.Unlock()
				}
			}()
		}
		var samples []sample
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		end := time.After(d)
	loop:
		for {
			select {
			case <-tick.C:
				s, err := look(pid, maddr, start)
				if err != nil {
					t.Error(err)
					break loop
				}
				samples = append(samples, s)
			case <-end:
				break loop
			}
		}
		close(stop)
		wg.Wait()
		rows := []string{fmt.Sprintf("%8s %9s %11s %5s", "t", "RSS MiB", "goroutines", "fds")}
		for _, s := range samples {
			rows = append(rows, fmt.Sprintf("%8s %9d %11d %5d", s.at.Round(time.Second), s.rss>>20, s.goroutines, s.fds))
		}
		rows = append(rows, fmt.Sprintf("%d operations, %d failed (first: %v)", ops, failures, firstErr))
		writeReport(b, fmt.Sprintf("soak: %v, 8 workers", d), rows)
		if failures > 0 {
			t.Errorf("%d of %d operations failed, first: %v", failures, ops, firstErr)
		}
		if len(samples) >= 2 {
			base := samples[0]
			for _, s := range samples {
				if s.at >= time.Minute {
					base = s
					break
				}
			}
			last := samples[len(samples)-1]
			if last.goroutines > base.goroutines+10 || last.fds > base.fds+10 || last.rss > base.rss+32<<20 {
				t.Errorf("not flat: at %v %+v, at the end %+v", base.at, base, last)
			}
		}
	}
}

// soakStep is one operation of a soak worker on its own directory: write
// and read back, rename, tag, list, delete (keeping at most 20 files).
func soakStep(dir string, i int, rng *rand.Rand) error {
	name := filepath.Join(dir, fmt.Sprintf("f%02d", i%20))
	switch i % 5 {
	case 0, 1:
		data := make([]byte, 4<<10+rng.IntN(252<<10))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return err
		}
		got, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return fmt.Errorf("%s: read back differs", name)
		}
	case 2:
		if _, err := os.Stat(name); err == nil {
			if err := os.Rename(name, name+".r"); err != nil {
				return err
			}
			if err := os.Rename(name+".r", name); err != nil {
				return err
			}
		}
	case 3:
		if _, err := os.Stat(name); err == nil {
			if err := unix.Setxattr(name, "user.s3.tag.soak", []byte(strconv.Itoa(i)), 0); err != nil {
				return fmt.Errorf("setxattr %s: %w", name, err)
			}
		}
		if _, err := os.ReadDir(dir); err != nil {
			return err
		}
	case 4:
		if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
