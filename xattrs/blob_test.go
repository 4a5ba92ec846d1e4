package xattrs

import (
	"bytes"
	"errors"
	"testing"
)

// A blob is written into an HTTP header and read back from objects any tool
// may have touched: formatting gives header-safe text that parses back to
// the same set; parsing junk never panics and, when it succeeds, formats to
// something that parses the same again.
func TestStoredNamesAreUTF8(t *testing.T) {
	if err := CheckStored("user.\xc3", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a name that is not UTF-8: %v, want EINVAL", err)
	}
	if err := CheckStored("user.caf\u00e9", []byte{0xff}); err != nil {
		t.Fatal(err)
	}
}

func FuzzBlob(f *testing.F) {
	f.Add("user.a", []byte("1"), "system.posix_acl_access", []byte{2, 0, 0, 0, 1, 0, 6, 0})
	f.Add("user.\u00e9\n", []byte{0, 0xff}, "user.b", []byte(""))
	f.Add("", []byte(nil), "user.x%41", []byte("%41"))
	f.Fuzz(func(t *testing.T, k1 string, v1 []byte, k2 string, v2 []byte) {
		m := map[string][]byte{k1: v1, k2: v2}
		if CheckStored(k1, v1) != nil || CheckStored(k2, v2) != nil {
			return // never stored
		}
		s := FormatBlob(m)
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("-_.~%"), c) >= 0) {
				t.Fatalf("blob %q has byte %q, not safe in a header", s, c)
			}
		}
		back, err := ParseBlob(s)
		if err != nil {
			t.Fatalf("blob %q of %v does not parse: %v", s, m, err)
		}
		if len(back) != len(m) {
			t.Fatalf("round trip of %v: %v", m, back)
		}
		for k, v := range m {
			if !bytes.Equal(back[k], v) {
				t.Fatalf("round trip of %q: %q -> %q", k, v, back[k])
			}
		}
		// Junk (the values read as a blob themselves).
		for _, junk := range []string{k1, string(v1), k2 + string(v2)} {
			got, err := ParseBlob(junk)
			if err != nil {
				continue
			}
			again, err := ParseBlob(FormatBlob(got))
			if err != nil || len(again) != len(got) {
				t.Fatalf("blob %q parsed as %v, which formats to something else (%v, %v)", junk, got, again, err)
			}
		}
	})
}
