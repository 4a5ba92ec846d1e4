package integration

import (
	"os"
	"testing"
	"time"
)

// Without events (no webhook): an object put through S3 right after the
// directory was listed is there for stat and cat at once, and in ls within
// revalidate-after; a key a/b/c put outside shows a/ and a/b/ the same way.
func TestFreshWithoutEvents(t *testing.T) {
	b := newBucket(t)
	put(t, b, "dir/old", []byte("old"))
	m := mountKFS(t, b) // default TTLs: entry 10s, negative 5s
	names := func(dir string) map[string]bool {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, e := range ents {
			out[e.Name()] = true
		}
		return out
	}
	for i := 0; i < 3; i++ {
		names(m.path("dir")) // listed, cached
		key := "new" + string(rune('a'+i))
		put(t, b, "dir/"+key, []byte("fresh"))
		if got, err := os.ReadFile(m.path("dir", key)); err != nil || string(got) != "fresh" {
			t.Fatalf("an object put right after the listing: %q %v (No such file from a cached listing)", got, err)
		}
	}
	names(m.dir)
	put(t, b, "a/b/c", []byte("deep"))
	if got, err := os.ReadFile(m.path("a/b/c")); err != nil || string(got) != "deep" {
		t.Fatalf("a/b/c put outside: %q %v", got, err)
	}
	names(m.path("dir"))
	put(t, b, "dir/listed", []byte("x"))
	deadline := time.Now().Add(1500 * time.Millisecond) // revalidate-after 1s
	for !names(m.path("dir"))["listed"] {
		if time.Now().After(deadline) {
			t.Fatal("a new object is not in ls after revalidate-after")
		}
		time.Sleep(50 * time.Millisecond)
	}
	put(t, b, "x/y/z", []byte("z"))
	deadline = time.Now().Add(1500 * time.Millisecond)
	for !names(m.dir)["x"] {
		if time.Now().After(deadline) {
			t.Fatal("the implicit directory x/ of a key put outside is not in ls after revalidate-after")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !names(m.path("x"))["y"] {
		t.Fatal("x/y/ missing")
	}
}
