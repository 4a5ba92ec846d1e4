package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"kfs/xattrs"
)

// Extended attributes of files: object tags, retention, legal hold, user
// metadata, Content-Type and read-only facts (see package xattrs for the
// names). A file still being written keeps what is set on it and stores it
// with the upload.

var (
	_ = (fusefs.NodeSetxattrer)((*fileNode)(nil))
	_ = (fusefs.NodeRemovexattrer)((*fileNode)(nil))
)

// errNotYet answers attributes kfs does not serve yet.
var errNotYet = fmt.Errorf("not supported yet: %w", syscall.ENOTSUP)

func (f *fileNode) xattrErrno(op, attr string, err error) syscall.Errno {
	for _, e := range []syscall.Errno{syscall.ENODATA, syscall.ERANGE, syscall.EEXIST} {
		if errors.Is(err, e) {
			return e // ordinary answers: no log line
		}
	}
	return toErrno(f.fsys.cfg.Log, fmt.Sprintf("%s %s on %s/%s", op, attr, f.bucket, f.objKey()), err)
}

// storedInfo returns what a HEAD says when the listing left Content-Type or
// metadata out.
func (f *fileNode) storedInfo(ctx context.Context) (ObjectInfo, error) {
	f.mu.Lock()
	info, stored, key := f.info, f.stored, f.key
	f.mu.Unlock()
	if !stored {
		return ObjectInfo{}, fmt.Errorf("%s: still being written: %w", key, os.ErrNotExist)
	}
	if info.ContentType != "" && info.Meta != nil {
		return info, nil
	}
	return f.fsys.store.Stat(ctx, f.bucket, key)
}

func (f *fileNode) xattrValue(ctx context.Context, n xattrs.Name) (string, error) {
	switch n.Kind {
	case xattrs.Tag, xattrs.Tags:
		tags, err := f.fsys.store.GetTags(ctx, f.bucket, f.objKey())
		if err != nil {
			return "", err
		}
		if n.Kind == xattrs.Tags {
			if len(tags) == 0 {
				return "", xattrs.ErrNoData
			}
			return xattrs.FormatTags(tags), nil
		}
		v, ok := tags[n.Arg]
		if !ok {
			return "", xattrs.ErrNoData
		}
		return v, nil
	case xattrs.Retention:
		mode, until, err := f.fsys.store.GetRetention(ctx, f.bucket, f.objKey())
		if err != nil || mode == "" {
			return "", orNoData(err)
		}
		return xattrs.FormatRetention(xattrs.RetentionValue{Mode: mode, Until: until}), nil
	case xattrs.LegalHold:
		on, err := f.fsys.store.GetLegalHold(ctx, f.bucket, f.objKey())
		if err != nil {
			return "", err
		}
		return xattrs.FormatLegalHold(on), nil
	case xattrs.VersionID, xattrs.StorageClass:
		info, err := f.fsys.store.Stat(ctx, f.bucket, f.objKey())
		if err != nil {
			return "", err
		}
		v := info.VersionID
		if n.Kind == xattrs.StorageClass {
			v = info.StorageClass
			if v == "" {
				v = "STANDARD"
			}
		}
		if v == "" || v == "null" {
			return "", xattrs.ErrNoData
		}
		return v, nil
	case xattrs.ETag, xattrs.ContentType, xattrs.Meta:
		info, err := f.storedInfo(ctx)
		if err != nil {
			return "", err
		}
		switch n.Kind {
		case xattrs.ETag:
			return info.ETag, nil
		case xattrs.ContentType:
			return info.ContentType, nil
		}
		v, ok := info.Meta[n.Arg]
		if !ok || isPosixKey(n.Arg) {
			return "", xattrs.ErrNoData
		}
		return v, nil
	}
	return "", errNotYet
}

func orNoData(err error) error {
	if err == nil {
		return xattrs.ErrNoData
	}
	return err
}

func isPosixKey(k string) bool {
	return k == metaMode || k == metaUID || k == metaGID || k == metaMtime
}

func (f *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	n, ok := xattrs.Parse(attr)
	if !ok || !n.OnObject() {
		return 0, getxattr(attr)
	}
	v, err := f.xattrValue(ctx, n)
	if err != nil {
		return 0, f.xattrErrno("getxattr", attr, err)
	}
	sz, err := xattrs.Fit([]byte(v), dest)
	if err != nil {
		return uint32(sz), syscall.ERANGE
	}
	return uint32(sz), 0
}

func (f *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	info, err := f.storedInfo(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0
	}
	if err != nil {
		return 0, f.xattrErrno("listxattr", "", err)
	}
	tags, err := f.fsys.store.GetTags(ctx, f.bucket, f.objKey())
	if err != nil {
		return 0, f.xattrErrno("listxattr", "", err)
	}
	names := []string{xattrs.Name{Kind: xattrs.ETag}.String(), xattrs.Name{Kind: xattrs.ContentType}.String()}
	if len(tags) > 0 {
		names = append(names, xattrs.Name{Kind: xattrs.Tags}.String())
	}
	var more []string
	for k := range tags {
		more = append(more, xattrs.Name{Kind: xattrs.Tag, Arg: k}.String())
	}
	for k := range info.Meta {
		if !isPosixKey(k) {
			more = append(more, xattrs.Name{Kind: xattrs.Meta, Arg: k}.String())
		}
	}
	if mode, _, err := f.fsys.store.GetRetention(ctx, f.bucket, f.objKey()); err == nil && mode != "" {
		names = append(names, xattrs.Name{Kind: xattrs.Retention}.String())
	}
	if on, err := f.fsys.store.GetLegalHold(ctx, f.bucket, f.objKey()); err == nil && on {
		names = append(names, xattrs.Name{Kind: xattrs.LegalHold}.String())
	}
	sort.Strings(more)
	sz, ferr := xattrs.Fit(xattrs.List(append(names, more...)), dest)
	if ferr != nil {
		return uint32(sz), syscall.ERANGE
	}
	return uint32(sz), 0
}

func (f *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	n, ok := xattrs.Parse(attr)
	if !ok || !n.OnObject() {
		return syscall.EOPNOTSUPP // the store has nowhere to keep other names
	}
	if f.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := f.setXattr(ctx, n, string(data), flags, false); err != nil {
		return f.xattrErrno("setxattr", attr, err)
	}
	return 0
}

func (f *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	n, ok := xattrs.Parse(attr)
	if !ok || !n.OnObject() {
		return syscall.ENODATA
	}
	if f.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if err := f.setXattr(ctx, n, "", 0, true); err != nil {
		return f.xattrErrno("removexattr", attr, err)
	}
	return 0
}

// setXattr sets (or, with remove, deletes) one attribute. Tag changes are
// read-modify-write of the whole set (S3 has no per-tag call), serialised
// per file so two concurrent setters lose nothing.
func (f *fileNode) setXattr(ctx context.Context, n xattrs.Name, value string, flags uint32, remove bool) error {
	if n.ReadOnly() {
		return xattrs.ErrReadOnly
	}
	f.xattrMu.Lock()
	defer f.xattrMu.Unlock()
	if f.uploadPending() {
		return f.setPending(n, value, flags, remove)
	}
	info, err := f.storedInfo(ctx)
	if err != nil {
		return err
	}
	key := f.objKey()
	switch n.Kind {
	case xattrs.Retention:
		return f.setRetention(ctx, key, value, remove)
	case xattrs.LegalHold:
		if remove {
			return f.fsys.store.PutLegalHold(ctx, f.bucket, key, false)
		}
		on, err := xattrs.ParseLegalHold(value)
		if err != nil {
			return err
		}
		return f.fsys.store.PutLegalHold(ctx, f.bucket, key, on)
	case xattrs.Tag, xattrs.Tags:
		tags, err := f.fsys.store.GetTags(ctx, f.bucket, key)
		if err != nil {
			return err
		}
		if tags, err = xattrs.ApplyTagChange(tags, n, value, flags, remove); err != nil {
			return err
		}
		return f.fsys.store.PutTags(ctx, f.bucket, key, tags)
	case xattrs.ContentType, xattrs.Meta:
		opts := PutOptions{ContentType: info.ContentType, Meta: map[string]string{}}
		for k, v := range info.Meta {
			opts.Meta[k] = v
		}
		if n.Kind == xattrs.ContentType {
			if remove || value == "" || strings.ContainsAny(value, "\r\n") {
				return fmt.Errorf("content type %q: %w", value, xattrs.ErrInvalid)
			}
			opts.ContentType = value
		} else {
			_, exists := opts.Meta[n.Arg]
			if remove && !exists {
				return xattrs.ErrNoData
			}
			if err := xattrs.CheckFlags(flags, exists); err != nil {
				return err
			}
			if strings.ContainsAny(value, "\r\n\x00") {
				return fmt.Errorf("metadata value: %w", xattrs.ErrInvalid)
			}
			if remove {
				delete(opts.Meta, n.Arg)
			} else {
				opts.Meta[n.Arg] = value
			}
		}
		fresh, err := f.fsys.store.Copy(ctx, f.bucket, key, info.ETag, key, &opts)
		if err != nil {
			return err
		}
		f.committed(fresh)
		return nil
	}
	return errNotYet
}

// setRetention applies the object-lock rules before asking the store:
// COMPLIANCE retention never shortens or goes away, and GOVERNANCE
// retention shortens or goes away only with an explicit bypass.
func (f *fileNode) setRetention(ctx context.Context, key, value string, remove bool) error {
	r := xattrs.RetentionValue{}
	if !remove {
		var err error
		if r, err = xattrs.ParseRetention(value); err != nil {
			return err
		}
	}
	mode, until, err := f.fsys.store.GetRetention(ctx, f.bucket, key)
	if err != nil {
		return err
	}
	weaker := mode != "" && (r.Mode == "" || r.Until.Before(until) || (mode == xattrs.Compliance && r.Mode != xattrs.Compliance))
	switch {
	case weaker && mode == xattrs.Compliance:
		return fmt.Errorf("COMPLIANCE retention until %s cannot be shortened or removed: %w", until.Format("2006-01-02T15:04:05Z"), syscall.EPERM)
	case weaker && !r.Bypass:
		return fmt.Errorf("shortening or clearing GOVERNANCE retention needs \" bypass\" after the value: %w", syscall.EPERM)
	case remove && mode == "":
		return xattrs.ErrNoData
	}
	return f.fsys.store.PutRetention(ctx, f.bucket, key, r.Mode, r.Until, r.Bypass)
}

// uploadPending reports whether an upload of this file is still to come
// (it is being created, or a writer has unsaved changes): attributes set
// now go with it, since a new upload replaces tags and lock settings.
func (f *fileNode) uploadPending() bool {
	f.mu.Lock()
	stored := f.stored
	writers := make([]*writeHandle, 0, len(f.writers))
	for w := range f.writers {
		writers = append(writers, w)
	}
	f.mu.Unlock()
	if !stored {
		return true
	}
	for _, w := range writers {
		w.mu.Lock()
		dirty := w.dirty && w.err == nil
		w.mu.Unlock()
		if dirty {
			return true
		}
	}
	return false
}

// setPending records an attribute for the coming upload.
func (f *fileNode) setPending(n xattrs.Name, value string, flags uint32, remove bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &f.pendingX
	switch n.Kind {
	case xattrs.Tag, xattrs.Tags:
		t, err := xattrs.ApplyTagChange(p.tags, n, value, flags, remove)
		if err != nil {
			return err
		}
		p.tags = t
	case xattrs.Retention:
		r, err := xattrs.ParseRetention(value)
		if err != nil {
			return err
		}
		p.lockMode, p.lockUntil = r.Mode, r.Until
	case xattrs.LegalHold:
		on, err := xattrs.ParseLegalHold(value)
		if err != nil {
			return err
		}
		p.legalHold = &on
	case xattrs.ContentType:
		if value == "" || strings.ContainsAny(value, "\r\n") {
			return xattrs.ErrInvalid
		}
		p.contentType = value
	case xattrs.Meta:
		if p.meta == nil {
			p.meta = map[string]string{}
		}
		if remove {
			delete(p.meta, n.Arg)
		} else {
			p.meta[n.Arg] = value
		}
	default:
		return errNotYet
	}
	return nil
}
