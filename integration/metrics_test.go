package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"kfs/ctl"
)

// parseMetrics parses a Prometheus text exposition.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return fams
}

// metricValue sums the values (counters, gauges, histogram counts) of the
// series of family name whose labels include want; found says whether any
// series matched.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, found bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, x := range want {
			if got[k] != x {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v, found
}

// Metrics: scraped from the control socket and from --metrics-addr after
// real work (cp in, read back, a refused rmdir, a writer holding a file),
// parsed with Prometheus's own parser, and checked against what was done.
func TestMetrics(t *testing.T) {
	b := newBucket(t)
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	m := mountKFS(t, b, "--metrics-addr", addr)
	src := t.TempDir() + "/src.bin"
	data := randBytes(3 << 20)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", src, m.path("in.bin"))
	sh(t, "sh", "-c", "cat "+m.path("in.bin")+" > /dev/null")
	if err := os.Mkdir(m.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("d", "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path("d")); err == nil {
		t.Fatal("rmdir of a non-empty directory worked")
	}
	writer := exec.Command("python3", "-c", `import sys,time
f=open(sys.argv[1],"wb"); f.write(b"x"*1000); f.flush(); print("ok", flush=True); time.sleep(30)`, m.path("open.bin"))
	wout, _ := writer.StdoutPipe()
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { writer.Process.Kill(); writer.Wait() }()
	if _, err := io.ReadFull(wout, make([]byte, 2)); err != nil {
		t.Fatal("the writer did not start")
	}

	sock := ctl.SocketPath(m.dir)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	r, err := hc.Get("http://kfs/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	viaSocket, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("socket metrics: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r, err := hc.Post("http://kfs/v1/metrics", "text/plain", nil); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/metrics: %v %v", r, err)
	}
	tr, viaTCP := httpDo(t, "GET", "http://"+addr+"/metrics", nil)
	if tr.StatusCode != 200 {
		t.Fatalf("tcp metrics: %d", tr.StatusCode)
	}
	viaCLI := kfsOut(t, "metrics", m.path("in.bin")) + "\n" // kfsOut trims the last newline
	for name, text := range map[string]string{"socket": string(viaSocket), "tcp": string(viaTCP), "kfs metrics": viaCLI} {
		fams := parseMetrics(t, text)
		mnt := map[string]string{"mount": m.dir}
		checks := []struct {
			what   string
			name   string
			labels map[string]string
			ok     func(float64) bool
		}{
			{"writes timed", "kfs_fuse_op_duration_seconds", map[string]string{"mount": m.dir, "op": "WRITE"}, func(v float64) bool { return v >= 3 }},
			{"flushes timed", "kfs_fuse_op_duration_seconds", map[string]string{"mount": m.dir, "op": "FLUSH"}, func(v float64) bool { return v >= 1 }},
			{"lookups timed", "kfs_fuse_op_duration_seconds", map[string]string{"mount": m.dir, "op": "LOOKUP"}, func(v float64) bool { return v >= 1 }},
			{"failed rmdir", "kfs_fuse_op_errors_total", map[string]string{"mount": m.dir, "op": "RMDIR", "errno": "ENOTEMPTY"}, func(v float64) bool { return v >= 1 }},
			{"bytes written", "kfs_fuse_bytes_total", map[string]string{"mount": m.dir, "direction": "written"}, func(v float64) bool { return v >= 3<<20+1000 }},
			{"bytes read", "kfs_fuse_bytes_total", map[string]string{"mount": m.dir, "direction": "read"}, func(v float64) bool { return v >= 3<<20 }},
			{"the upload", "kfs_s3_requests_total", map[string]string{"op": "PutObject", "status": "200"}, func(v float64) bool { return v >= 1 }},
			{"listings", "kfs_s3_requests_total", map[string]string{"op": "ListObjectsV2", "status": "200"}, func(v float64) bool { return v >= 1 }},
			{"GETs", "kfs_s3_request_duration_seconds", map[string]string{"op": "GetObject"}, func(v float64) bool { return v >= 1 }},
			{"cache misses", "kfs_cache_misses_total", nil, func(v float64) bool { return v >= 1 }},
			{"cache size", "kfs_cache_max_bytes", nil, func(v float64) bool { return v == 64<<20 }},
			{"the open writer", "kfs_uploads_in_flight", mnt, func(v float64) bool { return v == 1 }},
			{"staging", "kfs_staging_bytes", mnt, func(v float64) bool { return v >= 0 }},
			{"event source", "kfs_event_source_live", map[string]string{"source": "listen " + b}, func(v float64) bool { return v == 0 || v == 1 }},
			{"runtime", "go_goroutines", nil, func(v float64) bool { return v > 0 }},
		}
		for _, c := range checks {
			v, found := metricValue(fams, c.name, c.labels)
			if !found || !c.ok(v) {
				t.Errorf("%s: %s %s%v = %v (found %v)", name, c.what, c.name, c.labels, v, found)
			}
		}
	}
}
