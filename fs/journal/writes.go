package journal

// Write-back records ("W+ id {json}", "W- id"): files a write-back mount
// closed and has not uploaded yet, and the journal's compaction (their
// bytes can travel in the records).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// compactAfter is how many bytes of write-back records (small files'
// bytes travel in them) the journal takes before it is rewritten with only
// what is still open.
const compactAfter = 64 << 20

// Write is a file closed on a write-back mount and not uploaded yet: its
// bytes are the staging file File, its metadata Meta and ContentType. It
// goes to Key only over the object Expect names ("": where none is), so a
// replay never overwrites what another client wrote since.
type Write struct {
	ID          string            `json:"-"`
	Replaces    string            `json:"replaces,omitempty"` // the record this one supersedes (a later close, an attribute change, a rename)
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	File        string            `json:"file,omitempty"` // "" when Data holds the bytes
	Data        []byte            `json:"data,omitempty"` // a small file's bytes, inline
	Size        int64             `json:"size"`
	Expect      string            `json:"expect,omitempty"`
	ContentType string            `json:"content_type"`
	Meta        map[string]string `json:"meta,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Closed      time.Time         `json:"closed"`
}

// BeginWrite records a write-back file (superseding w.Replaces in the
// same line, so a crash never leaves both). With sync it is on disk
// before it returns (a close); else written (an attribute change or a
// rename: durable at the next sync, like a local disk's metadata).
func (j *Journal) BeginWrite(w Write, sync bool) (string, error) {
	b, _ := json.Marshal(w)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	id := fmt.Sprintf("%d-%x-%d", os.Getpid(), j.run, j.next)
	if _, err := fmt.Fprintf(j.f, "W+ %s %s\n", id, b); err != nil {
		return "", err
	}
	if sync {
		if err := j.f.Sync(); err != nil {
			return "", err
		}
	}
	if j.grown += int64(len(b)); j.grown > compactAfter {
		if err := j.compactLocked(); err != nil {
			return "", err
		}
	}
	return id, nil
}

// compactLocked rewrites the journal with only the records still open:
// into a new file, locked and synced before it takes the journal's name
// (a crash leaves the old journal or the new one, both whole).
func (j *Journal) compactLocked() error {
	if _, err := j.f.Seek(0, 0); err != nil {
		return err
	}
	lines := openLines(readJournal(j.f))
	tmp := j.path + ".compact"
	nf, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmp)
		return fmt.Errorf("compacting the journal: %w", err)
	}
	if err := syscall.Flock(int(nf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if _, err := nf.WriteString(b.String()); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		d.Sync()
		d.Close()
	}
	j.f.Close()
	j.f, j.grown = nf, 0
	return nil
}

// EndWrite records that a write-back file is uploaded, or moot (unlinked
// before its upload).
func (j *Journal) EndWrite(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.f, "W- %s\n", id)
}

// PendingWrites are the write-back files the last Recover found not
// uploaded (still recorded: the caller ends each with EndWrite).
func (j *Journal) PendingWrites() []Write {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Write(nil), j.writes...)
}

// Torn is how many write-back records the last Recover could not read (a
// crash cut the line short): their files were never reported closed.
func (j *Journal) Torn() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.torn + j.adopted
}

// beginWrite reads a W+ record into writes (ending the one it replaces);
// false when it cannot be read (a crash cut it short).
func beginWrite(rest string, writes *openSet[Write]) bool {
	var w Write
	id, ok := decodeRecord(rest, &w)
	if !ok || w.Bucket == "" || w.Key == "" || w.File == "" && int64(len(w.Data)) != w.Size {
		return false
	}
	w.ID = id
	if w.Replaces != "" {
		writes.end(w.Replaces)
	}
	writes.begin(id, w)
	return true
}
