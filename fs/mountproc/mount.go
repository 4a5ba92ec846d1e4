package mountproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"kfs/cache"
	"kfs/cache/disk"
	"kfs/ctl"
	"kfs/ctl/cli"
	"kfs/ctl/metrics"
	kfs "kfs/fs"
	"kfs/fs/journal"
	"kfs/fs/store/s3store"
	"kfs/fs/upload"
	"kfs/mountopts"
)

// Run is `kfs mount ARGS`; it returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			PrintHelp(stdout)
			return 0
		}
	}
	o, err := mountopts.Parse(args, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kfs: %v\n", err)
		return 2
	}
	if o.Daemon && !isDaemonChild() {
		err = daemonize(args, stderr)
	} else {
		err = mountAndServe(o, stderr)
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "kfs: %v\n", ee.err)
			return ee.code
		}
		fmt.Fprintf(stderr, "kfs: %v\n", err)
		return 1
	}
	return 0
}

// mounted is one live mount and what it holds.
type mounted struct {
	srv        *fuse.Server
	fsys       *kfs.FS
	sock       *ctl.Server
	journal    *journal.Journal
	cacheDir   string
	ownBase    bool // the cache dir's parent is kfs's default one: removed when empty
	mountpoint string
}

// process is what the mounts of one kfs process share.
type process struct {
	o       mountopts.Options
	st      *s3store.Store
	blocks  *cache.Blocks
	hub     *ctl.Hub
	log     *slog.Logger
	probs   *problems
	sources []*ctl.SourceStats
	metrics *metrics.Metrics
	disk    *disk.Cache // the dataset cache (nil: --disk-cache-size 0)
}

// mountAndServe checks everything, mounts every requested mount point and
// serves until unmounted or signalled. With o.Daemon it returns as soon as
// the mounts are live, leaving a child process serving them.
func mountAndServe(o mountopts.Options, stderr io.Writer) error {
	// Signals are caught from the start, so one arriving while mounting
	// still unmounts cleanly.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	logger, probs, err := newLogger(o, stderr, isDaemonChild())
	if err != nil {
		return err
	}
	if p := os.Getenv("KFS_CPUPROFILE"); p != "" { // for benchmarks: a CPU profile of the mount's life
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	for _, w := range o.Warnings {
		logger.Warn(w)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	p, err := start(ctx, o, logger, probs)
	if err != nil {
		return err
	}
	if p.disk != nil {
		defer p.disk.Close()
	}
	var mounts []*mounted
	defer func() {
		for _, m := range mounts {
			m.close(logger)
		}
	}()
	for _, m := range o.Mounts {
		mt, err := p.mountOne(m)
		if err != nil {
			for _, x := range mounts {
				x.srv.Unmount()
			}
			return err
		}
		mounts = append(mounts, mt)
	}
	notifyReady()
	done := make(chan struct{})
	go func() {
		for _, m := range mounts {
			m.srv.Wait()
		}
		close(done)
	}()
	waitUnmounted(mounts, sigs, done, logger)
	logger.Info("unmounted; exiting")
	return nil
}

// start checks the store and mount points and starts what the mounts
// share: the store client, the block cache, event sources and metrics.
func start(ctx context.Context, o mountopts.Options, logger *slog.Logger, probs *problems) (*process, error) {
	met := metrics.New()
	retries := o.Retries
	if retries == 0 {
		retries = -1 // s3store: none (0 would mean its default)
	}
	st, err := s3store.New(s3store.Config{Endpoint: o.Endpoint, AccessKey: o.AccessKey, SecretKey: o.SecretKey,
		SessionToken: o.SessionToken, Region: o.Region, CAFile: o.CAFile, Observe: met.S3Request, Trace: s3Trace(o, logger),
		Timeout: o.RequestTimeout, Retries: retries, Deadline: o.Deadline, Failover: o.Failover,
		OnFailover: func(from, to string) {
			logger.Warn("store node unreachable: going on with the next", "from", from, "to", to)
		},
		NoListMeta: func() {
			logger.Info("the server sends no object metadata in listings (a MinIO extension): modes, owners, times and symlinks come from a HEAD per object, cached per object version (README: Compatibility)")
		}})
	if err != nil {
		return nil, exitError{2, err}
	}
	for _, m := range o.Mounts {
		if err := checkMountpoint(m.Mountpoint); err != nil {
			return nil, exitError{2, err}
		}
		if err := preflight(st, m); err != nil {
			return nil, exitError{3, err}
		}
	}
	// Bound the heap near what the cache may hold, so the block cache's
	// garbage does not inflate the resident set.
	debug.SetMemoryLimit(o.CacheSize + o.CacheSize/2 + 32<<20)
	p := &process{o: o, st: st, blocks: cache.New(o.CacheSize, int(o.BlockSize), 2*time.Minute), hub: ctl.NewHub(),
		log: logger, probs: probs, metrics: met}
	if p.disk, err = openDiskCache(o, p.blocks.BlockSize(), logger); err != nil {
		return nil, exitError{2, err}
	}
	if p.sources, err = startEvents(ctx, o, st, p.hub, logger); err != nil {
		return nil, err
	}
	registerShared(met, p.blocks, p.sources, probs)
	registerDisk(met, p.disk)
	if o.MetricsAddr != "" {
		if err := serveMetrics(ctx, o.MetricsAddr, met, logger); err != nil {
			return nil, exitError{2, err}
		}
	}
	return p, nil
}

// s3Trace logs every request to the store at --log-level debug (nil
// otherwise: no cost).
func s3Trace(o mountopts.Options, l *slog.Logger) s3store.Tracer {
	if !strings.EqualFold(o.LogLevel, "debug") {
		return nil
	}
	return func(op, path, copySource string, status int, d time.Duration) {
		args := []any{"op", op, "path", path, "status", status, "ms", d.Milliseconds()}
		if copySource != "" {
			args = append(args, "copy_source", copySource)
		}
		l.Debug("s3 request", args...)
	}
}

// waitUnmounted returns once every mount is gone. A signal unmounts them
// (batched deletions are sent as each closes); one still in use is
// detached lazily at the next signal, and finishes when its last file
// closes.
func waitUnmounted(mounts []*mounted, sigs <-chan os.Signal, done <-chan struct{}, logger *slog.Logger) {
	lazy := false
	for {
		select {
		case <-done:
			return
		case sig := <-sigs:
			logger.Info("unmounting", "signal", sig.String(), "lazy", lazy)
			for _, m := range mounts {
				var err error
				if lazy {
					err = cli.UnmountDir(m.mountpoint, true)
				} else {
					err = m.srv.Unmount()
				}
				if err != nil {
					logger.Error("unmount failed (files still open?); send the signal again to detach lazily", "mount", m.mountpoint, "err", err)
				}
			}
			lazy = true
		}
	}
}

// mountOne mounts one bucket (or prefix, or every bucket) at its mount
// point, with its control socket.
func (p *process) mountOne(m mountopts.Mount) (*mounted, error) {
	o, st, blocks, hub, logger := p.o, p.st, p.blocks, p.hub, p.log
	mt := &mounted{mountpoint: m.Mountpoint}
	dir, journal, renames, err := prepareCacheDir(o, m, st, logger)
	if err != nil {
		return nil, exitError{2, err}
	}
	mt.cacheDir, mt.journal, mt.ownBase = dir, journal, o.CacheDir == ""
	log := logger.With("mount", m.Mountpoint)
	mt.fsys = p.newFS(m, dir, journal, log)
	registerMount(p.metrics, m.Mountpoint, mt.fsys)
	if journal != nil {
		finishWrites(mt.fsys, journal, dir, o.Deadline, log) // before renames: a rename cut short moves what they store
	}
	finishRenames(mt.fsys, renames, o.Deadline, log)
	if journal != nil {
		finishDeletes(mt.fsys, journal, o.Deadline, log)
		finishAttrs(mt.fsys, journal, o.Deadline, log)
	}
	var root fusefs.InodeEmbedder
	name := m.Bucket
	if m.Bucket == "" {
		root, name = mt.fsys.AllBucketsRoot(), "all-buckets"
	} else {
		root = mt.fsys.BucketRoot(m.Bucket, m.Prefix)
	}
	hub.OnEvent(func(e ctl.Event) {
		if e.Source == "webhook" {
			mt.fsys.EventSeen(e.Bucket) // the bucket's notifications reach this mount
		}
		if m.Bucket == "" || e.Bucket == m.Bucket {
			mt.fsys.Event(e.Bucket, e.Key, e.ETag, strings.HasPrefix(e.Event, "s3:ObjectRemoved:"), e.Time)
		}
	})
	// The control socket exists before the mount shows, so whoever sees the
	// mount can reach it.
	mt.sock, err = ctl.Listen(ctl.Config{Mountpoint: m.Mountpoint, Bucket: m.Bucket, Prefix: m.Prefix, Endpoint: o.Endpoint,
		MountedAt: time.Now().UTC(), Log: log, Hub: hub, Metrics: p.metrics.Handler(),
		Stats:   func() any { return mountStats(blocks, p.disk, mt.fsys, p.probs, p.sources) },
		Warm:    mt.fsys.Warm,
		Changed: mt.fsys.Changed, ChangedPrefix: mt.fsys.ChangedPrefix, Settle: mt.fsys.Settle, Sync: mt.fsys.Sync,
		Owner: uint32(os.Geteuid()), AllowOther: o.AllowOther, ReadOnly: o.ReadOnly, Access: ctl.KernelAccess}, st)
	if err != nil {
		log.Warn("no control socket: kfs subcommands will not reach this mount", "err", err)
	}
	if err := p.serve(mt, m, root, name, log); err != nil {
		return nil, err
	}
	return mt, nil
}

// newFS builds the filesystem of one mount over its cache directory and
// journal (nil for a read-only mount).
func (p *process) newFS(m mountopts.Mount, dir string, journal *journal.Journal, log *slog.Logger) *kfs.FS {
	o := p.o
	var (
		renameJ kfs.RenameJournal // nil interfaces, not typed nils, for a read-only mount
		deleteJ kfs.DeleteJournal
		attrsJ  kfs.AttrsJournal
		uploadJ upload.Recorder
	)
	if journal != nil {
		renameJ, deleteJ, attrsJ, uploadJ = journal, journal, journal, journal
	}
	var fsys *kfs.FS
	ucfg := upload.Config{Store: p.st, Dir: dir, DiskLimit: o.CacheDirSize, InFlight: o.WriteBuffer,
		PartSize: o.PartSize, Journal: uploadJ, Log: log}
	var writesJ kfs.WritesJournal
	if o.WriteBack && journal != nil {
		ucfg.Named, writesJ = true, journal
		ucfg.WaitSpace = func(ctx context.Context) bool { return fsys.WaitSpace(ctx) }
	}
	pipe := upload.New(ucfg)
	fsys = kfs.New(p.st, p.blocks, pipe, kfs.Config{
		UID: o.UID, GID: o.GID, FileMode: uint32(o.FileMode), DirMode: uint32(o.DirMode),
		AttrTTL: o.AttrTTL, EntryTTL: o.EntryTTL, NegativeTTL: o.NegativeTTL, ReadOnly: o.ReadOnly,
		MaxReadahead: o.MaxReadahead, ACL: o.ACL, Mountpoint: m.Mountpoint, Log: log,
		Renames: renameJ, Deletes: deleteJ, EventsLive: p.webhookLive, Revalidate: o.Revalidate,
		Disk: p.disk, Passthrough: o.Passthrough, Attrs: attrsJ, WriteBack: writesJ != nil, Writes: writesJ})
	return fsys
}

// serve mounts mt's filesystem at its mount point and starts serving it,
// with fusermount's reason when it refuses.
func (p *process) serve(mt *mounted, m mountopts.Mount, root fusefs.InodeEmbedder, name string, log *slog.Logger) error {
	o := p.o
	said, err := stderrOf(func() error {
		var err error
		mt.srv, err = mt.fsys.Mount(m.Mountpoint, root, kfs.MountConfig{Name: "kfs:" + name + ":" + m.Prefix,
			AllowOther: o.AllowOther, NoPermissions: o.NoPermissionChecks, Debug: o.Debug}, p.metrics.FuseObserver(m.Mountpoint))
		return err
	})
	if err != nil {
		mt.close(p.log)
		if said != "" { // fusermount's reason ("code 256" alone says nothing)
			err = fmt.Errorf("%s: %s", strings.TrimSpace(err.Error()), said)
		}
		return exitError{4, fmt.Errorf("mount %s: %v", m.Mountpoint, err)}
	}
	if said != "" {
		log.Warn("fusermount said", "text", said)
	}
	tuneReadahead(m.Mountpoint, log)
	log.Info("mounted", "what", strings.TrimSuffix(name+"/"+m.Prefix, "/"), "permission_checks", !o.NoPermissionChecks, "acl", o.ACL)
	return nil
}

// close finishes a mount after it was unmounted: batched deletions, the
// socket, the journal and the cache directory.
func (m *mounted) close(l *slog.Logger) {
	if m.fsys != nil {
		if err := m.fsys.Close(); err != nil {
			l.Error("at unmount", "err", err)
		}
	}
	if m.sock != nil {
		m.sock.Close()
	}
	if m.journal != nil {
		if idle, err := m.journal.Finish(); err != nil || !idle {
			l.Warn("the upload journal keeps work for the next mount", "journal", m.journal.Path(), "err", err)
		}
	}
	if m.cacheDir != "" {
		os.Remove(m.cacheDir) // only when empty: another mount of the bucket may still use it
		if m.ownBase {
			os.Remove(filepath.Dir(m.cacheDir))
		}
	}
}

// tuneReadahead raises the kernel's readahead for this mount to 1 MiB so
// sequential reads arrive in fewer, larger requests (needs root; best effort).
func tuneReadahead(dir string, l *slog.Logger) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", (st.Dev>>8)&0xfff, (st.Dev&0xff)|((st.Dev>>12)&0xfff00))
	if err := os.WriteFile(p, []byte("1024"), 0); err != nil && os.Geteuid() == 0 {
		l.Debug("could not raise readahead", "file", p, "err", err)
	}
}

// mountStats is the "stats" part of `kfs status`.
func mountStats(blocks *cache.Blocks, dc *disk.Cache, fsys *kfs.FS, p *problems, sources []*ctl.SourceStats) any {
	cs := blocks.Stats()
	ratio := 0.0
	if n := cs.Hits + cs.Misses; n > 0 {
		ratio = float64(cs.Hits) / float64(n)
	}
	count, last := p.snapshot()
	states := []ctl.SourceState{}
	for _, s := range sources {
		states = append(states, s.Snapshot())
	}
	out := map[string]any{"cache": cs, "cache_hit_ratio": ratio, "fs": fsys.Status(), "problems_logged": count,
		"last_problems": last, "event_sources": states}
	if dc != nil {
		out["disk_cache"] = dc.Stats()
	}
	return out
}

// webhookLive says whether the webhook receiver is up (the listen API's
// events come late, in bursts: they keep nothing fresh).
func (p *process) webhookLive() bool {
	for _, s := range p.sources {
		if st := s.Snapshot(); st.Name == "webhook" && st.State == "live" {
			return true
		}
	}
	return false
}
