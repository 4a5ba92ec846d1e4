// Command kfs mounts S3 / MinIO buckets as directories, and its
// subcommands reach a mount's control socket for what a filesystem cannot
// say (presigned URLs, S3 Select, versions, server-side copy, events).
//
// Invoked as mount.fuse.kfs (or through mount -t fuse.kfs / fstab), it takes
// `SOURCE MOUNTPOINT -o options` and daemonizes once the mount is live.
package main

import (
	"fmt"
	"io"
	"kfs/ctl/cli"
	"kfs/ctl/csi"
	"kfs/fs/mountproc"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

func main() {
	var stderr io.Writer = os.Stderr
	if p := mountproc.StatusPipe(); p != nil {
		stderr = p // a daemon child reports start-up errors to its parent
	}
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, stderr))
}

// commandTable is the dispatch table of `kfs COMMAND`: the mount
// process's command, the client subcommands, the CSI driver, version and
// help.
func commandTable() cli.Table {
	t := cli.Table{mountproc.Command()}
	t = append(t, cli.Commands()...)
	t = append(t, csi.Command(), versionCmd())
	return append(t, cli.Help(t, printUsage))
}

func run(prog string, args []string, stdout, stderr io.Writer) int {
	if strings.HasPrefix(prog, "mount.") { // mount(8) helper: SOURCE MOUNTPOINT -o opts
		return mountproc.Run(append([]string{"--daemon"}, args...), stdout, stderr)
	}
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(stdout)
		return 0
	case "--version", "-version":
		return runVersion(nil, stdout, stderr)
	}
	t := commandTable()
	if c := t.Lookup(args[0]); c != nil {
		return c.Run(args[1:], stdout, stderr)
	}
	hasO := false
	for _, a := range args {
		hasO = hasO || a == "-o" || strings.HasPrefix(a, "-o")
	}
	if strings.HasPrefix(args[0], "-") {
		msg := fmt.Sprintf("kfs: unknown flag %s", args[0])
		if s := cli.SuggestFlag(args[0], []string{"help", "version"}); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
		fmt.Fprintln(stderr, msg+"; commands come first: see kfs --help")
		return 2
	}
	if s := cli.Suggest(args[0], t.Names()); len(args) < 2 || (s != "" && !hasO) {
		msg := fmt.Sprintf("kfs: unknown command %q", args[0])
		if s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		fmt.Fprintln(stderr, msg+"; see kfs --help")
		return 2
	}
	// `kfs SOURCE MOUNTPOINT -o ...` as mount.fuse3 runs a fuse.kfs helper.
	return mountproc.Run(append([]string{"--daemon"}, args...), stdout, stderr)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `kfs mounts S3 / MinIO buckets as directories, and reaches a mount's control
socket for what a filesystem cannot say.

Usage: kfs COMMAND [flags] [ARGS]

Commands:
`)
	for _, c := range commandTable() {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprint(w, `
Object tags, retention, legal hold, metadata and bucket settings are extended
attributes (setfattr/getfattr): see 'kfs help xattrs'.

Run 'kfs COMMAND --help' for a command's flags and examples; 'kfs mount --help'
lists every mount option with its default.
`)
}

func versionCmd() *cli.Command {
	return &cli.Command{Name: "version", Summary: "print the version", Run: runVersion}
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "kfs version: takes no arguments (got %q)\n", args[0])
		return 2
	}
	v := "kfs (devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
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
		v += ", " + bi.GoVersion
	}
	fmt.Fprintln(stdout, v)
	return 0
}
