package fs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"kfs/fs/store"
)

func TestErrnoOf(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:9000/b", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}}
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{fmt.Errorf("stat: %w", store.ErrNotFound), syscall.ENOENT},
		{fmt.Errorf("x: %w", syscall.ENOTEMPTY), syscall.ENOTEMPTY},
		{refused, syscall.EIO},
		{fmt.Errorf("list: %w", refused), syscall.EIO},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), syscall.EIO},
		{fmt.Errorf("w: %w", syscall.EPIPE), syscall.EIO},
		{context.DeadlineExceeded, syscall.EIO},
		{&url.Error{Op: "Get", URL: "u", Err: context.Canceled}, syscall.EINTR},
		{fmt.Errorf("put: %w", store.ErrQuota), syscall.EDQUOT},
		{fmt.Errorf("complete: %w", store.ErrUploadGone), syscall.EIO},
		{errors.New("something else"), syscall.EIO},
	} {
		got, quiet := errnoOf(c.err)
		if got != c.want {
			t.Errorf("errnoOf(%v) = %v, want %v", c.err, got, c.want)
		}
		if got == syscall.EIO && quiet {
			t.Errorf("errnoOf(%v): EIO without a log line", c.err)
		}
	}
}
