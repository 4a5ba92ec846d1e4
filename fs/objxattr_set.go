package fs

import (
	"context"
	"errors"
	"fmt"
	"kfs/fs/store"
	"kfs/xattrs"
	"maps"
	"strings"
	"syscall"
	"time"
)

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.changeXattr(ctx, "setxattr", attr, data, flags, false)
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.changeXattr(ctx, "removexattr", attr, nil, 0, true)
}

func (n *fileNode) changeXattr(ctx context.Context, op, attr string, data []byte, flags uint32, remove bool) syscall.Errno {
	name, class := n.fsys.classify(attr)
	switch class {
	case xattrNone:
		return syscall.EOPNOTSUPP
	case xattrUnknown:
		if remove {
			return syscall.ENODATA
		}
		return syscall.EOPNOTSUPP
	}
	if n.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if class == xattrS3 && !name.OnObject() {
		return syscall.EOPNOTSUPP
	}
	n.xattrMu.Lock()
	defer n.xattrMu.Unlock()
	var err error
	if class == xattrStored {
		err = n.setStored(ctx, attr, data, flags, remove)
	} else {
		err = n.setS3(ctx, name, string(data), flags, remove)
	}
	if err != nil {
		return n.xattrErrno(op, attr, err)
	}
	n.touchCtime()
	return 0
}

func (n *fileNode) touchCtime() {
	n.mu.Lock()
	n.pending.ctime = n.fsys.now()
	n.mu.Unlock()
}

// setStored changes one stored attribute: with a pending upload, or by a
// server-side copy of the object onto itself with the new blob.
func (n *fileNode) setStored(ctx context.Context, attr string, data []byte, flags uint32, remove bool) error {
	cur, err := n.storedSet(ctx)
	if err != nil {
		return err
	}
	next, err := applyStored(cur, attr, data, flags, remove)
	if err != nil {
		return err
	}
	if perm, ok := xattrs.ACLMode(data); ok && attr == xattrs.ACLAccess && !remove {
		n.mu.Lock()
		a, _, _ := n.attrsLocked()
		mode := a.mode
		if mode == 0 {
			mode = n.typ | n.fsys.cfg.FileMode
		}
		n.pending.mode = mode&^0o777 | perm // the mode follows the ACL
		n.mu.Unlock()
	}
	if n.uploadPending() {
		n.mu.Lock()
		if !remove {
			if err := checkAttrFits(n.uploadOptionsLocked().Meta, attr, data, next); err != nil {
				n.mu.Unlock()
				return err
			}
		}
		n.pendingX.xattrs = next
		n.mu.Unlock()
		n.rerecord() // a written-back file's record carries its attributes
		return nil
	}
	return n.rewriteMeta(ctx, func(o *store.PutOptions) error {
		if !remove {
			if err := checkAttrFits(o.Meta, attr, data, next); err != nil {
				return err
			}
		}
		setXattrMeta(o.Meta, next)
		return nil
	})
}

// setS3 sets (or, with remove, deletes) one user.s3.* attribute. Tag
// changes are read-modify-write of the whole set (S3 has no per-tag call),
// serialised per file so two concurrent setters lose nothing.
func (n *fileNode) setS3(ctx context.Context, name xattrs.Name, value string, flags uint32, remove bool) error {
	if name.ReadOnly() {
		cur, err := n.s3Value(ctx, name)
		if err == nil && !remove && cur == value {
			return nil // setting a fact to what it is (a copying tool's echo) changes nothing
		}
		return xattrs.ErrReadOnly
	}
	if err := n.uploadNow(ctx); err != nil {
		return err // tags and lock settings of a written-back file go on its object
	}
	if n.uploadPending() {
		return n.setPending(name, value, flags, remove)
	}
	key := n.objKey()
	switch name.Kind {
	case xattrs.Retention:
		return n.setRetention(ctx, key, value, remove)
	case xattrs.LegalHold:
		on := false
		if !remove {
			var err error
			if on, err = xattrs.ParseLegalHold(value); err != nil {
				return err
			}
		}
		return n.fsys.store.PutLegalHold(ctx, store.ObjectRef{Bucket: n.bucket, Key: key}, on)
	case xattrs.Tag, xattrs.Tags:
		tags, err := n.fsys.store.GetTags(ctx, store.ObjectRef{Bucket: n.bucket, Key: key})
		if err != nil {
			return err
		}
		if tags, err = xattrs.ApplyTagChange(tags, name, value, flags, remove); err != nil {
			return err
		}
		return n.fsys.store.PutTags(ctx, store.ObjectRef{Bucket: n.bucket, Key: key}, tags)
	}
	if _, err := n.current(ctx); err != nil {
		return err
	}
	return n.rewriteMeta(ctx, func(o *store.PutOptions) error { return editMeta(o, name, value, flags, remove) })
}

// editMeta applies a Content-Type or user.s3.meta.* change to options.
func editMeta(o *store.PutOptions, name xattrs.Name, value string, flags uint32, remove bool) error {
	if name.Kind == xattrs.ContentType {
		if remove || value == "" || strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("content type %q: %w", value, xattrs.ErrInvalid)
		}
		o.ContentType = value
		return nil
	}
	_, exists := o.Meta[name.Arg]
	if remove && !exists {
		return xattrs.ErrNoData
	}
	if err := xattrs.CheckFlags(flags, exists); err != nil {
		return err
	}
	if name.Kind == xattrs.Meta && !remove {
		if err := xattrs.CheckMetaName(name.Arg); err != nil {
			return err
		}
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("metadata value: %w", xattrs.ErrInvalid)
	}
	if remove {
		delete(o.Meta, name.Arg)
	} else {
		o.Meta[name.Arg] = value
	}
	return checkMetaFits(o.Meta)
}

// setRetention applies the object-lock rules before asking the store:
// COMPLIANCE retention never shortens or goes away, and GOVERNANCE
// retention shortens or goes away only with an explicit bypass.
func (n *fileNode) setRetention(ctx context.Context, key, value string, remove bool) error {
	r := xattrs.RetentionValue{}
	if !remove {
		var err error
		if r, err = xattrs.ParseRetention(value); err != nil {
			return err
		}
	}
	cur, err := n.fsys.store.GetRetention(ctx, store.ObjectRef{Bucket: n.bucket, Key: key})
	mode, until := cur.Mode, cur.Until
	if err != nil {
		return err
	}
	weaker := mode != "" && (r.Mode == "" || r.Until.Before(until) || (mode == xattrs.Compliance && r.Mode != xattrs.Compliance))
	switch {
	case weaker && mode == xattrs.Compliance:
		return fmt.Errorf("COMPLIANCE retention until %s cannot be shortened or removed: %w", until.Format(time.RFC3339), syscall.EPERM)
	case weaker && !r.Bypass:
		return fmt.Errorf("shortening or clearing GOVERNANCE retention needs \" bypass\" after the value: %w", syscall.EPERM)
	case remove && mode == "":
		return xattrs.ErrNoData
	}
	return n.fsys.store.PutRetention(ctx, store.RetentionRequest{ObjectRef: store.ObjectRef{Bucket: n.bucket, Key: key}, Retention: store.Retention{Mode: r.Mode, Until: r.Until}, Bypass: r.Bypass})
}

// setPending records an attribute for the coming upload.
func (n *fileNode) setPending(name xattrs.Name, value string, flags uint32, remove bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := &n.pendingX
	switch name.Kind {
	case xattrs.Tag, xattrs.Tags:
		cur := p.tags
		if cur == nil {
			cur = map[string]string{}
		}
		t, err := xattrs.ApplyTagChange(cur, name, value, flags, remove)
		if err != nil {
			return err
		}
		p.tags = t
	case xattrs.Retention:
		if remove {
			p.lockMode, p.lockUntil = "", time.Time{}
			return nil
		}
		r, err := xattrs.ParseRetention(value)
		if err != nil {
			return err
		}
		p.lockMode, p.lockUntil = r.Mode, r.Until
	case xattrs.LegalHold:
		on := false
		if !remove {
			var err error
			if on, err = xattrs.ParseLegalHold(value); err != nil {
				return err
			}
		}
		p.legalHold = &on
	case xattrs.ContentType, xattrs.Meta:
		o := n.uploadOptionsLocked()
		o.Meta = maps.Clone(o.Meta)
		if err := editMeta(&o, name, value, flags, remove); err != nil {
			return err
		}
		if name.Kind == xattrs.ContentType {
			p.contentType = value
			return nil
		}
		if p.meta == nil {
			p.meta = map[string]string{}
		}
		p.meta[name.Arg] = o.Meta[name.Arg] // "" when removed
	default:
		return errors.ErrUnsupported
	}
	return nil
}
