package fs

import (
	"context"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/fs/store"
	"kfs/xattrs"
)

var (
	_ = (fusefs.NodeGetxattrer)((*fileNode)(nil))
	_ = (fusefs.NodeSetxattrer)((*fileNode)(nil))
	_ = (fusefs.NodeRemovexattrer)((*fileNode)(nil))
	_ = (fusefs.NodeListxattrer)((*fileNode)(nil))
)

// pendingXattrs are extended attributes set while an upload is pending;
// they go with it.
// empty says whether nothing is pending.
func (p pendingXattrs) empty() bool {
	return p.tags == nil && p.meta == nil && p.contentType == "" && p.lockMode == "" && p.lockUntil.IsZero() &&
		p.legalHold == nil && p.xattrs == nil
}

type pendingXattrs struct {
	tags        map[string]string
	meta        map[string]string // "" value: removed
	contentType string
	lockMode    string
	lockUntil   time.Time
	legalHold   *bool
	xattrs      map[string][]byte // the whole stored set, when changed
}

// uploadPending reports whether an upload of this file is still to come
// (it is being created, or has unsaved changes): attributes set now go
// with it, since a new upload replaces tags and lock settings.
func (n *fileNode) uploadPending() bool {
	n.mu.Lock()
	c, stored := n.content, n.stored
	n.mu.Unlock()
	return !stored || c != nil && c.Dirty()
}

// current returns what HEAD says when the listing left Content-Type or
// metadata out.
func (n *fileNode) current(ctx context.Context) (store.ObjectInfo, error) {
	return n.known(ctx, true)
}

// known is the object's info, with a HEAD only when what is asked for is
// not known yet: its metadata (which a metadata listing gives) and, with
// needType, its Content-Type (which listings do not always give).
func (n *fileNode) known(ctx context.Context, needType bool) (store.ObjectInfo, error) {
	n.mu.Lock()
	info, stored, key := n.info, n.stored, n.key
	n.mu.Unlock()
	if !stored {
		return info, nil
	}
	if info.Meta != nil && (!needType || info.ContentType != "") {
		return info, nil
	}
	fresh, err := n.fsys.store.Stat(ctx, store.ObjectRef{Bucket: n.bucket, Key: key})
	if err != nil {
		return store.ObjectInfo{}, err
	}
	n.setInfo(fresh, time.Now())
	return fresh, nil
}

func (n *fileNode) xattrErrno(op, attr string, err error) syscall.Errno {
	return n.fsys.errno(op+" "+attr, n.path(), err)
}

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	name, class := n.fsys.classify(attr)
	switch class {
	case xattrNone:
		return 0, syscall.EOPNOTSUPP
	case xattrUnknown:
		return 0, syscall.ENODATA
	case xattrStored:
		m, err := n.storedSet(ctx)
		if err != nil {
			return 0, n.xattrErrno("getxattr", attr, err)
		}
		v, ok := m[attr]
		if !ok {
			return 0, syscall.ENODATA
		}
		return fitValue(v, dest)
	}
	if !name.OnObject() {
		return 0, syscall.ENODATA
	}
	v, err := n.s3Value(ctx, name)
	if err != nil {
		return 0, n.xattrErrno("getxattr", attr, err)
	}
	return fitValue([]byte(v), dest)
}

// storedSet is the file's stored attributes, pending changes included.
func (n *fileNode) storedSet(ctx context.Context) (map[string][]byte, error) {
	n.mu.Lock()
	p := n.pendingX.xattrs
	n.mu.Unlock()
	if p != nil {
		return p, nil
	}
	info, err := n.known(ctx, false)
	if err != nil {
		return nil, err
	}
	return n.fsys.storedAttrs(n.path(), info.Meta), nil
}

func (n *fileNode) s3Value(ctx context.Context, name xattrs.Name) (string, error) {
	if n.uploadPending() {
		return n.pendingValue(name)
	}
	ref := store.ObjectRef{Bucket: n.bucket, Key: n.objKey()}
	switch name.Kind {
	case xattrs.Tag, xattrs.Tags:
		return n.tagValue(ctx, ref, name)
	case xattrs.Retention:
		r, err := n.fsys.store.GetRetention(ctx, ref)
		if err != nil {
			return "", err
		}
		if r.Mode == "" {
			return "", xattrs.ErrNoData
		}
		return xattrs.FormatRetention(xattrs.RetentionValue{Mode: r.Mode, Until: r.Until}), nil
	case xattrs.LegalHold:
		on, err := n.fsys.store.GetLegalHold(ctx, ref)
		if err != nil {
			return "", err
		}
		return xattrs.FormatLegalHold(on), nil
	case xattrs.VersionID, xattrs.StorageClass:
		return n.headValue(ctx, ref, name)
	}
	info, err := n.current(ctx)
	if err != nil {
		return "", err
	}
	switch name.Kind {
	case xattrs.ETag:
		return info.ETag, nil
	case xattrs.ContentType:
		return info.ContentType, nil
	}
	v, ok := info.Meta[name.Arg]
	if !ok || posixKeys[name.Arg] {
		return "", xattrs.ErrNoData
	}
	return v, nil
}

// tagValue answers user.s3.tags (the set) or user.s3.tag.<Key> (one).
func (n *fileNode) tagValue(ctx context.Context, ref store.ObjectRef, name xattrs.Name) (string, error) {
	tags, err := n.fsys.store.GetTags(ctx, ref)
	if err != nil {
		return "", err
	}
	if name.Kind == xattrs.Tags {
		if len(tags) == 0 {
			return "", xattrs.ErrNoData
		}
		return xattrs.FormatTags(tags), nil
	}
	if v, ok := tags[name.Arg]; ok {
		return v, nil
	}
	return "", xattrs.ErrNoData
}

// headValue answers the facts only a HEAD gives: the version ID and the
// storage class.
func (n *fileNode) headValue(ctx context.Context, ref store.ObjectRef, name xattrs.Name) (string, error) {
	info, err := n.fsys.store.Stat(ctx, ref)
	if err != nil {
		return "", err
	}
	v := info.VersionID
	if name.Kind == xattrs.StorageClass {
		v = info.StorageClass
		if v == "" {
			v = "STANDARD"
		}
	}
	if v == "" || v == "null" {
		return "", xattrs.ErrNoData
	}
	return v, nil
}

// pendingValue answers for a file whose upload is still to come.
func (n *fileNode) pendingValue(name xattrs.Name) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.uploadOptionsLocked()
	switch name.Kind {
	case xattrs.Tags:
		if len(o.Tags) > 0 {
			return xattrs.FormatTags(o.Tags), nil
		}
	case xattrs.Tag:
		if v, ok := o.Tags[name.Arg]; ok {
			return v, nil
		}
	case xattrs.Retention:
		if o.LockMode != "" {
			return xattrs.FormatRetention(xattrs.RetentionValue{Mode: o.LockMode, Until: o.LockUntil}), nil
		}
	case xattrs.LegalHold:
		return xattrs.FormatLegalHold(o.LegalHold != nil && *o.LegalHold), nil
	case xattrs.ContentType:
		return o.ContentType, nil
	case xattrs.Meta:
		if v, ok := o.Meta[name.Arg]; ok && !posixKeys[name.Arg] {
			return v, nil
		}
	}
	return "", xattrs.ErrNoData
}

// Listxattr names the attributes a copy should carry: the stored user.*
// attributes (and the ACLs with --acl) of a regular file. The user.s3.*
// names (tags, metadata, Content-Type, retention, facts) are readable and
// settable by name but never listed, so cp -a, rsync -X and tar --xattrs
// neither copy S3 state onto local files nor fail setting it back; a
// symlink or special file lists nothing, as user.* is not readable there.
// With the metadata known (listings carry it) this costs no request.
func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if n.typ != syscall.S_IFREG {
		return 0, 0
	}
	set, err := n.storedSet(ctx)
	if err != nil {
		return 0, n.xattrErrno("listxattr", "", err)
	}
	return fitValue(xattrs.List(n.fsys.listable(set)), dest)
}
