package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// A tree walk lists directories ahead of the walker. What it finds is
// always the tree as it is: changes made through the mount while
// listings are under way or waiting, and changes made by another client
// once the listing TTL has passed, show in the next find, du and rsync.
func TestTreeWalksSeeTheTreeAsItIs(t *testing.T) {
	b := newBucket(t)
	var keys []string
	want := map[string]bool{"t": true}
	for d := 0; d < 30; d++ {
		want[fmt.Sprintf("t/d%02d", d)] = true
		for f := 0; f < 8; f++ {
			k := fmt.Sprintf("t/d%02d/f%d", d, f)
			keys = append(keys, k)
			want[k] = true
		}
	}
	keys = append(keys, "t/d03/sub/deep")
	want["t/d03/sub"], want["t/d03/sub/deep"] = true, true
	putMany(t, b, keys, func(k string) []byte { return []byte(k) })
	m := mountKFS(t, b, "--entry-ttl", "1s", "--negative-ttl", "1s")

	check := func(when string) {
		t.Helper()
		out := strings.Fields(sh(t, "sh", "-c", "cd "+m.dir+" && find t"))
		var exp []string
		for p := range want {
			exp = append(exp, p)
		}
		slices.Sort(out)
		slices.Sort(exp)
		if !slices.Equal(out, exp) {
			t.Fatalf("%s: find found %d paths, want %d\nmissing or extra: %v", when, len(out), len(exp), diff(out, exp))
		}
	}
	check("first walk")

	// The walk starts again (listings ahead of d01..), and the tree changes
	// through the mount while they are under way.
	sh(t, "ls", m.path("t"))
	sh(t, "ls", m.path("t/d00"))
	os.Remove(m.path("t/d10/f0"))
	os.WriteFile(m.path("t/d11/new"), []byte("new"), 0o644)
	sh(t, "mv", m.path("t/d12"), m.path("t/d12moved"))
	os.Mkdir(m.path("t/d13/made"), 0o755)
	delete(want, "t/d10/f0")
	want["t/d11/new"], want["t/d13/made"] = true, true
	delete(want, "t/d12")
	want["t/d12moved"] = true
	for f := 0; f < 8; f++ {
		delete(want, fmt.Sprintf("t/d12/f%d", f))
		want[fmt.Sprintf("t/d12moved/f%d", f)] = true
	}
	check("after changes through the mount")

	// Another client changes the tree; after the listing TTL the walk sees it.
	c := client(t)
	ctx := context.Background()
	if err := c.RemoveObject(ctx, b, "t/d20/f0", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	put(t, b, "t/d21/sdk", []byte("sdk"))
	delete(want, "t/d20/f0")
	want["t/d21/sdk"] = true
	time.Sleep(1100 * time.Millisecond)
	check("after changes by another client")

	local := t.TempDir()
	sh(t, "rsync", "-a", m.path("t")+"/", local+"/")
	sh(t, "sh", "-c", "cd "+local+" && find . -type f | sort | xargs cat | sha256sum > ../sum.local")
	sh(t, "sh", "-c", "cd "+m.path("t")+" && find . -type f | sort | xargs cat | sha256sum > "+local+"/../sum.mount")
	if a, b := sh(t, "cat", local+"/../sum.local"), sh(t, "cat", local+"/../sum.mount"); a != b {
		t.Fatalf("rsync copy and mount differ: %s vs %s", a, b)
	}
	var size int
	for p := range want {
		switch {
		case p == "t/d11/new" || p == "t/d21/sdk":
			size += 3
		case strings.Contains(p, "/f") || strings.HasSuffix(p, "/deep"):
			size += len(strings.Replace(p, "d12moved", "d12", 1))
		}
	}
	if out := sh(t, "sh", "-c", "find "+m.path("t")+" -type f -printf '%s\n' | awk '{s+=$1} END {print s}'"); strings.TrimSpace(out) != fmt.Sprint(size) {
		t.Fatalf("sizes of the files found: %s, want %d", out, size)
	}
}

func diff(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, "+"+x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			d = append(d, "-"+x)
		}
	}
	return d
}
