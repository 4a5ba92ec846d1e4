package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"kfs/cache"
	"kfs/ctl"
	kfs "kfs/fs"
	"kfs/mountopts"
)

// mountAndServe checks everything, mounts every requested mount point and
// serves until unmounted or signalled. With o.Daemon it returns as soon as
// the mounts are live, leaving a child process serving them.
func mountAndServe(o mountopts.Options, stderr io.Writer) error {
	// Signals are caught from the start, so one arriving while mounting
	// still unmounts cleanly.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	logOut := stderr
	if isDaemonChild() {
		logOut = os.Stderr // /dev/null unless --log-file
	}
	logger, err := newLogger(o, logOut)
	if err != nil {
		return err
	}
	for _, w := range o.Warnings {
		logger.Print(w)
	}
	client, transport, err := newClient(o)
	if err != nil {
		return exitError{2, err}
	}
	store := kfs.NewMinioStore(client)
	store.EnableMetadataListing(o.AccessKey, o.SecretKey, o.SessionToken, o.Region, transport)
	for _, m := range o.Mounts {
		if err := checkMountpoint(m.Mountpoint); err != nil {
			return exitError{2, err}
		}
		if err := preflight(store, m); err != nil {
			return exitError{3, err}
		}
	}
	// Bound the heap near what the cache may hold, so the block cache's
	// garbage does not inflate the resident set.
	debug.SetMemoryLimit(o.CacheSize + o.CacheSize/2 + 32<<20)
	blocks := cache.New(o.CacheSize, int(o.BlockSize), 2*time.Minute)

	hub := ctl.NewHub()
	if o.EventsWebhook != "" {
		wctx, stopWebhook := context.WithCancel(context.Background())
		defer stopWebhook()
		addr, err := ctl.ServeWebhook(wctx, o.EventsWebhook, hub, logger)
		if err != nil {
			return exitError{2, err}
		}
		logger.Printf("receiving bucket events on http://%s/", addr)
	}
	var servers []*fuse.Server
	var filesystems []*kfs.FS
	unmountAll := func() {
		for _, s := range servers {
			if err := s.Unmount(); err != nil {
				logger.Printf("unmount: %v", err)
			}
		}
	}
	for _, m := range o.Mounts {
		cfg := fsConfig(o, logger)
		journal, err := prepareCacheDir(&cfg, o, m, store, logger)
		if err != nil {
			unmountAll()
			return exitError{2, err}
		}
		defer closeCacheDir(journal, cfg.CacheDir)
		fsys := kfs.New(store, blocks, cfg)
		var root fusefs.InodeEmbedder
		name := m.Bucket
		if m.Bucket == "" {
			root, name = fsys.AllBucketsRoot(), "all-buckets"
		} else {
			root = fsys.BucketRoot(m.Bucket, m.Prefix)
		}
		// The control socket exists before the mount shows, so whoever sees
		// the mount can reach it.
		sock, err := ctl.Listen(ctl.Config{Mountpoint: m.Mountpoint, Bucket: m.Bucket, Prefix: m.Prefix,
			Endpoint: o.Endpoint, MountedAt: time.Now().UTC(), Log: logger, Hub: hub,
			Stats: func() any { return mountStats(blocks, fsys) }}, ctl.MinioBackend{C: client})
		if err != nil {
			logger.Printf("%v (kfs subcommands will not reach %s)", err, m.Mountpoint)
		} else {
			defer sock.Close()
		}
		srv, err := fusefs.Mount(m.Mountpoint, root, fuseOptions(o, "kfs:"+name+":"+m.Prefix, logger))
		if err != nil {
			unmountAll()
			return exitError{4, fmt.Errorf("mount %s: %v", m.Mountpoint, err)}
		}
		servers = append(servers, srv)
		filesystems = append(filesystems, fsys)

		tuneReadahead(m.Mountpoint, logger)
		logger.Printf("mounted %s at %s", strings.TrimSuffix(name+"/"+m.Prefix, "/"), m.Mountpoint)
	}
	notifyReady()

	done := make(chan struct{})
	go func() {
		for _, s := range servers {
			s.Wait()
		}
		close(done)
	}()
	select {
	case sig := <-sigs:
		logger.Printf("%v: unmounting", sig)
		unmountAll()
		<-done
	case <-done:
	}
	for _, f := range filesystems {
		if err := f.Close(); err != nil {
			logger.Printf("at unmount: %v", err)
		}
	}
	logger.Print("unmounted; exiting")
	return nil
}

func fsConfig(o mountopts.Options, l *log.Logger) kfs.Config {
	return kfs.Config{
		UID: o.UID, GID: o.GID, FileMode: uint32(o.FileMode), DirMode: uint32(o.DirMode),
		AttrTTL: o.AttrTTL, EntryTTL: o.EntryTTL, NegativeTTL: o.NegativeTTL,
		ReadOnly: o.ReadOnly, BlockSize: o.BlockSize, MaxReadahead: o.MaxReadahead, Log: l,
		CacheDirSize: o.CacheDirSize, PartSize: o.PartSize, WriteBuffer: o.WriteBuffer,
	}
}

// prepareCacheDir makes the mount's cache directory (a fixed name per
// bucket, prefix and mount point, so the next mount finds the upload journal
// of a crashed one) and aborts the uploads such a crash left behind.
func prepareCacheDir(cfg *kfs.Config, o mountopts.Options, m mountopts.Mount, store kfs.Store, l *log.Logger) (*kfs.Journal, error) {
	dir := o.CacheDir
	if dir == "" {
		sum := sha256.Sum256([]byte(o.Endpoint + "\x00" + m.Bucket + "\x00" + m.Prefix + "\x00" + m.Mountpoint))
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("kfs-%d", os.Getuid()), hex.EncodeToString(sum[:8]))
		if _, err := os.Stat("/var/tmp"); err == nil {
			dir = filepath.Join("/var/tmp", fmt.Sprintf("kfs-%d", os.Getuid()), hex.EncodeToString(sum[:8]))
		}
	} else if len(o.Mounts) > 1 {
		dir = filepath.Join(dir, filepath.Base(m.Mountpoint))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache dir: %v", err)
	}
	cfg.CacheDir = dir
	if o.ReadOnly {
		return nil, nil
	}
	j, err := kfs.OpenJournal(filepath.Join(dir, "uploads.journal"))
	if err != nil {
		return nil, fmt.Errorf("cache dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := j.Recover(ctx, store); err != nil {
		l.Printf("cleaning up uploads of an earlier run: %v", err)
	} else if n > 0 {
		l.Printf("aborted %d incomplete multipart uploads left by an earlier run", n)
	}
	cfg.Journal = j
	return j, nil
}

func closeCacheDir(j *kfs.Journal, dir string) {
	if j != nil {
		j.Close()
		if st, err := os.Stat(filepath.Join(dir, "uploads.journal")); err == nil && st.Size() == 0 {
			os.Remove(filepath.Join(dir, "uploads.journal"))
		}
	}
	os.Remove(dir) // only when empty
}

func fuseOptions(o mountopts.Options, fsName string, l *log.Logger) *fusefs.Options {
	attr, entry, neg := o.AttrTTL, o.EntryTTL, o.NegativeTTL
	mo := fuse.MountOptions{
		AllowOther:        o.AllowOther,
		FsName:            fsName,
		Name:              "kfs",
		MaxWrite:          1 << 20,
		MaxReadAhead:      1 << 20,
		MaxBackground:     64,
		DisableSplice:     true,                    // results are in memory: splicing them only adds a copy through a pipe
		ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC, // O_TRUNC arrives with OPEN: the writer streams, no staging
		DirectMount:       os.Geteuid() == 0,
		Debug:             o.Debug,
		Logger:            l,
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	return &fusefs.Options{
		MountOptions: mo, AttrTimeout: &attr, EntryTimeout: &entry, NegativeTimeout: &neg,
		UID: o.UID, GID: o.GID, Logger: l,
		FirstAutomaticIno: 2, // small inode numbers: some tools choke on 2^63
	}
}

func newLogger(o mountopts.Options, stderr io.Writer) (*log.Logger, error) {
	w := stderr
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, exitError{2, fmt.Errorf("log file: %v", err)}
		}
		w = f
	}
	return log.New(w, "kfs: ", log.LstdFlags|log.Lmicroseconds), nil
}

func newClient(o mountopts.Options) (*minio.Client, *http.Transport, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil {
		return nil, nil, err
	}
	tr, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, nil, err
	}
	tr.MaxIdleConnsPerHost = 256
	tr.ResponseHeaderTimeout = 2 * time.Minute
	if u.Scheme == "https" && o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("ca file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("ca file %s: no PEM certificates in it", o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken),
		Secure:    u.Scheme == "https",
		Region:    o.Region,
		Transport: tr,
	})
	return c, tr, err
}

// preflight proves the endpoint answers, the credentials work and the
// bucket exists, before anything is mounted.
func preflight(store kfs.Store, m mountopts.Mount) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	what := "bucket " + m.Bucket
	if m.Bucket == "" {
		what = "list buckets"
		_, err = store.ListBuckets(ctx)
	} else {
		err = store.StatBucket(ctx, m.Bucket)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("bucket %s does not exist", m.Bucket)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: credentials refused: %v", what, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: endpoint did not answer within 15s", what)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("endpoint unreachable: %v", ue.Err)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// checkMountpoint refuses a mount point that is missing, not a directory,
// not empty, or already mounted.
func checkMountpoint(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mount point %s does not exist (mkdir -p %s)", dir, dir)
		}
		if errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("mount point %s is a dead FUSE mount: run kfs unmount %s first", dir, dir)
		}
		return fmt.Errorf("mount point %s: %v", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	if mounted, err := isMountpoint(dir); err == nil && mounted {
		return fmt.Errorf("mount point %s is already mounted", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mount point %s: %v", dir, err)
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("mount point %s is not empty", dir)
	}
	return nil
}

// isMountpoint looks dir up in /proc/self/mountinfo.
func isMountpoint(dir string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		abs = dir
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMountinfo(f[4]) == abs {
			return true, nil
		}
	}
	return false, nil
}

func unescapeMountinfo(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// tuneReadahead raises the kernel's readahead for this mount to 1 MiB so
// sequential reads arrive in fewer, larger requests (needs root; best effort).
func tuneReadahead(dir string, l *log.Logger) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", devMajor(st.Dev), devMinor(st.Dev))
	if err := os.WriteFile(p, []byte("1024"), 0); err != nil && os.Geteuid() == 0 {
		l.Printf("could not raise readahead (%s): %v", p, err)
	}
}

func devMajor(dev uint64) uint64 { return (dev >> 8) & 0xfff }
func devMinor(dev uint64) uint64 { return (dev & 0xff) | ((dev >> 12) & 0xfff00) }

// unmount detaches dir: directly as root, else through fusermount3.
func unmount(dir string, lazy bool) error {
	flags := 0
	if lazy {
		flags = syscall.MNT_DETACH
	}
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(dir, flags); err == nil {
			return nil
		} else if errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("%s is not mounted", dir)
		} else if !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("unmount %s: %v", dir, err)
		}
	}
	args := []string{"-u", dir}
	if lazy {
		args = []string{"-u", "-z", dir}
	}
	out, err := exec.Command("fusermount3", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mountStats is the "stats" part of `kfs status`.
func mountStats(blocks *cache.Blocks, fsys *kfs.FS) any {
	cs := blocks.Stats()
	ratio := 0.0
	if n := cs.Hits + cs.Misses; n > 0 {
		ratio = float64(cs.Hits) / float64(n)
	}
	return map[string]any{"cache": cs, "cache_hit_ratio": ratio, "fs": fsys.Status()}
}
