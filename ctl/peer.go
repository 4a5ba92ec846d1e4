package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cred is who is at the other end of a unix socket connection, as the
// kernel says (SO_PEERCRED, SO_PEERGROUPS): nothing the peer sends.
type Cred struct {
	PID      int32
	UID, GID uint32
	Groups   []uint32
}

// soPeerGroups is SO_PEERGROUPS (Linux 4.13), which x/sys/unix lacks.
const soPeerGroups = 59

// peerCred reads the credentials of a unix socket's peer.
func peerCred(c net.Conn) (Cred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Cred{}, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var cr Cred
	var serr error
	err = raw.Control(func(fd uintptr) {
		u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			serr = err
			return
		}
		cr = Cred{PID: u.Pid, UID: u.Uid, GID: u.Gid}
		buf := make([]uint32, 256)
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, soPeerGroups,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 {
			cr.Groups = append([]uint32(nil), buf[:n/4]...)
		}
	})
	if err == nil {
		err = serr
	}
	return cr, err
}

type credKey struct{}

// withPeer puts a connection's peer credentials in its requests' context
// (http.Server.ConnContext).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	cr, err := peerCred(c)
	if err != nil {
		return context.WithValue(ctx, credKey{}, fmt.Errorf("peer credentials: %w", err))
	}
	return context.WithValue(ctx, credKey{}, cr)
}

// callerOf is the request's caller; an error when the kernel did not say.
func callerOf(ctx context.Context) (Cred, error) {
	switch v := ctx.Value(credKey{}).(type) {
	case Cred:
		return v, nil
	case error:
		return Cred{}, v
	}
	return Cred{}, errors.New("no peer credentials")
}

// DefaultRuntimeDir is where the sockets of mounts owned by uid live:
// /run/kfs for root, /tmp/kfs-UID for anyone else (made by its owner with
// mode 0711: others may reach a socket in it, never add or replace one;
// /tmp's sticky bit keeps others from renaming it away). The client
// derives it from the mount's owner, never from the caller.
func DefaultRuntimeDir(uid uint32) string {
	if uid == 0 {
		return "/run/kfs"
	}
	return "/tmp/kfs-" + strconv.FormatUint(uint64(uid), 10)
}

// checkOwned refuses a socket directory or socket that a user other than
// the mount's owner (or root) could have made or could change: not owned by
// owner or root, a symlink, or writable by group or others (a directory).
func checkOwned(path string, owner uint32, dir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner", path)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link", path)
	case dir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !dir && fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("%s is not a socket", path)
	case st.Uid != owner && st.Uid != 0:
		return fmt.Errorf("%s is owned by uid %d, not by the mount's owner (uid %d) or root", path, st.Uid, owner)
	case dir && fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by other users (mode %04o)", path, fi.Mode().Perm())
	}
	return nil
}

// prepareDir makes dir (mode perm) for a server running as uid, or checks
// the one there: it must be ours, a real directory, not writable by others.
func prepareDir(dir string, uid uint32, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, perm); err == nil {
		return os.Chmod(dir, perm) // past the umask
	} else if !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := checkOwned(dir, uid, true); err != nil {
		return fmt.Errorf("refusing the socket directory: %v (remove it, or set KFS_RUNTIME_DIR)", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm() != perm {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == uid {
			return os.Chmod(dir, perm) // ours: others must reach (never change) what is in it
		}
	}
	return nil
}
