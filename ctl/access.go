package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// What a request needs of a path, as the kernel would ask it of a caller
// doing the same through the mount.
const (
	needRead  = unix.R_OK             // a file's bytes or facts
	needList  = unix.R_OK | unix.X_OK // a directory's entries
	needWrite = unix.W_OK | unix.X_OK // a change in a directory (on its parent)
)

// Access decides whether cred may use path (a path in the mount) with
// mode (unix.R_OK...); nil means allowed. The mount wires KernelAccess;
// tests put a table in.
type Access func(cred Cred, path string, mode uint32) error

// KernelAccess asks the kernel: faccessat(2) through the mount on a thread
// whose filesystem ids and groups are the caller's, so mode bits, owners,
// ACLs and search permission on every directory up the path count exactly
// as for the caller's own open(2). It needs a server running as root
// (CAP_SETUID); otherwise it refuses, as it cannot tell.
func KernelAccess(cred Cred, path string, mode uint32) error {
	done := make(chan error, 1)
	go func() {
		// The thread's ids change and are never changed back: it is not
		// unlocked, so it ends with this goroutine.
		runtime.LockOSThread()
		done <- accessAs(cred, path, mode)
	}()
	return <-done
}

func accessAs(cred Cred, path string, mode uint32) error {
	groups := make([]int, len(cred.Groups))
	for i, g := range cred.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("checking another user's rights needs a kfs running as root: %w", err)
	}
	unix.Setfsgid(int(cred.GID))
	unix.Setfsuid(int(cred.UID))
	if got, _ := unix.SetfsuidRetUid(-1); got != int(cred.UID) {
		return errors.New("checking another user's rights needs a kfs running as root")
	}
	if got, _ := unix.SetfsgidRetGid(-1); got != int(cred.GID) {
		return errors.New("checking another user's rights needs a kfs running as root")
	}
	return unix.Faccessat(unix.AT_FDCWD, path, mode, unix.AT_EACCESS)
}

// errForbidden is a refusal the caller reads: what was missing, where.
func errForbidden(format string, a ...any) error {
	return httpError{http.StatusForbidden, fmt.Sprintf(format, a...)}
}

// permName says a mode the way ls shows it.
func permName(mode uint32) string {
	var b strings.Builder
	for _, p := range []struct {
		bit  uint32
		name string
	}{{unix.R_OK, "read"}, {unix.W_OK, "write"}, {unix.X_OK, "search"}} {
		if mode&p.bit != 0 {
			if b.Len() > 0 {
				b.WriteString("+")
			}
			b.WriteString(p.name)
		}
	}
	return b.String()
}

// allow says whether the request's caller may do op needing mode on
// path: the mount's owner and root may do anything the mount does; other
// users only on a mount shared with allow_other, and only what the
// filesystem lets them do. A refusal names what was missing and is logged
// with the caller's uid.
func (s *Server) allow(ctx context.Context, op, path string, mode uint32) error {
	cr, err := callerOf(ctx)
	if err != nil {
		return errForbidden("%s refused: %v", op, err)
	}
	if cr.UID == 0 || cr.UID == s.cfg.Owner {
		return nil
	}
	if !s.cfg.AllowOther {
		s.cfg.Log.Warn("control socket: refused", "uid", cr.UID, "op", op, "path", path, "why", "not shared")
		return errForbidden("%s refused: this mount is not shared (mounted without allow_other): only uid %d and root may use it", op, s.cfg.Owner)
	}
	if s.cfg.Access == nil {
		return errForbidden("%s refused: this mount cannot check other users' rights", op)
	}
	if err := s.cfg.Access(cr, path, mode); err != nil {
		why := err.Error()
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			why = "permission denied"
		}
		if errors.Is(err, syscall.ENOENT) {
			return httpError{http.StatusNotFound, fmt.Sprintf("%s: no such file or directory", path)}
		}
		s.cfg.Log.Warn("control socket: refused", "uid", cr.UID, "op", op, "path", path, "needs", permName(mode), "why", why)
		return errForbidden("%s refused: %s needs %s permission on %s (%s)", op, op, permName(mode), path, why)
	}
	return nil
}

// allowChange is allow for a change in path's directory (create, delete,
// replace path): write and search on the parent, and a read-write mount.
func (s *Server) allowChange(ctx context.Context, op, path string) error {
	if err := s.writable(op); err != nil {
		return err
	}
	return s.allow(ctx, op, filepath.Dir(filepath.Clean(path)), needWrite)
}

// writable refuses every change on a read-only mount, whoever asks.
func (s *Server) writable(op string) error {
	if s.cfg.ReadOnly {
		return errForbidden("%s refused: the mount is read-only (-o ro)", op)
	}
	return nil
}

// ownerOnly allows the mount's owner and root (bucket operations).
func (s *Server) ownerOnly(ctx context.Context, op string) error {
	if err := s.writable(op); err != nil {
		return err
	}
	cr, err := callerOf(ctx)
	if err != nil {
		return errForbidden("%s refused: %v", op, err)
	}
	if cr.UID != 0 && cr.UID != s.cfg.Owner {
		s.cfg.Log.Warn("control socket: refused", "uid", cr.UID, "op", op, "why", "owner only")
		return errForbidden("%s refused: only the mount's owner (uid %d) and root may %s", op, s.cfg.Owner, op)
	}
	return nil
}

// changed logs a change made through the socket, with who made it.
func (s *Server) changed(ctx context.Context, op string, args ...any) {
	cr, _ := callerOf(ctx)
	s.cfg.Log.Info("control socket: "+op, append([]any{"uid", cr.UID}, args...)...)
}

// allowRead is allow for reading a file's bytes or facts; a name that is
// gone (a deleted file's versions) needs the right to list its directory.
func (s *Server) allowRead(ctx context.Context, op, path string) error {
	err := s.allow(ctx, op, path, needRead)
	var he httpError
	if errors.As(err, &he) && he.code == http.StatusNotFound {
		return s.allow(ctx, op, filepath.Dir(filepath.Clean(path)), needList)
	}
	return err
}

// allowRef checks an object named by bucket and key (a path another mount
// of the endpoint resolved): other users only for objects this mount
// shows, with the rights on that path.
func (s *Server) allowRef(ctx context.Context, op, bucket, key string, write bool) error {
	if cr, err := callerOf(ctx); err == nil && (cr.UID == 0 || cr.UID == s.cfg.Owner) {
		if write {
			return s.writable(op)
		}
		return nil
	}
	local := s.localPath(bucket, key)
	if local == "" {
		return errForbidden("%s refused: %s/%s is outside this mount; only its owner (uid %d) and root may name objects elsewhere", op, bucket, key, s.cfg.Owner)
	}
	if write {
		return s.allowChange(ctx, op, local)
	}
	return s.allowRead(ctx, op, local)
}
