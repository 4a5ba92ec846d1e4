// Command kfs mounts S3 / MinIO buckets as directories.
//
//	kfs mount [flags] BUCKET[:PREFIX] MOUNTPOINT
//	kfs mount [flags] MOUNTPOINT            (every bucket)
//	kfs mount --config FILE                 (PUBLIC_BUCKET and PRIVATE_BUCKET)
//	kfs unmount MOUNTPOINT
//
// Invoked as mount.fuse.kfs (or through mount -t fuse.kfs / fstab), it takes
// `SOURCE MOUNTPOINT -o options` and daemonizes once the mount is live.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"kfs/mountopts"
)

const usage = `kfs mounts S3 / MinIO buckets as directories.

Usage:
  kfs mount [flags] BUCKET[:PREFIX] MOUNTPOINT   mount one bucket (or a prefix of it)
  kfs mount [flags] MOUNTPOINT                   mount every bucket, one directory each
  kfs mount --config FILE [flags]                mount PUBLIC_BUCKET at /kfs_public and
                                                 PRIVATE_BUCKET at /kfs_private
  kfs unmount MOUNTPOINT                         unmount (also: fusermount3 -u MOUNTPOINT)
  kfs presign [--method M] [--expires D] PATH    print a presigned URL (default GET, 7 days)
  kfs stat [--version-id V] PATH                 everything stat_object says, as JSON
  kfs versions PATH                              versions and delete markers of an object
  kfs cat [--version-id V] PATH                  print an object (or one version of it)
  kfs rm [--version-id V | -r] PATH              delete a version, or a tree in batches
  kfs cp SRC DST                                 copy a file between a local path and a mount, with a progress bar on a terminal
  kfs cp --server-side [conditions] SRC DST      copy inside the store (--if-match, --metadata k=v ...)
  kfs compose DST SRC...                         concatenate objects server side
  kfs select PATH --sql QUERY [--input csv|json|parquet] [--output csv|json] [--stats]
  kfs watch [--events E,...] [--suffix S] DIR    one JSON line per bucket event under DIR
  kfs buckets PATH                               the buckets the mount's credentials see
  kfs status PATH                                the mount serving PATH: bucket, endpoint, cache
  kfs version                                    print the version

Run 'kfs mount --help' for every option and its default.
`

func main() {
	var stderr io.Writer = os.Stderr
	if statusPipe != nil {
		stderr = statusPipe // a daemon child reports start-up errors to its parent
	}
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, stderr))
}

func run(prog string, args []string, stdout, stderr io.Writer) int {
	if strings.HasPrefix(prog, "mount.") { // mount(8) helper: SOURCE MOUNTPOINT -o opts
		return runMount(append([]string{"--daemon"}, args...), stderr)
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "mount":
		return runMount(args[1:], stderr)
	case "unmount", "umount":
		return runUnmount(args[1:], stderr)
	case "presign":
		return runPresign(args[1:], stdout, stderr)
	case "stat":
		return runStat(args[1:], stdout, stderr)
	case "versions":
		return runVersions(args[1:], stdout, stderr)
	case "cat":
		return runCat(args[1:], stdout, stderr)
	case "rm":
		return runRm(args[1:], stdout, stderr)
	case "cp":
		return runCp(args[1:], stdout, stderr)
	case "compose":
		return runCompose(args[1:], stdout, stderr)
	case "select":
		return runSelect(args[1:], stdout, stderr)
	case "watch":
		return runWatch(args[1:], stdout, stderr)
	case "buckets", "status":
		return runMountInfo(args[0], args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version())
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if strings.HasPrefix(args[0], "-") || len(args) < 2 {
		fmt.Fprintf(stderr, "kfs: unknown command %q (see kfs --help)\n", args[0])
		return 2
	}
	// `kfs SOURCE MOUNTPOINT -o ...` as mount.fuse3 runs a fuse.kfs helper.
	return runMount(append([]string{"--daemon"}, args...), stderr)
}

func runMount(args []string, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(stderr, "Usage: kfs mount [flags] [BUCKET[:PREFIX]] MOUNTPOINT\n       kfs mount --config FILE [flags]\n\nFlags (and -o names, with - or _):\n")
			mountopts.FlagSet(stderr).PrintDefaults()
			return 0
		}
	}
	o, err := mountopts.Parse(args, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kfs: %v\n", err)
		return 2
	}
	if o.Daemon && !isDaemonChild() {
		err = daemonize(args, stderr)
	} else {
		err = mountAndServe(o, stderr)
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "kfs: %v\n", ee.err)
			return ee.code
		}
		fmt.Fprintf(stderr, "kfs: %v\n", err)
		return 1
	}
	return 0
}

func runUnmount(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfs unmount", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lazy := fs.Bool("lazy", false, "detach now, clean up when no longer busy (umount -l)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "kfs: usage: kfs unmount [--lazy] MOUNTPOINT")
		return 2
	}
	if err := unmount(fs.Arg(0), *lazy); err != nil {
		fmt.Fprintf(stderr, "kfs: %v\n", err)
		return 1
	}
	return 0
}

func version() string {
	v := "kfs (devel)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = "kfs " + bi.Main.Version
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/hanwen/go-fuse/v2":
			v += ", go-fuse " + d.Version
		case "github.com/minio/minio-go/v7":
			v += ", minio-go " + d.Version
		}
	}
	return v + ", " + bi.GoVersion
}

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
