package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"net"
	"net/url"
	"syscall"

	"kfs/fs/store"
)

// errnoTable maps store sentinels (and the standard errors they wrap) to
// the errno a caller sees; quiet says the answer is ordinary and needs no
// log line. The first match wins.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
	quiet bool
}{
	{store.ErrNotFound, syscall.ENOENT, true},
	{store.ErrExists, syscall.EEXIST, true},
	{store.ErrNotEmpty, syscall.ENOTEMPTY, true},
	{store.ErrStale, syscall.ESTALE, false},
	{store.ErrAccessDenied, syscall.EACCES, false},
	{store.ErrLocked, syscall.EPERM, false},
	{store.ErrNoObjectLock, syscall.ENOTSUP, false},
	{store.ErrUnsupported, syscall.ENOTSUP, false},
	{store.ErrInvalid, syscall.EINVAL, false},
	{store.ErrQuota, syscall.EDQUOT, false},
	{store.ErrTooLarge, syscall.EFBIG, false},
	{store.ErrNameTooLong, syscall.ENAMETOOLONG, false},
	{store.ErrMetaTooLarge, syscall.ENOSPC, false},
	{store.ErrUploadGone, syscall.EIO, false},
	{store.ErrUnavailable, syscall.EIO, false},
	{iofs.ErrNotExist, syscall.ENOENT, true},
	{iofs.ErrExist, syscall.EEXIST, true},
	{iofs.ErrPermission, syscall.EACCES, false},
	{errors.ErrUnsupported, syscall.ENOTSUP, false},
	{context.Canceled, syscall.EINTR, true},
	{context.DeadlineExceeded, syscall.EIO, false},
}

// quietErrnos are errnos that are ordinary answers when code returns
// them directly (wrapped in its error).
var quietErrnos = map[syscall.Errno]bool{
	syscall.ENOENT: true, syscall.EEXIST: true, syscall.ENOTEMPTY: true, syscall.ENOTDIR: true,
	syscall.EISDIR: true, syscall.ENODATA: true, syscall.ERANGE: true, syscall.EXDEV: true, syscall.EINTR: true,
}

// networkErrnos are errnos of the connection to the store: a caller's
// tool is told EIO (its file is not unreachable, the server is), never
// "connection refused" for a stat.
var networkErrnos = map[syscall.Errno]bool{
	syscall.ECONNREFUSED: true, syscall.ECONNRESET: true, syscall.ECONNABORTED: true, syscall.EPIPE: true,
	syscall.ETIMEDOUT: true, syscall.EHOSTUNREACH: true, syscall.ENETUNREACH: true, syscall.ENETDOWN: true,
	syscall.EHOSTDOWN: true, syscall.ENETRESET: true,
}

// errnoOf is the one mapping from errors to errnos: an errno in the chain
// wins (code that knows the answer says it) unless it is the network's,
// then the sentinels, then EIO.
func errnoOf(err error) (errno syscall.Errno, quiet bool) {
	if err == nil {
		return 0, true
	}
	var (
		oe *net.OpError
		ue *url.Error
	)
	if (errors.As(err, &oe) || errors.As(err, &ue)) && !errors.Is(err, context.Canceled) || errors.As(err, &errno) && networkErrnos[errno] {
		return syscall.EIO, false
	}
	if errors.As(err, &errno) {
		return errno, quietErrnos[errno]
	}
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			return e.errno, e.quiet
		}
	}
	return syscall.EIO, false
}

// errno maps err and logs what the caller cannot be told (the S3 code and
// message, the object) at warning level, except ordinary answers.
func (f *FS) errno(op, path string, err error) syscall.Errno {
	e, quiet := errnoOf(err)
	if !quiet {
		f.cfg.Log.Warn(op+" failed", "path", path, "errno", errnoName(e), "err", err)
	}
	return e
}

func errnoName(e syscall.Errno) string {
	names := map[syscall.Errno]string{syscall.EIO: "EIO", syscall.ESTALE: "ESTALE", syscall.EACCES: "EACCES",
		syscall.ENOTSUP: "ENOTSUP", syscall.EPERM: "EPERM", syscall.EINVAL: "EINVAL", syscall.EDQUOT: "EDQUOT",
		syscall.EFBIG: "EFBIG", syscall.ENAMETOOLONG: "ENAMETOOLONG", syscall.ENOSPC: "ENOSPC", syscall.EROFS: "EROFS",
		syscall.EBUSY: "EBUSY", syscall.ENOENT: "ENOENT", syscall.E2BIG: "E2BIG", syscall.ENODATA: "ENODATA"}
	if n, ok := names[e]; ok {
		return n
	}
	return e.Error()
}
