package upload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"kfs/fs/store"
)

// Journal is an append-only file naming the multipart uploads a mount has
// in flight ("+ bucket id key" when one starts, "- bucket id key" when it
// completes or is aborted). After a crash, the next mount with the same
// journal aborts the uploads that never ended: no partial upload is left
// behind, and none is ever visible.
type Journal struct {
	mu sync.Mutex // protects f
	f  *os.File   // GUARDED_BY(mu)
}

// Aborter is what Recover needs of the store.
type Aborter interface {
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
}

// ErrJournalBusy says another live mount holds the journal.
var ErrJournalBusy = errors.New("journal in use by another kfs process")

// OpenJournal opens (creating) the journal at path and locks it for this
// process (ErrJournalBusy when another holds it).
func OpenJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrJournalBusy
		}
		return nil, err
	}
	return &Journal{f: f}, nil
}

// Record notes an upload starting or ending.
func (j *Journal) Record(bucket, key, id string, start bool) {
	op := "-"
	if start {
		op = "+"
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.f, "%s %s %s %s\n", op, bucket, id, strings.ReplaceAll(key, "\n", "\\n"))
}

// Recover aborts the uploads a previous run left unfinished, then empties
// the journal. It reports how many it aborted.
func (j *Journal) Recover(ctx context.Context, s Aborter) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Seek(0, 0); err != nil {
		return 0, err
	}
	type up struct{ bucket, key, id string }
	open := map[string]up{}
	var order []string
	sc := bufio.NewScanner(j.f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) != 4 {
			continue
		}
		if f[0] == "+" {
			open[f[2]] = up{f[1], strings.ReplaceAll(f[3], "\\n", "\n"), f[2]}
			order = append(order, f[2])
		} else {
			delete(open, f[2])
		}
	}
	n := 0
	var firstErr error
	for _, id := range order {
		u, ok := open[id]
		if !ok {
			continue
		}
		if err := s.AbortUpload(ctx, u.bucket, u.key, u.id); err != nil && !errors.Is(err, store.ErrNotFound) {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n++
	}
	if firstErr == nil {
		if err := j.f.Truncate(0); err != nil {
			return n, err
		}
	}
	return n, firstErr
}

// Close closes the journal file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
