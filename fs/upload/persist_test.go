package upload

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kfs/fs/store"
)

// Persist: a small streamed content comes back inline; a larger one, or
// with no inline room, is in a named staging file holding exactly it
// (removed at Close); what cannot be held whole here is refused.
func TestPersist(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.Named = true })
	small := open(t, p, "small", store.ObjectInfo{}, false)
	small.WriteAt(ctx, []byte("inline bytes"), 0)
	got, ok, err := small.Persist(1 << 10)
	if err != nil || !ok || got.Path != "" || string(got.Data) != "inline bytes" || got.Size != 12 {
		t.Fatalf("inline: %+v %v %v", got, ok, err)
	}

	data := pattern(300<<10, 2)
	f := open(t, p, "staged", store.ObjectInfo{}, false)
	f.WriteAt(ctx, data, 0)
	f.Truncate(ctx, int64(len(data))+5000) // a sparse tail is content too
	got, ok, err = f.Persist(1 << 10)
	if err != nil || !ok || got.Path == "" || got.Data != nil {
		t.Fatalf("staged: %+v %v %v", got, ok, err)
	}
	if !strings.HasPrefix(filepath.Base(got.Path), NamedPrefix(os.Getpid())) {
		t.Errorf("staging file name %s", got.Path)
	}
	disk, err := os.ReadFile(got.Path)
	want := append(append([]byte(nil), data...), make([]byte, 5000)...)
	if err != nil || !bytes.Equal(disk, want) {
		t.Fatalf("staging file: %d bytes, %v", len(disk), err)
	}
	info := commit(t, f)
	mustData(t, m, "staged", want)
	if info.Size != int64(len(want)) {
		t.Errorf("size %d", info.Size)
	}
	f.Close()
	if _, err := os.Stat(got.Path); !os.IsNotExist(err) {
		t.Errorf("the staging file outlived Close: %v", err)
	}

	// An edit over bytes of a stored object not fetched: not whole here.
	base := m.PutBytes("b", "edit", pattern(3<<20, 3))
	e := open(t, p, "edit", base, false)
	e.WriteAt(ctx, []byte("x"), 10)
	if _, ok, err := e.Persist(1 << 10); ok || err != nil {
		t.Fatalf("an edit over unfetched bytes persisted: %v %v", ok, err)
	}
	// Larger than two parts: not written back.
	huge := open(t, p, "huge", store.ObjectInfo{}, false)
	huge.WriteAt(ctx, pattern(2*P+1, 4), 0)
	if _, ok, _ := huge.Persist(1 << 10); ok {
		t.Fatal("a content over two parts persisted")
	}
}

// Without named staging files, Persist refuses (the caller commits).
func TestPersistNeedsNamedStaging(t *testing.T) {
	p, _ := newPipe(t, nil)
	f := open(t, p, "k", store.ObjectInfo{}, false)
	f.WriteAt(ctx, []byte("x"), 0)
	if _, ok, err := f.Persist(1 << 10); ok || err != nil {
		t.Fatalf("persisted without named staging: %v %v", ok, err)
	}
}
