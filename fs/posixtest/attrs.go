package posixtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func attrTests() []Test {
	return []Test{
		{"ChmodChownShown", chmodChown},
		{"CreateModeZero", createModeZero},
		{"WriteUpdatesMtimeAndCtime", writeTimes},
		{"ChmodMovesCtimeOnly", chmodCtime},
		{"AtimeSetApart", atimeApart},
		{"DirectoryAttributes", dirAttributes},
		{"ParentTimesOnChange", parentTimes},
		{"DirectoryTimesOnRenameAndXattr", dirTimesRenameXattr},
		{"UserXattrs", userXattrs},
		{"XattrsPastTheStoreLimit", bigXattrs},
		{"PermissionsForAnotherUser", permissions},
	}
}

func chmodChown(t *testing.T, dir string) {
	p := filepath.Join(dir, "script.sh")
	write(t, p, []byte("#!/bin/sh\necho hi\n"))
	if err := os.Chmod(p, 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	st := stat(t, p)
	if st.Mode != syscall.S_IFREG|0o751 || st.Uid != 1234 || st.Gid != 5678 {
		t.Fatalf("after chmod/chown: mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
	}
	if got := string(read(t, p)); !strings.Contains(got, "echo hi") {
		t.Fatalf("content after chmod: %q", got)
	}
}

func createModeZero(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	old := syscall.Umask(0)
	fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_WRONLY, 0)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	if st := stat(t, p); st.Mode != syscall.S_IFREG {
		t.Fatalf("open(O_CREAT, 0000) made mode %o", st.Mode)
	}
}

func writeTimes(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("x"))
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, p); st.Mtim.Sec != past.Unix() {
		t.Fatalf("touch -d: mtime %d", st.Mtim.Sec)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("y"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st := stat(t, p)
	if now := time.Now().Unix(); st.Mtim.Sec < now-60 || st.Ctim.Sec < now-60 {
		t.Fatalf("a write after touch -d kept the old times: mtime %d ctime %d", st.Mtim.Sec, st.Ctim.Sec)
	}
	// cp -p: the explicit mtime set after the last write wins.
	q := filepath.Join(dir, "g")
	g, err := os.Create(q)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("copied"))
	if err := unix.Futimes(int(g.Fd()), []unix.Timeval{unix.NsecToTimeval(past.UnixNano()), unix.NsecToTimeval(past.UnixNano())}); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, q); st.Mtim.Sec != past.Unix() {
		t.Fatalf("cp -p: mtime %d, want %d", st.Mtim.Sec, past.Unix())
	}
}

func chmodCtime(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("x"))
	past := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(p, past, past)
	before := stat(t, p)
	time.Sleep(20 * time.Millisecond)
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	st := stat(t, p)
	if st.Mtim != before.Mtim {
		t.Fatalf("chmod moved mtime %v -> %v", before.Mtim, st.Mtim)
	}
	if st.Ctim.Sec < time.Now().Unix()-60 {
		t.Fatalf("chmod did not move ctime: %v", st.Ctim)
	}
}

func atimeApart(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("x"))
	m := time.Date(2015, 5, 5, 5, 5, 5, 500, time.UTC)
	a := time.Date(2020, 6, 6, 6, 6, 6, 0, time.UTC)
	if err := os.Chtimes(p, a, m); err != nil {
		t.Fatal(err)
	}
	st := stat(t, p)
	if st.Atim.Sec != a.Unix() || st.Mtim.Sec != m.Unix() || st.Mtim.Nsec != 500 {
		t.Fatalf("atime %v mtime %v, want %v and %v", st.Atim, st.Mtim, a, m)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()), {Nsec: unix.UTIME_OMIT}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
		t.Fatal(err)
	}
	st = stat(t, p)
	if st.Mtim.Sec != m.Unix() || st.Atim.Sec != time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Fatalf("touch -a moved mtime or missed atime: %v %v", st.Atim, st.Mtim)
	}
}

func dirAttributes(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	old := syscall.Umask(0)
	err := os.Mkdir(d, 0o710)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if st := stat(t, d); st.Mode != syscall.S_IFDIR|0o710 {
		t.Fatalf("mkdir mode %o", st.Mode)
	}
	if err := os.Chmod(d, 0o705); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, 42, 43); err != nil {
		t.Fatal(err)
	}
	past := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(d, past, past); err != nil {
		t.Fatal(err)
	}
	st := stat(t, d)
	if st.Mode != syscall.S_IFDIR|0o705 || st.Uid != 42 || st.Gid != 43 || st.Mtim.Sec != past.Unix() {
		t.Fatalf("directory attributes: mode %o uid %d gid %d mtime %d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
	}
	again := stat(t, d)
	if again.Ctim != st.Ctim || again.Mtim != st.Mtim {
		t.Fatalf("directory times moved without a change: %v/%v -> %v/%v", st.Ctim, st.Mtim, again.Ctim, again.Mtim)
	}
}

func parentTimes(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	os.Mkdir(d, 0o755)
	past := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(d, past, past)
	write(t, filepath.Join(d, "f"), []byte("x"))
	st := stat(t, d)
	if st.Mtim.Sec < time.Now().Unix()-60 || st.Ctim.Sec < time.Now().Unix()-60 {
		t.Fatalf("creating an entry did not move the parent's times: %v %v", st.Mtim, st.Ctim)
	}
}

func userXattrs(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	write(t, p, []byte("x"))
	if err := unix.Setxattr(p, "user.key1", []byte("value one"), 0); err != nil {
		t.Fatalf("setxattr user.key1: %v", err)
	}
	bin := []byte{0, 1, 2, 255, '%', '"', '{'}
	if err := unix.Setxattr(p, "user.binary", bin, unix.XATTR_CREATE); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "XATTR_CREATE of an existing name", unix.Setxattr(p, "user.key1", []byte("x"), unix.XATTR_CREATE), syscall.EEXIST)
	wantErrno(t, "XATTR_REPLACE of a missing name", unix.Setxattr(p, "user.none", []byte("x"), unix.XATTR_REPLACE), syscall.ENODATA)
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "user.binary", buf)
	if err != nil || !bytes.Equal(buf[:n], bin) {
		t.Fatalf("getxattr user.binary = %q %v", buf[:n], err)
	}
	n, err = unix.Listxattr(p, buf)
	if err != nil || !strings.Contains(string(buf[:n]), "user.key1\x00") || !strings.Contains(string(buf[:n]), "user.binary\x00") {
		t.Fatalf("listxattr = %q %v", buf[:n], err)
	}
	wantErrno(t, "short buffer", func() error { _, err := unix.Getxattr(p, "user.key1", make([]byte, 2)); return err }(), syscall.ERANGE)
	// Attributes survive a write and a rename.
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("more"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "g")
	if err := os.Rename(p, q); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Getxattr(q, "user.key1", buf); err != nil || string(buf[:n]) != "value one" {
		t.Fatalf("after a write and a rename: %q %v", buf[:n], err)
	}
	if err := unix.Removexattr(q, "user.key1"); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "removed attribute", func() error { _, err := unix.Getxattr(q, "user.key1", buf); return err }(), syscall.ENODATA)
	wantErrno(t, "trusted namespace", unix.Setxattr(q, "trusted.x", []byte("1"), 0), syscall.EOPNOTSUPP)
	dirAndOpenXattrs(t, dir)
}

// dirAndOpenXattrs: user attributes on a directory and on a file being
// written.
func dirAndOpenXattrs(t *testing.T, dir string) {
	buf := make([]byte, 64)
	d := filepath.Join(dir, "d")
	os.Mkdir(d, 0o755)
	if err := unix.Setxattr(d, "user.dir", []byte("yes"), 0); err != nil {
		t.Fatalf("setxattr on a directory: %v", err)
	}
	if n, err := unix.Getxattr(d, "user.dir", buf); err != nil || string(buf[:n]) != "yes" {
		t.Fatalf("directory attribute %q %v", buf[:n], err)
	}
	w, _ := os.Create(filepath.Join(dir, "open"))
	if err := unix.Fsetxattr(int(w.Fd()), "user.early", []byte("set while open"), 0); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Getxattr(filepath.Join(dir, "open"), "user.early", buf); err != nil || string(buf[:n]) != "set while open" {
		t.Fatalf("attribute set while open: %q %v", buf[:n], err)
	}
}

// Another user gets exactly what a local filesystem would give them.
func permissions(t *testing.T, dir string) {
	if os.Geteuid() != 0 {
		t.Fatal("the permission test runs as root (it switches to nobody)")
	}
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "secret")
	write(t, secret, []byte("root only"))
	os.Chmod(secret, 0o600)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o700)
	write(t, filepath.Join(private, "inner"), []byte("x"))
	shared := filepath.Join(dir, "shared")
	os.Mkdir(shared, 0o755)
	syscall.Chmod(shared, 0o1777)
	write(t, filepath.Join(shared, "roots"), []byte("x"))
	q := func(p string) string { return "'" + p + "'" }
	for _, c := range []struct{ what, script string }{
		{"read a 0600 file", "cat " + q(secret)},
		{"append to a 0600 file", "echo x >> " + q(secret)},
		{"truncate with O_RDONLY|O_TRUNC", "perl -e 'use Fcntl; sysopen(F, $ARGV[0], O_RDONLY|O_TRUNC) or exit 1' " + q(secret)},
		{"chmod root's file", "chmod 666 " + q(secret)},
		{"rename in a directory it cannot write", "mv " + q(secret) + " " + q(filepath.Join(dir, "taken"))},
		{"delete in a directory it cannot write", "rm -f " + q(secret)},
		{"list a 0700 directory", "ls " + q(private)},
		{"read in a 0700 directory", "cat " + q(filepath.Join(private, "inner"))},
		{"delete root's file in a sticky directory", "rm -f " + q(filepath.Join(shared, "roots"))},
		{"setxattr on root's file", "setfattr -n user.x -v 1 " + q(secret) + " 2>&1 || exit 1"},
		{"create in root's 0755 directory", "touch " + q(filepath.Join(dir, "new"))},
	} {
		if code, out := asNobody(t, c.script); code == 0 {
			t.Errorf("nobody could %s (%s)", c.what, out)
		}
	}
	if got := string(read(t, secret)); got != "root only" {
		t.Fatalf("root's file changed to %q", got)
	}
	if st := stat(t, secret); st.Mode != syscall.S_IFREG|0o600 {
		t.Fatalf("root's file mode %o", st.Mode)
	}
	if code, out := asNobody(t, "echo mine > "+q(filepath.Join(shared, "nobodys"))+" && cat "+q(filepath.Join(shared, "nobodys"))); code != 0 || out != "mine" {
		t.Fatalf("nobody in a 1777 directory: %d %q", code, out)
	}
	if st := stat(t, filepath.Join(shared, "nobodys")); st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("nobody's file is owned by %d:%d", st.Uid, st.Gid)
	}
}

// bigXattrs: attributes the store cannot carry (S3 and MinIO allow 2 KiB
// of user metadata per object) are refused by setxattr, E2BIG for one that
// could never fit and ENOSPC for one that does not fit beside the others,
// and never cost the file: on a file being written and on a stored one the
// bytes and the attributes that fit are kept.
func bigXattrs(t *testing.T, dir string) {
	data := pattern(100000, 3)
	buf := make([]byte, 4096)
	check := func(p string) {
		t.Helper()
		mustEqual(t, p, read(t, p), data)
		if n, err := unix.Getxattr(p, "user.small", buf); err != nil || n != 900 {
			t.Fatalf("%s: the attribute that fits: %d %v", p, n, err)
		}
		for _, name := range []string{"user.huge", "user.second"} {
			wantErrno(t, p+" "+name, func() error { _, err := unix.Getxattr(p, name, buf); return err }(), syscall.ENODATA)
		}
	}
	// Being written: set through the open descriptor, as cp -a and tar do.
	p := filepath.Join(dir, "open")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	wantErrno(t, "an attribute past the limit alone", unix.Fsetxattr(int(w.Fd()), "user.huge", bytes.Repeat([]byte("h"), 1600), 0), syscall.E2BIG)
	if err := unix.Fsetxattr(int(w.Fd()), "user.small", bytes.Repeat([]byte("s"), 900), 0); err != nil {
		t.Fatalf("an attribute that fits: %v", err)
	}
	wantErrno(t, "a second that does not fit beside it", unix.Fsetxattr(int(w.Fd()), "user.second", bytes.Repeat([]byte("2"), 900), 0), syscall.ENOSPC)
	if err := w.Close(); err != nil {
		t.Fatalf("close after refused attributes: %v", err)
	}
	check(p)
	// Stored.
	q := filepath.Join(dir, "stored")
	write(t, q, data)
	wantErrno(t, "stored: past the limit alone", unix.Setxattr(q, "user.huge", bytes.Repeat([]byte("h"), 1600), 0), syscall.E2BIG)
	if err := unix.Setxattr(q, "user.small", bytes.Repeat([]byte("s"), 900), 0); err != nil {
		t.Fatalf("stored: an attribute that fits: %v", err)
	}
	wantErrno(t, "stored: a second that does not fit", unix.Setxattr(q, "user.second", bytes.Repeat([]byte("2"), 900), 0), syscall.ENOSPC)
	check(q)
	// cp -a of a local file whose attribute the store cannot carry: the
	// bytes arrive (cp says what it could not copy).
	local := filepath.Join(os.TempDir(), "kfs-bigxattr-"+filepath.Base(dir))
	defer os.Remove(local)
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(local, "user.huge", bytes.Repeat([]byte("h"), 1600), 0); err != nil {
		t.Skipf("the local disk takes no user xattrs: %v", err)
	}
	exec.Command("cp", "-a", local, filepath.Join(dir, "copied")).Run()
	mustEqual(t, "cp -a of a file with a huge attribute", read(t, filepath.Join(dir, "copied")), data)
}

// dirTimesRenameXattr: mv of a directory keeps its atime and mtime and
// moves its ctime; setfattr on a directory moves its ctime only.
func dirTimesRenameXattr(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(d, "f"), []byte("x"))
	past := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(d, past, past); err != nil {
		t.Fatal(err)
	}
	before := stat(t, d)
	e := filepath.Join(dir, "e")
	if err := os.Rename(d, e); err != nil {
		t.Fatal(err)
	}
	after := stat(t, e)
	if after.Mtim.Sec != past.Unix() || after.Atim.Sec != past.Unix() {
		t.Fatalf("mv of a directory moved its times: atime %d mtime %d, want %d", after.Atim.Sec, after.Mtim.Sec, past.Unix())
	}
	if after.Ctim.Sec < time.Now().Unix()-60 || after.Ctim.Sec < before.Ctim.Sec {
		t.Fatalf("mv of a directory did not move its ctime: %v -> %v", before.Ctim, after.Ctim)
	}
	if err := os.Chtimes(e, past, past); err != nil {
		t.Fatal(err)
	}
	ct := stat(t, e).Ctim
	time.Sleep(1100 * time.Millisecond)
	if err := unix.Setxattr(e, "user.note", []byte("n"), 0); err != nil {
		t.Fatal(err)
	}
	st := stat(t, e)
	if st.Mtim.Sec != past.Unix() || !(st.Ctim.Sec > ct.Sec || st.Ctim.Sec == ct.Sec && st.Ctim.Nsec > ct.Nsec) {
		t.Fatalf("setfattr on a directory: mtime %d (want %d kept), ctime %v -> %v (want later)", st.Mtim.Sec, past.Unix(), ct, st.Ctim)
	}
}
