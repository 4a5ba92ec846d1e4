package fs

import (
	"log/slog"
	"os"

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

// Mount mounts root (BucketRoot or AllBucketsRoot of this filesystem) at
// dir and serves it. Operations that change the store are not
// interruptible: a signal to the caller (Go's preemption signal, a Python
// SIGCHLD or alarm) would otherwise cancel an upload half-way and turn a
// close(2) into EINTR. A fatal signal still ends the caller at once (the
// kernel stops waiting); the operation then completes for nobody.
func (f *FS) Mount(dir string, root fusefs.InodeEmbedder, m MountConfig) (*fuse.Server, error) {
	opts := f.FuseOptions(m)
	srv, err := fuse.NewServer(uninterruptible{fusefs.NewNodeFS(root, opts)}, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	return srv, nil
}

// uninterruptible hands the node tree a never-cancelled context for every
// operation that changes something; reads and lookups stay interruptible.
type uninterruptible struct{ fuse.RawFileSystem }

func (u uninterruptible) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return u.RawFileSystem.SetAttr(nil, in, out)
}
func (u uninterruptible) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return u.RawFileSystem.Mknod(nil, in, name, out)
}
func (u uninterruptible) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return u.RawFileSystem.Mkdir(nil, in, name, out)
}
func (u uninterruptible) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return u.RawFileSystem.Unlink(nil, h, name)
}
func (u uninterruptible) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return u.RawFileSystem.Rmdir(nil, h, name)
}
func (u uninterruptible) Rename(_ <-chan struct{}, in *fuse.RenameIn, from, to string) fuse.Status {
	return u.RawFileSystem.Rename(nil, in, from, to)
}
func (u uninterruptible) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return u.RawFileSystem.Symlink(nil, h, target, name, out)
}
func (u uninterruptible) SetXAttr(_ <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return u.RawFileSystem.SetXAttr(nil, in, attr, data)
}
func (u uninterruptible) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	return u.RawFileSystem.RemoveXAttr(nil, h, attr)
}
func (u uninterruptible) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return u.RawFileSystem.Create(nil, in, name, out)
}
func (u uninterruptible) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return u.RawFileSystem.Open(nil, in, out) // O_TRUNC truncates
}
func (u uninterruptible) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	return u.RawFileSystem.Write(nil, in, data)
}
func (u uninterruptible) CopyFileRange(_ <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	return u.RawFileSystem.CopyFileRange(nil, in)
}
func (u uninterruptible) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	return u.RawFileSystem.Flush(nil, in)
}
func (u uninterruptible) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return u.RawFileSystem.Fsync(nil, in)
}
func (u uninterruptible) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return u.RawFileSystem.Fallocate(nil, in)
}
func (u uninterruptible) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return u.RawFileSystem.FsyncDir(nil, in)
}
