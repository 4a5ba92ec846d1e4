package fs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/fs/store"
	"kfs/xattrs"
)

// Extended attributes of directories: bucket settings on a bucket's own
// directory (versioning, encryption, lifecycle, tags, object lock,
// notification, policy), and stored user.* attributes (and ACLs) on the
// marker object of any other directory.

var (
	_ = (fusefs.NodeGetxattrer)((*dirNode)(nil))
	_ = (fusefs.NodeSetxattrer)((*dirNode)(nil))
	_ = (fusefs.NodeRemovexattrer)((*dirNode)(nil))
	_ = (fusefs.NodeListxattrer)((*dirNode)(nil))
)

func (d *dirNode) isBucket() bool { return d.pfx() == "" }

func (d *dirNode) xattrErrno(op, attr string, err error) syscall.Errno {
	return d.fsys.errno(op+" "+attr, d.path(""), err)
}

func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	name, class := d.fsys.classify(attr)
	switch {
	case class == xattrNone:
		return 0, syscall.EOPNOTSUPP
	case class == xattrStored:
		if d.isBucket() {
			return 0, syscall.ENODATA
		}
		if err := d.loadMarker(ctx); err != nil {
			return 0, d.xattrErrno("getxattr", attr, err)
		}
		where := d.path("")
		d.mu.Lock()
		meta := d.marker.Meta
		d.mu.Unlock()
		m := d.fsys.storedAttrs(where, meta)
		v, ok := m[attr]
		if !ok {
			return 0, syscall.ENODATA
		}
		return fitValue(v, dest)
	case class == xattrUnknown || !name.OnBucket() || !d.isBucket():
		return 0, syscall.ENODATA
	}
	v, err := d.bucketValue(ctx, name)
	if errors.Is(err, errEmptyValue) {
		return 0, 0
	}
	if err == nil && v == "" {
		err = xattrs.ErrNoData
	}
	if err != nil {
		return 0, d.xattrErrno("getxattr", attr, err)
	}
	return fitValue([]byte(v), dest)
}

// errEmptyValue: the attribute exists and its value is empty (a tag set
// to ""), unlike a setting that is absent.
var errEmptyValue = errors.New("empty value")

func (d *dirNode) bucketValue(ctx context.Context, n xattrs.Name) (string, error) {
	s, b := d.fsys.store, d.bucket
	switch n.Kind {
	case xattrs.Versioning:
		return s.GetVersioning(ctx, b)
	case xattrs.Encryption:
		e, err := s.GetEncryption(ctx, b)
		return xattrs.FormatEncryption(xattrs.EncryptionValue(e)), err
	case xattrs.Lifecycle, xattrs.Notification:
		get, conv := s.GetLifecycle, xattrs.LifecycleToJSON
		if n.Kind == xattrs.Notification {
			get, conv = s.GetNotification, xattrs.NotificationToJSON
		}
		doc, err := get(ctx, b)
		if err != nil || doc == nil {
			return "", err
		}
		return conv(doc)
	case xattrs.ObjectLock:
		l, err := s.GetObjectLock(ctx, b)
		return xattrs.FormatObjectLock(xattrs.ObjectLockValue(l)), err
	case xattrs.Policy:
		return s.GetPolicy(ctx, b)
	case xattrs.Tags, xattrs.Tag:
		t, err := s.GetBucketTags(ctx, b)
		if err != nil {
			return "", err
		}
		if n.Kind == xattrs.Tags {
			return xattrs.FormatTags(t), nil
		}
		v, ok := t[n.Arg]
		if ok && v == "" {
			return "", errEmptyValue // a tag whose value is empty exists
		}
		return v, nil
	}
	return "", xattrs.ErrNoData
}

func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := d.listNames(ctx)
	if err != nil {
		return 0, d.xattrErrno("listxattr", "", err)
	}
	return fitValue(xattrs.List(names), dest)
}

// listNames names the stored user.* attributes of a directory's marker.
// A bucket's settings (user.s3.*) are readable by name, not listed, as on
// files: a copy of a bucket's root must not try to carry them.
func (d *dirNode) listNames(ctx context.Context) ([]string, error) {
	if d.isBucket() {
		return nil, nil
	}
	if err := d.loadMarker(ctx); err != nil {
		return nil, err
	}
	where := d.path("")
	d.mu.Lock()
	meta := d.marker.Meta
	d.mu.Unlock()
	return d.fsys.listable(d.fsys.storedAttrs(where, meta)), nil
}

func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return d.changeXattr(ctx, "setxattr", attr, data, flags, false)
}

func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return d.changeXattr(ctx, "removexattr", attr, nil, 0, true)
}

func (d *dirNode) changeXattr(ctx context.Context, op, attr string, data []byte, flags uint32, remove bool) syscall.Errno {
	name, class := d.fsys.classify(attr)
	switch {
	case class == xattrNone, class == xattrStored && d.isBucket(), class == xattrS3 && (!name.OnBucket() || !d.isBucket()):
		return syscall.EOPNOTSUPP
	case class == xattrUnknown:
		if remove {
			return syscall.ENODATA
		}
		return syscall.EOPNOTSUPP
	}
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	d.xattrMu.Lock()
	defer d.xattrMu.Unlock()
	var err error
	if class == xattrStored {
		err = d.setStored(ctx, attr, data, flags, remove)
	} else {
		err = d.setBucket(ctx, name, string(data), flags, remove)
		if err == nil {
			d.mu.Lock()
			d.local.ctime = d.fsys.now() // a bucket's settings changed (kept in memory, as its other times)
			d.mu.Unlock()
		}
	}
	if err != nil {
		return d.xattrErrno(op, attr, err)
	}
	return 0
}

// setStored changes a stored attribute of a directory on its marker
// object (made when the directory was only a prefix).
func (d *dirNode) setStored(ctx context.Context, attr string, data []byte, flags uint32, remove bool) error {
	if err := d.loadMarker(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	prefix, marker := d.prefix, d.marker
	d.mu.Unlock()
	next, err := applyStored(d.fsys.storedAttrs(d.path(""), marker.Meta), attr, data, flags, remove)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for k, v := range marker.Meta {
		meta[k] = v
	}
	setXattrMeta(meta, next)
	if perm, ok := xattrs.ACLMode(data); ok && attr == xattrs.ACLAccess && !remove {
		var cur fuse.Attr
		d.mu.Lock()
		d.attrLocked(&cur)
		d.mu.Unlock()
		meta[metaMode] = strconv.FormatUint(uint64(syscall.S_IFDIR|cur.Mode&0o7000|perm), 10) // the mode follows the ACL
	}
	// The times stay what they show (the new marker's LastModified is
	// now), except ctime: an attribute changed.
	var cur fuse.Attr
	d.mu.Lock()
	d.attrLocked(&cur)
	d.mu.Unlock()
	a := parsePosix(meta)
	a.atime = time.Unix(int64(cur.Atime), int64(cur.Atimensec))
	a.mtime = time.Unix(int64(cur.Mtime), int64(cur.Mtimensec))
	a.ctime = d.fsys.now()
	meta = a.toMeta(meta)
	if err := checkMetaFits(meta); err != nil {
		return err
	}
	if d.fsys.dirMeta.keepsNone(d.bucket) {
		return errNoDirMeta
	}
	info, err := d.fsys.putMarker(ctx, d.bucket, prefix, meta)
	if errors.Is(err, errNoDirMeta) {
		d.setMarker(info, d.fsys.now())
	}
	if err != nil {
		return err
	}
	d.setMarker(info, d.fsys.now())
	d.mu.Lock()
	d.local, d.localExact = times{}, false
	d.mu.Unlock()
	return nil
}

func (d *dirNode) setBucket(ctx context.Context, n xattrs.Name, value string, flags uint32, remove bool) error {
	s, b := d.fsys.store, d.bucket
	switch n.Kind {
	case xattrs.Tag, xattrs.Tags:
		cur, err := s.GetBucketTags(ctx, b)
		if err != nil {
			return err
		}
		next, err := xattrs.ApplyTagChange(cur, n, value, flags, remove)
		if err != nil {
			return err
		}
		return s.SetBucketTags(ctx, b, next)
	case xattrs.Versioning:
		if remove {
			return fmt.Errorf("versioning cannot be removed, only Suspended: %w", syscall.EINVAL)
		}
		v, err := xattrs.ParseVersioning(value)
		if err != nil {
			return err
		}
		return s.SetVersioning(ctx, b, v)
	case xattrs.Encryption:
		var e xattrs.EncryptionValue
		if !remove {
			var err error
			if e, err = xattrs.ParseEncryption(value); err != nil {
				return err
			}
		}
		return s.SetEncryption(ctx, b, store.Encryption(e))
	case xattrs.Lifecycle, xattrs.Notification:
		return d.setBucketDoc(ctx, n.Kind, value, remove)
	case xattrs.ObjectLock:
		return d.setObjectLock(ctx, value, remove)
	case xattrs.Policy:
		if remove {
			return s.SetPolicy(ctx, b, "")
		}
		if err := xattrs.CheckPolicy(value); err != nil {
			return err
		}
		return s.SetPolicy(ctx, b, value)
	}
	return syscall.EOPNOTSUPP
}

// setBucketDoc sets (or with remove, deletes) the bucket's lifecycle or
// notification configuration, given as JSON.
func (d *dirNode) setBucketDoc(ctx context.Context, kind xattrs.Kind, value string, remove bool) error {
	var doc []byte
	if !remove {
		conv := xattrs.LifecycleFromJSON
		if kind == xattrs.Notification {
			conv = xattrs.NotificationFromJSON
		}
		var err error
		if doc, err = conv(value); err != nil {
			return err
		}
	}
	if kind == xattrs.Notification {
		return d.fsys.store.SetNotification(ctx, d.bucket, doc)
	}
	return d.fsys.store.SetLifecycle(ctx, d.bucket, doc)
}

// setObjectLock sets the default retention of a bucket made with object
// lock; lock itself is never turned off.
func (d *dirNode) setObjectLock(ctx context.Context, value string, remove bool) error {
	if remove {
		return fmt.Errorf("object lock cannot be turned off once a bucket has it (set \"Enabled\" to clear the default retention): %w", syscall.EPERM)
	}
	l, err := xattrs.ParseObjectLock(value)
	if err != nil {
		return err
	}
	cur, err := d.fsys.store.GetObjectLock(ctx, d.bucket)
	if err != nil {
		return err
	}
	if !cur.Enabled {
		return fmt.Errorf("bucket %s was made without object lock (it can only be chosen when a bucket is made: kfs mb --with-lock): %w", d.bucket, store.ErrNoObjectLock)
	}
	return d.fsys.store.SetObjectLock(ctx, d.bucket, store.ObjectLock(l))
}
