// Package journal is a mount's crash journal: one append-only file per
// mount under its cache directory, recording the multipart uploads in
// flight, the directory renames under way, the deletions waiting in the
// batch and the attribute changes held back, so the next mount aborts or
// finishes what a crash left. The upload pipeline, the filesystem and the
// mount process each use the part they need through their own interfaces.
package journal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"kfs/fs/store"
)

// Journal is an append-only file naming the multipart uploads a mount has
// in flight ("+ bucket id key" when one starts, "- bucket id key" when it
// completes or is aborted), the directory renames under way
// ("R+ id {json}" before the first copy, "R- id" once the sources are
// gone) and the deletions unlink handed to the batch ("D+ id {json}",
// "D- id" once the batch is done) and the attribute changes held back
// for a moment to travel in one copy ("A+ id {json}", "A- id" once
// stored or moot) and the files a write-back mount closed and has not
// uploaded yet ("W+ id {json}", "W- id" once uploaded or unlinked). After a crash, the next mount with the same journal
// aborts the uploads that never ended (no partial upload is left behind,
// and none is ever visible) and is handed the renames, deletions and
// attribute changes to finish.
type Journal struct {
	path    string     // where it lives
	mu      sync.Mutex // protects f, next, deletes
	f       *os.File   // GUARDED_BY(mu)
	next    int        // GUARDED_BY(mu): the next rename or deletion id
	deletes []Delete   // GUARDED_BY(mu): deletions the last Recover found unfinished
	attrs   []Attrs    // GUARDED_BY(mu): attribute changes the last Recover found unfinished
	writes  []Write    // GUARDED_BY(mu): write-back uploads the last Recover found unfinished
	torn    int        // GUARDED_BY(mu): write-back records the last Recover could not read
	adopted int        // GUARDED_BY(mu): such records in the journals Adopt took over
	run     int64      // when this process opened it: ids of earlier runs (even of a reused pid) differ
	grown   int64      // GUARDED_BY(mu): bytes of write-back records since the file was last compacted
}

// Delete is an unlinked object whose deletion was not yet sent.
type Delete struct {
	ID     string    `json:"-"`
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	At     time.Time `json:"at"` // the unlink: an object modified later is not this one
}

// BeginDelete records a deletion handed to the batch. It is written, not
// synced: it survives the process being killed (the case the batch's
// 50 ms window is exposed to), like an unlink on a local disk, which a
// machine crash before a sync may undo too.
func (j *Journal) BeginDelete(bucket, key string) string {
	b, _ := json.Marshal(Delete{Bucket: bucket, Key: key, At: time.Now().UTC()})
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	id := fmt.Sprintf("%d-%x-%d", os.Getpid(), j.run, j.next)
	fmt.Fprintf(j.f, "D+ %s %s\n", id, b)
	return id
}

// EndDelete records that deletions are over (sent, or given up: their
// names reappeared).
func (j *Journal) EndDelete(ids ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var b strings.Builder
	for _, id := range ids {
		b.WriteString("D- " + id + "\n")
	}
	j.f.WriteString(b.String())
}

// Deletes are the deletions the last Recover found unfinished (still
// recorded: the caller ends each with EndDelete).
func (j *Journal) Deletes() []Delete {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Delete(nil), j.deletes...)
}

// Attrs is metadata to store on an object (the version ETag names) by a
// copy onto itself, held back so that the next changes, or a rename, travel
// in the same copy.
type Attrs struct {
	ID          string            `json:"-"`
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	ETag        string            `json:"etag"`
	ContentType string            `json:"content_type"`
	Meta        map[string]string `json:"meta"`
}

// BeginAttrs records metadata held back. Written, not synced, like a
// deletion (see BeginDelete).
func (j *Journal) BeginAttrs(a Attrs) string {
	b, _ := json.Marshal(a)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	id := fmt.Sprintf("%d-%x-%d", os.Getpid(), j.run, j.next)
	fmt.Fprintf(j.f, "A+ %s %s\n", id, b)
	return id
}

// EndAttrs records that held-back metadata is stored, or moot.
func (j *Journal) EndAttrs(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.f, "A- %s\n", id)
}

// PendingAttrs are the attribute changes the last Recover found unfinished
// (still recorded: the caller ends each with EndAttrs).
func (j *Journal) PendingAttrs() []Attrs {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Attrs(nil), j.attrs...)
}

// Rename is a directory rename recorded in the journal.
type Rename struct {
	ID     string `json:"-"`
	Bucket string `json:"bucket"`
	From   string `json:"from"` // "a/" (a prefix)
	To     string `json:"to"`
}

// BeginRename records a rename about to start, on disk before it returns
// (the copies follow), and returns its id for EndRename.
func (j *Journal) BeginRename(bucket, from, to string) string {
	b, _ := json.Marshal(Rename{Bucket: bucket, From: from, To: to})
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	id := fmt.Sprintf("%d-%x-%d", os.Getpid(), j.run, j.next)
	fmt.Fprintf(j.f, "R+ %s %s\n", id, b)
	j.f.Sync()
	return id
}

// EndRename records that a rename is over (done, or undone).
func (j *Journal) EndRename(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.f, "R- %s\n", id)
}

// ErrBusy says another live mount holds the journal.
var ErrBusy = errors.New("journal in use by another kfs process")

// Open opens (creating) the journal at path and locks it for this
// process (ErrBusy when another holds it).
//
// The lock is taken on the file the path names when it is taken: another
// mount that adopts and removes an idle journal between our open and our
// lock leaves us a file no one would find after a crash, so the open is
// made again.
func Open(path string) (*Journal, error) {
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrBusy
			}
			return nil, err
		}
		var held, named syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &held) == nil && syscall.Stat(path, &named) == nil && held.Ino == named.Ino && held.Dev == named.Dev {
			return &Journal{path: path, f: f, run: time.Now().UnixNano()}, nil
		}
		f.Close()
		if attempt == 10 {
			return nil, fmt.Errorf("journal %s keeps being replaced", path)
		}
	}
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Adopt takes over what another journal (locked, recovered: its uploads
// aborted) still holds open, renames and deletions for this mount to
// finish, and removes the other's file: a crashed mount's journal is
// replayed by the next mount of its bucket whatever slot it had.
func (j *Journal) Adopt(other *Journal) error {
	other.mu.Lock()
	defer other.mu.Unlock()
	if _, err := other.f.Seek(0, 0); err != nil {
		return err
	}
	o := readJournal(other.f)
	lines := openLines(o)
	j.mu.Lock()
	j.adopted += o.torn
	for _, l := range lines {
		fmt.Fprintln(j.f, l)
	}
	err := j.f.Sync()
	j.mu.Unlock()
	if err != nil {
		return err // the other stays, for the next mount
	}
	os.Remove(other.path) // while locked: no one else is adopting it
	return other.f.Close()
}

// Finish closes the journal at a clean unmount and removes its file when
// nothing in it is open any more (idle reports that); a journal with
// work left stays for the next mount.
func (j *Journal) Finish() (idle bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Seek(0, 0); err == nil {
		o := readJournal(j.f)
		idle = len(o.ups)+len(o.renames)+len(o.deletes)+len(o.attrs)+len(o.writes) == 0
	}
	if idle {
		os.Remove(j.path) // while locked
	}
	return idle, j.f.Close()
}

// Record notes an upload starting or ending.
func (j *Journal) Record(u store.UploadRef, start bool) {
	op := "-"
	if start {
		op = "+"
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.f, "%s %s %s %s\n", op, u.Bucket, u.ID, strings.ReplaceAll(u.Key, "\n", "\\n"))
}

// Recover aborts the uploads a previous run left unfinished and returns
// the renames it left unfinished (still recorded: the caller ends each
// with EndRename once it is finished). The journal then holds only those.
func (j *Journal) Recover(ctx context.Context, s store.Multipart) (int, []Rename, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Seek(0, 0); err != nil {
		return 0, nil, err
	}
	o := readJournal(j.f)
	j.deletes, j.attrs, j.writes, j.torn = o.deletes, o.attrs, o.writes, o.torn
	n := 0
	var firstErr error
	var kept []openUpload
	for _, u := range o.ups {
		if err := s.AbortUpload(ctx, store.UploadRef{Bucket: u.bucket, Key: u.key, ID: u.id}); err != nil && !errors.Is(err, store.ErrNotFound) {
			if firstErr == nil {
				firstErr = err
			}
			kept = append(kept, u)
			continue
		}
		n++
	}
	o.ups = kept
	left := openLines(o)
	if err := j.f.Truncate(0); err != nil {
		return n, o.renames, err
	}
	for _, l := range left {
		fmt.Fprintln(j.f, l)
	}
	j.f.Sync()
	return n, o.renames, firstErr
}

type openUpload struct{ bucket, key, id string }

// openRecords is what a journal leaves open, by kind, in the order it began.
type openRecords struct {
	ups     []openUpload
	renames []Rename
	deletes []Delete
	attrs   []Attrs
	writes  []Write
	torn    int // lines a crash cut short (or otherwise unreadable)
}

// openLines are the journal lines that begin the records given (what a
// journal still holds open).
func openLines(o openRecords) []string {
	var lines []string
	for _, u := range o.ups {
		lines = append(lines, fmt.Sprintf("+ %s %s %s", u.bucket, u.id, strings.ReplaceAll(u.key, "\n", "\\n")))
	}
	for _, r := range o.renames {
		b, _ := json.Marshal(r)
		lines = append(lines, fmt.Sprintf("R+ %s %s", r.ID, b))
	}
	for _, d := range o.deletes {
		b, _ := json.Marshal(d)
		lines = append(lines, fmt.Sprintf("D+ %s %s", d.ID, b))
	}
	for _, a := range o.attrs {
		b, _ := json.Marshal(a)
		lines = append(lines, fmt.Sprintf("A+ %s %s", a.ID, b))
	}
	for _, w := range o.writes {
		w.Replaces = ""
		b, _ := json.Marshal(w)
		lines = append(lines, fmt.Sprintf("W+ %s %s", w.ID, b))
	}
	return lines
}

// openSet is what a journal leaves open of one kind: records by id, in
// the order they began.
type openSet[T any] struct {
	byID  map[string]T
	order []string
}

func (o *openSet[T]) begin(id string, v T) {
	if o.byID == nil {
		o.byID = map[string]T{}
	}
	o.byID[id] = v
	o.order = append(o.order, id)
}

func (o *openSet[T]) end(id string) { delete(o.byID, id) }

func (o *openSet[T]) list() []T {
	var out []T
	for _, id := range o.order {
		if v, ok := o.byID[id]; ok {
			out = append(out, v)
			delete(o.byID, id) // an id begun twice is listed once
		}
	}
	return out
}

// decodeRecord reads "id {json}" into v and returns the id.
func decodeRecord(rest string, v any) (string, bool) {
	id, body, _ := strings.Cut(rest, " ")
	return id, json.Unmarshal([]byte(body), v) == nil
}

// readJournal lists the uploads, renames, deletions and attribute changes
// a journal leaves open, in the order they started.
func readJournal(f *os.File) openRecords {
	var (
		ups     openSet[openUpload]
		renames openSet[Rename]
		deletes openSet[Delete]
		attrs   openSet[Attrs]
		writes  openSet[Write]
		torn    int
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		op, rest, _ := strings.Cut(line, " ")
		switch op {
		case "R+":
			var r Rename
			if id, ok := decodeRecord(rest, &r); ok && r.Bucket != "" && strings.HasSuffix(r.From, "/") && strings.HasSuffix(r.To, "/") {
				r.ID = id
				renames.begin(id, r)
			}
		case "R-":
			renames.end(rest)
		case "D+":
			var d Delete
			if id, ok := decodeRecord(rest, &d); ok && d.Bucket != "" && d.Key != "" && !d.At.IsZero() {
				d.ID = id
				deletes.begin(id, d)
			}
		case "D-":
			deletes.end(rest)
		case "A+":
			var a Attrs
			if id, ok := decodeRecord(rest, &a); ok && a.Bucket != "" && a.Key != "" && a.ETag != "" {
				a.ID = id
				attrs.begin(id, a)
			}
		case "A-":
			attrs.end(rest)
		case "W+":
			if !beginWrite(rest, &writes) {
				torn++
			}
		case "W-":
			writes.end(rest)
		case "+", "-":
			f := strings.SplitN(rest, " ", 3) // bucket id key
			if len(f) != 3 {
				continue
			}
			if op == "+" {
				ups.begin(f[1], openUpload{f[0], strings.ReplaceAll(f[2], "\\n", "\n"), f[1]})
			} else {
				ups.end(f[1])
			}
		}
	}
	return openRecords{ups.list(), renames.list(), deletes.list(), attrs.list(), writes.list(), torn}
}

// Close closes the journal file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
