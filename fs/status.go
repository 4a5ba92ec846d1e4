package fs

import (
	"io"
	"log"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is what `kfs status` shows of one mount's filesystem.
type Status struct {
	Uploads      []UploadStatus `json:"uploads"`
	Problems     int64          `json:"problems_logged"`
	LastProblems []string       `json:"last_problems,omitempty"`
	StagingBytes int64          `json:"staging_bytes"`
}

// UploadStatus is one file being written.
type UploadStatus struct {
	Path    string    `json:"path"`
	Bytes   int64     `json:"bytes_written"`
	Parts   int       `json:"parts_sent"`
	Started time.Time `json:"started"`
}

// problemLog counts the lines the filesystem logs (each is a failure or a
// skipped key) and keeps the last few for status.
type problemLog struct {
	w io.Writer

	mu    sync.Mutex // protects the fields below
	count int64      // GUARDED_BY(mu)
	last  []string   // GUARDED_BY(mu): at most 10
}

func (p *problemLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.count++
	p.last = append(p.last, strings.TrimSpace(string(b)))
	if len(p.last) > 10 {
		p.last = p.last[1:]
	}
	p.mu.Unlock()
	return p.w.Write(b)
}

func wrapLogger(l *log.Logger) (*log.Logger, *problemLog) {
	p := &problemLog{w: l.Writer()}
	return log.New(p, l.Prefix(), l.Flags()), p
}

func (f *FS) addWriter(h *writeHandle) {
	f.activeMu.Lock()
	f.active[h] = time.Now()
	f.activeMu.Unlock()
}

func (f *FS) dropWriter(h *writeHandle) {
	f.activeMu.Lock()
	delete(f.active, h)
	f.activeMu.Unlock()
}

// Status reports uploads in flight and problems since the mount.
func (f *FS) Status() Status {
	f.activeMu.Lock()
	handles := make(map[*writeHandle]time.Time, len(f.active))
	for h, t := range f.active {
		handles[h] = t
	}
	f.activeMu.Unlock()
	var s Status
	for h, started := range handles {
		h.mu.Lock()
		if h.dirty {
			s.Uploads = append(s.Uploads, UploadStatus{Path: h.node.bucket + "/" + h.node.objKey(), Bytes: h.size,
				Parts: h.nparts, Started: started})
		}
		h.mu.Unlock()
	}
	sort.Slice(s.Uploads, func(i, j int) bool { return s.Uploads[i].Path < s.Uploads[j].Path })
	f.problems.mu.Lock()
	s.Problems, s.LastProblems = f.problems.count, append([]string(nil), f.problems.last...)
	f.problems.mu.Unlock()
	s.StagingBytes = f.stageUsed.Load()
	return s
}
