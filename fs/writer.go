package fs

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// writeHandle is a file opened for writing. It starts in one of two modes:
//
//   - streaming (a new or truncated file written from offset 0 onwards, the
//     `cp` case): bytes collect in a part buffer; full parts go to a
//     multipart upload in the background, bounded per file and by the
//     mount's write memory; a file smaller than one part becomes one
//     PutObject at flush;
//   - staged (any other write: seek, append, an existing object opened
//     without O_TRUNC, truncate): a local staging file overlays the object,
//     fetched lazily by ranges and uploaded at flush, untouched ranges of a
//     large object copied server side.
//
// A streaming handle turns into a staged one on its first non-sequential
// write or read. Commit (Flush, Fsync) is what makes bytes durable: it
// returns nil only once the object is complete in the store. The first
// failure sticks: later writes and commits return it, and nothing
// half-written becomes visible.
//
// The handle's operations are serialised by mu (go-fuse may call them
// concurrently); mu is held across store calls of this handle only.
type writeHandle struct {
	node *fileNode
	fsys *FS

	mu    sync.Mutex // serialises the handle; protects the fields below
	size  int64      // logical size
	dirty bool       // changed since the last commit
	err   error      // sticky failure

	// streaming mode
	streaming bool
	buf       []byte     // current part; pooled when full size
	bufUnits  int        // memory budget held for buf
	mp        *multipart // nil until the first full part
	nparts    int        // parts handed to mp

	// staged mode
	st *staging

	copiedFrom string     // ETag of the source of a server-side copy into this handle
	base       ObjectInfo // what the store holds for this handle after its last commit
}

var (
	_ = (fusefs.FileWriter)((*writeHandle)(nil))
	_ = (fusefs.FileReader)((*writeHandle)(nil))
	_ = (fusefs.FileFlusher)((*writeHandle)(nil))
	_ = (fusefs.FileFsyncer)((*writeHandle)(nil))
	_ = (fusefs.FileReleaser)((*writeHandle)(nil))
	_ = (fusefs.FileGetattrer)((*writeHandle)(nil))
	_ = (fusefs.FileSetattrer)((*writeHandle)(nil))
)

// newStreamHandle starts an empty file.
func newStreamHandle(n *fileNode) *writeHandle {
	return &writeHandle{node: n, fsys: n.fsys, streaming: true, dirty: true}
}

// newStagedHandle overlays the object base (zero value: no object).
func newStagedHandle(n *fileNode, base ObjectInfo) (*writeHandle, error) {
	st, err := newStaging(n.fsys, n.bucket, base)
	if err != nil {
		return nil, err
	}
	return &writeHandle{node: n, fsys: n.fsys, st: st, size: base.Size}, nil
}

func (h *writeHandle) errno(op string, err error) syscall.Errno {
	return toErrno(h.fsys.cfg.Log, fmt.Sprintf("%s %s/%s", op, h.node.bucket, h.node.objKey()), err)
}

func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.writeLocked(ctx, data, off); err != nil {
		return 0, h.errno("write", err)
	}
	return uint32(len(data)), 0
}

func (h *writeHandle) writeLocked(ctx context.Context, data []byte, off int64) error {
	if h.err != nil {
		return h.err
	}
	h.dirty = true
	if h.streaming && off == h.size {
		if err := h.appendLocked(ctx, data); err != nil {
			h.err = err
			return err
		}
		h.node.noteSize(h.size)
		return nil
	}
	if err := h.stageLocked(ctx); err != nil {
		return err
	}
	if err := h.st.write(ctx, data, off); err != nil {
		return err
	}
	h.size = max(h.size, off+int64(len(data)))
	h.node.noteSize(h.size)
	return nil
}

// appendLocked adds data to the current part, sending full parts.
func (h *writeHandle) appendLocked(ctx context.Context, data []byte) error {
	for len(data) > 0 {
		if err := h.failedLocked(); err != nil {
			return err
		}
		want := int(partSizeFor(h.fsys.cfg.PartSize, h.nparts+1))
		if err := h.growLocked(ctx, want); err != nil {
			return err
		}
		n := min(len(data), want-len(h.buf))
		h.buf = append(h.buf, data[:n]...)
		data = data[n:]
		h.size += int64(n)
		if len(h.buf) == want {
			if err := h.sendPartLocked(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// growLocked makes room in buf. Until the first part is full, the buffer
// grows by doubling up to 1 MiB (small files need no more, and no budget);
// past that it is a full part, charged to the mount's write memory budget.
func (h *writeHandle) growLocked(ctx context.Context, want int) error {
	if len(h.buf) < cap(h.buf) {
		return nil
	}
	const small = 1 << 20
	if h.nparts == 0 && cap(h.buf) < small && want > cap(h.buf) {
		nb := make([]byte, len(h.buf), min(max(2*cap(h.buf), 64<<10), small, want))
		copy(nb, h.buf)
		h.buf = nb
		return nil
	}
	units, err := h.fsys.writeMem.acquire(ctx, int64(want))
	if err != nil {
		return err
	}
	nb := append(h.fsys.partBuf(want), h.buf...)
	h.fsys.putPartBuf(h.buf)
	h.buf, h.bufUnits = nb, h.bufUnits+units
	return nil
}

func (h *writeHandle) failedLocked() error {
	if h.mp != nil {
		if err := h.mp.failed(); err != nil {
			h.err = err
			return err
		}
	}
	return nil
}

// sendPartLocked hands the full buffer to the multipart upload.
func (h *writeHandle) sendPartLocked(ctx context.Context) error {
	if h.mp == nil {
		mp, err := startMultipart(ctx, h.fsys, h.node.bucket, h.node.objKey(), h.node.putOptions())
		if err != nil {
			return err
		}
		h.mp = mp
	}
	h.nparts++
	num, data, units := h.nparts, h.buf, h.bufUnits
	h.buf, h.bufUnits = nil, 0
	mp := h.mp
	mp.goPart(num, func(ctx context.Context) (Part, error) {
		return h.fsys.store.PutPart(ctx, mp.bucket, mp.key, mp.id, num, data)
	}, func() {
		h.fsys.putPartBuf(data)
		h.fsys.writeMem.release(units)
	})
	return nil
}

// stageLocked turns a streaming handle into a staged one, keeping what was
// written: bytes still in memory go to the staging file; parts already sent
// are completed into the object first and then overlaid.
func (h *writeHandle) stageLocked(ctx context.Context) error {
	if h.st != nil {
		return nil
	}
	base := h.base
	if h.mp != nil {
		info, err := h.commitStreamLocked(ctx)
		if err != nil {
			h.err = err
			return err
		}
		base = info
	}
	st, err := newStaging(h.fsys, h.node.bucket, base)
	if err != nil {
		return err
	}
	if len(h.buf) > 0 {
		if err := st.write(ctx, h.buf, base.Size); err != nil {
			st.close()
			return err
		}
	}
	h.releaseBufLocked()
	h.st, h.streaming = st, false
	return nil
}

func (h *writeHandle) releaseBufLocked() {
	if h.buf != nil {
		h.fsys.putPartBuf(h.buf)
		h.buf = nil
	}
	h.fsys.writeMem.release(h.bufUnits)
	h.bufUnits = 0
}

// commitStreamLocked finishes a streaming upload: one PutObject for a file
// smaller than a part, else the last part and CompleteMultipartUpload.
func (h *writeHandle) commitStreamLocked(ctx context.Context) (ObjectInfo, error) {
	key, opts := h.node.objKey(), h.node.putOptions()
	if h.mp == nil {
		info, err := h.fsys.store.Put(ctx, h.node.bucket, key, bytes.NewReader(h.buf), int64(len(h.buf)), opts)
		h.releaseBufLocked()
		info.Size = h.size
		return info, err
	}
	if len(h.buf) > 0 {
		if err := h.sendPartLocked(ctx); err != nil {
			return ObjectInfo{}, err
		}
	}
	mp := h.mp
	h.mp = nil
	info, err := mp.complete(ctx, h.nparts)
	h.nparts = 0
	info.Size = h.size
	info.ContentType, info.Meta = opts.ContentType, opts.Meta
	return info, err
}

// commitLocked makes the store hold exactly what the handle says.
func (h *writeHandle) commitLocked(ctx context.Context) error {
	if h.err != nil {
		return h.err
	}
	if !h.dirty {
		return nil
	}
	var info ObjectInfo
	var err error
	if h.st == nil {
		info, err = h.commitStreamLocked(ctx)
		// Further writes overlay what was just stored, except when that is
		// nothing: a shell's or dd's dup2-and-close of a new file flushes it
		// empty before the first write, and the file still streams.
		if err == nil && h.size > 0 {
			h.streaming = false
		}
	} else {
		opts := h.node.putOptions()
		if opts.Tags == nil && h.st.base.Key != "" {
			// A modified object keeps its tags (a new upload would drop them).
			if t, terr := h.fsys.store.GetTags(ctx, h.node.bucket, h.st.base.Key); terr == nil && len(t) > 0 {
				opts.Tags = t
			}
		}
		info, err = h.st.commit(ctx, h.node.objKey(), h.size, opts)
	}
	if err != nil {
		h.err = err
		return err
	}
	h.dirty, h.base = false, info
	h.node.committed(info)
	return nil
}

// adoptLocked makes the handle stand for an object just stored (by a
// server-side copy): not dirty, and later writes overlay it.
func (h *writeHandle) adoptLocked(info ObjectInfo) error {
	h.releaseBufLocked()
	h.streaming, h.size, h.dirty, h.base = false, info.Size, false, info
	h.node.committed(info)
	return nil
}

// Flush runs at every close(2) of a descriptor: its error is close's error.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.commitLocked(ctx); err != nil {
		return h.errno("close", err)
	}
	return 0
}

func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.commitLocked(ctx); err != nil {
		return h.errno("fsync", err)
	}
	return 0
}

// Release frees the handle. The kernel ignores its result, so anything
// still dirty here (only possible when Flush was never called) is committed
// and a failure logged.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dirty && h.err == nil {
		if err := h.commitLocked(context.Background()); err != nil {
			h.fsys.cfg.Log.Printf("release %s/%s: data not stored: %v", h.node.bucket, h.node.objKey(), err)
		}
	}
	if h.mp != nil {
		h.mp.abort()
		h.mp = nil
	}
	h.releaseBufLocked()
	if h.st != nil {
		h.st.close()
	}
	h.node.writerGone(h)
	return 0
}

func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, h.errno("read", h.err)
	}
	if off >= h.size {
		return fuse.ReadResultData(nil), 0
	}
	if err := h.stageLocked(ctx); err != nil {
		return nil, h.errno("read", err)
	}
	n, err := h.st.read(ctx, dest[:min(int64(len(dest)), h.size-off)], off)
	if err != nil {
		return nil, h.errno("read", err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *writeHandle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.node.Getattr(ctx, nil, out)
}

// truncateLocked sets the size (ftruncate, truncate, O_TRUNC).
func (h *writeHandle) truncateLocked(ctx context.Context, size int64) error {
	if h.err != nil {
		return h.err
	}
	if h.st == nil && size == h.size {
		return nil
	}
	if err := h.stageLocked(ctx); err != nil {
		return err
	}
	if err := h.st.truncate(ctx, h.size, size); err != nil {
		return err
	}
	h.size, h.dirty = size, true
	h.node.noteSize(size)
	return nil
}

func (h *writeHandle) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.node.setattr(ctx, h, in, out)
}
