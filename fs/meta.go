package fs

import (
	"mime"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// POSIX attributes live in user metadata under the names s3fs uses, so a
// bucket written by either tool reads the same through the other:
// x-amz-meta-mode (decimal st_mode, file type included), -uid, -gid, and
// -mtime (decimal seconds, with a fraction when there are nanoseconds).
const (
	metaMode  = "mode"
	metaUID   = "uid"
	metaGID   = "gid"
	metaMtime = "mtime"
)

// posixAttrs are what metadata says; zero fields mean "not said".
type posixAttrs struct {
	mode     uint32 // full st_mode; 0 = not said
	uid, gid *uint32
	mtime    time.Time
}

func parseAttrs(meta map[string]string) posixAttrs {
	var a posixAttrs
	if v, err := strconv.ParseUint(meta[metaMode], 10, 32); err == nil {
		a.mode = uint32(v)
	}
	if v, err := strconv.ParseUint(meta[metaUID], 10, 32); err == nil {
		u := uint32(v)
		a.uid = &u
	}
	if v, err := strconv.ParseUint(meta[metaGID], 10, 32); err == nil {
		g := uint32(v)
		a.gid = &g
	}
	a.mtime = parseMtime(meta[metaMtime])
	return a
}

func parseMtime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	secStr, fracStr, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return time.Time{}
	}
	var nsec int64
	if fracStr != "" {
		if len(fracStr) > 9 {
			fracStr = fracStr[:9]
		}
		n, err := strconv.ParseInt(fracStr+strings.Repeat("0", 9-len(fracStr)), 10, 64)
		if err != nil {
			return time.Time{}
		}
		nsec = n
	}
	return time.Unix(sec, nsec)
}

func formatMtime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return strconv.FormatInt(t.Unix(), 10) + "." + strconv.FormatInt(int64(t.Nanosecond())+1e9, 10)[1:]
}

// toMeta writes a into metadata, keeping other keys of base.
func (a posixAttrs) toMeta(base map[string]string) map[string]string {
	m := make(map[string]string, len(base)+4)
	for k, v := range base {
		m[k] = v
	}
	if a.mode != 0 {
		m[metaMode] = strconv.FormatUint(uint64(a.mode), 10)
	}
	if a.uid != nil {
		m[metaUID] = strconv.FormatUint(uint64(*a.uid), 10)
	}
	if a.gid != nil {
		m[metaGID] = strconv.FormatUint(uint64(*a.gid), 10)
	}
	if !a.mtime.IsZero() {
		m[metaMtime] = formatMtime(a.mtime)
	}
	return m
}

// isSymlink says whether metadata marks the object as a symbolic link (its
// body is the target), as s3fs does.
func (a posixAttrs) isSymlink() bool { return a.mode&syscall.S_IFMT == syscall.S_IFLNK }

// contentType infers the Content-Type from a key's extension.
func contentType(key string) string {
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(key))); t != "" {
		return t
	}
	return "application/octet-stream"
}
