package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// stillOpen reports whether a process among pids (the one closing a
// descriptor, the one that opened it) holds another descriptor of n on
// this mount. It reads /proc/PID/fd, which names each descriptor's path;
// anything it cannot tell (another mount namespace, no /proc) says no, so
// the close commits.
func (f *FS) stillOpen(n *fileNode, pids ...uint32) bool {
	if f.cfg.Mountpoint == "" {
		return false
	}
	root := f.rootInode()
	if root == nil {
		return false
	}
	rel := n.EmbeddedInode().Path(root)
	if rel == "" {
		return false
	}
	want := filepath.Join(f.cfg.Mountpoint, rel)
	seen := map[uint32]bool{}
	for _, pid := range pids {
		if pid == 0 || seen[pid] {
			continue
		}
		seen[pid] = true
		if fdsOn(pid, want) > 0 {
			return true
		}
	}
	return false
}

// fdsOn counts the descriptors of process pid whose path is want.
func fdsOn(pid uint32, want string) int {
	dir := fmt.Sprintf("/proc/%s/fd", strconv.FormatUint(uint64(pid), 10))
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) > 100000 {
		return 0
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == want {
			n++
		}
	}
	return n
}
