package fs

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/xattrs"
)

// Extended attributes of bucket directories: versioning, encryption,
// lifecycle, tags, object lock and notification settings. A prefix
// directory has none.

var (
	_ = (fusefs.NodeSetxattrer)((*dirNode)(nil))
	_ = (fusefs.NodeRemovexattrer)((*dirNode)(nil))
)

var bucketKinds = map[xattrs.Kind]string{
	xattrs.Versioning:   "versioning",
	xattrs.Encryption:   "encryption",
	xattrs.Lifecycle:    "lifecycle",
	xattrs.Tags:         "tags",
	xattrs.ObjectLock:   "object-lock",
	xattrs.Notification: "notification",
}

// bucketName parses attr for a bucket directory (ok false: not served).
func (d *dirNode) bucketName(attr string) (xattrs.Name, bool) {
	n, ok := xattrs.Parse(attr)
	if !ok || !n.OnBucket() || d.pfx() != "" {
		return xattrs.Name{}, false
	}
	return n, true
}

func (d *dirNode) bucketValue(ctx context.Context, n xattrs.Name) (string, error) {
	if n.Kind == xattrs.Tag {
		v, err := d.fsys.store.GetBucketSetting(ctx, d.bucket, "tags")
		if err != nil {
			return "", err
		}
		t, err := xattrs.ParseTags(v)
		if err != nil {
			return "", err
		}
		val, ok := t[n.Arg]
		if !ok {
			return "", xattrs.ErrNoData
		}
		return val, nil
	}
	v, err := d.fsys.store.GetBucketSetting(ctx, d.bucket, bucketKinds[n.Kind])
	if err == nil && v == "" {
		err = xattrs.ErrNoData
	}
	return v, err
}

func (d *dirNode) xattrErrno(op, attr string, err error) syscall.Errno {
	for _, e := range []syscall.Errno{syscall.ENODATA, syscall.ERANGE, syscall.EEXIST} {
		if errors.Is(err, e) {
			return e
		}
	}
	return toErrno(d.fsys.cfg.Log, fmt.Sprintf("%s %s on bucket %s", op, attr, d.bucket), err)
}

func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	n, ok := d.bucketName(attr)
	if !ok {
		return 0, getxattr(attr)
	}
	v, err := d.bucketValue(ctx, n)
	if err != nil {
		return 0, d.xattrErrno("getxattr", attr, err)
	}
	sz, err := xattrs.Fit([]byte(v), dest)
	if err != nil {
		return uint32(sz), syscall.ERANGE
	}
	return uint32(sz), 0
}

func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if d.pfx() != "" {
		return 0, 0
	}
	var names []string
	for _, k := range []xattrs.Kind{xattrs.Versioning, xattrs.Encryption, xattrs.Lifecycle, xattrs.ObjectLock, xattrs.Notification, xattrs.Tags} {
		v, err := d.fsys.store.GetBucketSetting(ctx, d.bucket, bucketKinds[k])
		if err != nil {
			return 0, d.xattrErrno("listxattr", "", err)
		}
		if v == "" {
			continue
		}
		names = append(names, xattrs.Name{Kind: k}.String())
		if k == xattrs.Tags {
			t, _ := xattrs.ParseTags(v)
			for key := range t {
				names = append(names, xattrs.Name{Kind: xattrs.Tag, Arg: key}.String())
			}
		}
	}
	sz, err := xattrs.Fit(xattrs.List(names), dest)
	if err != nil {
		return uint32(sz), syscall.ERANGE
	}
	return uint32(sz), 0
}

func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	n, ok := d.bucketName(attr)
	if !ok {
		return syscall.EOPNOTSUPP
	}
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := d.setBucketXattr(ctx, n, string(data), flags, false); err != nil {
		return d.xattrErrno("setxattr", attr, err)
	}
	return 0
}

func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	n, ok := d.bucketName(attr)
	if !ok {
		return syscall.ENODATA
	}
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := d.setBucketXattr(ctx, n, "", 0, true); err != nil {
		return d.xattrErrno("removexattr", attr, err)
	}
	return 0
}

func (d *dirNode) setBucketXattr(ctx context.Context, n xattrs.Name, value string, flags uint32, remove bool) error {
	d.xattrMu.Lock()
	defer d.xattrMu.Unlock()
	switch n.Kind {
	case xattrs.Tag, xattrs.Tags:
		cur, err := d.fsys.store.GetBucketSetting(ctx, d.bucket, "tags")
		if err != nil {
			return err
		}
		tags, err := xattrs.ParseTags(cur)
		if err != nil {
			return err
		}
		if tags, err = xattrs.ApplyTagChange(tags, n, value, flags, remove); err != nil {
			return err
		}
		return d.fsys.store.PutBucketSetting(ctx, d.bucket, "tags", xattrs.FormatTags(tags))
	case xattrs.Versioning:
		if remove {
			return fmt.Errorf("versioning cannot be removed, only Suspended: %w", syscall.EINVAL)
		}
	case xattrs.ObjectLock, xattrs.Notification:
		return fmt.Errorf("%s is read-only through kfs: %w", n, syscall.EPERM)
	}
	if remove {
		value = ""
	}
	return d.fsys.store.PutBucketSetting(ctx, d.bucket, bucketKinds[n.Kind], value)
}
