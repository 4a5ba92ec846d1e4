package fs_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"kfs/fs/store"
)

// Events reach names the kernel holds no inode for: a new prefix after a
// failed lookup of it (a negative entry) or under a listed parent shows at
// once, and a prefix whose last object went disappears from its parent's
// listing; an event older than what the mount knows changes nothing (the
// kernel keeps its inode: the listen API delivers late, in bursts).
func TestEventsReachNewPrefixesAndOldOnesChangeNothing(t *testing.T) {
	m := mountFake(t)
	m.store.PutBytes("bkt", "d/f", []byte("one"))
	m.store.PutBytes("bkt", "d/gone/only", []byte("x"))
	if _, err := os.ReadDir(filepath.Join(m.dir, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "d", "new")); !os.IsNotExist(err) {
		t.Fatalf("d/new before: %v", err)
	}
	info := m.store.PutBytes("bkt", "d/new/x", []byte("fresh"))
	m.fsys.Event("bkt", "d/new/x", info.ETag, false, info.LastModified)
	deadline := time.Now().Add(time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(m.dir, "d", "new", "x")); err == nil && string(b) == "fresh" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("a new prefix after a failed lookup: %q %v", b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Deeper: a key two levels under a known directory.
	info = m.store.PutBytes("bkt", "d/deep/er/y", []byte("y"))
	m.fsys.Event("bkt", "d/deep/er/y", info.ETag, false, info.LastModified)
	if names := readNames(t, filepath.Join(m.dir, "d")); !contains(names, "deep") {
		t.Fatalf("d after an event two levels down: %v", names)
	}
	// The last object of an implicit directory goes.
	if _, err := os.Stat(filepath.Join(m.dir, "d", "gone", "only")); err != nil {
		t.Fatal(err)
	}
	m.store.Remove(t.Context(), store.ObjectRef{Bucket: "bkt", Key: "d/gone/only"})
	m.fsys.Event("bkt", "d/gone/only", "", true, time.Now())
	if names := readNames(t, filepath.Join(m.dir, "d")); contains(names, "gone") {
		t.Fatalf("an empty prefix is still listed: %v", names)
	}
	// A late event: f was rewritten since; the event of the older write
	// (and a removal before it) changes nothing.
	old := time.Now().Add(-time.Minute)
	var before syscall.Stat_t
	syscall.Stat(filepath.Join(m.dir, "d", "f"), &before)
	heads := m.store.Calls("Stat") + m.store.Calls("List")
	m.fsys.Event("bkt", "d/f", "0123456789abcdef0123456789abcdef", false, old)
	m.fsys.Event("bkt", "d/f", "", true, old)
	time.Sleep(50 * time.Millisecond)
	var after syscall.Stat_t
	if err := syscall.Stat(filepath.Join(m.dir, "d", "f"), &after); err != nil || after.Ino != before.Ino {
		t.Fatalf("after late events: ino %d -> %d (%v)", before.Ino, after.Ino, err)
	}
	if n := m.store.Calls("Stat") + m.store.Calls("List"); n != heads {
		t.Fatalf("late events made the mount ask the store again (%d requests)", n-heads)
	}
}

func readNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
