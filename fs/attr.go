package fs

import (
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/fs/listing"
	"kfs/fs/store"
)

// POSIX attributes live in user metadata under the names s3fs uses, so a
// bucket written by either tool reads the same through the other:
// x-amz-meta-mode (decimal st_mode, file type included), -uid, -gid,
// -atime, -mtime, -ctime (decimal seconds, with a fraction for
// nanoseconds) and -rdev (device nodes).
const (
	metaMode  = "mode"
	metaUID   = "uid"
	metaGID   = "gid"
	metaAtime = "atime"
	metaMtime = "mtime"
	metaCtime = "ctime"
	metaRdev  = "rdev"
)

// posixKeys are the metadata names kfs owns (hidden from user.s3.meta.*).
var posixKeys = map[string]bool{metaMode: true, metaUID: true, metaGID: true, metaAtime: true, metaMtime: true,
	metaCtime: true, metaRdev: true, metaXattr: true}

// posix is what metadata says; zero fields mean "not said".
type posix struct {
	mode                uint32 // full st_mode; 0 = not said
	uid, gid            *uint32
	atime, mtime, ctime time.Time
	rdev                uint32
}

func parseUint(s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err == nil
}

func parsePosix(meta map[string]string) posix {
	var a posix
	if v, ok := parseUint(meta[metaMode]); ok {
		a.mode = v
	}
	if v, ok := parseUint(meta[metaUID]); ok {
		a.uid = &v
	}
	if v, ok := parseUint(meta[metaGID]); ok {
		a.gid = &v
	}
	if v, ok := parseUint(meta[metaRdev]); ok {
		a.rdev = v
	}
	a.atime, a.mtime, a.ctime = parseTime(meta[metaAtime]), parseTime(meta[metaMtime]), parseTime(meta[metaCtime])
	return a
}

// parseTime reads "SECONDS" or "SECONDS.FRACTION" ("" or junk: zero).
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	secStr, fracStr, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || sec < -1<<40 || sec > 1<<40 {
		return time.Time{}
	}
	var nsec int64
	if fracStr != "" {
		fracStr = (fracStr + "000000000")[:9]
		n, err := strconv.ParseInt(fracStr, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}
		}
		nsec = n
	}
	return time.Unix(sec, nsec)
}

func formatTime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return strconv.FormatInt(t.Unix(), 10) + "." + strconv.FormatInt(int64(t.Nanosecond())+1e9, 10)[1:]
}

// merge overlays the fields b says on a.
func (a posix) merge(b posix) posix {
	if b.mode != 0 {
		a.mode = b.mode
	}
	if b.uid != nil {
		a.uid = b.uid
	}
	if b.gid != nil {
		a.gid = b.gid
	}
	if !b.atime.IsZero() {
		a.atime = b.atime
	}
	if !b.mtime.IsZero() {
		a.mtime = b.mtime
	}
	if !b.ctime.IsZero() {
		a.ctime = b.ctime
	}
	if b.rdev != 0 {
		a.rdev = b.rdev
	}
	return a
}

// toMeta writes a into a copy of base (other keys kept; times a does not
// say are dropped from it, since they are the object's own time then).
func (a posix) toMeta(base map[string]string) map[string]string {
	m := make(map[string]string, len(base)+6)
	for k, v := range base {
		m[k] = v
	}
	set := func(k string, ok bool, v string) {
		if ok {
			m[k] = v
		} else if k == metaMtime || k == metaCtime || k == metaAtime {
			delete(m, k)
		}
	}
	set(metaMode, a.mode != 0, strconv.FormatUint(uint64(a.mode), 10))
	if a.uid != nil {
		m[metaUID] = strconv.FormatUint(uint64(*a.uid), 10)
	}
	if a.gid != nil {
		m[metaGID] = strconv.FormatUint(uint64(*a.gid), 10)
	}
	if a.rdev != 0 {
		m[metaRdev] = strconv.FormatUint(uint64(a.rdev), 10)
	}
	set(metaAtime, !a.atime.IsZero(), formatTime(a.atime))
	set(metaMtime, !a.mtime.IsZero(), formatTime(a.mtime))
	set(metaCtime, !a.ctime.IsZero(), formatTime(a.ctime))
	return m
}

// fileType is the S_IFMT bits metadata gives an object (regular when it
// says nothing or nonsense).
func (a posix) fileType() uint32 {
	switch t := a.mode & syscall.S_IFMT; t {
	case syscall.S_IFLNK, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return t
	}
	return syscall.S_IFREG
}

// dirObjectType is the Content-Type s3fs gives the objects of its
// directories.
const dirObjectType = "application/x-directory"

// isDirObject says whether an object without a trailing slash is a
// directory as s3fs (and its older versions) store them: empty, and typed
// application/x-directory or with a directory's mode.
func isDirObject(o store.ObjectInfo) bool {
	if o.Size != 0 || strings.HasSuffix(o.Key, "/") || o.Key == "" {
		return false
	}
	return strings.HasPrefix(o.ContentType, dirObjectType) || parsePosix(o.Meta).mode&syscall.S_IFMT == syscall.S_IFDIR
}

// contentType infers the Content-Type from a key's extension.
func contentType(key string) string {
	if t := store.ContentTypeOf(key); t != "" {
		return t
	}
	return "application/octet-stream"
}

// times are what a node shows.
type times struct{ atime, mtime, ctime time.Time }

// objectTimes are an object's times: stored ones, else LastModified in
// whole seconds (listings say milliseconds, HEAD answers seconds: a time
// must not change with the request that learned it).
func objectTimes(info store.ObjectInfo, a posix) times {
	lm := info.LastModified.Truncate(time.Second)
	t := times{mtime: lm, ctime: lm}
	if !a.mtime.IsZero() {
		t.mtime = a.mtime
	}
	if !a.ctime.IsZero() {
		t.ctime = a.ctime
	}
	if t.ctime.Before(t.mtime) && a.ctime.IsZero() {
		t.ctime = lm
	}
	t.atime = t.mtime
	if !a.atime.IsZero() {
		t.atime = a.atime
	}
	return t
}

func setTimes(out *fuse.Attr, t times) {
	out.SetTimes(&t.atime, &t.mtime, &t.ctime)
}

// ownerAndMode fills mode bits and owner from metadata, else the mount's
// defaults for that file type.
func (f *FS) ownerAndMode(out *fuse.Attr, a posix, typ uint32) {
	perm := f.cfg.FileMode
	if typ == syscall.S_IFDIR {
		perm = f.cfg.DirMode
	}
	if a.mode != 0 {
		perm = a.mode & 0o7777
	}
	if typ == syscall.S_IFLNK {
		perm = 0o777
	}
	out.Mode = typ | perm
	out.Uid, out.Gid = f.cfg.UID, f.cfg.GID
	if a.uid != nil {
		out.Uid = *a.uid
	}
	if a.gid != nil {
		out.Gid = *a.gid
	}
}

// statfs answers df: object stores have no fixed capacity, so report a
// large, constant one (1 PiB in 4 KiB blocks) and plenty of inodes.
func statfs(out *fuse.StatfsOut) {
	const bsize = 4096
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = (1 << 50) / bsize
	out.Bfree = out.Blocks
	out.Bavail = out.Blocks
	out.Files = 1 << 40
	out.Ffree = 1 << 40
	out.NameLen = listing.MaxNameLen
}
