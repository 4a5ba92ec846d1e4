package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// faultMount mounts bucket b through a fresh fault proxy with short fault
// bounds, so every scenario ends in seconds.
func faultMount(t *testing.T, b string, extra ...string) (*mounted, *FaultProxy) {
	t.Helper()
	p, err := NewFaultProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	args := append([]string{b, "--endpoint", "http://" + p.Addr, "--request-timeout", "1s", "--retries", "4",
		"--deadline", "30s", "--attr-ttl", "0", "--entry-ttl", "0", "--negative-ttl", "0", "--part-size", "5MiB"}, extra...)
	return mountKFS(t, args...), p
}

func fileSha(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// bounded runs fn and fails the test if it takes longer than d.
func bounded(t *testing.T, d time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not end within %v", what, d)
		return nil
	}
}

// Reads under every kind of fault return the object's exact bytes: the
// failed or cut requests are retried and resumed.
func TestReadsSurviveFaults(t *testing.T) {
	b := newBucket(t)
	m, p := faultMount(t, b, "--block-size", "1MiB")
	for _, k := range []FaultKind{FaultSlowDown, FaultInternal, FaultReset, FaultShortBody, FaultLatency, FaultBlackHole} {
		t.Run(k.String(), func(t *testing.T) {
			f := Fault{Kind: k, Rate: 0.3, Match: IsObjectGet, Latency: 300 * time.Millisecond}
			if k == FaultBlackHole {
				f.Rate, f.Limit = 1, 2 // two requests never answered: each costs one request timeout
			}
			p.Set(f)
			defer p.Set(Fault{})
			before := p.Spoiled.Load()
			// A read is about 13 GETs: at 30% none is spoiled about once in a
			// hundred (seen in CI), so a file read unspoiled is followed by
			// another, until one was.
			for i := 0; i < 4 && p.Spoiled.Load() == before; i++ {
				key := fmt.Sprintf("r-%s-%d", strings.ReplaceAll(k.String(), " ", "-"), i)
				data := randBytes(12<<20 + 12345)
				p.Set(Fault{})
				put(t, b, key, data)
				p.Set(f)
				var got string
				err := bounded(t, 60*time.Second, "a read under "+k.String(), func() (err error) {
					got, err = fileSha(m.path(key))
					return err
				})
				if err != nil || got != sha(data) {
					t.Fatalf("read under %s: %v, sha ok %v (%d requests spoiled)", k, err, got == sha(data), p.Spoiled.Load()-before)
				}
			}
			if p.Spoiled.Load() == before {
				t.Fatalf("no request was spoiled: the test proves nothing")
			}
		})
	}
}

// A store that never answers: a read fails with EIO within the bounds
// (request timeout x attempts), and the mount keeps answering what it can
// without the store meanwhile.
func TestBlackHoledStoreFailsBounded(t *testing.T) {
	b := newBucket(t)
	put(t, b, "x", randBytes(1<<20))
	m, p := faultMount(t, b)
	if _, err := os.Stat(m.path("x")); err != nil {
		t.Fatal(err)
	}
	p.Set(Fault{Kind: FaultBlackHole})
	defer p.Set(Fault{})
	start := time.Now()
	errc := make(chan error, 1)
	go func() { _, err := os.ReadFile(m.path("x")); errc <- err }()
	time.Sleep(300 * time.Millisecond)
	var sfs syscall.Statfs_t // served by kfs without the store, while the read is stuck
	if err := bounded(t, 2*time.Second, "statfs while a read is stuck", func() error { return syscall.Statfs(m.dir, &sfs) }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read from a black-holed store: %v, want EIO", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("a read from a black-holed store did not fail within 45s")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the failure took %v: over the 30s deadline", d)
	}
	p.Set(Fault{})
	if _, err := os.ReadFile(m.path("x")); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
}

// Writes under faults: with some PUTs failing, cp succeeds and the object
// is exact; with every PUT failing, close fails, nothing is visible and no
// upload is left behind.
func TestWritesUnderFaults(t *testing.T) {
	b := newBucket(t)
	// 30% of PUTs fail: with 4 retries one request in 400 fails for good,
	// and the steps below send about twenty (it flaked in CI); with 8, one
	// in 50,000.
	m, p := faultMount(t, b, "--retries", "8")
	src := t.TempDir() + "/src"
	data := randBytes(23<<20 + 7)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	small := t.TempDir() + "/small"
	os.WriteFile(small, []byte("small file"), 0o644)
	for _, k := range []FaultKind{FaultSlowDown, FaultInternal, FaultReset, FaultLatency} {
		p.Set(Fault{Kind: k, Rate: 0.3, Match: IsMethod(http.MethodPut), Latency: 200 * time.Millisecond})
		for _, s := range []string{src, small} {
			dst := fmt.Sprintf("w-%d-%s", k, strings.TrimPrefix(s, t.TempDir()))
			dst = strings.ReplaceAll(dst, "/", "")
			if err := bounded(t, 90*time.Second, "cp under "+k.String(), func() error {
				return exec.Command("cp", s, m.path(dst)).Run()
			}); err != nil {
				t.Fatalf("cp under %s: %v", k, err)
			}
			want, _ := os.ReadFile(s)
			if sdkSha(t, b, dst) != sha(want) {
				t.Fatalf("%s differs after writing under %s", dst, k)
			}
		}
	}
	p.Set(Fault{Kind: FaultInternal, Match: IsMethod(http.MethodPut)})
	cp := exec.Command("cp", src, m.path("failed.bin"))
	out, err := cp.CombinedOutput()
	if err == nil {
		t.Fatal("cp succeeded with every PUT failing")
	}
	if !strings.Contains(string(out), "Input/output error") {
		t.Errorf("cp's error: %s", out)
	}
	p.Set(Fault{})
	ctx := context.Background()
	if _, err := client(t).StatObject(ctx, b, "failed.bin", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a failed upload is visible")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for u := range client(t).ListIncompleteUploads(ctx, b, "failed.bin", true) {
			if u.Err == nil {
				n++
			}
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d multipart uploads left behind", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(m.logText(), "failed.bin") {
		t.Error("the failure left no log line naming the file")
	}
}

// Listings under faults are complete or fail: never a partial directory.
func TestListingsUnderFaults(t *testing.T) {
	b := newBucket(t)
	keys := make([]string, 2500) // three pages
	for i := range keys {
		keys[i] = fmt.Sprintf("dir/f%04d", i)
	}
	putMany(t, b, keys, func(string) []byte { return []byte("x") })
	// 40% of pages failing: enough retries that five failures in a row on
	// one page (1% with --retries 4) do not make the test flaky.
	m, p := faultMount(t, b, "--retries", "10")
	for _, k := range []FaultKind{FaultSlowDown, FaultReset, FaultShortBody, FaultLatency} {
		p.Set(Fault{Kind: k, Rate: 0.4, Match: IsListing, Latency: 200 * time.Millisecond})
		var ents []os.DirEntry
		err := bounded(t, 60*time.Second, "ls under "+k.String(), func() (err error) {
			ents, err = os.ReadDir(m.path("dir"))
			return err
		})
		if err != nil || len(ents) != len(keys) {
			t.Fatalf("listing under %s: %d entries, %v", k, len(ents), err)
		}
	}
	p.Set(Fault{Kind: FaultInternal, Match: IsListing})
	if ents, err := os.ReadDir(m.path("dir")); err == nil {
		t.Fatalf("a listing with every page failing returned %d entries and no error", len(ents))
	}
	p.Set(Fault{})
	if ents, err := os.ReadDir(m.path("dir")); err != nil || len(ents) != len(keys) {
		t.Fatalf("after the faults: %d entries, %v", len(ents), err)
	}
}

// After a round of faults, the mount's goroutines come back to where they
// were (nothing stuck for ever on a dead request).
func TestNoGoroutinesLeftAfterFaults(t *testing.T) {
	b := newBucket(t)
	for i := 0; i < 8; i++ {
		put(t, b, fmt.Sprintf("g%d", i), randBytes(2<<20))
	}
	m, p := faultMount(t, b)
	goroutines := func() float64 {
		v, _ := metricValue(parseMetrics(t, kfsOut(t, "metrics", m.dir)+"\n"), "go_goroutines", nil)
		return v
	}
	for i := 0; i < 8; i++ {
		os.ReadFile(m.path(fmt.Sprintf("g%d", i)))
	}
	base := goroutines()
	p.Set(Fault{Kind: FaultBlackHole, Rate: 0.5})
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func(i int) {
			os.ReadFile(m.path(fmt.Sprintf("g%d", i)))
			os.WriteFile(m.path(fmt.Sprintf("n%d", i)), randBytes(1<<20), 0o644)
			done <- struct{}{}
		}(i)
	}
	for i := 0; i < 8; i++ {
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			t.Fatal("operations under faults did not end")
		}
	}
	p.Set(Fault{})
	deadline := time.Now().Add(20 * time.Second)
	for g := goroutines(); g > base+10; g = goroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %v before the faults, %v well after", base, g)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// A request done by the store whose answer is lost (the connection resets
// after the server acted) is asked again; what the retry meets — the
// multipart upload already completed, the object already copied or
// removed — is taken for what it is: cp, mv and rm succeed and the bucket
// holds exactly what they made.
func TestLostAnswersAreNotFailures(t *testing.T) {
	b := newBucket(t)
	m, p := faultMount(t, b)
	data := randBytes(12<<20 + 5) // three parts of 5 MiB
	src := t.TempDir() + "/big"
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploadId") }
	cases := []struct {
		what  string
		match func(*http.Request) bool
		run   func() error
		check func() error
	}{
		{"multipart completion", complete,
			func() error { return exec.Command("cp", src, m.path("big")).Run() },
			func() error {
				if sdkSha(t, b, "big") != sha(data) {
					return errors.New("the object differs")
				}
				return nil
			}},
		{"single PUT", IsMethod(http.MethodPut),
			func() error { return os.WriteFile(m.path("small"), []byte("small"), 0o644) },
			func() error {
				if sdkSha(t, b, "small") != sha([]byte("small")) {
					return errors.New("the object differs")
				}
				return nil
			}},
		{"rename's copy", func(r *http.Request) bool {
			return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != ""
		},
			func() error { return exec.Command("mv", m.path("small"), m.path("moved")).Run() },
			func() error {
				if sdkSha(t, b, "moved") != sha([]byte("small")) {
					return errors.New("the renamed object differs")
				}
				if _, err := client(t).StatObject(context.Background(), b, "small", minio.StatObjectOptions{}); err == nil {
					return errors.New("the old name is still there")
				}
				return nil
			}},
		{"batched delete", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("delete") },
			func() error {
				if err := exec.Command("rm", m.path("moved")).Run(); err != nil {
					return err
				}
				return exec.Command("sync", m.dir).Run() // fsync of the directory sends the batch
			},
			func() error {
				if _, err := client(t).StatObject(context.Background(), b, "moved", minio.StatObjectOptions{}); err == nil {
					return errors.New("the removed object is still there")
				}
				return nil
			}},
	}
	for _, c := range cases {
		p.Set(Fault{Kind: FaultLoseAnswer, Match: c.match, Limit: 1})
		before := p.Spoiled.Load()
		if err := bounded(t, 60*time.Second, c.what, c.run); err != nil {
			t.Fatalf("%s with its answer lost: %v\n%s", c.what, err, m.logText())
		}
		if p.Spoiled.Load() == before {
			t.Fatalf("%s: no answer was lost (the test did not test)", c.what)
		}
		p.Set(Fault{})
		if err := c.check(); err != nil {
			t.Fatalf("%s with its answer lost: %v", c.what, err)
		}
	}
}
