package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// BenchmarkChangeToVisible measures how long a change made through the SDK
// (a new object, then an overwrite) takes to show through a mount: with
// bucket events (webhook) and with TTLs only (1 s, the floor of what a
// TTL-only mount offers). It reports p50 and p99 over 200 changes each.
//
//	go test -run XXX -bench ChangeToVisible -benchtime 1x ./integration/
func BenchmarkChangeToVisible(b *testing.B) {
	for _, mode := range []string{"events", "ttl-1s"} {
		b.Run(mode, func(b *testing.B) {
			hook, _ := FreeAddr()
			mc, err := StartMinio(MinioConfig{DataDir: b.TempDir() + "/data", Env: []string{
				"MINIO_NOTIFY_WEBHOOK_ENABLE_KFS=on", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_KFS=http://" + hook + "/"}})
			if err != nil {
				b.Fatal(err)
			}
			defer mc.Stop()
			c, _ := sdkClient(mc)
			ctx := context.Background()
			c.MakeBucket(ctx, "lat", minio.MakeBucketOptions{})
			args := []string{"lat", "--entry-ttl", "1m", "--attr-ttl", "1m", "--negative-ttl", "1m", "--events-webhook", hook}
			if mode != "events" {
				args = []string{"lat", "--entry-ttl", "1s", "--attr-ttl", "1s", "--negative-ttl", "1s"}
			}
			m := benchMount(b, mc, args...)
			sh0(b, "setfattr", "-n", "user.s3.notification", "-v",
				`{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFS:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}`, m)
			var lat []time.Duration
			for i := 0; i < 100; i++ {
				name := fmt.Sprintf("f%03d", i)
				os.ReadFile(m + "/" + name) // a cached miss
				for v, body := range []string{"first", "second version"} {
					if v == 1 {
						time.Sleep(5 * time.Millisecond)
					}
					if _, err := c.PutObject(ctx, "lat", name, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					for {
						if got, err := os.ReadFile(m + "/" + name); err == nil && string(got) == body {
							break
						}
						if time.Since(start) > 30*time.Second {
							b.Fatalf("%s never showed %q", name, body)
						}
						time.Sleep(2 * time.Millisecond)
					}
					lat = append(lat, time.Since(start))
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			fmt.Printf("change-to-visible, %s: %d changes, p50 %v, p99 %v\n", mode, len(lat), p50.Round(time.Millisecond), p99.Round(time.Millisecond))
		})
	}
}

// benchMount mounts the kfs binary for a benchmark and returns the mount point.
func benchMount(b *testing.B, mc *Minio, args ...string) string {
	b.Helper()
	dir := b.TempDir() + "/mnt"
	os.Mkdir(dir, 0o755)
	cmd := execKFS(mc, append(append([]string{"mount"}, args...), dir)...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	for i := 0; i < 200 && !isMounted(dir); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return dir
}

func execKFS(mc *Minio, args ...string) *exec.Cmd {
	cmd := exec.Command(kfsBin, args...)
	cmd.Env = append(os.Environ(), "KFS_ENDPOINT="+mc.Endpoint, "KFS_ACCESS_KEY="+mc.AccessKey, "KFS_SECRET_KEY="+mc.SecretKey)
	return cmd
}

func sh0(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
}
