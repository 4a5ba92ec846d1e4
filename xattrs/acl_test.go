package xattrs

import (
	"encoding/base64"
	"testing"
)

// u::rw- u:nobody:r-- g::--- m::r-- o::--- as setfacl writes it.
const aclNobodyRead = "AgAAAAEABgD/////AgAEAP7/AAAEAAAA/////xAABAD/////IAAAAP////8="

func TestACLModeAndChmod(t *testing.T) {
	v, _ := base64.StdEncoding.DecodeString(aclNobodyRead)
	if m, ok := ACLMode(v); !ok || m != 0o640 {
		t.Fatalf("mode of the ACL: %o %v, want 640", m, ok)
	}
	w, ok := ACLChmod(v, 0o750)
	if !ok {
		t.Fatal("chmod refused")
	}
	if m, _ := ACLMode(w); m != 0o750 {
		t.Fatalf("after chmod 750: %o", m)
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0}, append([]byte{2, 0, 0, 0}, 1, 2, 3)} {
		if _, ok := ACLMode(bad); ok {
			t.Errorf("ACLMode accepted %v", bad)
		}
		if _, ok := ACLChmod(bad, 0o700); ok {
			t.Errorf("ACLChmod accepted %v", bad)
		}
	}
}

func FuzzACL(f *testing.F) {
	v, _ := base64.StdEncoding.DecodeString(aclNobodyRead)
	f.Add(v, uint32(0o755))
	f.Fuzz(func(t *testing.T, v []byte, perm uint32) {
		perm &= 0o777
		if w, ok := ACLChmod(v, perm); ok {
			if m, ok := ACLMode(w); ok && m != perm {
				t.Fatalf("chmod %o gave mode %o", perm, m)
			}
		}
	})
}
