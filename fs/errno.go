package fs

import (
	"context"
	"errors"
	"io/fs"
	"log"
	"syscall"
)

// toErrno maps an error from the store or the fs logic to the errno the
// caller sees, logging the ones that are not ordinary answers. It is the
// only place errors become errnos; unknown errors are EIO.
func toErrno(l *log.Logger, op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		switch errno {
		case syscall.ENOTEMPTY, syscall.EEXIST, syscall.ENOTDIR, syscall.EISDIR, syscall.ENOENT:
			return errno // ordinary answers: no log line
		}
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT // an ordinary answer: no log line
	case errors.Is(err, ErrStale):
		errno = syscall.ESTALE
	case errors.Is(err, fs.ErrPermission):
		errno = syscall.EACCES
	case errors.Is(err, errors.ErrUnsupported):
		errno = syscall.ENOTSUP
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		errno = syscall.ETIMEDOUT
	default:
		errno = syscall.EIO
	}
	if l != nil {
		l.Printf("%s: %v (%s)", op, err, errnoName(errno))
	}
	return errno
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EIO:
		return "EIO"
	case syscall.ESTALE:
		return "ESTALE"
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOTSUP:
		return "ENOTSUP"
	case syscall.ETIMEDOUT:
		return "ETIMEDOUT"
	case syscall.EROFS:
		return "EROFS"
	}
	return e.Error()
}
