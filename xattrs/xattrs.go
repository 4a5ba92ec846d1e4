// Package xattrs is the mapping between extended attribute names and
// values and what the object store keeps beside the bytes: object tags,
// retention, legal hold, user metadata, content type, read-only facts, and
// bucket configuration. It is pure (no I/O) so the filesystem, the CLI and
// the tests share one definition of every name and value format.
//
// Object names (on files):
//
//	user.s3.tag.<Key>      one tag's value
//	user.s3.tags           the whole tag set, URL-query form k1=v1&k2=v2
//	user.s3.retention      "GOVERNANCE 2026-12-23T00:00:00Z" (set: append " bypass" to shorten or clear GOVERNANCE)
//	user.s3.legal-hold     "ON" or "OFF"
//	user.s3.meta.<Name>    user metadata x-amz-meta-<Name>
//	user.s3.content-type   Content-Type
//	user.s3.etag, user.s3.version-id, user.s3.storage-class   read-only facts
//
// Bucket names (on bucket directories): user.s3.versioning,
// user.s3.encryption, user.s3.lifecycle, user.s3.tags, user.s3.tag.<Key>,
// user.s3.object-lock, user.s3.notification.
package xattrs

import (
	"fmt"
	"strings"
	"syscall"
)

// Prefix starts every name kfs serves.
const Prefix = "user.s3."

// Kind says what a name is about.
type Kind int

// The kinds of names.
const (
	Unknown Kind = iota
	Tag
	Tags
	Retention
	LegalHold
	Meta
	ContentType
	ETag
	VersionID
	StorageClass
	Versioning
	Encryption
	Lifecycle
	ObjectLock
	Notification
	Policy
)

var fixed = map[string]Kind{
	"tags":          Tags,
	"retention":     Retention,
	"legal-hold":    LegalHold,
	"content-type":  ContentType,
	"etag":          ETag,
	"version-id":    VersionID,
	"storage-class": StorageClass,
	"versioning":    Versioning,
	"encryption":    Encryption,
	"lifecycle":     Lifecycle,
	"object-lock":   ObjectLock,
	"notification":  Notification,
	"policy":        Policy,
}

// Name is a parsed attribute name. Arg is the tag key or metadata name.
type Name struct {
	Kind Kind
	Arg  string
}

// Errors, each an errno the filesystem returns as is.
var (
	ErrInvalid  = fmt.Errorf("invalid value: %w", syscall.EINVAL)
	ErrReadOnly = fmt.Errorf("read-only attribute: %w", syscall.EPERM)
	ErrExists   = fmt.Errorf("attribute exists (XATTR_CREATE): %w", syscall.EEXIST)
	ErrNoData   = fmt.Errorf("no such attribute: %w", syscall.ENODATA)
	ErrTooBig   = fmt.Errorf("attribute too large: %w", syscall.E2BIG)
	ErrNoSpace  = fmt.Errorf("no room left for attributes (the object store limits metadata): %w", syscall.ENOSPC)
)

// Parse reads an attribute name; ok is false for names kfs does not serve
// (which answer ENODATA without asking the store).
func Parse(name string) (n Name, ok bool) {
	rest, found := strings.CutPrefix(name, Prefix)
	if !found {
		return Name{}, false
	}
	if k, isFixed := fixed[rest]; isFixed {
		return Name{Kind: k}, true
	}
	if key, found := strings.CutPrefix(rest, "tag."); found && key != "" {
		return Name{Kind: Tag, Arg: key}, true
	}
	if m, found := strings.CutPrefix(rest, "meta."); found && m != "" {
		return Name{Kind: Meta, Arg: strings.ToLower(m)}, true // CheckMetaName before setting it
	}
	return Name{}, false
}

// String is the attribute name.
func (n Name) String() string {
	switch n.Kind {
	case Tag:
		return Prefix + "tag." + n.Arg
	case Meta:
		return Prefix + "meta." + n.Arg
	}
	for s, k := range fixed {
		if k == n.Kind {
			return Prefix + s
		}
	}
	return ""
}

// ReadOnly reports names whose set and remove answer EPERM.
func (n Name) ReadOnly() bool {
	return n.Kind == ETag || n.Kind == VersionID || n.Kind == StorageClass
}

// OnObject reports names served on files.
func (n Name) OnObject() bool {
	switch n.Kind {
	case Tag, Tags, Retention, LegalHold, Meta, ContentType, ETag, VersionID, StorageClass:
		return true
	}
	return false
}

// OnBucket reports names served on bucket directories.
func (n Name) OnBucket() bool {
	switch n.Kind {
	case Tag, Tags, Versioning, Encryption, Lifecycle, ObjectLock, Notification, Policy:
		return true
	}
	return false
}

// CheckMetaName accepts a user.s3.meta.<name> that can be an HTTP header
// name suffix (letters, digits, - and _, at most 128): S3 keeps metadata
// in headers, so a space or a non-ASCII letter cannot be stored (EINVAL).
func CheckMetaName(s string) error {
	if s == "" || len(s) > 128 {
		return invalid("metadata name %q: 1 to 128 characters", s)
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return invalid("metadata name %q: S3 keeps metadata in HTTP headers, whose names take only ASCII letters, digits, - and _ (not %q)", s, c)
		}
	}
	return nil
}

// Set-flags of setxattr(2).
const (
	FlagCreate  = 1 // XATTR_CREATE
	FlagReplace = 2 // XATTR_REPLACE
)

// CheckFlags applies XATTR_CREATE / XATTR_REPLACE to whether the attribute
// exists now.
func CheckFlags(flags uint32, exists bool) error {
	switch {
	case flags&FlagCreate != 0 && flags&FlagReplace != 0:
		return ErrInvalid
	case flags&FlagCreate != 0 && exists:
		return ErrExists
	case flags&FlagReplace != 0 && !exists:
		return ErrNoData
	}
	return nil
}

// Fit copies value into dest as getxattr(2) must: with an empty dest it
// only reports the size; a dest too small is ERANGE.
func Fit(value []byte, dest []byte) (int, error) {
	if len(dest) == 0 {
		return len(value), nil
	}
	if len(dest) < len(value) {
		return len(value), syscall.ERANGE
	}
	return copy(dest, value), nil
}

// List packs names as listxattr(2) returns them (NUL-terminated).
func List(names []string) []byte {
	var b []byte
	for _, n := range names {
		b = append(append(b, n...), 0)
	}
	return b
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrInvalid)
}
