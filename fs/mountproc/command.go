// Package mountproc is the mount process: `kfs mount` from its flags to
// serving FUSE requests. It wires the store (fs/store/s3store), the block
// and disk caches, the upload pipeline and its journal, the filesystem
// (fs), the control socket (ctl), event sources, metrics and logging, and
// runs as a daemon when asked. What each part does is its own package's
// business; this one decides which parts a mount gets and in what order
// they start and stop.
package mountproc

import (
	"fmt"
	"io"
	"os"

	"kfs/ctl/cli"
	"kfs/mountopts"
)

// Command is `kfs mount`.
func Command() *cli.Command {
	return &cli.Command{Name: "mount", Args: "[flags] [BUCKET[:PREFIX]] MOUNTPOINT",
		Summary: "mount one bucket (or a prefix of it), every bucket, or the credentials file's two buckets",
		Run:     Run, Help: PrintHelp}
}

// PrintHelp prints `kfs mount --help`: usage, every option with its
// default, and examples.
func PrintHelp(w io.Writer) {
	fmt.Fprint(w, `Usage:
  kfs mount [flags] BUCKET[:PREFIX] MOUNTPOINT   one bucket, or a prefix of it
  kfs mount [flags] MOUNTPOINT                   every bucket, one directory each (mkdir/rmdir make and remove buckets)
  kfs mount --config FILE [flags]                PUBLIC_BUCKET at /kfs_public and PRIVATE_BUCKET at /kfs_private

Every flag is also an -o option for fstab (-o name=value, with - or _).

Flags:
`)
	cli.PrintFlags(w, mountopts.FlagSet(io.Discard))
	fmt.Fprint(w, `
Examples:
  kfs mount --config ~/.config/kfs/credentials.json --daemon
  kfs mount --endpoint http://127.0.0.1:9000 --cache-size 256MiB shared-storage /kfs_public
  mount -t fuse.kfs shared-storage /kfs_public -o config=/root/.config/kfs/credentials.json,allow_other
`)
}

// StatusPipe is where a daemon child reports start-up errors to its
// parent (nil outside a daemon child).
func StatusPipe() *os.File { return statusPipe }

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
