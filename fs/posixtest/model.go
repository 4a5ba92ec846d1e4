package posixtest

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// RandomOps runs random operations — several handles per file, writes at
// random offsets, reads, truncates, renames, unlinks while open, closes
// and reopens — against the mount and against an in-memory model, and
// compares every read and, at the end, every file. It prints its seed;
// KFS_SEED=N replays one, KFS_OPS=N sets the number of operations.
func RandomOps(t *testing.T, dir string) {
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("KFS_SEED"), 10, 64); err == nil {
		seed = s
	}
	ops := 300
	if n, err := strconv.Atoi(os.Getenv("KFS_OPS")); err == nil && n > 0 {
		ops = n
	}
	t.Logf("seed %d (replay with KFS_SEED=%d), %d operations", seed, seed, ops)
	m := &model{t: t, dir: dir, r: rand.New(rand.NewSource(seed)), names: map[string]*mfile{}}
	defer m.closeAll()
	for i := 0; i < ops; i++ {
		m.step(i)
		if t.Failed() {
			t.Fatalf("stopped at operation %d (seed %d):\n%s", i, seed, m.trace.String())
		}
	}
	m.closeAll()
	m.verify()
	if t.Failed() {
		t.Logf("trace (seed %d):\n%s", seed, m.trace.String())
	}
}

type mfile struct{ data []byte }

type mhandle struct {
	f    *os.File
	file *mfile
	name string
}

type model struct {
	t       *testing.T
	dir     string
	r       *rand.Rand
	names   map[string]*mfile
	handles []*mhandle
	trace   bytes.Buffer
}

var modelNames = []string{"a", "b", "c", "d"}

func (m *model) log(format string, a ...any) { fmt.Fprintf(&m.trace, format+"\n", a...) }

func (m *model) path(name string) string { return filepath.Join(m.dir, name) }

func (m *model) step(i int) {
	name := modelNames[m.r.Intn(len(modelNames))]
	switch op := m.r.Intn(10); {
	case op < 2 || len(m.handles) == 0:
		m.open(name)
	case op < 5:
		m.write(m.handles[m.r.Intn(len(m.handles))])
	case op < 7:
		m.read(m.handles[m.r.Intn(len(m.handles))])
	case op == 7:
		if m.r.Intn(2) == 0 {
			m.truncateHandle(m.handles[m.r.Intn(len(m.handles))])
		} else {
			m.closeOne(m.r.Intn(len(m.handles)))
		}
	case op == 8:
		m.rename(name, modelNames[m.r.Intn(len(modelNames))])
	default:
		m.unlink(name)
	}
}

func (m *model) open(name string) {
	if len(m.handles) >= 6 {
		m.closeOne(0)
	}
	trunc := m.r.Intn(5) == 0
	flags := os.O_RDWR | os.O_CREATE
	if trunc {
		flags |= os.O_TRUNC
	}
	m.log("open %s trunc=%v", name, trunc)
	f, err := os.OpenFile(m.path(name), flags, 0o644)
	if err != nil {
		m.t.Errorf("open %s: %v", name, err)
		return
	}
	mf := m.names[name]
	if mf == nil {
		mf = &mfile{}
		m.names[name] = mf
	}
	if trunc {
		mf.data = nil
	}
	m.handles = append(m.handles, &mhandle{f: f, file: mf, name: name})
}

func (m *model) write(h *mhandle) {
	off := m.r.Intn(64 << 10)
	data := make([]byte, 1+m.r.Intn(8<<10))
	m.r.Read(data)
	m.log("write %s at %d, %d bytes", h.name, off, len(data))
	if _, err := h.f.WriteAt(data, int64(off)); err != nil {
		m.t.Errorf("write: %v", err)
		return
	}
	if end := off + len(data); end > len(h.file.data) {
		h.file.data = append(h.file.data, make([]byte, end-len(h.file.data))...)
	}
	copy(h.file.data[off:], data)
}

func (m *model) read(h *mhandle) {
	off := m.r.Intn(72 << 10)
	buf := make([]byte, 1+m.r.Intn(16<<10))
	m.log("read %s at %d, %d bytes", h.name, off, len(buf))
	n, _ := h.f.ReadAt(buf, int64(off))
	want := []byte{}
	if off < len(h.file.data) {
		want = h.file.data[off:min(len(h.file.data), off+len(buf))]
	}
	if !bytes.Equal(buf[:n], want) {
		m.t.Errorf("read %s at %d: %d bytes differ from the model's %d", h.name, off, n, len(want))
	}
}

func (m *model) truncateHandle(h *mhandle) {
	size := m.r.Intn(80 << 10)
	m.log("ftruncate %s to %d", h.name, size)
	if err := h.f.Truncate(int64(size)); err != nil {
		m.t.Errorf("ftruncate: %v", err)
		return
	}
	if size < len(h.file.data) {
		h.file.data = h.file.data[:size]
	} else {
		h.file.data = append(h.file.data, make([]byte, size-len(h.file.data))...)
	}
}

func (m *model) closeOne(i int) {
	h := m.handles[i]
	m.log("close %s", h.name)
	if err := h.f.Close(); err != nil {
		m.t.Errorf("close %s: %v", h.name, err)
	}
	m.handles = append(m.handles[:i], m.handles[i+1:]...)
}

func (m *model) rename(from, to string) {
	mf := m.names[from]
	if mf == nil || from == to {
		return
	}
	m.log("rename %s %s", from, to)
	if err := os.Rename(m.path(from), m.path(to)); err != nil {
		m.t.Errorf("rename: %v", err)
		return
	}
	m.names[to] = mf
	delete(m.names, from)
	for _, h := range m.handles {
		if h.file == mf {
			h.name = to
		}
	}
}

func (m *model) unlink(name string) {
	if m.names[name] == nil {
		return
	}
	m.log("unlink %s", name)
	if err := os.Remove(m.path(name)); err != nil {
		m.t.Errorf("unlink: %v", err)
		return
	}
	delete(m.names, name)
}

func (m *model) closeAll() {
	for len(m.handles) > 0 {
		m.closeOne(0)
	}
}

func (m *model) verify() {
	got := names(m.t, m.dir)
	if len(got) != len(m.names) {
		m.t.Errorf("directory holds %v, the model %d names", got, len(m.names))
	}
	for name, mf := range m.names {
		b, err := os.ReadFile(m.path(name))
		if err != nil {
			m.t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(b, mf.data) {
			m.t.Errorf("%s: %d bytes differ from the model's %d", name, len(b), len(mf.data))
		}
	}
}
