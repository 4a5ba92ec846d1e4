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
