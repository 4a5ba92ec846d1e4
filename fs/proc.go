package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
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
		if fdsOnBounded(pid, want, procWait) > 0 {
			return true
		}
	}
	return false
}

// procWait bounds how long a close waits to read another process's
// descriptors. A process in the middle of execve(2) closes its close-on-
// exec descriptors (a FLUSH here) while the kernel holds its /proc entries
// locked until the exec is done: reading them would wait for the exec,
// which waits for this FLUSH — a deadlock (a Go program forking while it
// held a file of the mount open for writing hung). Past the bound the
// answer is "cannot tell" (the close commits).
const procWait = 100 * time.Millisecond

// fdsOnBounded is fdsOn, giving up (0) after wait; the read left behind
// ends when the process's exec does.
func fdsOnBounded(pid uint32, want string, wait time.Duration) int {
	done := make(chan int, 1)
	go func() { done <- fdsOn(pid, want) }()
	select {
	case n := <-done:
		return n
	case <-time.After(wait):
		return 0
	}
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
