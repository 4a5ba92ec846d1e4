package journal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"kfs/fs/store"
	"kfs/fs/store/memstore"
)

var ctx = context.Background()

func TestJournalRecoverAbortsLeftovers(t *testing.T) {
	m := memstore.New()
	m.MakeBucketNow("b")
	path := filepath.Join(t.TempDir(), "j")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := m.NewUpload(ctx, store.ObjectRef{Bucket: "b", Key: "a\nb"}, store.PutOptions{})
	id2, _ := m.NewUpload(ctx, store.ObjectRef{Bucket: "b", Key: "done"}, store.PutOptions{})
	j.Record(id1, true)
	j.Record(id2, true)
	j.Record(id2, false)
	j.Record(store.UploadRef{Bucket: "b", Key: "gone", ID: "no-such-upload"}, true)
	done := j.BeginRename("b", "x/", "y/")
	j.EndRename(done)
	j.BeginRename("b", "old dir/", "new\ndir/")
	j.Close()
	j, _ = Open(path)
	n, renames, err := j.Recover(ctx, m)
	if err != nil || n != 2 || m.Uploads() != 1 {
		t.Fatalf("recovered %d (%v), %d uploads left", n, err, m.Uploads())
	}
	want := Rename{Bucket: "b", From: "old dir/", To: "new\ndir/"}
	if len(renames) != 1 || renames[0].Bucket != want.Bucket || renames[0].From != want.From || renames[0].To != want.To {
		t.Fatalf("renames left: %+v", renames)
	}
	j.Close()
	j, _ = Open(path) // a crash before the rename was finished: still there
	n, again, _ := j.Recover(ctx, m)
	if n != 0 || len(again) != 1 || again[0].ID != renames[0].ID {
		t.Fatalf("after a second recovery: %d aborted, renames %+v", n, again)
	}
	j.EndRename(again[0].ID)
	j.Close()
	j, _ = Open(path)
	defer j.Close()
	if _, left, _ := j.Recover(ctx, m); len(left) != 0 {
		t.Fatalf("an ended rename is still recorded: %+v", left)
	}
}

// Deletions handed to the batch and not ended are handed to the next run,
// kept across recoveries until ended; ids of two runs never collide.
func TestJournalKeepsUnsentDeletions(t *testing.T) {
	m := memstore.New()
	path := filepath.Join(t.TempDir(), "j")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sent := j.BeginDelete("b", "sent")
	left := j.BeginDelete("b", "dir/with space\nand newline")
	j.EndDelete(sent)
	j.Close()
	j, _ = Open(path)
	if _, _, err := j.Recover(ctx, m); err != nil {
		t.Fatal(err)
	}
	ds := j.Deletes()
	if len(ds) != 1 || ds[0].ID != left || ds[0].Key != "dir/with space\nand newline" || ds[0].At.IsZero() {
		t.Fatalf("deletions left: %+v", ds)
	}
	if id := j.BeginDelete("b", "new"); id == left {
		t.Fatalf("a new run reused id %s", id)
	}
	j.Close()
	j, _ = Open(path)
	j.Recover(ctx, m)
	if ds := j.Deletes(); len(ds) != 2 {
		t.Fatalf("after a second recovery: %+v", ds)
	}
	for _, d := range j.Deletes() {
		j.EndDelete(d.ID)
	}
	j.Close()
	j, _ = Open(path)
	defer j.Close()
	j.Recover(ctx, m)
	if ds := j.Deletes(); len(ds) != 0 {
		t.Fatalf("ended deletions still recorded: %+v", ds)
	}
}

// Write-back records: a later record supersedes the one it replaces in
// the same line; an ended one is gone; a torn last line is counted, not
// read; adoption carries the open ones (and the torn count) over.
func TestJournalWriteRecords(t *testing.T) {
	m := memstore.New()
	dir := t.TempDir()
	path := filepath.Join(dir, "uploads.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := j.BeginWrite(Write{Bucket: "b", Key: "tmp/.a", Data: []byte("aa"), Size: 2}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.BeginWrite(Write{Replaces: a, Bucket: "b", Key: "a", Data: []byte("aa"), Size: 2, Meta: map[string]string{"mode": "33184"}}, false); err != nil {
		t.Fatal(err)
	}
	gone, _ := j.BeginWrite(Write{Bucket: "b", Key: "gone", File: "/x/wb-1-2", Size: 9}, true)
	j.EndWrite(gone)
	j.BeginWrite(Write{Bucket: "b", Key: "big", File: "/x/wb-1-3", Size: 1 << 20, Expect: "e1"}, true)
	j.f.WriteString(`W+ 9-9-9 {"bucket":"b","key":"torn","fi`)
	j.Close()

	j, _ = Open(path)
	if _, _, err := j.Recover(ctx, m); err != nil {
		t.Fatal(err)
	}
	ws := j.PendingWrites()
	if len(ws) != 2 || ws[0].Key != "a" || string(ws[0].Data) != "aa" || ws[0].Meta["mode"] != "33184" || ws[1].Key != "big" || ws[1].Expect != "e1" {
		t.Fatalf("pending writes: %+v", ws)
	}
	if j.Torn() != 1 {
		t.Errorf("torn records: %d", j.Torn())
	}
	if idle, _ := j.Finish(); idle {
		t.Fatal("a journal with writes pending was removed at unmount")
	}

	other, _ := Open(path)
	next, _ := Open(filepath.Join(dir, "uploads-1.journal"))
	if _, _, err := other.Recover(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := next.Adopt(other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := next.Recover(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ws := next.PendingWrites(); len(ws) != 2 || ws[0].Replaces != "" {
		t.Fatalf("adopted writes: %+v", ws)
	}
	for _, w := range next.PendingWrites() {
		next.EndWrite(w.ID)
	}
	if idle, _ := next.Finish(); !idle {
		t.Error("a journal with every write ended was kept")
	}
}

// Past compactAfter bytes of records, the journal is rewritten with only
// what is open: it stays small, keeps its lock, and loses nothing.
func TestJournalCompacts(t *testing.T) {
	m := memstore.New()
	path := filepath.Join(t.TempDir(), "uploads.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := j.BeginWrite(Write{Bucket: "b", Key: "keep", Data: []byte("k"), Size: 1}, true)
	data := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		id, err := j.BeginWrite(Write{Bucket: "b", Key: "x", Data: data, Size: int64(len(data))}, false)
		if err != nil {
			t.Fatal(err)
		}
		j.EndWrite(id)
	}
	if st, err := os.Stat(path); err != nil || st.Size() > compactAfter {
		t.Fatalf("journal after 100 MiB of records: %v %v", st.Size(), err)
	}
	if _, err := Open(path); !errors.Is(err, ErrBusy) {
		t.Fatalf("the compacted journal is not locked: %v", err)
	}
	j.Close()
	j, _ = Open(path)
	if _, _, err := j.Recover(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ws := j.PendingWrites(); len(ws) != 1 || ws[0].ID != keep {
		t.Fatalf("after compaction: %+v", ws)
	}
}
