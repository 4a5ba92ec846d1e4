package fs

import (
	"strings"
	"syscall"

	"kfs/xattrs"
)

// Extended attributes: user.s3.* names map to what S3 keeps beside the
// bytes (package xattrs); every other user.* name, and the POSIX ACLs when
// the mount enables them, are stored with the object in s3fs's
// x-amz-meta-xattr form. Security labels and other namespaces are not
// supported, and the answer says so (EOPNOTSUPP, no network call), which
// also makes tools such as ls(1) stop asking for every file.

// metaXattr is the metadata key of stored attributes.
const metaXattr = xattrs.BlobKey

// xattrClass says where a name is served.
type xattrClass int

const (
	xattrS3      xattrClass = iota // user.s3.*: object or bucket settings
	xattrStored                    // user.*, ACLs: the stored blob
	xattrUnknown                   // user.s3.* names kfs does not know: ENODATA
	xattrNone                      // other namespaces: EOPNOTSUPP
)

func (f *FS) classify(name string) (xattrs.Name, xattrClass) {
	if n, ok := xattrs.Parse(name); ok {
		return n, xattrS3
	}
	if strings.HasPrefix(name, xattrs.Prefix) {
		return xattrs.Name{}, xattrUnknown
	}
	if xattrs.IsStored(name) {
		if strings.HasPrefix(name, "system.") && !f.cfg.ACL {
			return xattrs.Name{}, xattrNone
		}
		return xattrs.Name{}, xattrStored
	}
	return xattrs.Name{}, xattrNone
}

// storedAttrs reads the blob of metadata (nil on a malformed one, which is
// logged once and shown as no attributes).
func (f *FS) storedAttrs(where string, meta map[string]string) map[string][]byte {
	m, err := xattrs.ParseBlob(meta[metaXattr])
	if err != nil {
		f.logOnce("ignoring malformed stored extended attributes", "object", where, "err", err)
		return map[string][]byte{}
	}
	return m
}

// setXattrMeta writes a set of stored attributes into metadata.
func setXattrMeta(meta map[string]string, m map[string][]byte) {
	if v := xattrs.FormatBlob(m); v != "" {
		meta[metaXattr] = v
	} else {
		delete(meta, metaXattr)
	}
}

// metaLimit is the most bytes of user metadata kfs puts on an object (S3
// allows 2 KiB of x-amz-meta-* headers; MinIO more, see README).
const metaLimit = 8 << 10

func metaSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len("x-amz-meta-") + len(k) + len(v)
	}
	return n
}

// applyStored changes one stored attribute in a set, with the setxattr
// flag rules and the size limits.
func applyStored(m map[string][]byte, name string, value []byte, flags uint32, remove bool) (map[string][]byte, error) {
	_, exists := m[name]
	if remove && !exists {
		return nil, xattrs.ErrNoData
	}
	if err := xattrs.CheckFlags(flags, exists); err != nil {
		return nil, err
	}
	if err := xattrs.CheckStored(name, value); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if remove {
		delete(out, name)
	} else {
		out[name] = append([]byte(nil), value...)
	}
	return out, nil
}

func fitValue(v []byte, dest []byte) (uint32, syscall.Errno) {
	sz, err := xattrs.Fit(v, dest)
	if err != nil {
		return uint32(sz), syscall.ERANGE
	}
	return uint32(sz), 0
}
