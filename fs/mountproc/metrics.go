package mountproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"kfs/cache"
	"kfs/cache/disk"
	"kfs/ctl"
	"kfs/ctl/metrics"
	kfs "kfs/fs"
)

// registerShared exposes what the mounts of a process share: the block
// cache, the event sources and the problems logged.
func registerShared(m *metrics.Metrics, blocks *cache.Blocks, sources []*ctl.SourceStats, probs *problems) {
	stat := func(f func(cache.Stats) int64) func() float64 {
		return func() float64 { return float64(f(blocks.Stats())) }
	}
	m.Counter("kfs_cache_hits_total", "Block cache lookups answered from memory.", nil, stat(func(s cache.Stats) int64 { return s.Hits }))
	m.Counter("kfs_cache_misses_total", "Block cache lookups that needed a GET.", nil, stat(func(s cache.Stats) int64 { return s.Misses }))
	m.Counter("kfs_cache_evictions_total", "Blocks dropped from the cache to make room.", nil, stat(func(s cache.Stats) int64 { return s.Evictions }))
	m.Counter("kfs_cache_prefetches_total", "Blocks fetched ahead of sequential readers.", nil, stat(func(s cache.Stats) int64 { return s.Prefetches }))
	m.Gauge("kfs_cache_bytes", "Bytes held by the block cache.", nil, stat(func(s cache.Stats) int64 { return s.Bytes }))
	m.Gauge("kfs_cache_max_bytes", "The block cache's size (--cache-size).", nil, stat(func(s cache.Stats) int64 { return s.MaxBytes }))
	for _, s := range sources {
		l := map[string]string{"source": s.Snapshot().Name}
		m.Gauge("kfs_event_source_live", "1 when the event source delivers events (live), 0 otherwise.", l, func() float64 {
			if s.Snapshot().State == "live" {
				return 1
			}
			return 0
		})
		m.Counter("kfs_events_received_total", "Bucket events received from the source.", l, func() float64 { return float64(s.Snapshot().Events) })
		m.Counter("kfs_events_rejected_total", "Requests or events the source refused (bad token, malformed).", l, func() float64 { return float64(s.Snapshot().Rejected) })
	}
	m.Counter("kfs_problems_logged_total", "Warnings and errors logged.", nil, func() float64 {
		n, _ := probs.snapshot()
		return float64(n)
	})
}

// registerMount exposes one mount's files being written.
func registerMount(m *metrics.Metrics, mountpoint string, fsys *kfs.FS) {
	l := map[string]string{"mount": mountpoint}
	m.Gauge("kfs_uploads_in_flight", "Files with changes not yet stored (open for writing, or committing).", l,
		func() float64 { return float64(len(fsys.Status().Uploads)) })
	m.Gauge("kfs_staging_bytes", "Bytes of staging files on disk (--cache-dir).", l,
		func() float64 { return float64(fsys.Status().StagingBytes) })
	wb := func(get func(kfs.WriteBackStatus) float64) func() float64 {
		return func() float64 {
			if s := fsys.Status().WriteBack; s != nil {
				return get(*s)
			}
			return 0
		}
	}
	m.Gauge("kfs_writeback_pending_files", "Files closed on a write-back mount and not uploaded yet.", l,
		wb(func(s kfs.WriteBackStatus) float64 { return float64(s.Pending) }))
	m.Gauge("kfs_writeback_pending_bytes", "Bytes of those files.", l,
		wb(func(s kfs.WriteBackStatus) float64 { return float64(s.Bytes) }))
	m.Gauge("kfs_writeback_oldest_seconds", "Age of the oldest file not uploaded yet.", l,
		wb(func(s kfs.WriteBackStatus) float64 { return s.OldestAge }))
	m.Gauge("kfs_writeback_failing_files", "Files whose last upload attempt failed (they are retried).", l,
		wb(func(s kfs.WriteBackStatus) float64 { return float64(s.Failing) }))
	m.Gauge("kfs_writeback_uploaded_files", "Files uploaded by write-back since the mount.", l,
		wb(func(s kfs.WriteBackStatus) float64 { return float64(s.Uploaded) }))
	m.Gauge("kfs_writeback_conflicts", "Files another client overwrote before their upload (ours kept under a conflict name).", l,
		wb(func(s kfs.WriteBackStatus) float64 { return float64(s.Conflicts) }))
}

// serveMetrics serves the metrics over HTTP at addr (/metrics) until ctx
// ends.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, l *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics-addr %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	l.Info("metrics served", "url", "http://"+ln.Addr().String()+"/metrics")
	if host, _, _ := net.SplitHostPort(addr); host == "" || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		l.Warn("metrics are served beyond loopback: anyone who reaches " + addr + " can read them (they name mount points, no files or keys)")
	}
	return nil
}

// registerDisk exposes the dataset cache's counters (nothing without one).
func registerDisk(m *metrics.Metrics, dc *disk.Cache) {
	if dc == nil {
		return
	}
	stat := func(f func(disk.Stats) int64) func() float64 {
		return func() float64 { return float64(f(dc.Stats())) }
	}
	m.Gauge("kfs_disk_cache_bytes", "Bytes of objects in the disk cache (and fills under way).", nil, stat(func(s disk.Stats) int64 { return s.Bytes }))
	m.Gauge("kfs_disk_cache_max_bytes", "The disk cache's size (--disk-cache-size).", nil, stat(func(s disk.Stats) int64 { return s.MaxBytes }))
	m.Gauge("kfs_disk_cache_entries", "Objects whole in the disk cache.", nil, stat(func(s disk.Stats) int64 { return int64(s.Entries) }))
	m.Counter("kfs_disk_cache_hits_total", "Opens served from the disk cache.", nil, stat(func(s disk.Stats) int64 { return s.Hits }))
	m.Counter("kfs_disk_cache_misses_total", "Read-only opens of files not whole in the disk cache.", nil, stat(func(s disk.Stats) int64 { return s.Misses }))
	m.Counter("kfs_disk_cache_filled_total", "Objects added to the disk cache.", nil, stat(func(s disk.Stats) int64 { return s.Filled }))
	m.Counter("kfs_disk_cache_fill_failures_total", "Fills given up (disk full, unwritable, bytes not matching the ETag).", nil, stat(func(s disk.Stats) int64 { return s.FillFailures }))
	m.Counter("kfs_disk_cache_evictions_total", "Entries removed to make room.", nil, stat(func(s disk.Stats) int64 { return s.Evictions }))
	m.Counter("kfs_disk_cache_discarded_total", "Entries found changed or torn on disk and deleted.", nil, stat(func(s disk.Stats) int64 { return s.Discarded }))
	m.Counter("kfs_disk_cache_passthrough_opens_total", "Opens handed to the kernel as FUSE passthrough.", nil, stat(func(s disk.Stats) int64 { return s.Passthrough }))
}
