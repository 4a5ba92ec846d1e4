package mountproc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"syscall"
	"time"

	"kfs/ctl"
	"kfs/fs/store"
	"kfs/mountopts"
)

// preflight proves the endpoint answers, the credentials work and the
// bucket exists, before anything is mounted.
func preflight(st store.Buckets, m mountopts.Mount) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	what := "bucket " + m.Bucket
	if m.Bucket == "" {
		what = "list buckets"
		_, err = st.ListBuckets(ctx)
	} else {
		err = st.StatBucket(ctx, m.Bucket)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("bucket %s does not exist", m.Bucket)
	case errors.Is(err, store.ErrAccessDenied):
		return fmt.Errorf("%s: credentials refused: %v", what, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: endpoint did not answer within 15s", what)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("endpoint unreachable: %v", ue.Err)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// checkMountpoint refuses a mount point that is missing, not a directory,
// not empty, or already mounted.
func checkMountpoint(dir string) error {
	var sfs syscall.Statfs_t
	st, err := os.Stat(dir)
	if err == nil && syscall.Statfs(dir, &sfs) == syscall.ENOTCONN {
		err = &os.PathError{Op: "statfs", Path: dir, Err: syscall.ENOTCONN} // stat may come from cached attributes
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mount point %s does not exist (mkdir -p %s)", dir, dir)
		}
		if errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("mount point %s is a dead FUSE mount: run kfs unmount %s first", dir, dir)
		}
		return fmt.Errorf("mount point %s: %v", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	if ctl.IsMounted(dir) {
		return fmt.Errorf("mount point %s is already mounted", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mount point %s: %v", dir, err)
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("mount point %s is not empty", dir)
	}
	return nil
}
