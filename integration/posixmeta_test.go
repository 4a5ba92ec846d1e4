package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/pkg/xattr"
)

func sdkMeta(t *testing.T, bucket, key string) map[string]string {
	t.Helper()
	st, err := client(t).StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	out := map[string]string{}
	for k, v := range st.UserMetadata {
		out[strings.ToLower(k)] = v
	}
	return out
}

// In a directory whose first objects were written by another tool, what
// kfs stores (mode, owner, times, symlinks) shows on every entry, on a
// fresh mount, and a second rsync -a copies nothing.
func TestPosixMetadataOnExistingData(t *testing.T) {
	b := newBucket(t)
	putMany(t, b, []string{"data/aaa-first.csv", "data/bbb.csv"}, func(k string) []byte { return []byte(k) })
	m := mountKFS(t, b)
	os.WriteFile(m.path("data/run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o644)
	sh(t, "chmod", "+x", m.path("data/run.sh"))
	sh(t, "chown", "123:456", m.path("data/bbb.csv"))
	sh(t, "touch", "-d", "2001-02-03 04:05:06", m.path("data/aaa-first.csv"))
	sh(t, "ln", "-s", "run.sh", m.path("data/link"))
	meta := sdkMeta(t, b, "data/run.sh")
	if meta["mode"] != fmt.Sprint(syscall.S_IFREG|0o755) || meta["mtime"] == "" || meta["ctime"] == "" {
		t.Fatalf("s3fs metadata after chmod: %v", meta)
	}
	m2 := mountKFS(t, b) // a fresh mount of the same data
	out := sh(t, "ls", "-ln", "--time-style=+%Y-%m-%d", m2.path("data"))
	for _, want := range []string{"-rwxr-xr-x", " 123 456 ", "2001-02-03", "link -> run.sh"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ls -l on a fresh mount lacks %q:\n%s", want, out)
		}
	}
	if got := sh(t, m2.path("data/run.sh")); got != "ran\n" {
		t.Fatalf("running the script: %q", got)
	}
	src := t.TempDir()
	for i := 0; i < 20; i++ {
		os.WriteFile(fmt.Sprintf("%s/f%02d", src, i), []byte(fmt.Sprint(i)), 0o640)
	}
	os.Chtimes(src+"/f00", time.Unix(1e9, 0), time.Unix(1e9, 0))
	sh(t, "rsync", "-a", src+"/", m2.path("copy")+"/")
	m3 := mountKFS(t, b)
	stats := sh(t, "rsync", "-a", "--stats", src+"/", m3.path("copy")+"/")
	if !strings.Contains(stats, "Number of regular files transferred: 0") {
		t.Fatalf("a second rsync -a after a remount copied files again:\n%s", stats)
	}
}

// Directory attributes live on the marker object and survive a remount;
// tar of a directory made through kfs sees no time jump.
func TestDirectoryAttributesAndTar(t *testing.T) {
	b := newBucket(t)
	put(t, b, "prefixonly/x", []byte("x"))
	m := mountKFS(t, b)
	sh(t, "mkdir", "-m", "0750", m.path("made"))
	sh(t, "chmod", "0711", m.path("prefixonly"))
	sh(t, "touch", "-d", "2002-01-01", m.path("prefixonly"))
	os.WriteFile(m.path("made/f"), []byte("data"), 0o644)
	tarOut, err := exec.Command("tar", "cf", "/dev/null", "-C", m.dir, "made").CombinedOutput()
	if err != nil {
		t.Fatalf("tar c of a directory made through kfs: %v\n%s", err, tarOut)
	}
	m2 := mountKFS(t, b)
	var st syscall.Stat_t
	syscall.Stat(m2.path("made"), &st)
	if st.Mode != syscall.S_IFDIR|0o750 {
		t.Fatalf("mkdir -m 0750 after a remount: %o", st.Mode)
	}
	syscall.Stat(m2.path("prefixonly"), &st)
	if st.Mode != syscall.S_IFDIR|0o711 || time.Unix(st.Mtim.Sec, 0).UTC().Year() != 2002 {
		t.Fatalf("a prefix-only directory's attributes after a remount: %o %v", st.Mode, st.Mtim)
	}
	if keys := listKeys(t, b, "prefixonly/"); len(keys) != 2 {
		t.Fatalf("keys under prefixonly/: %v (want the marker made for its attributes)", keys)
	}
}

// user.* attributes are stored in s3fs's form, survive a remount and a
// rename, and answer E2BIG for one the store could never keep (2 KiB of
// metadata per object; ENOSPC when it does not fit beside the others).
func TestUserXattrsStored(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	p := m.path("f")
	os.WriteFile(p, []byte("x"), 0o644)
	sh(t, "setfattr", "-n", "user.project", "-v", "kfs", p)
	if meta := sdkMeta(t, b, "f"); !strings.Contains(meta["xattr"], "user.project") {
		t.Fatalf("x-amz-meta-xattr: %v", meta)
	}
	sh(t, "mv", p, m.path("g"))
	m2 := mountKFS(t, b)
	if out := sh(t, "getfattr", "--only-values", "-n", "user.project", m2.path("g")); out != "kfs" {
		t.Fatalf("after a rename and a remount: %q", out)
	}
	big := strings.Repeat("v", 16<<10)
	if err := xattr.Set(m2.path("g"), "user.big", []byte(big)); !errors.Is(err, syscall.E2BIG) {
		t.Fatalf("a 16 KiB attribute: %v, want E2BIG", err)
	}
	out, _ := exec.Command("cp", "-a", m2.path("g"), m2.path("h")).CombinedOutput()
	if len(out) > 0 {
		t.Fatalf("cp -a complained: %s", out)
	}
	if out := sh(t, "getfattr", "--only-values", "-n", "user.project", m2.path("h")); out != "kfs" {
		t.Fatalf("cp -a kept %q", out)
	}
}

// Names too long for Linux or for the store answer ENAMETOOLONG.
func TestLongNamesAndKeys(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	if err := os.Mkdir(m.path(strings.Repeat("d", 250)), 0o755); !errors.Is(err, syscall.ENAMETOOLONG) && err != nil {
		t.Fatalf("mkdir of a 250-byte name: %v", err)
	}
	deep := m.dir
	for i := 0; i < 6; i++ {
		deep += "/" + strings.Repeat(fmt.Sprint(i), 200)
		if err := os.Mkdir(deep, 0o755); err != nil {
			if !errors.Is(err, syscall.ENAMETOOLONG) {
				t.Fatalf("mkdir at depth %d: %v", i, err)
			}
			return
		}
	}
	t.Fatal("a key over 1,024 bytes was accepted")
}

// Refusals by the server come back as EINVAL with the reason logged.
func TestServerRefusalsAreEINVAL(t *testing.T) {
	b := newBucket(t)
	lb := newLockedBucket(t)
	m := mountKFS(t)
	bad := `{"Rules":[{"ID":"x","Status":"Enabled","Expiration":{"Days":0}}]}`
	if err := xattr.Set(m.path(b), "user.s3.lifecycle", []byte(bad)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a lifecycle the server refuses: %v, want EINVAL", err)
	}
	os.WriteFile(m.path(lb, "f"), []byte("x"), 0o644)
	past := "GOVERNANCE " + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if err := xattr.Set(m.path(lb, "f"), "user.s3.retention", []byte(past)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("retention in the past: %v, want EINVAL", err)
	}
	if err := xattr.Set(m.path(b), "user.s3.encryption", []byte("SSE-KMS no-such-key")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("an unknown KMS key: %v, want EINVAL", err)
	}
	if log := m.logText(); !strings.Contains(log, "lifecycle") || !strings.Contains(log, "EINVAL") {
		t.Errorf("no log line says why:\n%s", log)
	}
}

// With --acl, POSIX ACLs are stored with the object and the kernel
// enforces them for other users; they survive a remount.
func TestACLs(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, "--acl", "--allow-other", b)
	for d := m.dir; d != "/" && d != os.TempDir(); d = filepathDir(d) {
		os.Chmod(d, 0o755)
	}
	p := m.path("secret")
	os.WriteFile(p, []byte("shared by ACL"), 0o600)
	if code, _ := nobody(t, "cat "+p); code == 0 {
		t.Fatal("nobody read a 0600 file before any ACL")
	}
	sh(t, "setfacl", "-m", "u:nobody:r", p)
	if code, out := nobody(t, "cat "+p); code != 0 || out != "shared by ACL" {
		t.Fatalf("nobody with an ACL entry: %d %q", code, out)
	}
	if out := sh(t, "getfacl", "-cp", p); !strings.Contains(out, "user:nobody:r--") {
		t.Fatalf("getfacl: %s", out)
	}
	m2 := mountKFS(t, "--acl", "--allow-other", b)
	for d := m2.dir; d != "/" && d != os.TempDir(); d = filepathDir(d) {
		os.Chmod(d, 0o755)
	}
	if code, _ := nobody(t, "cat "+m2.path("secret")); code != 0 {
		t.Fatal("the ACL did not survive a remount")
	}
	sh(t, "setfacl", "-b", m2.path("secret"))
	if code, _ := nobody(t, "cat "+m2.path("secret")); code == 0 {
		t.Fatal("nobody still reads after setfacl -b")
	}
}

func filepathDir(p string) string { return p[:strings.LastIndex(p, "/")] }

func nobody(t *testing.T, script string) (int, string) {
	t.Helper()
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), strings.TrimSpace(string(out))
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, strings.TrimSpace(string(out))
}

// rsync -aX and cp -a carry user xattrs both ways and exit 0 on a tree of
// files (with tags and a Content-Type set through the mount), a symlink and
// a fifo; S3 state never lands on local files; a second rsync -aiX into
// the mount, and back out, transfers nothing.
func TestRsyncAndCpWithXattrsBothWays(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	src := t.TempDir()
	if err := xattr.Set(src, "user.probe", []byte("1")); err != nil {
		t.Fatalf("the local disk takes no user xattrs: %v", err)
	}
	os.MkdirAll(src+"/d", 0o755)
	for _, f := range []string{"a.csv", "d/b.bin"} {
		os.WriteFile(src+"/"+f, []byte("data of "+f), 0o640)
		if err := xattr.Set(src+"/"+f, "user.origin", []byte("lab "+f)); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a.csv", src+"/link")
	sh(t, "mkfifo", src+"/fifo")
	xattr.Set(src+"/d", "user.dir", []byte("yes"))

	sh(t, "rsync", "-aX", src+"/", m.path("r")+"/")
	sh(t, "setfattr", "-n", "user.s3.tag.stage", "-v", "raw", m.path("r/a.csv"))
	sh(t, "setfattr", "-n", "user.s3.content-type", "-v", "text/csv", m.path("r/a.csv"))
	for _, f := range []string{"a.csv", "d/b.bin"} {
		if v, err := xattr.Get(m.path("r", f), "user.origin"); err != nil || string(v) != "lab "+f {
			t.Fatalf("rsync -aX into the mount: %s user.origin = %q %v", f, v, err)
		}
	}
	if v, err := xattr.Get(m.path("r/d"), "user.dir"); err != nil || string(v) != "yes" {
		t.Fatalf("directory xattr: %q %v", v, err)
	}
	if out := sh(t, "rsync", "-aiX", src+"/", m.path("r")+"/"); strings.TrimSpace(out) != "" {
		t.Fatalf("a second rsync -aiX into the mount transferred:\n%s", out)
	}
	back := t.TempDir()
	sh(t, "rsync", "-aX", m.path("r")+"/", back+"/")
	if out := sh(t, "rsync", "-aiX", m.path("r")+"/", back+"/"); strings.TrimSpace(out) != "" {
		t.Fatalf("a second rsync -aiX out of the mount transferred:\n%s", out)
	}
	cpBack := t.TempDir()
	sh(t, "cp", "-a", m.path("r")+"/.", cpBack)
	sh(t, "cp", "-a", src+"/.", m.path("c"))
	for _, dir := range []string{back, cpBack, m.path("c")} {
		for _, f := range []string{"a.csv", "d/b.bin"} {
			if v, err := xattr.Get(filepath.Join(dir, f), "user.origin"); err != nil || string(v) != "lab "+f {
				t.Errorf("%s/%s: user.origin = %q %v", dir, f, v, err)
			}
		}
		if dir == m.path("c") {
			continue
		}
		names, _ := xattr.List(filepath.Join(dir, "a.csv"))
		for _, n := range names {
			if strings.HasPrefix(n, "user.s3.") {
				t.Errorf("%s: S3 state copied onto a local file: %v", dir, names)
			}
		}
	}
	if got := sh(t, "getfattr", "--only-values", "-n", "user.s3.tag.stage", m.path("r/a.csv")); got != "raw" {
		t.Errorf("the tag set through the mount: %q", got)
	}
}

// A directory's mtime moved by entries created or removed through the
// mount is stored on its marker (within a second, at a directory fsync,
// at unmount): a remount shows it, not the older one.
func TestDirectoryMtimeFromEntriesSurvivesRemount(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, b)
	past := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []string{"synced", "waited"} {
		os.Mkdir(m.path(d), 0o755)
		os.Chtimes(m.path(d), past, past)
		os.WriteFile(m.path(d, "f"), []byte("x"), 0o644)
	}
	f, _ := os.Open(m.path("synced"))
	f.Sync()
	f.Close()
	time.Sleep(2 * time.Second) // the other is stored within a second
	shown, _ := os.Stat(m.path("waited"))
	m2 := mountKFS(t, b)
	for _, d := range []string{"synced", "waited"} {
		st, err := os.Stat(m2.path(d))
		if err != nil || st.ModTime().Before(time.Now().Add(-time.Minute)) {
			t.Fatalf("%s after a remount: %v %v (the entry created through the mount moved it)", d, st.ModTime(), err)
		}
	}
	if st, _ := os.Stat(m2.path("waited")); st.ModTime().Unix() != shown.ModTime().Unix() {
		t.Fatalf("remount shows %v, the mount showed %v", st.ModTime(), shown.ModTime())
	}
}
