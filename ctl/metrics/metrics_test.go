package metrics

import (
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches the text format from the handler and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, rec.Body)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestMetricsScrapeAndParse(t *testing.T) {
	m := New()
	obs := m.FuseObserver("/mnt/a")
	obs("WRITE", 2*time.Millisecond, 0, 4096)
	obs("WRITE", 3*time.Millisecond, 0, 100)
	obs("READ", time.Millisecond, 0, 1000)
	obs("LOOKUP", time.Millisecond, syscall.ENOENT, 0)
	m.S3Request("PutObject", 200, 5*time.Millisecond)
	m.S3Request("HeadObject", 404, time.Millisecond)
	m.S3Request("GetObject", 0, time.Second)
	held := 7.0
	m.Gauge("kfs_cache_bytes", "bytes", nil, func() float64 { return held })
	m.Counter("kfs_events_received_total", "events", map[string]string{"source": "webhook"}, func() float64 { return 3 })
	fams := scrape(t, m)

	if h := find(fams, "kfs_fuse_op_duration_seconds", map[string]string{"mount": "/mnt/a", "op": "WRITE"}); h == nil ||
		h.Histogram.GetSampleCount() != 2 || h.Histogram.GetSampleSum() < 0.004 {
		t.Fatalf("write histogram: %v", h)
	}
	if c := find(fams, "kfs_fuse_bytes_total", map[string]string{"mount": "/mnt/a", "direction": "written"}); c == nil || c.Counter.GetValue() != 4196 {
		t.Fatalf("bytes written: %v", c)
	}
	if c := find(fams, "kfs_fuse_bytes_total", map[string]string{"direction": "read"}); c == nil || c.Counter.GetValue() != 1000 {
		t.Fatalf("bytes read: %v", c)
	}
	if c := find(fams, "kfs_fuse_op_errors_total", map[string]string{"op": "LOOKUP", "errno": "ENOENT"}); c == nil || c.Counter.GetValue() != 1 {
		t.Fatalf("lookup errors: %v", c)
	}
	if c := find(fams, "kfs_fuse_op_errors_total", map[string]string{"op": "WRITE"}); c != nil {
		t.Fatalf("a successful op counted as an error: %v", c)
	}
	for _, want := range []map[string]string{{"op": "PutObject", "status": "200"}, {"op": "HeadObject", "status": "404"}, {"op": "GetObject", "status": "0"}} {
		if c := find(fams, "kfs_s3_requests_total", want); c == nil || c.Counter.GetValue() != 1 {
			t.Fatalf("s3 requests %v: %v", want, c)
		}
	}
	if g := find(fams, "kfs_cache_bytes", nil); g == nil || g.Gauge.GetValue() != 7 {
		t.Fatalf("gauge: %v", g)
	}
	held = 9
	if g := find(scrape(t, m), "kfs_cache_bytes", nil); g.Gauge.GetValue() != 9 {
		t.Fatal("a gauge is not read at scrape time")
	}
	if c := find(fams, "kfs_events_received_total", map[string]string{"source": "webhook"}); c == nil || c.Counter.GetValue() != 3 {
		t.Fatalf("counter func: %v", c)
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Fatal("no runtime or process metrics")
	}
}
