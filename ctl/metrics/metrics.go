// Package metrics keeps a kfs process's metrics in a Prometheus registry
// and serves them in the Prometheus text format: FUSE operations by type
// with latency histograms and errors by errno, bytes read and written, S3
// requests by operation and status with latencies, and gauges read from
// the parts that keep their own counters (cache, uploads, event sources).
package metrics

import (
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

// Metrics is one process's registry. Safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	fuseDur  *prometheus.HistogramVec // mount, op
	fuseErrs *prometheus.CounterVec   // mount, op, errno
	bytes    *prometheus.CounterVec   // mount, direction
	s3Dur    *prometheus.HistogramVec // op
	s3Reqs   *prometheus.CounterVec   // op, status
}

// latency buckets: 50 µs (a cached getattr) to 60 s (a large commit).
var buckets = prometheus.ExponentialBucketsRange(50e-6, 60, 16)

// New returns an empty registry with the Go runtime and process metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fuseDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kfs_fuse_op_duration_seconds",
			Help: "Time kfs took to answer FUSE operations, by mount and operation.", Buckets: buckets}, []string{"mount", "op"}),
		fuseErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kfs_fuse_op_errors_total",
			Help: "FUSE operations answered with an error, by mount, operation and errno."}, []string{"mount", "op", "errno"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kfs_fuse_bytes_total",
			Help: "Bytes read from and written to files, by mount and direction (read, written)."}, []string{"mount", "direction"}),
		s3Dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kfs_s3_request_duration_seconds",
			Help: "Time until the store's answer headers, by S3 operation.", Buckets: buckets}, []string{"op"}),
		s3Reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kfs_s3_requests_total",
			Help: "Requests sent to the store, by S3 operation and HTTP status (0: no answer)."}, []string{"op", "status"}),
	}
	m.reg.MustRegister(m.fuseDur, m.fuseErrs, m.bytes, m.s3Dur, m.s3Reqs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// FuseObserver is the observer of one mount's FUSE operations.
func (m *Metrics) FuseObserver(mount string) func(op string, d time.Duration, errno syscall.Errno, n int) {
	read, written := m.bytes.WithLabelValues(mount, "read"), m.bytes.WithLabelValues(mount, "written")
	return func(op string, d time.Duration, errno syscall.Errno, n int) {
		m.fuseDur.WithLabelValues(mount, op).Observe(d.Seconds())
		if errno != 0 {
			name := unix.ErrnoName(errno)
			if name == "" {
				name = strconv.Itoa(int(errno))
			}
			m.fuseErrs.WithLabelValues(mount, op, name).Inc()
		}
		switch {
		case n == 0:
		case op == "READ":
			read.Add(float64(n))
		case op == "WRITE":
			written.Add(float64(n))
		}
	}
}

// S3Request records one request to the store.
func (m *Metrics) S3Request(op string, status int, d time.Duration) {
	m.s3Reqs.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.s3Dur.WithLabelValues(op).Observe(d.Seconds())
}

// Gauge registers a value read at every scrape; labels tell series of one
// name apart (a mount, a source).
func (m *Metrics) Gauge(name, help string, labels map[string]string, value func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, value))
}

// Counter registers a count kept elsewhere (it must only grow).
func (m *Metrics) Counter(name, help string, labels map[string]string, value func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, value))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
