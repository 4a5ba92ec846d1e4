package fs

import (
	"context"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// Extended attributes. Security labels and POSIX ACLs (security.*,
// system.*) are not supported, and the answer says so (EOPNOTSUPP) rather
// than "no such attribute": tools such as ls(1) then stop asking for every
// file of the mount, which saves two FUSE round trips per entry of `ls -l`.
// The kernel's probe of security.capability on write gets the same answer.
// Other names have no value yet (ENODATA).
func getxattr(name string) syscall.Errno {
	if strings.HasPrefix(name, "security.") || strings.HasPrefix(name, "system.") {
		return syscall.EOPNOTSUPP
	}
	return syscall.ENODATA
}

var (
	_ = (fusefs.NodeGetxattrer)((*bucketsNode)(nil))
	_ = (fusefs.NodeListxattrer)((*bucketsNode)(nil))
)

func (r *bucketsNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, getxattr(attr)
}

func (r *bucketsNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}
