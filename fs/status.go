package fs

import (
	"sort"
	"time"
)

// Status is what `kfs status` shows of one mount's filesystem.
type Status struct {
	Uploads      []UploadStatus   `json:"uploads"`
	StagingBytes int64            `json:"staging_bytes"`
	WriteBack    *WriteBackStatus `json:"write_back,omitempty"` // nil: the mount does not write back
}

// UploadStatus is one file with unsaved changes.
type UploadStatus struct {
	Path    string    `json:"path"`
	Bytes   int64     `json:"bytes_written"`
	Parts   int       `json:"parts_sent"`
	Started time.Time `json:"started"`
}

// Status reports files being written and staging bytes held.
func (f *FS) Status() Status {
	s := Status{Uploads: []UploadStatus{}, StagingBytes: f.up.DiskUsed()}
	for _, u := range f.up.Status() {
		s.Uploads = append(s.Uploads, UploadStatus{Path: u.Bucket + "/" + u.Key, Bytes: u.Bytes, Parts: u.PartsSent, Started: u.Started})
	}
	sort.Slice(s.Uploads, func(i, j int) bool { return s.Uploads[i].Path < s.Uploads[j].Path })
	if f.wb != nil {
		wb := f.wb.status()
		s.WriteBack = &wb
	}
	return s
}
