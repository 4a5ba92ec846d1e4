package fs

import (
	"log/slog"
	"os"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// MountConfig is how the kernel mount is made.
type MountConfig struct {
	Name          string // shown as the source in mount(8), e.g. kfs:bucket:prefix
	AllowOther    bool   // let other users in
	NoPermissions bool   // do not have the kernel check modes and owners (single-user mounts)
	Debug         bool   // log every FUSE request
}

// FuseOptions are the go-fuse options of a mount of this filesystem. The
// kernel enforces the modes, owners (and, with ACL, the ACLs) kfs reports
// (default_permissions), unless NoPermissions.
func (f *FS) FuseOptions(m MountConfig) *fusefs.Options {
	attr, entry, neg := f.cfg.AttrTTL, f.cfg.EntryTTL, f.cfg.NegativeTTL
	logger := slog.NewLogLogger(f.cfg.Log.Handler(), slog.LevelDebug)
	mo := fuse.MountOptions{
		AllowOther:        m.AllowOther,
		FsName:            m.Name,
		Name:              "kfs",
		MaxWrite:          1 << 20,
		MaxReadAhead:      1 << 20,
		MaxBackground:     64,
		DisableSplice:     true,                    // results are in memory: splicing them only adds a copy through a pipe
		ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC, // O_TRUNC arrives with OPEN: no extra SETATTR round trip
		DirectMount:       os.Geteuid() == 0,
		Debug:             m.Debug,
		Logger:            logger,
		EnableAcl:         f.cfg.ACL,
	}
	if !m.NoPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	}
	if f.cfg.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	return &fusefs.Options{
		MountOptions: mo, AttrTimeout: &attr, EntryTimeout: &entry, NegativeTimeout: &neg,
		Logger:            logger,
		NullPermissions:   true, // mode 0000 is a mode
		FirstAutomaticIno: 2,    // small inode numbers: some tools choke on 2^63
	}
}

// OpObserver learns of every FUSE operation of a mount: its name
// (LOOKUP, READ, ...), how long kfs took, its result (0 = success) and, for
// READ and WRITE, the bytes moved.
type OpObserver func(op string, d time.Duration, errno syscall.Errno, bytes int)

// Mount mounts root (BucketRoot or AllBucketsRoot of this filesystem) at
// dir and serves it, telling obs (when not nil) of every operation.
//
// No operation is interruptible: every store call is bounded by the
// request timeout, retries and deadline instead. A signal to the caller
// (Go's preemption, a profiler's timer, a Python handler) would otherwise
// cancel work half-way: an upload, turning close(2) into EINTR; a
// readdir batch, leaving go-fuse's directory offset and the kernel's
// apart so entries went missing; and a slow lookup retried by the caller
// under frequent signals would never finish. A fatal signal still ends
// the caller at once (the kernel stops waiting).
func (f *FS) Mount(dir string, root fusefs.InodeEmbedder, m MountConfig, obs OpObserver) (*fuse.Server, error) {
	opts := f.FuseOptions(m)
	if obs == nil {
		obs = func(string, time.Duration, syscall.Errno, int) {}
	}
	srv, err := fuse.NewServer(served{fusefs.NewNodeFS(root, opts), obs, f.viaFH}, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	if f.cfg.Disk != nil && f.cfg.Passthrough {
		// Passthrough needs the kernel to offer it and CAP_SYS_ADMIN to
		// register backing files; without them cached files are served by
		// kfs, and no reader holds writers back.
		switch {
		case srv.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH == 0:
			f.noPassthrough("the kernel does not offer FUSE passthrough (Linux 6.9 or later)")
		case os.Geteuid() != 0:
			f.noPassthrough("FUSE passthrough needs a mount by root")
		}
	}
	return srv, nil
}

// served wraps the node tree: it times the operations users wait for and
// hands them a context interrupts do not cancel (nil cancel channel).
type served struct {
	fuse.RawFileSystem
	obs   OpObserver
	viaFH chan struct{} // never closed: the cancel channel of a GETATTR sent through a descriptor
}

// status runs op, timing it.
func (s served) status(op string, call func() fuse.Status) fuse.Status {
	t0 := time.Now()
	st := call()
	s.obs(op, time.Since(t0), syscall.Errno(st), 0)
	return st
}

// sized runs op, timing it; moved says whether its count is bytes moved.
func (s served) sized(op string, moved bool, call func() (uint32, fuse.Status)) (uint32, fuse.Status) {
	t0 := time.Now()
	n, st := call()
	b := 0
	if moved {
		b = int(n)
	}
	s.obs(op, time.Since(t0), syscall.Errno(st), b)
	return n, st
}

// GetAttr marks one sent through a descriptor (fstat, the kernel's check
// before a read) by its context's cancel channel, which never fires: go-fuse
// hands an open file's handle to a GETATTR by name too, and only the
// request's flag tells the two apart (see fileNode.Getattr).
func (s served) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	var cancel <-chan struct{}
	if in.Flags()&fuse.FUSE_GETATTR_FH != 0 {
		cancel = s.viaFH
	}
	return s.status("GETATTR", func() fuse.Status { return s.RawFileSystem.GetAttr(cancel, in, out) })
}

func (s served) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return s.status("OPEN", func() fuse.Status { return s.RawFileSystem.Open(nil, in, out) }) // O_TRUNC truncates
}

func (s served) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	t0 := time.Now()
	r, st := s.RawFileSystem.Read(nil, in, buf)
	n := 0
	if r != nil {
		n = r.Size()
	}
	s.obs("READ", time.Since(t0), syscall.Errno(st), n)
	return r, st
}

func (s served) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return s.status("LOOKUP", func() fuse.Status { return s.RawFileSystem.Lookup(nil, h, name, out) })
}

// Writev is how go-fuse serves WRITE; Write only when Writev says ENOSYS
// (split data), which is then not counted twice.
func (s served) Writev(_ <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	t0 := time.Now()
	n, st := s.RawFileSystem.Writev(nil, in, data)
	if st != fuse.ENOSYS {
		s.obs("WRITE", time.Since(t0), syscall.Errno(st), int(n))
	}
	return n, st
}
func (s served) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	return s.sized("WRITE", true, func() (uint32, fuse.Status) { return s.RawFileSystem.Write(nil, in, data) })
}

func (s served) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return s.status("READDIRPLUS", func() fuse.Status { return s.RawFileSystem.ReadDirPlus(nil, in, out) })
}

func (s served) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return s.status("READDIR", func() fuse.Status { return s.RawFileSystem.ReadDir(nil, in, out) })
}

func (s served) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	return s.sized("GETXATTR", false, func() (uint32, fuse.Status) { return s.RawFileSystem.GetXAttr(nil, h, attr, dest) })
}

func (s served) ListXAttr(_ <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	return s.sized("LISTXATTR", false, func() (uint32, fuse.Status) { return s.RawFileSystem.ListXAttr(nil, h, dest) })
}

func (s served) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return s.status("SETATTR", func() fuse.Status { return s.RawFileSystem.SetAttr(nil, in, out) })
}

func (s served) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return s.status("MKNOD", func() fuse.Status { return s.RawFileSystem.Mknod(nil, in, name, out) })
}

func (s served) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return s.status("MKDIR", func() fuse.Status { return s.RawFileSystem.Mkdir(nil, in, name, out) })
}

func (s served) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.status("UNLINK", func() fuse.Status { return s.RawFileSystem.Unlink(nil, h, name) })
}

func (s served) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.status("RMDIR", func() fuse.Status { return s.RawFileSystem.Rmdir(nil, h, name) })
}

func (s served) Rename(_ <-chan struct{}, in *fuse.RenameIn, from, to string) fuse.Status {
	return s.status("RENAME", func() fuse.Status { return s.RawFileSystem.Rename(nil, in, from, to) })
}

func (s served) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return s.status("SYMLINK", func() fuse.Status { return s.RawFileSystem.Symlink(nil, h, target, name, out) })
}

func (s served) SetXAttr(_ <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return s.status("SETXATTR", func() fuse.Status { return s.RawFileSystem.SetXAttr(nil, in, attr, data) })
}

func (s served) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	return s.status("REMOVEXATTR", func() fuse.Status { return s.RawFileSystem.RemoveXAttr(nil, h, attr) })
}

func (s served) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return s.status("CREATE", func() fuse.Status { return s.RawFileSystem.Create(nil, in, name, out) })
}

func (s served) CopyFileRange(_ <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	return s.sized("COPY_FILE_RANGE", false, func() (uint32, fuse.Status) { return s.RawFileSystem.CopyFileRange(nil, in) })
}

func (s served) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	return s.status("FLUSH", func() fuse.Status { return s.RawFileSystem.Flush(nil, in) })
}

func (s served) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return s.status("FSYNC", func() fuse.Status { return s.RawFileSystem.Fsync(nil, in) })
}

func (s served) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return s.status("FALLOCATE", func() fuse.Status { return s.RawFileSystem.Fallocate(nil, in) })
}

func (s served) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return s.status("FSYNCDIR", func() fuse.Status { return s.RawFileSystem.FsyncDir(nil, in) })
}
