package xattrs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Extended attributes other than user.s3.* (any user.* name, and POSIX
// ACLs) are kept with the object in one metadata value, the form s3fs
// uses: x-amz-meta-xattr holds a URL-encoded JSON object mapping each name
// to its base64 value, so either tool reads the other's attributes.

// BlobKey is the metadata key (without x-amz-meta-) of the blob.
const BlobKey = "xattr"

// ACL names (stored like user names; the kernel enforces them).
const (
	ACLAccess  = "system.posix_acl_access"
	ACLDefault = "system.posix_acl_default"
)

// Limits of stored attributes.
const (
	MaxValueLen = 64 << 10 // XATTR_SIZE_MAX
	MaxNameLen  = 255      // XATTR_NAME_MAX
)

// IsStored reports names kept in the blob: user.* names outside user.s3.,
// the ACLs, and names in no namespace Linux knows ("key1": FUSE passes
// them through, and s3fs keeps them in the same blob).
func IsStored(name string) bool {
	if name == ACLAccess || name == ACLDefault {
		return true
	}
	if strings.HasPrefix(name, "user.") {
		return !strings.HasPrefix(name, Prefix) && len(name) > len("user.")
	}
	return IsBare(name)
}

// IsBare reports a name outside the namespaces Linux knows (user.,
// trusted., security., system.).
func IsBare(name string) bool {
	if name == "" {
		return false
	}
	for _, ns := range []string{"user.", "trusted.", "security.", "system."} {
		if strings.HasPrefix(name, ns) {
			return false
		}
	}
	return true
}

// ParseBlob reads a stored blob ("" is an empty set). Anything malformed is
// an error: the caller shows no attributes rather than wrong ones.
func ParseBlob(s string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if s == "" {
		return out, nil
	}
	js, err := url.PathUnescape(s)
	if err != nil {
		return nil, invalid("xattr blob: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return nil, invalid("xattr blob: %v", err)
	}
	for k, v := range m {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, invalid("xattr blob: value of %q: %v", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// FormatBlob writes a set as a blob ("" for an empty set), names sorted.
func FormatBlob(m map[string][]byte) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		b.WriteString(`"` + base64.StdEncoding.EncodeToString(m[k]) + `"`)
	}
	b.WriteByte('}')
	return percentEncode(b.String())
}

// percentEncode escapes every byte but letters, digits and -_.~ (what
// s3fs's decoder and any HTTP header take).
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// CheckStored applies the name and value limits of one stored attribute.
// Names must be UTF-8: the blob is JSON, which cannot keep other bytes.
func CheckStored(name string, value []byte) error {
	if !utf8.ValidString(name) {
		return invalid("attribute name %q is not UTF-8 (kept as JSON in the object's metadata)", name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("attribute name over %d bytes: %w", MaxNameLen, ErrTooBig)
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("attribute value over %d bytes: %w", MaxValueLen, ErrTooBig)
	}
	return nil
}
