package fs

import (
	"sync"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// notifier sends kernel notifications from its own goroutine, outside
// every lock and every FUSE request (the kernel may hold locks a
// notification waits for while it waits for a request). Pending
// notifications are coalesced; past maxPending, the entry notifications
// of a directory collapse into one for the directory itself (a burst of
// events, such as rm -r elsewhere, costs bounded memory; the kernel's
// entries of the names then live until their TTL).
type notifier struct {
	wake chan struct{}

	mu      sync.Mutex           // protects the fields below
	pending map[noteKey]struct{} // GUARDED_BY(mu)
	order   []noteKey            // GUARDED_BY(mu): in arrival order
}

// noteKey is one notification: an entry (ino is the directory) or the
// content and attributes of ino (name "").
type noteKey struct {
	ino  *fusefs.Inode
	name string
}

const maxPending = 10000

func newNotifier() *notifier {
	return &notifier{wake: make(chan struct{}, 1), pending: map[noteKey]struct{}{}}
}

func (q *notifier) add(k noteKey) {
	q.mu.Lock()
	if _, dup := q.pending[k]; !dup {
		if len(q.pending) >= maxPending && k.name != "" {
			k = noteKey{ino: k.ino} // under pressure: the whole directory
		}
		if _, dup := q.pending[k]; !dup {
			q.pending[k] = struct{}{}
			q.order = append(q.order, k)
		}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *notifier) run(stop chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-q.wake:
		case <-stop:
			return
		}
		q.mu.Lock()
		batch := q.order
		q.order, q.pending = nil, map[noteKey]struct{}{}
		q.mu.Unlock()
		for _, k := range batch {
			if k.name != "" {
				k.ino.NotifyEntry(k.name)
			} else {
				k.ino.NotifyContent(0, 0)
			}
		}
	}
}

// notifyEntry tells the kernel to forget name in dir (also a cached miss).
func (f *FS) notifyEntry(dir *fusefs.Inode, name string) { f.notes.add(noteKey{ino: dir, name: name}) }

// notifyContent tells the kernel to forget ino's attributes and pages.
func (f *FS) notifyContent(ino *fusefs.Inode) { f.notes.add(noteKey{ino: ino}) }
