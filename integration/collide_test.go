package integration

import (
	"os"
	"os/exec"
	"testing"
)

// Objects X/a and X/a/b. MinIO's listings stop at X/a (its listing of X/a/
// is empty), so the object shows, a file; the key under it is reachable
// through the socket by its path (kfs cat, kfs stat), and kfs rm -r and
// rm -rf (run again, as the README says) remove every key. (Where the
// server lists both, the directory wins: the in-process tier pins it.)
func TestNameThatIsFileAndDirectory(t *testing.T) {
	b := newBucket(t)
	for _, d := range []string{"X", "Y"} {
		put(t, b, d+"/a", []byte("file"))
		put(t, b, d+"/a/b", []byte("inside"))
	}
	m := mountKFS(t, b)
	if got, err := os.ReadFile(m.path("X/a")); err != nil || string(got) != "file" {
		t.Fatalf("X/a on MinIO: %q %v", got, err)
	}
	if got := kfsOut(t, "cat", m.path("X/a/b")); got != "inside" {
		t.Fatalf("kfs cat of the key MinIO does not list: %q", got)
	}
	if out := kfsOut(t, "rm", "-r", m.path("X")); out != "removed 2" {
		t.Fatalf("kfs rm -r: %q", out)
	}
	if left := listKeys(t, b, "X/"); len(left) != 0 {
		t.Fatalf("kfs rm -r left %v", left)
	}
	if _, err := os.Stat(m.path("X/a")); !os.IsNotExist(err) {
		t.Fatalf("X/a after kfs rm -r: %v", err)
	}
	for i := 0; i < 3 && len(listKeys(t, b, "Y/")) > 0; i++ {
		exec.Command("rm", "-rf", m.path("Y")).Run() // the first run meets what MinIO did not list
	}
	if left := listKeys(t, b, "Y/"); len(left) != 0 {
		t.Fatalf("rm -rf (twice) left %v", left)
	}
}
