package fs

import (
	"fmt"
	"maps"
	"sort"
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

// listable are the names of a stored set this mount serves by getxattr
// (ACLs only with --acl), sorted.
func (f *FS) listable(set map[string][]byte) []string {
	var names []string
	for k := range set {
		if _, class := f.classify(k); class == xattrStored {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// setXattrMeta writes a set of stored attributes into metadata.
func setXattrMeta(meta map[string]string, m map[string][]byte) {
	if v := xattrs.FormatBlob(m); v != "" {
		meta[metaXattr] = v
	} else {
		delete(meta, metaXattr)
	}
}

// metaLimit is the most bytes of user metadata an object may carry: S3
// and MinIO refuse a request whose x-amz-meta-* headers (names with the
// prefix, and values) add up to more than 2 KiB (MinIO: measured, see
// README). POSIX attributes, user.s3.meta.* and the stored extended
// attributes all count.
const metaLimit = 2 << 10

func metaSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len("x-amz-meta-") + len(k) + len(v)
	}
	return n
}

// checkMetaFits refuses metadata the store would refuse, naming the limit.
func checkMetaFits(meta map[string]string) error {
	if n := metaSize(meta); n > metaLimit {
		return fmt.Errorf("%d bytes of user metadata (POSIX attributes, user.s3.meta.* and stored xattrs together), over the store's limit of %d: %w",
			n, metaLimit, xattrs.ErrNoSpace)
	}
	return nil
}

// checkAttrFits refuses one stored attribute that could never fit, even
// alone beside the POSIX attributes (E2BIG), then a set that does not fit
// now (ENOSPC).
func checkAttrFits(base map[string]string, name string, value []byte, next map[string][]byte) error {
	alone := maps.Clone(base)
	delete(alone, metaXattr)
	setXattrMeta(alone, map[string][]byte{name: value})
	if n := metaSize(alone); n > metaLimit {
		return fmt.Errorf("attribute %s takes %d bytes of user metadata stored (base64 in x-amz-meta-xattr), over the store's limit of %d: %w",
			name, n, metaLimit, xattrs.ErrTooBig)
	}
	with := maps.Clone(base)
	setXattrMeta(with, next)
	return checkMetaFits(with)
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
