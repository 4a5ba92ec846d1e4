package cli

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"kfs/ctl"
)

func warmCmd() *Command {
	c := &Command{Name: "warm", Args: "[-j N] PATH...", Summary: "fetch files (directories: every file under them) into the mount's disk cache, so they read at local speed",
		Examples: []string{"kfs warm /kfs_public/movies_data", "kfs warm -j 8 /kfs_private/train/*.parquet"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		jobs := fs.Int("j", 4, "files fetched at once")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) == 0 || *jobs < 1 || *jobs > 64 {
			return c.UsageError(stderr)
		}
		var files []warmFile
		var total int64
		failed := false
		for _, p := range pos {
			fl, err := warmList(p)
			if err != nil {
				fmt.Fprintf(stderr, "kfs warm: %v\n", err)
				failed = true
			}
			for _, f := range fl {
				total += f.size
			}
			files = append(files, fl...)
		}
		w := &warmer{total: total, files: len(files), start: time.Now(), stderr: stderr}
		if f, ok := stderr.(*os.File); ok && isTerminal(f) {
			w.bar = true
		}
		work := make(chan warmFile)
		var wg sync.WaitGroup
		for i := 0; i < *jobs; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range work {
					w.one(f)
				}
			}()
		}
		for _, f := range files {
			work <- f
		}
		close(work)
		wg.Wait()
		w.finish(stdout)
		if failed || w.failed > 0 {
			return 1
		}
		return 0
	}
	return c
}

type warmFile struct {
	path string
	size int64
}

// warmList is path itself (a file) or every regular file under it.
func warmList(path string) ([]warmFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	var out []warmFile
	err = filepath.WalkDir(abs, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, warmFile{p, info.Size()})
		return nil
	})
	return out, err
}

// warmer runs the fetches and draws the progress line.
type warmer struct {
	total  int64
	files  int
	start  time.Time
	stderr io.Writer
	bar    bool

	mu                 sync.Mutex // protects the fields below
	done, fetched      int64
	count, failed, hit int
	last               time.Time
}

func (w *warmer) one(f warmFile) {
	var r ctl.WarmResponse
	cl, abs, err := clientFor(f.path)
	if err == nil {
		r, err = cl.Warm(abs)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count++
	w.done += f.size
	switch {
	case err != nil:
		w.failed++
		if w.bar {
			fmt.Fprint(w.stderr, "\r\033[K")
		}
		fmt.Fprintf(w.stderr, "kfs warm: %s: %v\n", f.path, err)
	case r.Fetched:
		w.fetched += r.Size
	default:
		w.hit++
	}
	if w.bar && time.Since(w.last) >= 100*time.Millisecond {
		w.last = time.Now()
		w.draw()
	}
}

func (w *warmer) draw() {
	rate := float64(w.fetched) / max(time.Since(w.start).Seconds(), 1e-3)
	fmt.Fprintf(w.stderr, "\r%d/%d files  %10s / %-10s %8s/s", w.count, w.files, human(w.done), human(w.total), human(int64(rate)))
}

func (w *warmer) finish(stdout io.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bar {
		w.draw()
		fmt.Fprintln(w.stderr)
	}
	fmt.Fprintf(stdout, "warmed %d files (%s fetched, %d already cached, %d failed) in %s\n", w.count-w.failed,
		human(w.fetched), w.hit, w.failed, time.Since(w.start).Round(time.Millisecond))
}
