package integration

import (
	"os"
	"path/filepath"
	"testing"

	"kfs/fs/posixtest"
)

// The POSIX bodies the in-process tier runs over the fake store, here on a
// real mount over MinIO (with allow_other, so another user is checked by
// the kernel against what kfs reports).
func TestPosixOnMinioMount(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, "--allow-other", b)
	for d := filepath.Dir(m.dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // other users reach the mount
	}
	posixtest.RunAll(t, m.dir)
}

// The same bodies with the dataset cache and passthrough on: files read
// once are then opened from the cache, and every semantic holds.
func TestPosixOnMinioMountWithDiskCache(t *testing.T) {
	b := newBucket(t)
	m := mountKFS(t, "--allow-other", "--disk-cache-size", "256MiB", "--cache-dir", t.TempDir(), b)
	for d := filepath.Dir(m.dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	posixtest.RunAll(t, m.dir)
}
