package fs

import (
	"context"
	"fmt"
	"kfs/fs/store"
	"strings"
	"sync"
	"time"
)

// deleter batches object deletions. rm -rf unlinks one name at a time, and
// one DELETE per name costs about four times a batch delete of the same
// keys; so unlink hands the key here and returns. A batch goes out when it
// reaches 200 keys (so it overlaps the unlinks that follow), 50 ms after
// the first key, before an rmdir, rename or create that could be affected,
// on fsync of a directory, and at unmount. Until then this mount hides the
// names. A batch that fails is logged, its names reappear, and the next
// rmdir or flush reports the error.
type deleter struct {
	fsys *FS

	flushMu sync.Mutex // serialises batches, so a flush waits for one in progress

	mu      sync.Mutex           // protects the fields below
	pending map[string][]string  // GUARDED_BY(mu): bucket -> keys
	hidden  map[[2]string]string // GUARDED_BY(mu): {bucket, key} of keys not yet deleted -> journal id
	timer   *time.Timer          // GUARDED_BY(mu)
	failed  error                // GUARDED_BY(mu): a background batch's failure, not yet reported
}

const (
	deleteBatch = 1000                  // most keys in one request (the S3 limit)
	deleteEarly = 200                   // keys that start a batch in the background, overlapping further unlinks
	deleteDelay = 50 * time.Millisecond // longest a key waits
)

func newDeleter(f *FS) *deleter {
	return &deleter{fsys: f, pending: map[string][]string{}, hidden: map[[2]string]string{}}
}

// add schedules key for deletion.
func (d *deleter) add(bucket, key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := [2]string{bucket, key}
	if _, ok := d.hidden[k]; ok {
		return
	}
	id := ""
	if j := d.fsys.cfg.Deletes; j != nil {
		id = j.BeginDelete(bucket, key)
	}
	d.hidden[k] = id
	d.pending[bucket] = append(d.pending[bucket], key)
	if len(d.pending[bucket]) == deleteEarly {
		go d.background()
	} else if d.timer == nil {
		d.timer = time.AfterFunc(deleteDelay, d.background)
	}
}

// isPending reports whether key is waiting to be deleted.
func (d *deleter) isPending(bucket, key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.hidden[[2]string{bucket, key}]
	return ok
}

func (d *deleter) background() {
	ctx, cancel := d.fsys.background()
	defer cancel()
	if err := d.flush(ctx); err != nil {
		d.mu.Lock()
		if d.failed == nil {
			d.failed = err
		}
		d.mu.Unlock()
	}
}

// flush deletes everything pending now and reports a failure, including
// one of an earlier background batch.
func (d *deleter) flush(ctx context.Context) error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	batch := d.pending
	d.pending = map[string][]string{}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	err := d.failed
	d.failed = nil
	d.mu.Unlock()
	for bucket, keys := range batch {
		for len(keys) > 0 {
			n := min(len(keys), deleteBatch)
			failed, rerr := d.fsys.store.RemoveMany(ctx, store.RemoveManyRequest{Bucket: bucket, Keys: keys[:n]})
			if rerr == nil && len(failed) > 0 {
				rerr = failed[0].Err
			}
			if rerr != nil {
				d.fsys.cfg.Log.Error("batch delete failed: the names reappear", "bucket", bucket, "keys", n, "failed", len(failed), "err", rerr)
				if err == nil {
					err = fmt.Errorf("deleting %d objects: %w", n, rerr)
				}
			}
			d.unhide(bucket, keys[:n])
			keys = keys[n:]
		}
	}
	return err
}

func (d *deleter) unhide(bucket string, keys []string) {
	d.mu.Lock()
	var ids []string
	for _, k := range keys {
		if id := d.hidden[[2]string{bucket, k}]; id != "" {
			ids = append(ids, id)
		}
		delete(d.hidden, [2]string{bucket, k})
	}
	d.mu.Unlock()
	if j := d.fsys.cfg.Deletes; j != nil && len(ids) > 0 {
		j.EndDelete(ids...)
	}
}

// flushIfPending runs the batch now when it holds key, so a new object of
// that name is not deleted by it afterwards.
func (d *deleter) flushIfPending(ctx context.Context, bucket, key string) error {
	if !d.isPending(bucket, key) {
		return nil
	}
	return d.flush(ctx)
}

// flushPrefix runs the batch when it holds a key under prefix (or prefix
// itself).
func (d *deleter) flushPrefix(ctx context.Context, bucket, prefix string) error {
	d.mu.Lock()
	hit := false
	for k := range d.hidden {
		if k[0] == bucket && strings.HasPrefix(k[1], prefix) {
			hit = true
			break
		}
	}
	d.mu.Unlock()
	if !hit {
		return nil
	}
	return d.flush(ctx)
}

// Settle sends the batched deletions of key and of everything under it,
// if any wait: what another path to the store (the control socket) is
// about to look at must be what the mount shows.
func (f *FS) Settle(ctx context.Context, bucket, key string) error {
	if f.wb != nil {
		if err := f.wb.syncUnder(ctx, bucket, key, false); err != nil {
			return err
		}
		f.dirt.flush(ctx, nil) // directory attributes held back
	}
	if err := f.flushAllDeferred(ctx, bucket, key, false); err != nil {
		return err
	}
	return f.del.flushPrefix(ctx, bucket, key)
}
