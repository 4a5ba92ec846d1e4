package posixtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func namespaceTests() []Test {
	return []Test{
		{"MkdirRmdirErrors", mkdirRmdir},
		{"RenameDirectoryThenReadChildren", renameDirectory},
		{"RenameFileKeepsMtime", renameKeepsMtime},
		{"RenameErrors", renameErrors},
		{"RenameUnsavedOverThenUnlink", renameUnsavedOver},
		{"SymlinkReadlink", symlinks},
		{"SpecialFiles", specialFiles},
		{"HardLinkRefused", hardLink},
		{"LongNames", longNames},
		{"ReaddirAfterChanges", readdirAfterChanges},
	}
}

func mkdirRmdir(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o750); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "mkdir of an existing directory", os.Mkdir(d, 0o755), syscall.EEXIST)
	write(t, filepath.Join(d, "f"), []byte("x"))
	wantErrno(t, "rmdir of a non-empty directory", syscall.Rmdir(d), syscall.ENOTEMPTY)
	wantErrno(t, "rmdir of a file", syscall.Rmdir(filepath.Join(d, "f")), syscall.ENOTDIR)
	wantErrno(t, "unlink of a directory", syscall.Unlink(d), syscall.EISDIR)
	if err := os.Remove(filepath.Join(d, "f")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Fatalf("removed directory: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if n := names(t, dir); len(n) != 0 {
		t.Fatalf("left: %v", n)
	}
}

func renameDirectory(t *testing.T, dir string) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		write(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), []byte(fmt.Sprint(i)))
	}
	write(t, filepath.Join(src, "sub", "deep"), []byte("deep"))
	// Look everything up first, so the kernel and kfs have it cached.
	for i := 0; i < 20; i++ {
		read(t, filepath.Join(src, fmt.Sprintf("f%02d", i)))
	}
	dst := filepath.Join(dir, "dst")
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if got := string(read(t, filepath.Join(dst, fmt.Sprintf("f%02d", i)))); got != fmt.Sprint(i) {
			t.Fatalf("child %d after the rename: %q", i, got)
		}
	}
	if got := string(read(t, filepath.Join(dst, "sub", "deep"))); got != "deep" {
		t.Fatalf("deep child: %q", got)
	}
	f, err := os.OpenFile(filepath.Join(dst, "f00"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("+"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dst, "f01"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatalf("source after the rename: %v", err)
	}
	if n := names(t, dst); len(n) != 21 {
		t.Fatalf("renamed directory lists %d names", len(n))
	}
}

func renameKeepsMtime(t *testing.T, dir string) {
	p, q := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write(t, p, []byte("x"))
	old := stat(t, p)
	if err := os.Rename(p, q); err != nil {
		t.Fatal(err)
	}
	st := stat(t, q)
	if st.Mtim != old.Mtim {
		t.Fatalf("mtime changed on rename: %v -> %v", old.Mtim, st.Mtim)
	}
}

func renameErrors(t *testing.T, dir string) {
	d, f := filepath.Join(dir, "d"), filepath.Join(dir, "f")
	os.Mkdir(d, 0o755)
	write(t, filepath.Join(d, "inside"), []byte("x"))
	write(t, f, []byte("x"))
	e := filepath.Join(dir, "e")
	os.Mkdir(e, 0o755)
	wantErrno(t, "rename a file over a directory", syscall.Rename(f, e), syscall.EISDIR)
	wantErrno(t, "rename a directory over a file", syscall.Rename(e, f), syscall.ENOTDIR)
	wantErrno(t, "rename a directory over a non-empty one", syscall.Rename(e, d), syscall.ENOTEMPTY)
	wantErrno(t, "rename of a missing name", syscall.Rename(filepath.Join(dir, "none"), f), syscall.ENOENT)
	if err := syscall.Rename(d, e); err != nil {
		t.Fatalf("rename over an empty directory: %v", err)
	}
	if got := string(read(t, filepath.Join(e, "inside"))); got != "x" {
		t.Fatal(got)
	}
}

func symlinks(t *testing.T, dir string) {
	l := filepath.Join(dir, "link")
	if err := os.Symlink("target/of/link", l); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(l); err != nil || got != "target/of/link" {
		t.Fatalf("readlink = %q %v", got, err)
	}
	if st := stat(t, l); st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Fatalf("lstat mode %o", st.Mode)
	}
	write(t, filepath.Join(dir, "real"), []byte("through the link"))
	if err := os.Symlink("real", filepath.Join(dir, "rel")); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, filepath.Join(dir, "rel"))); got != "through the link" {
		t.Fatalf("read through a link: %q", got)
	}
}

func specialFiles(t *testing.T, dir string) {
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, fifo); st.Mode != syscall.S_IFIFO|0o640 {
		t.Fatalf("fifo mode %o", st.Mode)
	}
	reg := filepath.Join(dir, "reg")
	if err := syscall.Mknod(reg, syscall.S_IFREG|0o600, 0); err != nil {
		t.Fatalf("mknod S_IFREG: %v", err)
	}
	if st := stat(t, reg); st.Mode != syscall.S_IFREG|0o600 || st.Size != 0 {
		t.Fatalf("mknod'd file: mode %o size %d", st.Mode, st.Size)
	}
	sock := filepath.Join(dir, "sock")
	if err := syscall.Mknod(sock, syscall.S_IFSOCK|0o600, 0); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, sock); st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		t.Fatalf("socket mode %o", st.Mode)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == "fifo" && e.Type()&os.ModeNamedPipe == 0 {
			t.Fatalf("readdir type of the fifo: %v", e.Type())
		}
	}
}

func hardLink(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("x"))
	wantErrno(t, "link", os.Link(p, filepath.Join(dir, "g")), syscall.ENOTSUP)
}

func longNames(t *testing.T, dir string) {
	wantErrno(t, "create of a 256-byte name", os.WriteFile(filepath.Join(dir, strings.Repeat("n", 256)), nil, 0o644), syscall.ENAMETOOLONG)
	wantErrno(t, "mkdir of a 256-byte name", os.Mkdir(filepath.Join(dir, strings.Repeat("d", 256)), 0o755), syscall.ENAMETOOLONG)
	ok := filepath.Join(dir, strings.Repeat("m", 200))
	write(t, ok, []byte("x"))
	if got := string(read(t, ok)); got != "x" {
		t.Fatal(got)
	}
}

func readdirAfterChanges(t *testing.T, dir string) {
	for _, n := range []string{"b", "a", "c"} {
		write(t, filepath.Join(dir, n), []byte(n))
	}
	os.Mkdir(filepath.Join(dir, "z"), 0o755)
	if got := strings.Join(names(t, dir), ","); got != "a,b,c,z" {
		t.Fatalf("listing %s", got)
	}
	os.Remove(filepath.Join(dir, "b"))
	os.Rename(filepath.Join(dir, "c"), filepath.Join(dir, "d"))
	if got := strings.Join(names(t, dir), ","); got != "a,d,z" {
		t.Fatalf("listing after remove and rename: %s", got)
	}
}

// A file still being written, renamed over a stored one and then
// unlinked, takes the replaced file with it: the name must not show the
// replaced bytes again (they were still in the bucket, as the new file
// had not been uploaded yet). Moved on instead of unlinked, it leaves
// nothing of the replaced file behind either.
func renameUnsavedOver(t *testing.T, dir string) {
	old, tmp := filepath.Join(dir, "old"), filepath.Join(dir, "tmp")
	for _, then := range []string{"unlink", "rename"} {
		write(t, old, []byte("replaced bytes"))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, old); err != nil {
			t.Fatal(err)
		}
		moved := filepath.Join(dir, "moved")
		if then == "unlink" {
			err = os.Remove(old)
		} else {
			err = os.Rename(old, moved)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Fatalf("%s: the replaced file shows again: %v", then, err)
		}
		g, err := os.OpenFile(old, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 32)
		n, _ := g.Read(b)
		g.Close()
		if n != 0 {
			t.Fatalf("%s: a new file under the name holds %q", then, b[:n])
		}
		if then == "rename" {
			if got := read(t, moved); string(got) != "new" {
				t.Fatalf("the moved file holds %q", got)
			}
			os.Remove(moved)
		}
		os.Remove(old)
	}
}
