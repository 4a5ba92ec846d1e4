package mountproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// daemonEnv marks the background child of a --daemon mount. The child
// reports on file descriptor 3: "READY\n" once every mount is live, or the
// error that stopped it.
const daemonEnv = "KFS_DAEMON_CHILD"

func isDaemonChild() bool { return os.Getenv(daemonEnv) != "" }

// statusPipe is the child's end of the status pipe (nil in the parent).
var statusPipe = func() *os.File {
	if !isDaemonChild() {
		return nil
	}
	return os.NewFile(3, "kfs-status")
}()

// daemonize starts `kfs mount args...` in a new session and waits until it
// reports the mounts live (exit 0) or fails (its message and exit code).
func daemonize(args []string, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, append([]string{"mount"}, args...)...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	out, _ := io.ReadAll(r)
	r.Close()
	if string(out) == "READY\n" {
		return nil
	}
	werr := cmd.Wait()
	msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "kfs: "))
	if msg == "" {
		msg = fmt.Sprintf("background mount process ended before the mount was live: %v", werr)
	}
	code := 1
	var ee *exec.ExitError
	if errors.As(werr, &ee) && ee.ExitCode() > 0 {
		code = ee.ExitCode()
	}
	return exitError{code, errors.New(msg)}
}

// notifyReady tells a waiting parent that the mounts are live.
func notifyReady() {
	if statusPipe != nil {
		statusPipe.WriteString("READY\n")
		statusPipe.Close()
	}
}

// stderrOf runs fn with file descriptor 2 sent to a temporary file and
// returns what was written there (trimmed, on one line): fusermount, which
// go-fuse starts with this process's stderr, says why a mount failed
// only there, and a --daemon child's stderr goes nowhere.
func stderrOf(fn func() error) (string, error) {
	fd, err := unix.MemfdCreate("kfs-mount-stderr", unix.MFD_CLOEXEC) // no directory needed, nothing left behind
	if err != nil {
		return "", fn()
	}
	f := os.NewFile(uintptr(fd), "kfs-mount-stderr")
	defer f.Close()
	saved, err := unix.Dup(2)
	if err != nil {
		return "", fn()
	}
	defer unix.Close(saved)
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		return "", fn()
	}
	ferr := fn()
	unix.Dup2(saved, 2)
	f.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return strings.Join(strings.Fields(string(b)), " "), ferr
}
