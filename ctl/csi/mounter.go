package csi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mounter starts and stops mounts on the node.
type Mounter interface {
	// Mount mounts source (BUCKET[:PREFIX]) at target with `kfs mount`
	// arguments args and environment env; it returns once the mount is
	// live, or with the mount's own message.
	Mount(ctx context.Context, source, target string, args, env []string) error
	// Unmount detaches target; a mount still in use is detached lazily
	// (lazy true) and ends when its last file closes.
	Unmount(target string) (lazy bool, err error)
	// Mounted says what is mounted at target.
	Mounted(target string) (MountInfo, error)
}

// MountInfo is what /proc/self/mountinfo says of a mount point.
type MountInfo struct {
	Mounted  bool
	FSType   string // fuse.kfs for ours
	Source   string // kfs:BUCKET:PREFIX for ours
	ReadOnly bool
	Dead     bool // its process is gone (ENOTCONN): only unmounting helps
}

// ProcessMounter runs `Bin mount --daemon` for each mount.
type ProcessMounter struct {
	Bin string   // the kfs binary
	Env []string // the environment every mount process starts from (PATH, HOME)
}

// Mount implements Mounter.
func (p ProcessMounter) Mount(ctx context.Context, source, target string, args, env []string) error {
	argv := append([]string{"mount", "--daemon"}, args...)
	argv = append(argv, source, target)
	cmd := exec.CommandContext(ctx, p.Bin, argv...)
	cmd.Env = append(append([]string(nil), p.Env...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "kfs: "))
		if msg == "" {
			msg = err.Error()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			return &mountError{msg: msg, usage: true}
		}
		return &mountError{msg: msg}
	}
	return nil
}

// mountError is a failed mount: usage (exit 2: bad options, a missing
// bucket) or anything else.
type mountError struct {
	msg   string
	usage bool
}

func (e *mountError) Error() string { return e.msg }

// Unmount implements Mounter.
func (p ProcessMounter) Unmount(target string) (bool, error) {
	err := syscall.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOENT):
		return false, nil
	case errors.Is(err, syscall.EBUSY):
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return false, fmt.Errorf("unmount %s: %v", target, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("unmount %s: %v", target, err)
}

// Mounted implements Mounter from /proc/self/mountinfo (the last mount
// on the path is the one seen) and statfs (a dead FUSE mount answers
// ENOTCONN; a plain stat can still be answered from the kernel's cache).
func (p ProcessMounter) Mounted(target string) (MountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return MountInfo{}, err
	}
	defer f.Close()
	var mi MountInfo
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m, ok := parseMountinfo(sc.Text(), target); ok {
			mi = m
		}
	}
	if err := sc.Err(); err != nil {
		return MountInfo{}, err
	}
	if mi.Mounted {
		mi.Dead = deadMount(target)
	}
	return mi, nil
}

// parseMountinfo reads one line of mountinfo: "ID PARENT MAJ:MIN ROOT
// MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
func parseMountinfo(line, target string) (MountInfo, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return MountInfo{}, false
	}
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if len(f) < 6 || len(g) < 2 || unescapeMountinfo(f[4]) != target {
		return MountInfo{}, false
	}
	ro := false
	for _, o := range strings.Split(f[5], ",") {
		ro = ro || o == "ro"
	}
	return MountInfo{Mounted: true, FSType: g[0], Source: unescapeMountinfo(g[1]), ReadOnly: ro}, true
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deadMount says whether the FUSE mount at dir has lost its process.
func deadMount(dir string) bool {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(dir, &st)
	}()
	select {
	case err := <-done:
		return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
	case <-time.After(10 * time.Second):
		return false // slow, not dead: a mount busy with the store
	}
}
