package listing

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"kfs/fs/store"
	"kfs/fs/store/memstore"
)

func TestListingAddDel(t *testing.T) {
	at := time.Now()
	l := New(at)
	l.Add(Entry{Name: "a"})
	l.Add(Entry{Name: "b", IsDir: true})
	l.Add(Entry{Name: "c"})
	l.Add(Entry{Name: "a", Info: store.ObjectInfo{Size: 3}}) // replaces
	if i, ok := l.Index("a"); !ok || l.Entries[i].Info.Size != 3 || !l.Entries[i].Seen.Equal(at) || len(l.Entries) != 3 {
		t.Fatalf("replace: %d %v %+v", i, ok, l.Entries)
	}
	l.Del("b")
	l.Del("none")
	if i, ok := l.Index("c"); !ok || i != 1 || len(l.Entries) != 2 {
		t.Fatalf("after a delete: %d %v %+v", i, ok, l.Entries)
	}
	if _, ok := l.Index("b"); ok {
		t.Error("a deleted name is still there")
	}
}

func TestCheckName(t *testing.T) {
	for name, bad := range map[string]bool{"ok": false, "": true, ".": true, "..": true, strings.Repeat("x", 256): true, "a\x00b": true, "…": false} {
		if got := CheckName(name) != ""; got != bad {
			t.Errorf("%q: bad=%v", name, got)
		}
	}
}

// The lister merges objects and prefixes in key order over pages, lets a
// prefix win over an object of its name, keeps the marker aside, skips
// hidden keys and names that cannot be file names (logged once each).
func TestListerMergesPages(t *testing.T) {
	m := memstore.New()
	m.MakeBucketNow("b")
	for _, k := range []string{"d/", "d/a", "d/a.txt", "d/a/x", "d/hidden", "d/z", "d/sub/deep", "d/..", "d/dirobj"} {
		m.PutBytes("b", k, []byte("x"))
	}
	var mu sync.Mutex
	var logged []string
	cfg := ListerConfig{Store: m, Background: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		Hidden:  func(b, k string) bool { return k == "d/hidden" },
		IsDir:   func(o store.ObjectInfo) bool { return strings.HasSuffix(o.Key, "dirobj") },
		LogOnce: func(msg string, args ...any) { mu.Lock(); logged = append(logged, msg); mu.Unlock() }}
	for _, pageSize := range []int{1000, 2} {
		l := NewLister(cfg, "b", "d/")
		l.pageSize, l.Readahead = pageSize, true
		var got []string
		for {
			e, ok, err := l.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, fmt.Sprintf("%s:%v", e.Name, e.IsDir))
		}
		l.Close()
		if want := "a:true a.txt:false dirobj:true sub:true z:false"; strings.Join(got, " ") != want {
			t.Errorf("pages of %d: %s, want %s", pageSize, strings.Join(got, " "), want)
		}
		if l.Marker.Key != "d/" {
			t.Errorf("marker %+v", l.Marker)
		}
	}
	if len(logged) < 2 {
		t.Errorf("nothing logged of the unusable name and the object hidden by a prefix: %v", logged)
	}
	l := NewLister(cfg, "b", "d/")
	l.pageSize = 2
	first, err := l.FirstPage(context.Background(), time.Now())
	if err != nil || first.Complete || first.Marker.Key != "d/" {
		t.Errorf("first page of many: %+v %v", first, err)
	}
	whole, err := NewLister(cfg, "b", "d/").FirstPage(context.Background(), time.Now())
	if err != nil || !whole.Complete || len(whole.Entries) != 5 {
		t.Errorf("the only page: %+v %v", whole, err)
	}
}

// The walker lists ahead, hands a listing over once, forgets what a change
// touched, and lists nothing with a TTL of 0.
func TestWalker(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	stop := make(chan struct{})
	defer close(stop)
	ttl := time.Minute
	w := NewWalker(WalkerConfig{Stop: stop, TTL: func() time.Duration { return ttl },
		Background: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		List: func(ctx context.Context, bucket, prefix string) (*Listing, error) {
			mu.Lock()
			calls[prefix]++
			mu.Unlock()
			l := New(time.Now())
			l.Complete = true
			l.Add(Entry{Name: "f"})
			return l, nil
		}})
	ctx := context.Background()
	if !w.Start("b", "x/") {
		t.Fatal("start refused")
	}
	if !w.Start("b", "x/") { // already under way: nothing more
		t.Fatal("a second start refused")
	}
	if l := w.Claim(ctx, "b", "x/"); l == nil || len(l.Entries) != 1 {
		t.Fatalf("claim: %+v", l)
	}
	if l := w.Claim(ctx, "b", "x/"); l != nil {
		t.Error("a listing was handed over twice")
	}
	w.Start("b", "y/")
	w.Start("b", "y/z/")
	w.DropUnder("b", "y/")
	if w.Claim(ctx, "b", "y/") != nil || w.Claim(ctx, "b", "y/z/") != nil {
		t.Error("a dropped listing was handed over")
	}
	w.Start("b", "q/")
	w.Drop("b", "q/")
	if w.Claim(ctx, "b", "q/") != nil {
		t.Error("a dropped listing was handed over")
	}
	for i := 0; i < walkWindow+5; i++ {
		w.Start("b", fmt.Sprintf("many/%d/", i))
	}
	mu.Lock()
	if calls["x/"] != 1 {
		t.Errorf("x/ listed %d times", calls["x/"])
	}
	mu.Unlock()
	parent := New(time.Now())
	parent.Readdir, parent.Complete = true, true
	for _, n := range []string{"a", "b", "c", "d"} {
		parent.Add(Entry{Name: n, IsDir: n != "c"})
	}
	if got := w.Following(parent, "a"); strings.Join(got, ",") != "b,d" {
		t.Errorf("following a: %v", got)
	}
	parent.Readdir = false
	if got := w.Following(parent, "a"); got != nil {
		t.Errorf("following in a listing made for a lookup: %v", got)
	}
}
