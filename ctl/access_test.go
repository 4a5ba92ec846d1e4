package ctl

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Who may do what through the socket, decided in-process with the
// caller's credentials as the kernel would give them.
func TestAllowDecidesByCaller(t *testing.T) {
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // others may search down to the files
	}
	open := filepath.Join(dir, "open")
	closed := filepath.Join(dir, "closed")
	if err := os.WriteFile(open, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(closed, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	as := func(uid uint32) context.Context {
		return context.WithValue(context.Background(), credKey{}, Cred{UID: uid, GID: uid})
	}
	// A mount owned by uid 4242, not shared: its owner and root only.
	private := &Server{cfg: Config{Owner: 4242, Log: log, Mountpoint: dir, Bucket: "b"}}
	for uid, ok := range map[uint32]bool{0: true, 4242: true, 1000: false} {
		err := private.allow(as(uid), "stat", open, needRead)
		if (err == nil) != ok {
			t.Errorf("private mount, uid %d: %v", uid, err)
		}
	}
	if err := private.allow(context.Background(), "stat", open, needRead); err == nil {
		t.Error("a caller without credentials was allowed")
	}
	if err := private.ownerOnly(as(1000), "mb"); err == nil || !strings.Contains(err.Error(), "only the mount's owner") {
		t.Errorf("ownerOnly, uid 1000: %v", err)
	}
	if err := private.ownerOnly(as(4242), "mb"); err != nil {
		t.Errorf("ownerOnly, the owner: %v", err)
	}
	if err := private.allowRef(as(1000), "cp", "other", "k", false); err == nil || !strings.Contains(err.Error(), "outside this mount") {
		t.Errorf("allowRef outside the mount: %v", err)
	}
	// Shared, but unable to check: refused. With the kernel's check (this
	// test runs as root, which KernelAccess needs): what the file allows.
	shared := &Server{cfg: Config{Owner: 4242, AllowOther: true, Log: log, Mountpoint: dir, Bucket: "b"}}
	if err := shared.allow(as(1000), "stat", open, needRead); err == nil || !strings.Contains(err.Error(), "cannot check") {
		t.Errorf("shared without Access: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("KernelAccess needs root")
	}
	shared.cfg.Access = KernelAccess
	if err := shared.allow(as(1000), "cat", open, needRead); err != nil {
		t.Errorf("reading a 0644 file as uid 1000: %v", err)
	}
	err := shared.allow(as(1000), "cat", closed, needRead)
	if err == nil || !strings.Contains(err.Error(), "needs read permission") {
		t.Errorf("reading a 0600 file as uid 1000: %v", err)
	}
	if err := shared.allowChange(as(1000), "rm", open); err == nil || !strings.Contains(err.Error(), "write+search") {
		t.Errorf("removing from a root directory as uid 1000: %v", err)
	}
	if err := shared.allow(as(1000), "cat", filepath.Join(dir, "none"), needRead); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing file: %v", err)
	}
	if !strings.Contains(logs.String(), "uid=1000") {
		t.Errorf("refusals are not logged with the uid:\n%s", logs.String())
	}
	if err := KernelAccess(Cred{UID: 0}, closed, unix.R_OK); err != nil {
		t.Errorf("root reading: %v", err)
	}
	if err := KernelAccess(Cred{UID: 1000, GID: 1000}, closed, unix.W_OK); !errors.Is(err, syscall.EACCES) {
		t.Errorf("uid 1000 writing a 0600 root file: %v", err)
	}
	if got := permName(unix.R_OK | unix.X_OK); got != "read+search" {
		t.Errorf("permName: %q", got)
	}
}

// The mount table is read from /proc: / is a mount point, a temporary
// directory is in no kfs mount, and escapes in mountinfo are undone.
func TestMountTable(t *testing.T) {
	ms, err := MountTable()
	if err != nil || len(ms) == 0 {
		t.Fatalf("mount table: %d entries, %v", len(ms), err)
	}
	if !IsMounted("/") || IsMounted(t.TempDir()) {
		t.Error("IsMounted")
	}
	if _, err := FindMount(t.TempDir()); err == nil {
		t.Error("a temporary directory is in a kfs mount")
	}
	if _, err := Mounts(); err != nil {
		t.Error(err)
	}
	if got := unescape(`/a\040b\011c\134d`); got != "/a b\tc\\d" {
		t.Errorf("unescape: %q", got)
	}
	if _, _, err := ForPath(t.TempDir()); err == nil {
		t.Error("ForPath outside a mount succeeded")
	}
	if _, err := ForMount(t.TempDir()); err == nil {
		t.Error("ForMount of a directory that is no mount succeeded")
	}
}
