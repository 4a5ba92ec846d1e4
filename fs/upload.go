package fs

import (
	"context"
	"fmt"
	"sync"
)

// memBudget bounds the bytes of part buffers held by all writers of a
// mount. Acquirers queue in order (acqMu), so two writers never hold half a
// budget each and wait on one another.
type memBudget struct {
	acqMu  sync.Mutex    // serialises acquirers
	tokens chan struct{} // one token per MiB available
}

const budgetUnit = 1 << 20

func newMemBudget(bytes int64) *memBudget {
	n := max(int(bytes/budgetUnit), 1)
	b := &memBudget{tokens: make(chan struct{}, n)}
	for i := 0; i < n; i++ {
		b.tokens <- struct{}{}
	}
	return b
}

// acquire takes n bytes (rounded up to whole MiB, at most the whole budget)
// and returns what to release.
func (b *memBudget) acquire(ctx context.Context, n int64) (int, error) {
	units := min(int((n+budgetUnit-1)/budgetUnit), cap(b.tokens))
	b.acqMu.Lock()
	defer b.acqMu.Unlock()
	for i := 0; i < units; i++ {
		select {
		case <-b.tokens:
		case <-ctx.Done():
			b.release(i)
			return 0, ctx.Err()
		}
	}
	return units, nil
}

func (b *memBudget) release(units int) {
	for i := 0; i < units; i++ {
		b.tokens <- struct{}{}
	}
}

// partSizeFor returns the size of part num (1-based) for a stream that
// starts at base bytes per part: the size doubles every 1,000 parts, so the
// 10,000 parts S3 allows reach past its 5 TiB object limit.
func partSizeFor(base int64, num int) int64 {
	s := base << ((num - 1) / 1000)
	return min(s, MaxPartSize)
}

// multipart is one multipart upload whose parts are sent in the background,
// at most `parallel` at a time. The first error sticks.
type multipart struct {
	fsys        *FS
	bucket, key string
	id          string

	sem chan struct{} // bounds the parts in flight
	wg  sync.WaitGroup

	mu    sync.Mutex // protects the fields below
	parts []Part     // GUARDED_BY(mu): indexed by part number - 1
	err   error      // GUARDED_BY(mu): the first failure
}

func startMultipart(ctx context.Context, f *FS, bucket, key string, opts PutOptions) (*multipart, error) {
	id, err := f.store.NewUpload(ctx, bucket, key, opts)
	if err != nil {
		return nil, err
	}
	f.trackUpload(bucket, key, id, true)
	return &multipart{fsys: f, bucket: bucket, key: key, id: id, sem: make(chan struct{}, f.cfg.UploadParallel)}, nil
}

// failed returns the sticky error.
func (m *multipart) failed() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *multipart) record(num int, p Part, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.err == nil {
			m.err = err
		}
		return
	}
	for len(m.parts) < num {
		m.parts = append(m.parts, Part{})
	}
	m.parts[num-1] = p
}

// goPart runs send in the background as part num; done is called after it
// (to release buffers), whatever the outcome.
func (m *multipart) goPart(num int, send func(ctx context.Context) (Part, error), done func()) {
	m.sem <- struct{}{}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { <-m.sem }()
		defer done()
		if m.failed() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.fsys.cfg.UploadTimeout)
		p, err := send(ctx)
		cancel()
		m.record(num, p, err)
	}()
}

// complete waits for every part and assembles the object; on any failure it
// aborts the upload, so nothing half-written becomes visible.
func (m *multipart) complete(ctx context.Context, nparts int) (ObjectInfo, error) {
	m.wg.Wait()
	err := m.failed()
	var info ObjectInfo
	if err == nil {
		m.mu.Lock()
		parts := append([]Part(nil), m.parts...)
		m.mu.Unlock()
		if len(parts) != nparts {
			err = fmt.Errorf("upload of %s/%s: %d parts sent, %d expected", m.bucket, m.key, len(parts), nparts)
		} else {
			info, err = m.fsys.store.CompleteUpload(ctx, m.bucket, m.key, m.id, parts)
		}
	}
	if err != nil {
		m.abort()
		return ObjectInfo{}, err
	}
	m.fsys.trackUpload(m.bucket, m.key, m.id, false)
	return info, nil
}

// abort discards the upload (after the parts in flight end).
func (m *multipart) abort() {
	m.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), m.fsys.cfg.UploadTimeout)
	defer cancel()
	if err := m.fsys.store.AbortUpload(ctx, m.bucket, m.key, m.id); err != nil {
		m.fsys.cfg.Log.Printf("abort upload %s of %s/%s: %v (cleaned up at the next mount)", m.id, m.bucket, m.key, err)
		return
	}
	m.fsys.trackUpload(m.bucket, m.key, m.id, false)
}
