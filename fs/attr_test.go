package fs

import (
	"strconv"
	"testing"
	"time"
)

// Metadata values come from objects any tool wrote: parsing never panics,
// what parses survives a write and a read back unchanged, and junk reads
// as "not said" (the mount's defaults), never as a wrong value.
func FuzzPosixMetadata(f *testing.F) {
	for _, seed := range [][4]string{
		{"33188", "1000", "1700000000", "1700000000.5"},
		{"41471", "0", "1700000000.123456789", ""},
		{"16877", "4294967295", "-5", "1e9"},
		{"junk", "-1", "1700000000.-1", "99999999999999999999"},
		{"", "", ".5", "1."},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, mode, uid, mtime, atime string) {
		meta := map[string]string{metaMode: mode, metaUID: uid, metaMtime: mtime, metaAtime: atime}
		a := parsePosix(meta)
		if v, err := strconv.ParseUint(mode, 10, 32); err == nil && a.mode != uint32(v) {
			t.Fatalf("mode %q read as %d", mode, a.mode)
		} else if err != nil && a.mode != 0 {
			t.Fatalf("junk mode %q read as %d", mode, a.mode)
		}
		if _, err := strconv.ParseUint(uid, 10, 32); err != nil && a.uid != nil {
			t.Fatalf("junk uid %q read as %d", uid, *a.uid)
		}
		_ = a.fileType()
		back := parsePosix(a.toMeta(nil))
		if back.mode != a.mode || (a.uid == nil) != (back.uid == nil) || (a.uid != nil && *a.uid != *back.uid) ||
			!back.mtime.Equal(a.mtime) || !back.atime.Equal(a.atime) {
			t.Fatalf("round trip of %v: %+v -> %+v", meta, a, back)
		}
		if !a.mtime.IsZero() {
			if got := parseTime(formatTime(a.mtime)); !got.Equal(a.mtime) {
				t.Fatalf("time %v formats as %q, reads as %v", a.mtime, formatTime(a.mtime), got)
			}
			if a.mtime.Before(time.Unix(-1<<40, 0)) || a.mtime.After(time.Unix(1<<40+1, 0)) {
				t.Fatalf("time %q read far out of range: %v", mtime, a.mtime)
			}
		}
	})
}
