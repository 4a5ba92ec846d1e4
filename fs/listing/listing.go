// Package listing is what kfs knows of directories' contents: a listing
// (the entries one LIST said, with when), the lister that streams a
// directory page by page from the store (objects merged with common
// prefixes, unusable names skipped, the directory's own marker kept
// aside), and the walker that lists the subdirectories ahead of a tree
// walk (find, du, rsync). It knows the store and the rules of names; the
// filesystem (package fs) owns the node tree, the caches per directory and
// when to ask.
package listing

import (
	"fmt"
	"strings"
	"time"

	"kfs/fs/store"
)

// Entry is one name in a directory listing.
type Entry struct {
	Name   string
	IsDir  bool
	Info   store.ObjectInfo // files: the object; directories: the marker, when known
	Seen   time.Time        // when the store said so
	Marker bool             // directories: info says whether there is a marker (Key "": none)
}

// Listing is what one listing of a directory said.
type Listing struct {
	Entries  []Entry
	byName   map[string]int   // index into entries
	Complete bool             // every entry of the directory is in entries
	At       time.Time        // when the listing started
	Readdir  bool             // made by a readdir (not for a lookup): a walk may follow
	Own      bool             // made by this mount's mkdir: empty by construction, kept by its own changes
	Marker   store.ObjectInfo // the directory's marker object (Key "": it has none); set by the first page's lister
}

// New is an empty listing made at at.
func New(at time.Time) *Listing { return &Listing{byName: map[string]int{}, At: at} }

// Add adds or replaces the entry of e.Name.
func (l *Listing) Add(e Entry) {
	if e.Seen.IsZero() {
		e.Seen = l.At
	}
	if i, ok := l.byName[e.Name]; ok {
		l.Entries[i] = e
		return
	}
	l.byName[e.Name] = len(l.Entries)
	l.Entries = append(l.Entries, e)
}

// Del removes name.
func (l *Listing) Del(name string) {
	i, ok := l.byName[name]
	if !ok {
		return
	}
	l.Entries = append(l.Entries[:i:i], l.Entries[i+1:]...)
	delete(l.byName, name)
	for j := i; j < len(l.Entries); j++ {
		l.byName[l.Entries[j].Name] = j
	}
}

// Index is the position of name in Entries.
func (l *Listing) Index(name string) (int, bool) {
	i, ok := l.byName[name]
	return i, ok
}

// MaxNameLen is the longest file name Linux accepts (NAME_MAX).
const MaxNameLen = 255

// CheckName says why an S3 key segment cannot be a file name, or "".
func CheckName(name string) string {
	switch {
	case name == "":
		return "empty path segment"
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a usable file name", name)
	case len(name) > MaxNameLen:
		return fmt.Sprintf("name longer than %d bytes", MaxNameLen)
	case strings.ContainsRune(name, 0):
		return "NUL byte in name"
	}
	return ""
}
