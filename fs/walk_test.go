package fs_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kfs/fs/store"
)

// tree puts dirs directories of files files each under bkt/t/, one of
// them with a subdirectory, and returns every path a walk must find.
func tree(m *fakeMount, dirs, files int) []string {
	want := []string{"t"}
	for d := 0; d < dirs; d++ {
		want = append(want, fmt.Sprintf("t/d%02d", d))
		for f := 0; f < files; f++ {
			k := fmt.Sprintf("t/d%02d/f%d", d, f)
			m.store.PutBytes("bkt", k, []byte(k))
			want = append(want, k)
		}
	}
	m.store.PutBytes("bkt", "t/d03/sub/deep", []byte("deep"))
	want = append(want, "t/d03/sub", "t/d03/sub/deep")
	slices.Sort(want)
	return want
}

func walk(t *testing.T, root, top string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	slices.Sort(got)
	return got
}

// A walk over many directories lists the ones ahead of it in parallel,
// and each directory once: what was listed ahead is what the walker is
// served.
func TestTreeWalkListsAheadOncePerDirectory(t *testing.T) {
	m := mountFake(t)
	want := tree(m, 20, 5)
	var lists, inFlight, most atomic.Int32
	var mu sync.Mutex
	listed := map[string]int{}
	m.store.SetHook(func(method, bucket, key string) error {
		if !strings.HasPrefix(method, "List") {
			return nil
		}
		lists.Add(1)
		mu.Lock()
		listed[key]++
		mu.Unlock()
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for o := most.Load(); n > o && !most.CompareAndSwap(o, n); o = most.Load() {
		}
		time.Sleep(3 * time.Millisecond) // a store's listing takes time
		return nil
	})
	got := walk(t, m.dir, "t")
	if !slices.Equal(got, want) {
		t.Fatalf("walk found %d paths, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	if most.Load() < 2 {
		t.Errorf("at most %d listing at once: nothing was listed ahead", most.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range listed {
		if n > 1 && strings.HasPrefix(k, "t/d") {
			t.Errorf("%s listed %d times", k, n)
		}
	}
	if n := lists.Load(); n > 24 { // t, 20 directories, d03/sub, and a little slack for the root
		t.Errorf("%d listings for a walk of 22 directories", n)
	}
}

// What was listed ahead never outlives a change: a file removed by
// another client (and announced by an event) does not come back, and
// files created and removed through the mount show as they are.
func TestTreeWalkAheadSeesChanges(t *testing.T) {
	m := mountFake(t)
	tree(m, 10, 3)
	ents, err := os.ReadDir(filepath.Join(m.dir, "t"))
	if err != nil || len(ents) != 10 {
		t.Fatalf("readdir t: %d, %v", len(ents), err)
	}
	if _, err := os.ReadDir(filepath.Join(m.dir, "t/d00")); err != nil { // the walk starts: d01.. are listed ahead
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the listings ahead finish
	m.store.Remove(t.Context(), store.ObjectRef{Bucket: "bkt", Key: "t/d05/f0"})
	m.fsys.Changed("bkt", "t/d05/f0") // the event of that removal
	if err := os.WriteFile(filepath.Join(m.dir, "t/d06/new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.dir, "t/d07/f1")); err != nil {
		t.Fatal(err)
	}
	m.store.PutBytes("bkt", "t/d08/outside", []byte("o"))
	m.fsys.Changed("bkt", "t/d08/outside")
	names := func(d string) []string {
		ents, err := os.ReadDir(filepath.Join(m.dir, d))
		if err != nil {
			t.Fatalf("readdir %s: %v", d, err)
		}
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	for d, want := range map[string][]string{
		"t/d05": {"f1", "f2"},
		"t/d06": {"f0", "f1", "f2", "new"},
		"t/d07": {"f0", "f2"},
		"t/d08": {"f0", "f1", "f2", "outside"},
		"t/d09": {"f0", "f1", "f2"},
	} {
		if got := names(d); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", d, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(m.dir, "t/d05/f0")); !os.IsNotExist(err) {
		t.Errorf("stat of the file removed elsewhere: %v", err)
	}
}

// readdirplus of a directory of directories asks for their markers
// several at once, and shows each marker's attributes (a directory without
// one shows the defaults).
func TestReaddirOfDirectoriesOverlapsMarkerHeads(t *testing.T) {
	m := mountFake(t)
	for d := 0; d < 30; d++ {
		m.store.PutBytes("bkt", fmt.Sprintf("top/d%02d/f", d), []byte("x"))
	}
	if _, err := m.store.Put(t.Context(), store.PutRequest{Bucket: "bkt", Key: "top/d07/", Body: strings.NewReader(""), Size: 0, Options: store.PutOptions{Meta: map[string]string{"mode": fmt.Sprint(0o40700)}}}); err != nil {
		t.Fatal(err)
	}
	var inFlight, most, heads atomic.Int32
	m.store.SetHook(func(method, bucket, key string) error {
		if method != "Stat" || !strings.HasPrefix(key, "top/d") {
			return nil
		}
		heads.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for o := most.Load(); n > o && !most.CompareAndSwap(o, n); o = most.Load() {
		}
		time.Sleep(3 * time.Millisecond)
		return nil
	})
	ents, err := os.ReadDir(filepath.Join(m.dir, "top"))
	if err != nil || len(ents) != 30 {
		t.Fatalf("readdir: %d, %v", len(ents), err)
	}
	for _, e := range ents {
		st, err := os.Stat(filepath.Join(m.dir, "top", e.Name()))
		if err != nil || !st.IsDir() {
			t.Fatalf("%s: %v, %v", e.Name(), st, err)
		}
		want := os.FileMode(0o755)
		if e.Name() == "d07" {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", e.Name(), st.Mode().Perm(), want)
		}
	}
	if most.Load() < 2 {
		t.Errorf("marker HEADs one at a time (at most %d at once)", most.Load())
	}
	if n := heads.Load(); n > 30 {
		t.Errorf("%d HEADs for 30 directories", n)
	}
}
