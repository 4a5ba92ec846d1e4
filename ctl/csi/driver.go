// Package csi is kfs's Container Storage Interface driver (`kfs csi`): it
// lets Kubernetes mount buckets into pods. The controller service makes
// and removes volumes (prefixes in a bucket); the node service mounts a
// volume at a pod's target path with a kfs mount process, and unmounts it.
//
// Who owns what: the driver owns nothing in the bucket but the volumes it
// made (a marker object carrying its metadata); the node owns the mounts
// it started, found again from /proc/self/mountinfo (so a restart of the
// driver forgets nothing); credentials live only in requests and in the
// environment of the mount processes.
package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DriverName is the name pods' volumes and the CSIDriver object use.
const DriverName = "csi.kfs.dev"

// Modes say which services one process serves.
const (
	ModeNode       = "node"
	ModeController = "controller"
	ModeAll        = "all"
)

// Config is everything the driver is given.
type Config struct {
	NodeID  string
	Mode    string // node, controller or all
	Version string
	// Defaults are credentials used when a request carries none (the
	// driver's own environment); zero: every request must carry them.
	Defaults Secrets
	// Stores opens the object store for a request's credentials.
	Stores func(Secrets) (Store, error)
	// DefaultBucket holds the volumes of a StorageClass that names no
	// bucket ("": such a class is refused).
	DefaultBucket string
	// Mounter starts and stops mount processes (node service).
	Mounter Mounter
	// StateDir holds what mounts keep on the node across driver
	// restarts: their cache directory (staging files, upload journals)
	// and their logs.
	StateDir string
	Log      *slog.Logger
}

// Driver serves the CSI services.
type Driver struct {
	csipb.UnimplementedIdentityServer
	csipb.UnimplementedControllerServer
	csipb.UnimplementedNodeServer

	cfg Config

	mu   sync.Mutex          // guards busy
	busy map[string]struct{} // volume IDs and target paths an operation is working on
}

// New checks cfg and returns a driver.
func New(cfg Config) (*Driver, error) {
	switch cfg.Mode {
	case ModeNode, ModeController, ModeAll:
	default:
		return nil, fmt.Errorf("--mode %q: want node, controller or all", cfg.Mode)
	}
	if cfg.serves(ModeNode) && (cfg.NodeID == "" || cfg.Mounter == nil) {
		return nil, errors.New("the node service needs --node-id")
	}
	if cfg.Stores == nil {
		return nil, errors.New("csi: no store opener")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, busy: map[string]struct{}{}}, nil
}

func (c Config) serves(mode string) bool { return c.Mode == ModeAll || c.Mode == mode }

// lock marks keys (a volume ID, a target path) busy for one operation;
// a second operation on any of them meanwhile gets Aborted, as the spec
// asks, and the CO retries it.
func (d *Driver) lock(keys ...string) (func(), error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		if _, ok := d.busy[k]; ok {
			return nil, status.Errorf(codes.Aborted, "an operation on %s is under way", k)
		}
	}
	for _, k := range keys {
		d.busy[k] = struct{}{}
	}
	return func() {
		d.mu.Lock()
		for _, k := range keys {
			delete(d.busy, k)
		}
		d.mu.Unlock()
	}, nil
}

// Listen opens a gRPC endpoint: unix:///path/to/csi.sock (a stale socket
// file is replaced; anything else at the path is refused).
func Listen(endpoint string) (net.Listener, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || path == "" {
		return nil, fmt.Errorf("--endpoint %q: want unix:///path/to/csi.sock", endpoint)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--endpoint %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(parentDir(path), 0o750); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil { // the kubelet and sidecars run as root
		l.Close()
		return nil, err
	}
	return l, nil
}

func parentDir(p string) string {
	if i := strings.LastIndex(p, "/"); i > 0 {
		return p[:i]
	}
	return "."
}

// Serve serves the driver's services on l until ctx ends.
func (d *Driver) Serve(ctx context.Context, l net.Listener) error {
	srv := grpc.NewServer(grpc.UnaryInterceptor(d.logCalls))
	csipb.RegisterIdentityServer(srv, d)
	if d.cfg.serves(ModeController) {
		csipb.RegisterControllerServer(srv, d)
	}
	if d.cfg.serves(ModeNode) {
		csipb.RegisterNodeServer(srv, d)
	}
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	d.cfg.Log.Info("csi driver serving", "endpoint", l.Addr().String(), "mode", d.cfg.Mode, "node", d.cfg.NodeID)
	return srv.Serve(l)
}

// logCalls logs every call by method, outcome and time; never the
// request (it may carry secrets).
func (d *Driver) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	took := time.Since(start).Round(time.Millisecond)
	switch c := status.Code(err); c {
	case codes.OK:
		d.cfg.Log.Debug("csi call", "method", method, "took", took)
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Aborted:
		d.cfg.Log.Info("csi call refused", "method", method, "code", c.String(), "err", status.Convert(err).Message())
	default:
		d.cfg.Log.Error("csi call failed", "method", method, "code", c.String(), "err", status.Convert(err).Message(), "took", took)
	}
	return resp, err
}

// GetPluginInfo names the driver.
func (d *Driver) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: DriverName, VendorVersion: d.cfg.Version}, nil
}

// GetPluginCapabilities offers the controller service where it runs.
func (d *Driver) GetPluginCapabilities(context.Context, *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	var caps []*csipb.PluginCapability
	if d.cfg.serves(ModeController) {
		caps = append(caps, &csipb.PluginCapability{Type: &csipb.PluginCapability_Service_{
			Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_CONTROLLER_SERVICE}}})
	}
	return &csipb.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe says whether the driver can work: with default credentials, the
// store answers a listing of buckets; with only a default endpoint, the
// endpoint answers HTTP; without either (every request brings its own)
// there is nothing to reach yet.
func (d *Driver) Probe(ctx context.Context, _ *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	def := d.cfg.Defaults
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch {
	case def.Endpoint != "" && def.AccessKey != "" && def.SecretKey != "":
		st, err := d.cfg.Stores(def)
		if err == nil {
			_, err = st.ListBuckets(ctx)
		}
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "the store at %s cannot be reached: %v", def.Endpoint, err)
		}
	case def.Endpoint != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, def.Endpoint, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "the store at %s cannot be reached: %v", def.Endpoint, err)
		}
	}
	return &csipb.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}
