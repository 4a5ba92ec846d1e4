package fs_test

import (
	"os"
	"path/filepath"
	"testing"
)

// A name that is both an object and a prefix (X/a and X/a/b): the
// directory wins, by lookup and by listing, whatever came first.
func TestDirectoryWinsOverAnObjectOfTheSameName(t *testing.T) {
	for _, list := range []bool{true, false} {
		m := mountFake(t)
		m.store.PutBytes("bkt", "X/a", []byte("file"))
		m.store.PutBytes("bkt", "X/a/b", []byte("inside"))
		if list {
			if _, err := os.ReadDir(filepath.Join(m.dir, "X")); err != nil {
				t.Fatal(err)
			}
		}
		st, err := os.Stat(filepath.Join(m.dir, "X", "a"))
		if err != nil || !st.IsDir() {
			t.Fatalf("listed first %v: X/a is %v %v, want the directory", list, st, err)
		}
		if b, err := os.ReadFile(filepath.Join(m.dir, "X", "a", "b")); err != nil || string(b) != "inside" {
			t.Fatalf("listed first %v: X/a/b = %q %v", list, b, err)
		}
		ents, _ := os.ReadDir(filepath.Join(m.dir, "X"))
		if len(ents) != 1 || !ents[0].IsDir() {
			t.Fatalf("listed first %v: X holds %v", list, ents)
		}
	}
}
