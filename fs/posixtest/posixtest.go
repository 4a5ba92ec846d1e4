// Package posixtest holds POSIX test bodies written once as
// func(t, dir) and run on several targets: the in-process mount over the
// fake store (go test ./fs/...) and a real kfs mount over MinIO
// (integration/). Each body gets a fresh, empty directory of the mount.
package posixtest

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// Test is one body.
type Test struct {
	Name string
	Run  func(t *testing.T, dir string)
}

// All lists every body.
func All() []Test {
	return append(append(append(dataTests(), namespaceTests()...), attrTests()...), Test{"RandomOperationsMatchAModel", RandomOps})
}

// RunAll runs every body in its own directory made by mkdir under root.
func RunAll(t *testing.T, root string) { RunAllExcept(t, root, nil) }

// DirMetadataBodies are the bodies that store a directory's mode, owner,
// times or extended attributes: a server that keeps no metadata on
// directory objects (SeaweedFS) cannot pass them; what kfs does there
// instead is pinned by its own test.
var DirMetadataBodies = map[string]string{
	"DirectoryAttributes":            "directory modes are stored on the directory's marker",
	"DirectoryTimesOnRenameAndXattr": "directory times and xattrs are stored on the directory's marker",
	"UserXattrs":                     "it sets xattrs on a directory too",
	"PermissionsForAnotherUser":      "it relies on 0700 and 1777 directories",
}

// RunAllExcept runs every body but those named in skip (name -> why).
func RunAllExcept(t *testing.T, root string, skip map[string]string) {
	for _, tc := range All() {
		if why, ok := skip[tc.Name]; ok {
			t.Logf("%s not run here: %s", tc.Name, why)
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			dir := filepath.Join(root, tc.Name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.Run(t, dir)
		})
	}
}

func pattern(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes, want %d; first difference at %d", what, len(got), len(want), i)
	}
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func stat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// asNobody runs a shell command as user nobody (uid/gid 65534) and returns
// its exit status and output.
func asNobody(t *testing.T, script string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv is missing (util-linux): %v", err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), strings.TrimSpace(string(out))
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, strings.TrimSpace(string(out))
}
