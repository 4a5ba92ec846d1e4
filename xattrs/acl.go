package xattrs

import "encoding/binary"

// POSIX ACLs travel as the kernel's xattr form: a 4-byte version (2), then
// 8-byte entries (tag u16, perm u16, id u32), little endian. A file's mode
// and its access ACL must agree (the kernel checks an ACL only when the
// mode's group bits are set): the owner bits are the owner entry, the
// group bits the mask entry (the owning group's without a mask), the other
// bits the other entry.

const (
	aclUserObj  = 0x01
	aclGroupObj = 0x04
	aclMask     = 0x10
	aclOther    = 0x20
)

func aclEntries(v []byte) ([][]byte, bool) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != 2 {
		return nil, false
	}
	var out [][]byte
	for i := 4; i < len(v); i += 8 {
		out = append(out, v[i:i+8])
	}
	return out, true
}

// ACLMode returns the permission bits (0777) an access ACL implies.
func ACLMode(v []byte) (uint32, bool) {
	es, ok := aclEntries(v)
	if !ok {
		return 0, false
	}
	var user, group, mask, other uint32
	hasMask, found := false, 0
	for _, e := range es {
		perm := uint32(binary.LittleEndian.Uint16(e[2:])) & 7
		switch binary.LittleEndian.Uint16(e) {
		case aclUserObj:
			user, found = perm, found|1
		case aclGroupObj:
			group, found = perm, found|2
		case aclOther:
			other, found = perm, found|4
		case aclMask:
			mask, hasMask = perm, true
		}
	}
	if found != 7 {
		return 0, false
	}
	if hasMask {
		group = mask
	}
	return user<<6 | group<<3 | other, true
}

// ACLChmod returns the access ACL with the entries a chmod to perm (0777)
// changes: owner, mask (or the owning group without a mask), other.
func ACLChmod(v []byte, perm uint32) ([]byte, bool) {
	es, ok := aclEntries(v)
	if !ok {
		return nil, false
	}
	out := append([]byte(nil), v...)
	hasMask := false
	for _, e := range es {
		hasMask = hasMask || binary.LittleEndian.Uint16(e) == aclMask
	}
	for i := range es {
		e := out[4+8*i : 12+8*i]
		var p uint32
		switch tag := binary.LittleEndian.Uint16(e); {
		case tag == aclUserObj:
			p = perm >> 6 & 7
		case tag == aclMask || tag == aclGroupObj && !hasMask:
			p = perm >> 3 & 7
		case tag == aclOther:
			p = perm & 7
		default:
			continue
		}
		binary.LittleEndian.PutUint16(e[2:], uint16(p))
	}
	return out, true
}
