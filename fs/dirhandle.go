package fs

import (
	"context"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirHandle is one open directory. go-fuse serialises Readdirent, Lookup and
// Seekdir on a handle, so its fields need no lock.
type dirHandle struct {
	dir *dirNode

	fromMem  bool       // serving a complete listing from memory
	cached   []dirEntry // the listing served when fromMem
	lister   *lister    // when streaming from the store
	building *listing   // what the stream has said so far
	listedAt time.Time  // when what is handed out was listed
	pos      int        // entries handed out, "." and ".." included
	last     dirEntry   // the last entry handed out, for readdirplus lookups
}

var (
	_ = (fusefs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fusefs.FileLookuper)((*dirHandle)(nil))
	_ = (fusefs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fusefs.FileReleasedirer)((*dirHandle)(nil))
	_ = (fusefs.FileFsyncdirer)((*dirHandle)(nil))
)

func (h *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if h.lister != nil {
		h.lister.close()
	}
}

func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return h.dir.Fsync(ctx, nil, flags)
}

func (h *dirHandle) reset(now time.Time) {
	h.pos = 0
	h.listedAt = now
	if !h.fromMem {
		if h.lister != nil {
			h.lister.close()
		}
		h.lister = newLister(h.dir.fsys, h.dir.bucket, h.dir.pfx())
		h.lister.readahead = true
		h.building = newListing(now)
	}
}

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.pos < 2 {
		h.pos++
		name := "."
		if h.pos == 2 {
			name = ".."
		}
		return &fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR}, 0
	}
	e, ok, err := h.nextEntry(ctx)
	if err != nil {
		return nil, h.dir.fsys.errno("readdir", h.dir.path(""), err)
	}
	if !ok {
		return nil, 0
	}
	h.pos++
	h.last = e
	mode := parsePosix(e.info.Meta).fileType()
	if e.isDir {
		mode = syscall.S_IFDIR
	}
	return &fuse.DirEntry{Name: e.name, Mode: mode}, 0
}

func (h *dirHandle) nextEntry(ctx context.Context) (dirEntry, bool, error) {
	if h.fromMem {
		i := h.pos - 2
		if i >= len(h.cached) {
			return dirEntry{}, false, nil
		}
		return h.cached[i], true, nil
	}
	e, ok, err := h.lister.next(ctx)
	if err != nil {
		return e, ok, err
	}
	if ok {
		h.building.add(e)
		return e, true, nil
	}
	if !h.building.complete {
		h.building.complete = true
		h.building.readdir = true
		h.building.marker = h.lister.marker
		d := h.dir
		d.setMarker(h.lister.marker, h.building.at) // listed from the start: the marker is known, present or not
		d.mu.Lock()
		d.installLocked(h.building)
		d.mu.Unlock()
	}
	return dirEntry{}, false, nil
}

// Lookup answers readdirplus for the entry just handed out, from what the
// listing said: no request per file.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if name != h.last.name {
		return h.dir.Lookup(ctx, name, out)
	}
	if !h.last.isDir && h.dir.fsys.del.isPending(h.dir.bucket, h.last.info.Key) {
		return nil, syscall.ENOENT
	}
	ch, err := h.dir.child(ctx, h.last, out)
	if err != nil {
		return nil, h.dir.fsys.errno("readdir", h.dir.path(name), err)
	}
	return ch, 0
}

// Seekdir restarts the listing and skips to offset off (the number of
// entries handed out before).
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.reset(time.Now())
	for uint64(h.pos) < off {
		de, errno := h.Readdirent(ctx)
		if errno != 0 {
			return errno
		}
		if de == nil {
			break
		}
	}
	return 0
}
