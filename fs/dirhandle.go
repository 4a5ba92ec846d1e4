package fs

import (
	"context"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/fs/listing"
	"kfs/fs/store"
)

// dirHandle is one open directory. go-fuse serialises Readdirent, Lookup and
// Seekdir on a handle, so its fields need no lock.
type dirHandle struct {
	dir *dirNode

	fromMem  bool                    // serving a complete listing from memory
	cached   []listing.Entry         // the listing served when fromMem
	lister   *listing.Lister         // when streaming from the store
	building *listing.Listing        // what the stream has said so far; the directory's (shared, under its mu) once installed
	ended    bool                    // the stream ended and building was installed
	listedAt time.Time               // when what is handed out was listed
	pos      int                     // entries handed out, "." and ".." included
	last     listing.Entry           // the last entry handed out, for readdirplus lookups
	markers  map[string]*markerFetch // HEADs of the markers of the subdirectories about to be handed out
	local    []listing.Entry         // files only this mount has (being created, written back), handed out after the store's
}

// markerFetch is one HEAD of a subdirectory's marker object, made ahead
// of readdirplus asking for the subdirectory's attributes.
type markerFetch struct {
	done chan struct{} // closed once info, err and at are set
	info store.ObjectInfo
	err  error
	at   time.Time
}

// markersAhead is how many subdirectories' markers readdirplus asks for at
// once: `ls -l` of a directory of directories costs one HEAD each, which
// then overlap instead of following one another.
const markersAhead = 8

var (
	_ = (fusefs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fusefs.FileLookuper)((*dirHandle)(nil))
	_ = (fusefs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fusefs.FileReleasedirer)((*dirHandle)(nil))
	_ = (fusefs.FileFsyncdirer)((*dirHandle)(nil))
)

func (h *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if h.lister != nil {
		h.lister.Close()
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
			h.lister.Close()
		}
		h.lister = listing.NewLister(h.dir.fsys.listerConfig(), h.dir.bucket, h.dir.pfx())
		h.lister.Readahead = true
		h.building, h.ended, h.local = listing.New(now), false, nil
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
	mode := parsePosix(e.Info.Meta).fileType()
	if e.IsDir {
		mode = syscall.S_IFDIR
	}
	return &fuse.DirEntry{Name: e.Name, Mode: mode}, 0
}

func (h *dirHandle) nextEntry(ctx context.Context) (listing.Entry, bool, error) {
	if h.fromMem {
		i := h.pos - 2
		if i >= len(h.cached) {
			return listing.Entry{}, false, nil
		}
		return h.cached[i], true, nil
	}
	e, ok, err := h.lister.Next(ctx)
	if err != nil {
		return e, ok, err
	}
	if ok {
		h.building.Add(e)
		return e, true, nil
	}
	if h.local == nil { // the store's listing is over: then the files only this mount has yet
		h.local = []listing.Entry{}
		for _, l := range h.dir.localEntries() {
			if _, listed := h.building.Index(l.Name); !listed {
				h.local = append(h.local, l)
			}
		}
	}
	if len(h.local) > 0 {
		e, h.local = h.local[0], h.local[1:]
		h.building.Add(e)
		return e, true, nil
	}
	if !h.ended {
		h.ended = true
		h.building.Complete = true
		h.building.Readdir = true
		d := h.dir
		d.setMarker(h.lister.Marker, h.building.At) // listed from the start: the marker is known, present or not
		d.mu.Lock()
		d.installLocked(h.building)
		d.mu.Unlock()
	}
	return listing.Entry{}, false, nil
}

// Lookup answers readdirplus for the entry just handed out, from what the
// listing said: no request per file.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if name != h.last.Name {
		return h.dir.Lookup(ctx, name, out)
	}
	if !h.last.IsDir && h.dir.fsys.del.isPending(h.dir.bucket, h.last.Info.Key) {
		return nil, syscall.ENOENT
	}
	e := h.last
	if e.IsDir && e.Info.Key == "" {
		h.fetchMarkers(e)
		if mf := h.markers[e.Name]; mf != nil {
			delete(h.markers, e.Name)
			select {
			case <-mf.done:
				if mf.err == nil {
					e.Info, e.Seen, e.Marker = mf.info, mf.at, true
				}
			case <-ctx.Done():
			}
		}
	}
	ch, err := h.dir.child(ctx, e, out)
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

// fetchMarkers starts the HEADs of the markers of e and of the next
// subdirectories about to be handed out (those the mount does not know
// fresh already), markersAhead at most in flight.
func (h *dirHandle) fetchMarkers(e listing.Entry) {
	if h.markers == nil {
		h.markers = map[string]*markerFetch{}
	}
	var upcoming []listing.Entry
	if h.fromMem {
		upcoming = h.cached[min(h.pos-2, len(h.cached)):]
	} else if h.lister != nil {
		upcoming = h.lister.Queued()
	}
	d := h.dir
	for _, next := range append([]listing.Entry{e}, upcoming...) {
		if len(h.markers) >= markersAhead {
			return
		}
		if !next.IsDir || next.Info.Key != "" || h.markers[next.Name] != nil || d.knowsMarker(next.Name) {
			continue
		}
		mf := &markerFetch{done: make(chan struct{})}
		h.markers[next.Name] = mf
		key := d.pfx() + next.Name + "/"
		go func() {
			defer close(mf.done)
			ctx, cancel := d.fsys.background()
			defer cancel()
			mf.at = time.Now()
			mf.info, mf.err = d.fsys.statMarker(ctx, d.bucket, key)
		}()
	}
}

// knowsMarker says whether the subdirectory name is a node whose marker is
// known within the attribute TTL (no HEAD needed).
func (d *dirNode) knowsMarker(name string) bool {
	ch := d.GetChild(name)
	if ch == nil {
		return false
	}
	n, ok := ch.Operations().(*dirNode)
	if !ok {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.markerFreshLocked()
}
