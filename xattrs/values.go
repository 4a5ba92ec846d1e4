package xattrs

import (
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// S3 tag limits.
const (
	MaxTags        = 10
	MaxTagKeyLen   = 128
	MaxTagValueLen = 256
)

// CheckTag applies S3's rules to one tag: key 1-128 and value 0-256
// characters of letters, digits, white space and + - = . _ : / @.
func CheckTag(key, value string) error {
	if key == "" || utf8.RuneCountInString(key) > MaxTagKeyLen {
		return invalid("tag key %q: want 1 to %d characters", key, MaxTagKeyLen)
	}
	if utf8.RuneCountInString(value) > MaxTagValueLen {
		return invalid("tag %q: value longer than %d characters", key, MaxTagValueLen)
	}
	if strings.HasPrefix(strings.ToLower(key), "aws:") {
		return invalid("tag key %q: the aws: prefix is reserved", key)
	}
	for _, s := range []string{key, value} {
		if !utf8.ValidString(s) {
			return invalid("tag %q: not UTF-8", key)
		}
		for _, c := range s {
			if !tagChar(c) {
				return invalid("tag %q: character %q is not allowed (letters, digits, spaces and + - = . _ : / @)", key, c)
			}
		}
	}
	return nil
}

func tagChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case strings.ContainsRune(" +-=._:/@", c):
		return true
	case c > 127:
		return c != 0xFFFD
	}
	return false
}

// CheckTags applies the per-tag rules and the count limit.
func CheckTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return invalid("%d tags: S3 allows at most %d", len(tags), MaxTags)
	}
	for k, v := range tags {
		if err := CheckTag(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ParseTags reads the URL-query form "k1=v1&k2=v2" (an empty string is the
// empty set) and checks it.
func ParseTags(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	tags := map[string]string{}
	if s == "" {
		return tags, nil
	}
	for _, pair := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, invalid("tags %q: bad URL escaping", s)
		}
		if _, dup := tags[key]; dup {
			return nil, invalid("tags: key %q given twice", key)
		}
		tags[key] = val
	}
	return tags, CheckTags(tags)
}

// FormatTags writes a tag set in URL-query form, keys sorted.
func FormatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(tags[k]))
	}
	return b.String()
}

// Retention modes.
const (
	Governance = "GOVERNANCE"
	Compliance = "COMPLIANCE"
)

// RetentionValue is an object's retention setting.
type RetentionValue struct {
	Mode   string    // Governance, Compliance, or "" (none)
	Until  time.Time // UTC, whole seconds
	Bypass bool      // set only: shorten or clear GOVERNANCE retention
}

// ParseRetention reads "MODE DATE" (RFC 3339, e.g.
// "GOVERNANCE 2026-12-23T00:00:00Z"), optionally followed by " bypass";
// "NONE bypass" clears GOVERNANCE retention.
func ParseRetention(s string) (RetentionValue, error) {
	f := strings.Fields(s)
	var r RetentionValue
	if n := len(f); n > 0 && strings.EqualFold(f[n-1], "bypass") {
		r.Bypass = true
		f = f[:n-1]
	}
	switch {
	case len(f) == 1 && strings.EqualFold(f[0], "NONE"):
		if !r.Bypass {
			return r, invalid("retention NONE: clearing retention needs \"NONE bypass\"")
		}
		return r, nil
	case len(f) != 2:
		return r, invalid("retention %q: want \"GOVERNANCE|COMPLIANCE 2006-01-02T15:04:05Z [bypass]\"", s)
	}
	r.Mode = strings.ToUpper(f[0])
	if r.Mode != Governance && r.Mode != Compliance {
		return r, invalid("retention mode %q: want GOVERNANCE or COMPLIANCE", f[0])
	}
	t, err := time.Parse(time.RFC3339, f[1])
	if err != nil {
		return r, invalid("retention date %q: want RFC 3339, e.g. 2026-12-23T00:00:00Z", f[1])
	}
	r.Until = t.UTC().Truncate(time.Second)
	return r, nil
}

// FormatRetention writes "MODE DATE" (no bypass: that is for setting).
func FormatRetention(r RetentionValue) string {
	if r.Mode == "" {
		return ""
	}
	return r.Mode + " " + r.Until.UTC().Format(time.RFC3339)
}

// ParseLegalHold reads ON or OFF.
func ParseLegalHold(s string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ON":
		return true, nil
	case "OFF":
		return false, nil
	}
	return false, invalid("legal hold %q: want ON or OFF", s)
}

// FormatLegalHold writes ON or OFF.
func FormatLegalHold(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

// ApplyTagChange applies a set (or, with remove, a removal) of the name
// user.s3.tags or user.s3.tag.<Key> to a tag set, with the setxattr flag
// rules, and returns the new, checked set. The input map is not changed.
func ApplyTagChange(tags map[string]string, n Name, value string, flags uint32, remove bool) (map[string]string, error) {
	if n.Kind == Tags {
		exists := len(tags) > 0
		if remove && !exists {
			return nil, ErrNoData
		}
		if err := CheckFlags(flags, exists); err != nil {
			return nil, err
		}
		if remove {
			return map[string]string{}, nil
		}
		return ParseTags(value)
	}
	if n.Kind != Tag {
		return nil, ErrInvalid
	}
	_, exists := tags[n.Arg]
	if remove && !exists {
		return nil, ErrNoData
	}
	if err := CheckFlags(flags, exists); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	if remove {
		delete(out, n.Arg)
	} else {
		out[n.Arg] = value
	}
	return out, CheckTags(out)
}

// Check validates a value for a settable name as setfattr would give it,
// without a store: what the README's and the help's examples must pass.
func Check(n Name, value string) error {
	var err error
	switch n.Kind {
	case Tag:
		err = CheckTag(n.Arg, value)
	case Tags:
		_, err = ParseTags(value)
	case Retention:
		_, err = ParseRetention(value)
	case LegalHold:
		_, err = ParseLegalHold(value)
	case Versioning:
		_, err = ParseVersioning(value)
	case Encryption:
		_, err = ParseEncryption(value)
	case Lifecycle:
		_, err = LifecycleFromJSON(value)
	case ObjectLock:
		_, err = ParseObjectLock(value)
	case Notification:
		_, err = NotificationFromJSON(value)
	case Policy:
		err = CheckPolicy(value)
	case Meta, ContentType:
		if n.Kind == Meta {
			if err := CheckMetaName(n.Arg); err != nil {
				return err
			}
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			err = invalid("value has a line break or NUL")
		}
	default:
		err = ErrReadOnly
	}
	return err
}
