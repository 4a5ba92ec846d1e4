package posixtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func dataTests() []Test {
	return []Test{
		{"WriteReadSizes", writeReadSizes},
		{"TwoDescriptorsShareOneFile", twoDescriptors},
		{"TenConcurrentWriters", tenWriters},
		{"ReadSeesAnotherHandlesWrites", readSeesWrites},
		{"UnlinkWhileOpenStaysGone", unlinkWhileOpen},
		{"RenameOverWhileOpen", renameOverWhileOpen},
		{"TruncateGrowShrink", truncateGrowShrink},
		{"OpenTruncAndAppend", openTruncAndAppend},
		{"SparseGrowIsCheap", sparseGrow},
		{"SavePatternWithFsyncOfDirectory", savePattern},
		{"SeekBackAfterLargeSequentialWrite", seekBack},
		{"CopyOntoAnExistingFile", copyOverExisting},
		{"ExecWhileAFileIsOpenForWriting", execWhileOpen},
	}
}

func writeReadSizes(t *testing.T, dir string) {
	for _, n := range []int{0, 1, 4095, 4096, 100000, 1 << 20, 5<<20 + 3} {
		p := filepath.Join(dir, fmt.Sprintf("f%d", n))
		data := pattern(n, int64(n))
		write(t, p, data)
		mustEqual(t, p, read(t, p), data)
		if st := stat(t, p); st.Size != int64(n) {
			t.Fatalf("%s: size %d", p, st.Size)
		}
	}
}

// Two descriptors of one file write different places; both writes survive
// (each close returns 0 only with every handle's bytes in the store).
func twoDescriptors(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	data := pattern(100000, 1)
	write(t, p, data)
	a, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteAt([]byte("AAAAAAAAAA"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt([]byte("BBBBBBBBBB"), 50000); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("first close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	copy(data, "AAAAAAAAAA")
	copy(data[50000:], "BBBBBBBBBB")
	mustEqual(t, "after both closes", read(t, p), data)
}

func tenWriters(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	data := pattern(200000, 2)
	write(t, p, data)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				errs <- err
				return
			}
			if _, err := f.WriteAt([]byte(fmt.Sprintf("<writer %d>", w)), int64(w*20000+7)); err != nil {
				errs <- err
			}
			if err := f.Close(); err != nil {
				errs <- fmt.Errorf("close of writer %d: %w", w, err)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := 0; w < 10; w++ {
		copy(data[w*20000+7:], fmt.Sprintf("<writer %d>", w))
	}
	mustEqual(t, "ten writers", read(t, p), data)
}

func readSeesWrites(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("0123456789"))
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.WriteAt([]byte("xy"), 3); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := r.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "012xy56789" {
		t.Fatalf("reader saw %q before the writer closed", buf)
	}
}

func unlinkWhileOpen(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("written after unlink")); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 {
		t.Fatalf("fstat of an unlinked file: nlink %d (%v)", st.Nlink, err)
	}
	buf := make([]byte, 7)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "written" {
		t.Fatalf("read back through the open handle: %q %v", buf, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("unlinked file came back: %v", err)
	}
	// An existing file, open for reading, unlinked: the reader keeps reading.
	q := filepath.Join(dir, "g")
	data := pattern(300000, 3)
	write(t, q, data)
	r, err := os.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(q); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := r.ReadAt(got, 0); err != nil {
		t.Fatalf("read of an unlinked open file: %v", err)
	}
	r.Close()
	mustEqual(t, "unlinked while open", got, data)
	if _, err := os.Stat(q); !os.IsNotExist(err) {
		t.Fatalf("unlinked file came back: %v", err)
	}
	if n := names(t, dir); len(n) != 0 {
		t.Fatalf("left in the directory: %v", n)
	}
}

func renameOverWhileOpen(t *testing.T, dir string) {
	p, q := filepath.Join(dir, "target"), filepath.Join(dir, "new")
	write(t, p, []byte("old target"))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, q, []byte("the new one"))
	if err := os.Rename(q, p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("OLD"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, p)); got != "the new one" {
		t.Fatalf("after the replaced file's handle closed: %q", got)
	}
}

func truncateGrowShrink(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	data := pattern(10000, 4)
	write(t, p, data)
	if err := os.Truncate(p, 20000); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), data...), make([]byte, 10000)...)
	mustEqual(t, "grown", read(t, p), want)
	if err := os.Truncate(p, 3); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "shrunk", read(t, p), data[:3])
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("Z"), 5); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "ftruncate and write past the end", read(t, p), []byte{data[0], 0, 0, 0, 0, 'Z'})
}

func openTruncAndAppend(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("first version, long"))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("+more"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, p)); got != "new+more" {
		t.Fatalf("after O_TRUNC and O_APPEND: %q", got)
	}
}

func sparseGrow(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(11 << 30); err != nil {
		t.Fatalf("truncate to 11 GiB: %v", err)
	}
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, p); st.Size != 4096 {
		t.Fatalf("size %d", st.Size)
	}
	g, err := os.Create(filepath.Join(dir, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "truncate past 5 TiB", g.Truncate(6<<40), syscall.EFBIG)
	g.Close()
}

// The editor's save: write a temporary file, fsync it, rename it over the
// original, fsync the directory.
func savePattern(t *testing.T, dir string) {
	p, tmp := filepath.Join(dir, "doc.txt"), filepath.Join(dir, ".doc.txt.swp")
	write(t, p, []byte("version 1"))
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("version 2"))
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of the directory: %v", err)
	}
	d.Close()
	if got := string(read(t, p)); got != "version 2" {
		t.Fatalf("saved %q", got)
	}
	if n := names(t, dir); len(n) != 1 {
		t.Fatalf("directory holds %v", n)
	}
}

// A writer that streamed more than two parts then seeks back (a zip
// writer patching a header) loses nothing.
func seekBack(t *testing.T, dir string) {
	p := filepath.Join(dir, "archive.zip")
	data := pattern(40<<20+17, 5)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := f.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.WriteAt([]byte("PK-HEADER"), 4); err != nil {
		t.Fatal(err)
	}
	copy(data[4:], "PK-HEADER")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "after seeking back", read(t, p), data)
}

// copyOverExisting: cp and cat onto a file that exists (made by an earlier
// copy, so a shortcut remembering that copy would be tempted), once, twice
// and three times, and cp -r of a tree a second time, leave the source's
// bytes in every copy (the issue: the second cp left 0 bytes).
func copyOverExisting(t *testing.T, dir string) {
	x, y := filepath.Join(dir, "x"), filepath.Join(dir, "y")
	data := []byte("hello world\n")
	write(t, x, data)
	for i := 1; i <= 3; i++ {
		run(t, "cp", x, y)
		mustEqual(t, fmt.Sprintf("y after cp #%d", i), read(t, y), data)
		if st := stat(t, y); st.Size != int64(len(data)) {
			t.Fatalf("cp #%d: size %d", i, st.Size)
		}
	}
	z := filepath.Join(dir, "z")
	for i := 1; i <= 2; i++ {
		run(t, "sh", "-c", `cat "$1" > "$2"`, "sh", x, z)
		mustEqual(t, fmt.Sprintf("z after cat #%d", i), read(t, z), data)
	}
	// A different source onto a file that was a copy of x: the new bytes.
	w := filepath.Join(dir, "w")
	other := pattern(70000, 7)
	write(t, w, other)
	run(t, "cp", w, y)
	mustEqual(t, "y after cp of another file", read(t, y), other)
	run(t, "cp", x, y)
	mustEqual(t, "y after cp of x again", read(t, y), data)
	// Emptied and shortened after a copy: what was asked, not the copy.
	run(t, "sh", "-c", `: > "$1"`, "sh", y)
	if st := stat(t, y); st.Size != 0 {
		t.Fatalf(": > y after a copy: size %d", st.Size)
	}
	run(t, "cp", x, y)
	run(t, "truncate", "-s", "5", y)
	mustEqual(t, "y truncated after a copy", read(t, y), data[:5])
	// A tree, twice.
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	files := map[string][]byte{"a": pattern(10, 1), "sub/b": pattern(300000, 2), "sub/c": nil}
	for name, b := range files {
		write(t, filepath.Join(src, name), b)
	}
	for i := 1; i <= 2; i++ {
		run(t, "cp", "-r", src+"/.", dst)
		for name, b := range files {
			mustEqual(t, fmt.Sprintf("%s after cp -r #%d", name, i), read(t, filepath.Join(dst, name)), b)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v %s", name, args, err, out)
	}
}

// execWhileOpen: a process that starts a program while it holds a file of
// the mount open for writing (Go's exec closes the child's copy during
// execve) is not stalled, and the file is stored whole at its own close.
// It used to deadlock: the close's check of the child's descriptors waited
// for the exec, which waited for the close.
func execWhileOpen(t *testing.T, dir string) {
	p := filepath.Join(dir, "open-across-exec")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(300000, 9)
	f.Write(data[:100000])
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 3; i++ {
			if err := exec.Command("true").Run(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("starting a program while a file of the mount is open for writing hangs")
	}
	f.Write(data[100000:])
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, p, read(t, p), data)
}
