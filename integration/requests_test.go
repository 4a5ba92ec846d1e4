package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rsync -a of small files: the copies that set modes, times and the final
// name never look the object up first (kfs wrote it: it knows its size and
// ETag, and every copy is conditioned on that ETag), so no HEAD finds an
// object; per file what is left is the PUT, the copies and the delete.
func TestRsyncSendsNoHeadForWhatItWrote(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 20; i++ {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), randBytes(3000), 0o640)
	}
	b := newBucket(t)
	m := mountKFS(t, b)
	count := func(op, status string) float64 {
		_, out, _ := kfsRun(t, "metrics", m.dir)
		v, _ := metricValue(parseMetrics(t, out), "kfs_s3_requests_total", map[string]string{"op": op, "status": status})
		return v
	}
	head0, put0 := count("HeadObject", "200"), count("PutObject", "200")
	sh(t, "rsync", "-a", src+"/", m.path("copy")+"/")
	if n := count("HeadObject", "200") - head0; n != 0 {
		t.Fatalf("rsync -a of 20 new files looked up %v objects that exist", n)
	}
	if n := count("PutObject", "200") - put0; n > 20*4+4 {
		t.Fatalf("%v PUTs and copies for 20 files", n)
	}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("copy/f%02d", i)
		want, _ := os.ReadFile(filepath.Join(src, fmt.Sprintf("f%02d", i)))
		if got := sdkBytes(t, b, k); !bytes.Equal(got, want) {
			t.Fatalf("%s differs", k)
		}
	}
	stats := sh(t, "rsync", "-ai", src+"/", m.path("copy")+"/")
	if strings.TrimSpace(stats) != "" {
		t.Fatalf("a second rsync -a sent files again (modes or times lost):\n%s", stats)
	}
}
