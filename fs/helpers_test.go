package fs_test

import (
	"bytes"
	"sync"
)

// syncWriter makes a buffer safe for the logger's goroutines.
type syncWriter struct{ b *bytes.Buffer }

var logMu sync.Mutex

func (w syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.b.Write(p)
}

// logText is what the mount logged so far.
func (m *fakeMount) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return m.logs.String()
}
