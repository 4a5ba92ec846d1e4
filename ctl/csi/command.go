package csi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"kfs/ctl/cli"
	"kfs/fs/store/s3store"
)

// Command is `kfs csi`.
func Command() *cli.Command {
	c := &cli.Command{Name: "csi", Args: "[--node-id NODE] [--endpoint unix:///csi/sock] [--mode node|controller|all]",
		Summary: "serve the Kubernetes CSI driver " + DriverName + " (mounts buckets into pods; manifests in ctl/csi/deploy)",
		Examples: []string{"kfs csi --endpoint unix:///csi/sock --node-id \"$NODE_NAME\" --mode node",
			"kfs csi --endpoint unix:///csi/sock --node-id controller --mode controller"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		endpoint := fs.String("endpoint", "unix:///csi/sock", "gRPC endpoint the kubelet and sidecars dial")
		host, _ := os.Hostname()
		node := fs.String("node-id", orDefault(os.Getenv("KFS_NODE_ID"), host), "this node's name (env KFS_NODE_ID; default the host name)")
		bucket := fs.String("default-bucket", "kfs-volumes", "bucket of the volumes of a StorageClass that names none (made when absent); \"\" refuses such a class")
		mode := fs.String("mode", ModeAll, "services to serve: node, controller or all")
		state := fs.String("state-dir", "/var/lib/kfs-csi", "where mounts keep their cache directory and logs across driver restarts")
		level := fs.String("log-level", "info", "debug (every call), info, warn or error")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) > 0 {
			return c.UsageError(stderr)
		}
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(*level)); err != nil {
			return cli.Fail(c, stderr, fmt.Errorf("--log-level %q: want debug, info, warn or error", *level))
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
		exe, err := os.Executable()
		if err != nil {
			return cli.Fail(c, stderr, err)
		}
		d, err := New(Config{NodeID: *node, Mode: *mode, Version: vendorVersion(), StateDir: *state, Log: log, DefaultBucket: *bucket,
			Defaults: Secrets{Endpoint: os.Getenv("KFS_ENDPOINT"), AccessKey: os.Getenv("KFS_ACCESS_KEY"),
				SecretKey: os.Getenv("KFS_SECRET_KEY"), Region: os.Getenv("KFS_REGION")},
			Stores: func(s Secrets) (Store, error) {
				return s3store.New(s3store.Config{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
					Region: orDefault(s.Region, "us-east-1"), Retries: 3, Deadline: 2 * time.Minute})
			},
			Mounter: ProcessMounter{Bin: exe, Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}},
		})
		if err != nil {
			return cli.Fail(c, stderr, err)
		}
		l, err := Listen(*endpoint)
		if err != nil {
			return cli.Fail(c, stderr, err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := d.Serve(ctx, l); err != nil {
			return cli.Fail(c, stderr, err)
		}
		log.Info("csi driver stopped; its mounts stay (each has its own process)")
		return 0
	}
	return c
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// vendorVersion is the module version kfs was built as.
func vendorVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
