package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"kfs/fs/store"
	"kfs/fs/store/memstore"
)

const P = store.MinPartSize

var ctx = context.Background()

func newPipe(t *testing.T, mod func(*Config)) (*Pipeline, *memstore.Store) {
	t.Helper()
	m := memstore.New()
	m.MakeBucketNow("b")
	cfg := Config{Store: m, Dir: t.TempDir(), PartSize: P, Parallel: 2, InFlight: 4 * P, DiskLimit: 1 << 30}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg), m
}

func noOpts() store.PutOptions { return store.PutOptions{} }

func pattern(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func open(t *testing.T, p *Pipeline, key string, base store.ObjectInfo, trunc bool) *File {
	t.Helper()
	f, err := p.Open("b", key, base, trunc, noOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func commit(t *testing.T, f *File) store.ObjectInfo {
	t.Helper()
	info, _, err := f.Commit(ctx, noOpts())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func mustData(t *testing.T, m *memstore.Store, key string, want []byte) {
	t.Helper()
	got, ok := m.Data("b", key)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes (found %v), want %d", key, len(got), ok, len(want))
	}
}

func TestSmallFileIsOnePut(t *testing.T) {
	p, m := newPipe(t, nil)
	f := open(t, p, "small", store.ObjectInfo{}, false)
	data := pattern(100000, 1)
	for off := 0; off < len(data); off += 4096 {
		if err := f.WriteAt(ctx, data[off:min(off+4096, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	info := commit(t, f)
	mustData(t, m, "small", data)
	if m.Calls("Put") != 1 || m.Calls("NewUpload") != 0 || info.Size != int64(len(data)) {
		t.Fatalf("puts %d uploads %d size %d", m.Calls("Put"), m.Calls("NewUpload"), info.Size)
	}
	if f.Dirty() {
		t.Fatal("dirty after commit")
	}
	commit(t, f)
	if m.Calls("Put") != 1 {
		t.Fatal("a clean commit uploaded again")
	}
}

func TestSequentialWriterStreamsParts(t *testing.T) {
	p, m := newPipe(t, nil)
	f := open(t, p, "big", store.ObjectInfo{}, false)
	data := pattern(3*P+12345, 2)
	for off := 0; off < len(data); off += 1 << 17 {
		if err := f.WriteAt(ctx, data[off:min(off+1<<17, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Calls("PutPart"); n < 2 {
		t.Fatalf("%d parts sent before the commit, want the passed ones in the background", n)
	}
	if _, ok := m.Data("b", "big"); ok {
		t.Fatal("object visible before the commit")
	}
	commit(t, f)
	mustData(t, m, "big", data)
	if n := m.Calls("PutPart"); n != 4 {
		t.Fatalf("%d PutPart calls, want 4 (each part once)", n)
	}
}

func TestSeekBackIntoSentPartResendsIt(t *testing.T) {
	p, m := newPipe(t, nil)
	f := open(t, p, "k", store.ObjectInfo{}, false)
	data := pattern(4*P, 3)
	if err := f.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	patch := []byte("HEADER")
	if err := f.WriteAt(ctx, patch, 10); err != nil {
		t.Fatal(err)
	}
	copy(data[10:], patch)
	if _, ok := m.Data("b", "k"); ok {
		t.Fatal("partial object visible after a seek back")
	}
	buf := make([]byte, 16)
	if _, err := f.ReadAt(ctx, buf, 4); err != nil || !bytes.Equal(buf, data[4:20]) {
		t.Fatalf("read back %q %v", buf, err)
	}
	commit(t, f)
	mustData(t, m, "k", data)
}

func TestEditCopiesUntouchedPartsServerSide(t *testing.T) {
	p, m := newPipe(t, nil)
	data := pattern(5*P+7, 4)
	base := m.PutBytes("b", "obj", data)
	f := open(t, p, "obj", base, false)
	if err := f.WriteAt(ctx, []byte("xy"), int64(2*P+5)); err != nil {
		t.Fatal(err)
	}
	copy(data[2*P+5:], "xy")
	commit(t, f)
	mustData(t, m, "obj", data)
	// The untouched runs before and after the changed part are one copy
	// each (UploadPartCopy takes up to 5 GiB).
	if c, u := m.Calls("CopyPart"), m.Calls("PutPart"); c != 2 || u != 1 {
		t.Fatalf("%d parts copied, %d uploaded; want 2 and 1", c, u)
	}
	if got := m.Calls("ReadAt"); got != 2 {
		t.Fatalf("%d range reads, want 2 (the edge chunks of the write... merged)", got)
	}
}

// A 4 KiB edit in the middle of a 200 MiB object (16 MiB parts): the
// upload's start, a copy before, the changed part, a copy after, the
// completion, and the reads of the changed part's base bytes: at most 8
// requests (it was one request per part, 19 for this file).
func TestSmallEditOfALargeObjectCostsAHandfulOfRequests(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.PartSize = 16 << 20 })
	data := make([]byte, 200<<20)
	copy(data[100<<20:], "before")
	base := m.PutOwned("b", "big", data)
	f := open(t, p, "big", base, false)
	edit := bytes.Repeat([]byte("e"), 4096)
	if err := f.WriteAt(ctx, edit, 100<<20+12345); err != nil {
		t.Fatal(err)
	}
	copy(data[100<<20+12345:], edit)
	commit(t, f)
	mustData(t, m, "big", data)
	total := 0
	for _, c := range []string{"NewUpload", "CopyPart", "PutPart", "CompleteUpload", "ReadAt", "Put"} {
		total += m.Calls(c)
	}
	if total > 8 || m.Calls("CopyPart") != 2 || m.Calls("PutPart") != 1 {
		t.Fatalf("%d requests (%d copies, %d parts, %d reads), want at most 8", total,
			m.Calls("CopyPart"), m.Calls("PutPart"), m.Calls("ReadAt"))
	}
}

func TestSparseGrowHoldsNothing(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.DiskLimit = 64 << 20 })
	f := open(t, p, "sparse", store.ObjectInfo{}, false)
	if err := f.Truncate(ctx, 11<<30); err != nil {
		t.Fatalf("sparse grow to 11 GiB with a 64 MiB budget: %v", err)
	}
	if p.DiskUsed() != 0 || f.Size() != 11<<30 {
		t.Fatalf("held %d, size %d", p.DiskUsed(), f.Size())
	}
	buf := make([]byte, 10)
	if n, err := f.ReadAt(ctx, buf, 5<<30); err != nil || n != 10 || !bytes.Equal(buf, make([]byte, 10)) {
		t.Fatalf("read in the hole: %d %v %q", n, err, buf)
	}
	if err := f.Truncate(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(ctx, store.MaxObjectSize+1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("past 5 TiB: %v", err)
	}
	_ = m
}

func TestTruncateShrinkAndGrowKeepsBaseBytes(t *testing.T) {
	p, m := newPipe(t, nil)
	data := pattern(3*P, 5)
	base := m.PutBytes("b", "t", data)
	f := open(t, p, "t", base, false)
	if err := f.Truncate(ctx, P+100); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(ctx, P+200); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), data[:P+100]...), make([]byte, 100)...)
	commit(t, f)
	mustData(t, m, "t", want)
}

func TestLargerThanDiskBudget(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.DiskLimit = 3 * P })
	f := open(t, p, "huge", store.ObjectInfo{}, false)
	data := pattern(8*P+3, 6)
	for off := 0; off < len(data); off += 1 << 20 {
		if err := f.WriteAt(ctx, data[off:min(off+1<<20, len(data))], int64(off)); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	if p.DiskUsed() > 3*P {
		t.Fatalf("held %d over the %d budget", p.DiskUsed(), 3*P)
	}
	commit(t, f)
	mustData(t, m, "huge", data)
	if p.DiskUsed() > 3*P {
		t.Fatalf("held %d", p.DiskUsed())
	}
}

func TestReadingDroppedBytesCompletesEarly(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.DiskLimit = 3 * P })
	f := open(t, p, "early", store.ObjectInfo{}, false)
	data := pattern(6*P, 7)
	if err := f.WriteAt(ctx, data[:3*P], 0); err != nil {
		t.Fatal(err)
	}
	for off := 3 * P; off < len(data); off += 1 << 20 {
		if err := f.WriteAt(ctx, data[off:off+1<<20], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	if _, err := f.ReadAt(ctx, buf, 10); err != nil || !bytes.Equal(buf, data[10:110]) {
		t.Fatalf("read of dropped bytes: %v", err)
	}
	if err := f.WriteAt(ctx, []byte("Z"), 0); err != nil {
		t.Fatal(err)
	}
	data[0] = 'Z'
	commit(t, f)
	mustData(t, m, "early", data)
}

func TestFailedCommitStoresNothingAndCanBeRetried(t *testing.T) {
	p, m := newPipe(t, nil)
	var fail sync.Mutex
	failing := true
	m.SetHook(func(method, bucket, key string) error {
		fail.Lock()
		defer fail.Unlock()
		if failing && (method == "CompleteUpload" || method == "Put") {
			return fmt.Errorf("injected: %w", store.ErrUnavailable)
		}
		return nil
	})
	f := open(t, p, "retry", store.ObjectInfo{}, false)
	data := pattern(3*P+1, 8)
	if err := f.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Commit(ctx, noOpts()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("commit: %v", err)
	}
	if _, ok := m.Data("b", "retry"); ok || m.Uploads() != 0 {
		t.Fatalf("after a failed commit: visible %v, %d uploads left", ok, m.Uploads())
	}
	if !f.Dirty() {
		t.Fatal("a failed commit lost the content")
	}
	fail.Lock()
	failing = false
	fail.Unlock()
	commit(t, f)
	mustData(t, m, "retry", data)
}

func TestRekeyAndDetach(t *testing.T) {
	p, m := newPipe(t, nil)
	f := open(t, p, "old", store.ObjectInfo{}, false)
	data := pattern(3*P, 9)
	if err := f.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Rekey(ctx, "new", store.ObjectInfo{}); err != nil {
		t.Fatal(err)
	}
	commit(t, f)
	mustData(t, m, "new", data)
	if _, ok := m.Data("b", "old"); ok || m.Uploads() != 0 {
		t.Fatal("the old key got something")
	}
	g := open(t, p, "anon", store.ObjectInfo{}, false)
	if err := g.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	g.Detach()
	if err := g.WriteAt(ctx, []byte("more"), 1); err != nil {
		t.Fatal(err)
	}
	commit(t, g)
	if _, ok := m.Data("b", "anon"); ok || m.Uploads() != 0 {
		t.Fatal("a detached file was stored")
	}
}

func TestStartedUploadReportsItsOptions(t *testing.T) {
	p, _ := newPipe(t, nil)
	first := store.PutOptions{ContentType: "text/csv", Meta: map[string]string{"mode": "33188"}}
	f, err := p.Open("b", "o", store.ObjectInfo{}, false, func() store.PutOptions { return first })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.WriteAt(ctx, pattern(3*P, 10), 0); err != nil {
		t.Fatal(err)
	}
	later := store.PutOptions{ContentType: "text/csv", Meta: map[string]string{"mode": "33261"}}
	_, applied, err := f.Commit(ctx, later)
	if err != nil || SameMeta(applied, later) || !SameMeta(applied, first) {
		t.Fatalf("applied %+v (%v)", applied, err)
	}
}

// Many goroutines writing disjoint ranges of one File, as several handles do.
func TestConcurrentWritersShareContent(t *testing.T) {
	p, m := newPipe(t, nil)
	data := pattern(2*P+100, 11)
	base := m.PutBytes("b", "c", data)
	f := open(t, p, "c", base, false)
	var wg sync.WaitGroup
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			off := int64(w) * (int64(len(data)) / 10)
			if err := f.WriteAt(ctx, []byte(fmt.Sprintf("writer-%d", w)), off); err != nil {
				t.Error(err)
			}
		}(w)
	}
	wg.Wait()
	for w := 0; w < 10; w++ {
		copy(data[int64(w)*(int64(len(data))/10):], fmt.Sprintf("writer-%d", w))
	}
	commit(t, f)
	mustData(t, m, "c", data)
}

func TestLayout(t *testing.T) {
	l := layout{16 << 20}
	if l.part(0) != 1 || l.part(16<<20-1) != 1 || l.part(16<<20) != 2 || l.start(2) != 16<<20 {
		t.Fatal("first parts")
	}
	if l.start(1001) != 1000*(16<<20) || l.size(1001) != 32<<20 || l.part(l.start(1001)) != 1001 || l.part(l.start(1001)-1) != 1000 {
		t.Fatal("doubling at 1,000 parts")
	}
	if l.count(store.MaxObjectSize) > store.MaxParts {
		t.Fatalf("5 TiB needs %d parts", l.count(store.MaxObjectSize))
	}
	for _, n := range []int{1, 2, 999, 1000, 1001, 2500, 9999} {
		if got := l.part(l.start(n)); got != n {
			t.Fatalf("part(start(%d)) = %d", n, got)
		}
	}
}

// A front-to-back writer stays in memory (no staging bytes), within the
// in-flight budget, keeping the first part longest; a seek back into it
// needs no early completion.
func TestStreamStaysInMemoryAndKeepsTheFirstPart(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.InFlight = 4 * P })
	f := open(t, p, "s", store.ObjectInfo{}, false)
	data := pattern(10*P+5, 12)
	for off := 0; off < len(data); off += 1 << 20 {
		if err := f.WriteAt(ctx, data[off:min(off+1<<20, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
		if p.DiskUsed() != 0 {
			t.Fatalf("a front-to-back writer used %d staging bytes", p.DiskUsed())
		}
	}
	if err := f.WriteAt(ctx, []byte("HEAD"), 0); err != nil {
		t.Fatal(err)
	}
	copy(data, "HEAD")
	if m.Calls("CompleteUpload") != 0 {
		t.Fatal("a seek back into the first part completed the upload early")
	}
	commit(t, f)
	mustData(t, m, "s", data)
	if m.Calls("CompleteUpload") != 1 {
		t.Fatalf("%d completes", m.Calls("CompleteUpload"))
	}
}

// A seek back into a part no longer held completes the upload so far, and
// the final object is still exactly what was written.
func TestStreamSeekBackIntoEvictedPart(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.InFlight = 4 * P })
	f := open(t, p, "e", store.ObjectInfo{}, false)
	data := pattern(10*P, 13)
	for off := 0; off < len(data); off += 1 << 20 {
		if err := f.WriteAt(ctx, data[off:off+1<<20], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WriteAt(ctx, []byte("MIDDLE"), 3*P+7); err != nil {
		t.Fatal(err)
	}
	copy(data[3*P+7:], "MIDDLE")
	buf := make([]byte, 6)
	if _, err := f.ReadAt(ctx, buf, 3*P+7); err != nil || string(buf) != "MIDDLE" {
		t.Fatalf("read back %q %v", buf, err)
	}
	commit(t, f)
	mustData(t, m, "e", data)
}

// A front-to-back writer whose part sends keep failing gets the store's
// error from a write once its buffers hold the whole budget, instead of
// waiting for budget that never comes back; nothing is visible, and once
// the store is back the same content commits.
func TestStreamWriterFailsWhenPartsKeepFailing(t *testing.T) {
	p, m := newPipe(t, nil) // budget: 4 parts
	var fail sync.Mutex
	failing := true
	m.SetHook(func(method, bucket, key string) error {
		fail.Lock()
		defer fail.Unlock()
		if failing && method == "PutPart" {
			return fmt.Errorf("injected: %w", store.ErrUnavailable)
		}
		return nil
	})
	f := open(t, p, "stuck", store.ObjectInfo{}, false)
	data := pattern(12*P, 12)
	done := make(chan error, 1)
	go func() {
		var err error
		for off := 0; off < len(data) && err == nil; off += 1 << 20 {
			err = f.WriteAt(ctx, data[off:off+1<<20], int64(off))
		}
		done <- err
	}()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the writer waits for budget that never comes back")
	}
	if !errors.Is(werr, store.ErrUnavailable) {
		t.Fatalf("write: %v, want the store's error", werr)
	}
	if _, ok := m.Data("b", "stuck"); ok {
		t.Fatal("something became visible")
	}
	fail.Lock()
	failing = false
	fail.Unlock()
	if _, _, err := f.Commit(ctx, noOpts()); err != nil {
		t.Fatalf("commit once the store is back: %v", err)
	}
	got, _ := m.Data("b", "stuck")
	if int64(len(got)) != f.Size() || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("committed %d bytes, not a prefix of what was written (size %d)", len(got), f.Size())
	}
}

// More writers than the budget has parts for, each writing a file of
// between one and two parts (kept for one PUT while it can be): every
// writer holding a full part and waiting for budget for the next deadlocked
// them all (16 cp of 8 MiB files into a mount with write-buffer 32MiB).
// A writer that would wait sends what it holds instead.
func TestWritersBeyondTheBudgetDoNotDeadlock(t *testing.T) {
	p, m := newPipe(t, func(c *Config) { c.InFlight = 4 * P })
	const writers = 8
	wctx, cancel := context.WithCancel(ctx) // ends stuck writers if the test gives up
	defer cancel()
	data := make([][]byte, writers)
	done := make(chan error, writers)
	for i := 0; i < writers; i++ {
		data[i] = pattern(int(P)+int(P)/2+i, int64(i))
		f := open(t, p, fmt.Sprintf("w%d", i), store.ObjectInfo{}, false)
		go func() {
			for off := 0; off < len(data[i]); off += 128 << 10 {
				if err := f.WriteAt(wctx, data[i][off:min(off+128<<10, len(data[i]))], int64(off)); err != nil {
					done <- err
					return
				}
				time.Sleep(time.Millisecond) // writers interleave, as cp processes do
			}
			_, _, err := f.Commit(wctx, noOpts())
			done <- err
		}()
	}
	for i := 0; i < writers; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			cancel()
			t.Fatalf("%d of %d writers still stuck after 20 s: deadlock on the write budget", writers-i, writers)
		}
	}
	for i := 0; i < writers; i++ {
		mustData(t, m, fmt.Sprintf("w%d", i), data[i])
	}
}
