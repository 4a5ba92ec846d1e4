package mountproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kfs/cache/disk"
	"kfs/fs/journal"
	"kfs/fs/store"
	"kfs/mountopts"
)

// prepareCacheDir makes the mount's cache directory, one per endpoint,
// bucket and prefix (concurrent mounts of it share the directory, each
// with its own journal slot: uploads.journal, uploads-1.journal, ...), so
// the next mount finds every journal a crashed one left. Journals no live
// process holds (a crash's, in any slot, or in a <hash>-<pid> folder of
// earlier versions) are replayed: their uploads aborted, their renames
// and deletions adopted by this mount's journal, and their files removed.
func prepareCacheDir(o mountopts.Options, m mountopts.Mount, st store.Multipart, l *slog.Logger) (string, *journal.Journal, []journal.Rename, error) {
	base := cacheBase(o)
	sum := sha256.Sum256([]byte(o.Endpoint + "\x00" + m.Bucket + "\x00" + m.Prefix))
	dir := filepath.Join(base, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, nil, fmt.Errorf("cache dir: %v", err)
	}
	private := []string{dir}
	if o.CacheDir == "" {
		private = append(private, base) // kfs's own: made by this user, in a directory every user writes
	}
	for _, d := range private {
		if err := checkPrivateDir(d); err != nil {
			return "", nil, nil, fmt.Errorf("cache dir: %v (staging files and journals must be this user's alone: remove it, or give --cache-dir)", err)
		}
	}
	if o.ReadOnly {
		return dir, nil, nil, nil
	}
	j, err := journalSlot(dir)
	if err != nil {
		return "", nil, nil, fmt.Errorf("cache dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adoptOrphans(ctx, j, dir, st, l)
	n, renames, err := j.Recover(ctx, st)
	if err != nil {
		l.Warn("cleaning up uploads of an earlier run failed", "err", err)
	} else if n > 0 {
		l.Info("aborted incomplete multipart uploads left by an earlier run", "uploads", n)
	}
	return dir, j, renames, nil
}

// cacheBase is --cache-dir, else /var/tmp/kfs-UID (the temporary
// directory where /var/tmp is missing).
func cacheBase(o mountopts.Options) string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	tmp := os.TempDir()
	if _, err := os.Stat("/var/tmp"); err == nil {
		tmp = "/var/tmp"
	}
	return filepath.Join(tmp, fmt.Sprintf("kfs-%d", os.Getuid()))
}

// journalSlot locks the first journal of dir no live mount holds.
func journalSlot(dir string) (*journal.Journal, error) {
	for i := 0; i < 1000; i++ {
		name := "uploads.journal"
		if i > 0 {
			name = fmt.Sprintf("uploads-%d.journal", i)
		}
		j, err := journal.Open(filepath.Join(dir, name))
		if errors.Is(err, journal.ErrBusy) {
			continue
		}
		return j, err
	}
	return nil, errors.New("1,000 live mounts of one bucket")
}

// adoptOrphans replays into j the journals of dir (and of <dir>-<pid>
// folders) that no live process holds.
func adoptOrphans(ctx context.Context, j *journal.Journal, dir string, st store.Multipart, l *slog.Logger) {
	paths, _ := filepath.Glob(filepath.Join(dir, "uploads*.journal"))
	legacy, _ := filepath.Glob(dir + "-*/uploads.journal")
	for _, p := range append(paths, legacy...) {
		if p == j.Path() {
			continue
		}
		o, err := journal.Open(p)
		if err != nil {
			continue // held by a live mount (or unreadable: left alone)
		}
		if n, _, err := o.Recover(ctx, st); err != nil {
			l.Warn("a journal an earlier run left could not be replayed yet; the next mount tries again", "journal", p, "err", err)
			o.Close()
			continue
		} else if n > 0 {
			l.Info("aborted incomplete multipart uploads left by an earlier run", "uploads", n, "journal", p)
		}
		if err := j.Adopt(o); err != nil {
			l.Warn("could not take over a journal an earlier run left; the next mount tries again", "journal", p, "err", err)
			o.Close()
			continue
		}
		if filepath.Dir(p) != dir {
			os.Remove(filepath.Dir(p)) // an old <hash>-<pid> folder, when empty
		}
	}
}

// checkPrivateDir refuses a directory another user could have planted or
// could change: a symlink, not owned by this process's user, or writable
// by group or others.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return fmt.Errorf("%s: no owner", dir)
	case fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir():
		return fmt.Errorf("%s is not a directory (a symbolic link?)", dir)
	case st.Uid != uint32(os.Geteuid()):
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d)", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by other users (mode %04o)", dir, fi.Mode().Perm())
	}
	return nil
}

// openDiskCache opens the dataset cache under the cache directory, in the
// block cache's blocks (fills arrive in them), or
// returns nil with --disk-cache-size 0. Each kfs process has a slot of its
// own (objects/0, objects/1, ...: one process per slot, entries named by
// endpoint, bucket, key and version), so separate `kfs mount` commands
// (fstab lines) each get a cache. A process takes the slot last used for
// the same endpoint and mounts, waiting up to 15 s for it (a remount right
// after an unmount, whose process is still exiting), else the first free
// one.
func openDiskCache(o mountopts.Options, blockSize int64, l *slog.Logger) (*disk.Cache, error) {
	if o.DiskCache == 0 {
		return nil, nil
	}
	base := cacheBase(o)
	dir := filepath.Join(base, "objects")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk cache: %v", err)
	}
	check := []string{dir}
	if o.CacheDir == "" {
		check = append(check, base)
	}
	for _, d := range check {
		if err := checkPrivateDir(d); err != nil {
			return nil, fmt.Errorf("disk cache: %v (cached objects must be this user's alone: remove it, or give --cache-dir)", err)
		}
	}
	var targets []string
	for _, m := range o.Mounts {
		targets = append(targets, m.Bucket+":"+m.Prefix)
	}
	sort.Strings(targets)
	owner := o.Endpoint + "\n" + strings.Join(targets, "\n") + "\n"
	var slotDir string
	open := func(slot int, wait time.Duration) (*disk.Cache, error) {
		d := filepath.Join(dir, strconv.Itoa(slot))
		slotDir = d
		c, err := disk.Open(disk.Config{Dir: d, MaxBytes: o.DiskCache, BlockSize: blockSize, Endpoint: o.Endpoint,
			LockWait: wait, Log: l.With("cache", d)})
		if err == nil {
			_ = os.WriteFile(filepath.Join(d, "owner"), []byte(owner), 0o600)
		}
		return c, err
	}
	const slots = 8
	var c *disk.Cache
	var err error
	for n := 0; n < slots && c == nil; n++ {
		if b, _ := os.ReadFile(filepath.Join(dir, strconv.Itoa(n), "owner")); string(b) == owner {
			if c, err = open(n, 15*time.Second); err != nil && !errors.Is(err, disk.ErrBusy) {
				return nil, err
			}
			break
		}
	}
	for n := 0; n < slots && c == nil; n++ {
		if c, err = open(n, 0); err != nil && !errors.Is(err, disk.ErrBusy) {
			return nil, err
		}
	}
	if c == nil {
		return nil, fmt.Errorf("disk cache: all %d slots under %s are used by other kfs processes: give this mount its own --cache-dir, or --disk-cache-size 0", slots, dir)
	}
	s := c.Stats()
	l.Info("disk cache", "dir", slotDir, "max", mountopts.FormatSize(o.DiskCache), "entries", s.Entries,
		"bytes", mountopts.FormatSize(s.Bytes), "passthrough", o.Passthrough)
	return c, nil
}
