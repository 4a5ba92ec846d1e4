package mountproc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"kfs/ctl"
	"kfs/fs/store"
	"kfs/fs/store/s3store"
	"kfs/mountopts"
)

// startEvents starts the event sources of this process: MinIO's webhook
// target (with --events-webhook) and the listen API of every mounted bucket
// (of all buckets for an all-buckets mount), all feeding hub.
func startEvents(ctx context.Context, o mountopts.Options, st *s3store.Store, hub *ctl.Hub, l *slog.Logger) ([]*ctl.SourceStats, error) {
	var sources []*ctl.SourceStats
	if o.EventsWebhook != "" {
		w := ctl.NewSourceStats("webhook")
		addr, err := ctl.ServeWebhook(ctx, o.EventsWebhook, o.EventsToken, hub, w, l)
		if err != nil {
			return nil, exitError{2, err}
		}
		l.Info("event source live", "source", "webhook", "url", "http://"+addr+"/")
		sources = append(sources, w)
	}
	seen := map[string]bool{}
	for _, m := range o.Mounts {
		if seen[m.Bucket] {
			continue
		}
		seen[m.Bucket] = true
		name := "listen " + m.Bucket
		if m.Bucket == "" {
			name = "listen (all buckets)"
		}
		s := ctl.NewSourceStats(name)
		sources = append(sources, s)
		go listen(ctx, st, m.Bucket, hub, s, l)
	}
	if o.EventsWebhook == "" {
		l.Info("no webhook event source: changes made by other clients show after the TTLs unless the server delivers the listen API (README: Events)")
	}
	return sources, nil
}

// listen feeds hub from the listen API, retrying a stream that ends with
// backoff (the TTLs cover the gap).
func listen(ctx context.Context, st *s3store.Store, bucket string, hub *ctl.Hub, s *ctl.SourceStats, l *slog.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		s.SetState("listening", nil)
		lctx, stop := context.WithCancel(ctx)
		for e := range st.Listen(lctx, store.ListenRequest{Bucket: bucket}) {
			if errors.Is(e.Err, store.ErrUnsupported) {
				// SeaweedFS, AWS S3: nothing to retry.
				stop()
				s.SetState("off", e.Err)
				l.Info("the server does not offer the listen API: changes made by other clients show after the TTLs (README: Consistency)", "bucket", bucket)
				return
			}
			if e.Err != nil {
				s.SetState("retrying", e.Err)
				l.Debug("listen stream broke; minio-go reconnects", "bucket", bucket, "err", e.Err)
				continue
			}
			s.SetState("live", nil)
			s.Received(1)
			hub.Publish(ctl.FromStore(e, "listen"))
			backoff = time.Second
		}
		stop()
		if ctx.Err() != nil {
			return
		}
		s.SetState("retrying", nil)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, time.Minute)
	}
}
