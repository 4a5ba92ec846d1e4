package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
)

func newTestFS(t *testing.T, cfg Config) (*FS, *MemStore, *bytes.Buffer) {
	t.Helper()
	m := NewMemStore()
	m.MakeBucket("bkt")
	var logs bytes.Buffer
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 64
	}
	if cfg.EntryTTL == 0 {
		cfg.EntryTTL = time.Minute
	}
	if cfg.AttrTTL == 0 {
		cfg.AttrTTL = time.Minute
	}
	cfg.Log = log.New(&logs, "", 0)
	return New(m, cache.New(1<<20, int(cfg.BlockSize), time.Minute), cfg), m, &logs
}

func listAll(t *testing.T, f *FS, prefix string, pageSize int, readahead bool) []string {
	t.Helper()
	l := newLister(f, "bkt", prefix)
	l.pageSize, l.readahead = pageSize, readahead
	defer l.close()
	var out []string
	for {
		e, ok, err := l.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		s := e.name
		if e.isDir {
			s += "/"
		}
		out = append(out, s)
	}
}

func TestListerMergesAndSkips(t *testing.T) {
	f, m, logs := newTestFS(t, Config{})
	for _, k := range []string{"d/", "d/a", "d/a.txt", "d/a/inner", "d/b", "d/c/x", "d//empty", "d/" + strings.Repeat("n", 256), "d/z"} {
		m.PutBytes("bkt", k, []byte("1"))
	}
	want := "[a/ a.txt b c/ z]" // "a" is held back until "a/" replaces it
	for _, ps := range []int{1, 2, 3, 1000} {
		for _, ahead := range []bool{false, true} {
			if got := fmt.Sprint(listAll(t, f, "d/", ps, ahead)); got != want {
				t.Errorf("page size %d, readahead %v: %s, want %s", ps, ahead, got, want)
			}
		}
	}
	for _, w := range []string{"both an object and a prefix", "empty path segment", "longer than 255"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("no log line about %q in:\n%s", w, logs)
		}
	}
	if n := strings.Count(logs.String(), "empty path segment"); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
}

func TestLookupUsesOneListing(t *testing.T) {
	f, m, _ := newTestFS(t, Config{})
	for i := 0; i < 50; i++ {
		m.PutBytes("bkt", fmt.Sprintf("dir/f%02d", i), []byte("x"))
	}
	m.PutBytes("bkt", "dir/sub/y", []byte("y"))
	d := newDirNode(f, "bkt", "dir/", time.Now())
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		e, err := d.lookupEntry(ctx, fmt.Sprintf("f%02d", i))
		if err != nil || e.isDir || e.info.Size != 1 {
			t.Fatalf("lookup f%02d: %+v %v", i, e, err)
		}
	}
	if e, err := d.lookupEntry(ctx, "sub"); err != nil || !e.isDir {
		t.Fatalf("lookup sub: %+v %v", e, err)
	}
	if _, err := d.lookupEntry(ctx, "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lookup missing: %v", err)
	}
	if n := m.Calls("List"); n != 1 || m.Calls("Stat") != 1 {
		t.Fatalf("52 lookups cost %d lists and %d stats, want 1 list and the 1 HEAD sampling metadata", n, m.Calls("Stat"))
	}
}

// A directory is listed with metadata only when a sample object has POSIX
// metadata.
func TestListingAsksForMetadataOnlyWhenUseful(t *testing.T) {
	f, m, _ := newTestFS(t, Config{})
	m.PutBytes("bkt", "plain/a", []byte("1"))
	m.PutBytes("bkt", "plain/b", []byte("1"))
	ctx := context.Background()
	if _, err := m.Put(ctx, "bkt", "posix/a", bytes.NewReader([]byte("1")), 1, PutOptions{Meta: map[string]string{"mode": "33261", "mtime": "1600000000"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := newDirNode(f, "bkt", "plain/", time.Now()).lookupEntry(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := m.Calls("ListWithMeta"); n != 0 {
		t.Fatalf("plain directory listed with metadata (%d objects)", n)
	}
	e, err := newDirNode(f, "bkt", "posix/", time.Now()).lookupEntry(ctx, "a")
	if err != nil || e.info.Meta["mode"] != "33261" {
		t.Fatalf("posix directory: %+v %v", e, err)
	}
	var a fuse.Attr
	f.fileAttr(&a, e.info)
	if a.Mode != syscall.S_IFREG|0o755 || a.Mtime != 1600000000 {
		t.Fatalf("attributes from metadata: mode %o mtime %d", a.Mode, a.Mtime)
	}
}

func TestLookupInLargeDirectoryIsTargeted(t *testing.T) {
	f, m, _ := newTestFS(t, Config{})
	for i := 0; i < 1500; i++ {
		m.PutBytes("bkt", fmt.Sprintf("big/f%04d", i), []byte("x"))
	}
	m.PutBytes("bkt", "big/zz/marker", nil)
	d := newDirNode(f, "bkt", "big/", time.Now())
	ctx := context.Background()
	if e, err := d.lookupEntry(ctx, "f0001"); err != nil || e.isDir { // on the first page
		t.Fatalf("%+v %v", e, err)
	}
	if e, err := d.lookupEntry(ctx, "f1400"); err != nil || e.isDir { // beyond it: HEAD + LIST
		t.Fatalf("%+v %v", e, err)
	}
	if e, err := d.lookupEntry(ctx, "zz"); err != nil || !e.isDir {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := d.lookupEntry(ctx, "nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if lists := m.Calls("List"); lists != 4 { // 1 page + 3 targeted prefix checks
		t.Fatalf("%d lists", lists)
	}
}

func TestListingExpires(t *testing.T) {
	f, m, _ := newTestFS(t, Config{EntryTTL: 50 * time.Millisecond})
	m.PutBytes("bkt", "a", []byte("1"))
	d := newDirNode(f, "bkt", "", time.Now())
	ctx := context.Background()
	if _, err := d.lookupEntry(ctx, "b"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	m.PutBytes("bkt", "b", []byte("2"))
	if _, err := d.lookupEntry(ctx, "b"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("listing not trusted within the TTL")
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := d.lookupEntry(ctx, "b"); err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
}

// readBytes reads like go-fuse would: take the bytes, then call Done.
func readBytes(h *readHandle, dest []byte, off int64) ([]byte, error) {
	res, err := h.read(context.Background(), dest, off)
	if err != nil {
		return nil, err
	}
	b, _ := res.Bytes(make([]byte, len(dest)))
	b = append([]byte(nil), b...)
	res.Done()
	return b, nil
}

func readAll(t *testing.T, h *readHandle, chunk int, offsets []int64) ([]byte, error) {
	t.Helper()
	var out []byte
	for _, off := range offsets {
		b, err := readBytes(h, make([]byte, chunk), off)
		if err != nil {
			return out, err
		}
		out = append(out, b...)
	}
	return out, nil
}

func TestReadHandleSequentialAndRandom(t *testing.T) {
	f, m, _ := newTestFS(t, Config{BlockSize: 64, MaxReadahead: 256})
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	m.PutBytes("bkt", "obj", data)
	info, _ := m.Stat(context.Background(), "bkt", "obj")

	h := newReadHandle(f, "bkt", info)
	var offs []int64
	for off := int64(0); off < 1100; off += 50 {
		offs = append(offs, off)
	}
	got, err := readAll(t, h, 50, offs)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sequential read: %d bytes, %v", len(got), err)
	}
	if s := f.blocks.Stats(); s.Prefetches == 0 {
		t.Fatalf("no readahead for a sequential reader: %+v", s)
	}

	// A random reader on a fresh cache fetches just what it asks for.
	f2, m2, _ := newTestFS(t, Config{BlockSize: 64, MaxReadahead: 256})
	m2.PutBytes("bkt", "obj", data)
	h2 := newReadHandle(f2, "bkt", info)
	for _, off := range []int64{700, 100, 900, 333} {
		b, err := readBytes(h2, make([]byte, 10), off)
		if err != nil || !bytes.Equal(b, data[off:off+10]) {
			t.Fatalf("random read at %d: %v", off, err)
		}
	}
	if s := f2.blocks.Stats(); s.Prefetches != 0 || s.Bytes != 0 {
		t.Fatalf("random reads filled the cache: %+v", s)
	}
}

func TestReadHandleStale(t *testing.T) {
	f, m, _ := newTestFS(t, Config{BlockSize: 64, MaxReadahead: 0})
	m.PutBytes("bkt", "obj", bytes.Repeat([]byte("a"), 300))
	info, _ := m.Stat(context.Background(), "bkt", "obj")
	h := newReadHandle(f, "bkt", info)
	if _, err := readBytes(h, make([]byte, 64), 0); err != nil {
		t.Fatal(err)
	}
	m.PutBytes("bkt", "obj", bytes.Repeat([]byte("b"), 300))
	_, err := readBytes(h, make([]byte, 64), 64)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("read after replace: %v, want ErrStale", err)
	}
	if toErrno(nil, "", err) != syscall.ESTALE {
		t.Fatal("ErrStale must map to ESTALE")
	}
}

func TestToErrno(t *testing.T) {
	var logs bytes.Buffer
	l := log.New(&logs, "", 0)
	cases := []struct {
		err  error
		want syscall.Errno
		logs bool
	}{
		{nil, 0, false},
		{fmt.Errorf("x: %w", os.ErrNotExist), syscall.ENOENT, false},
		{fmt.Errorf("x: %w", ErrStale), syscall.ESTALE, true},
		{fmt.Errorf("x: %w", os.ErrPermission), syscall.EACCES, true},
		{fmt.Errorf("x: %w", errors.ErrUnsupported), syscall.ENOTSUP, true},
		{fmt.Errorf("x: %w", syscall.ENOTEMPTY), syscall.ENOTEMPTY, false},
		{fmt.Errorf("x: %w", syscall.ENOSPC), syscall.ENOSPC, true},
		{context.DeadlineExceeded, syscall.ETIMEDOUT, true},
		{context.Canceled, syscall.EINTR, false},
		{io.ErrUnexpectedEOF, syscall.EIO, true},
		{errors.New("S3 InternalError"), syscall.EIO, true},
	}
	for _, c := range cases {
		logs.Reset()
		if got := toErrno(l, "op", c.err); got != c.want {
			t.Errorf("toErrno(%v) = %v, want %v", c.err, got, c.want)
		}
		if (logs.Len() > 0) != c.logs {
			t.Errorf("toErrno(%v) logged %q", c.err, logs.String())
		}
	}
}

// The first entry of a huge directory arrives after one page, not after the
// whole listing.
func TestListerIsLazy(t *testing.T) {
	f, m, _ := newTestFS(t, Config{})
	for i := 0; i < 5000; i++ {
		m.PutBytes("bkt", fmt.Sprintf("huge/k%05d", i), nil)
	}
	l := newLister(f, "bkt", "huge/")
	l.readahead = true
	defer l.close()
	if _, ok, err := l.next(context.Background()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	time.Sleep(10 * time.Millisecond) // let the one page of readahead land
	if n := m.Calls("List"); n > 2 {
		t.Fatalf("%d pages listed before the first entry was consumed, want at most 2", n)
	}
}

// Changing a few bytes of a large object re-sends only the part that holds
// them; the other parts are copied server side.
func TestStagedCommitCopiesUntouchedParts(t *testing.T) {
	f, m, _ := newTestFS(t, Config{BlockSize: 1 << 20, PartSize: MinPartSize})
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), (4*MinPartSize+100)/16)
	m.PutBytes("bkt", "big", big)
	info, _ := m.Stat(ctx, "bkt", "big")
	st, err := newStaging(f, "bkt", info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if err := st.write(ctx, []byte("PATCH"), 2*MinPartSize+10); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{"CopyPart": m.Calls("CopyPart"), "PutPart": m.Calls("PutPart"), "ReadAt": m.Calls("ReadAt")}
	if _, err := st.commit(ctx, "big", int64(len(big)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	copies, puts := m.Calls("CopyPart")-before["CopyPart"], m.Calls("PutPart")-before["PutPart"]
	if copies != 4 || puts != 1 { // 5 parts: 4 of MinPartSize and a 96-byte tail
		t.Fatalf("%d parts copied and %d sent, want 4 and 1", copies, puts)
	}
	want := append([]byte(nil), big...)
	copy(want[2*MinPartSize+10:], "PATCH")
	if got, _ := m.Data("bkt", "big"); !bytes.Equal(got, want) {
		t.Fatal("committed bytes differ")
	}
}
