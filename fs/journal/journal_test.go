package journal

import (
	"context"
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
