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
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

func main() {
	var stderr io.Writer = os.Stderr
	if statusPipe != nil {
		stderr = statusPipe // a daemon child reports start-up errors to its parent
	}
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, stderr))
}

// commandTable is the dispatch table of `kfs COMMAND` (help aside).
func commandTable() []*command {
	return []*command{mountCmd(), unmountCmd(), presignCmd(), statCmd(), lsCmd(), versionsCmd(), restoreCmd(), catCmd(), warmCmd(), rmCmd(),
		cpCmd(), composeCmd(), selectCmd(), watchCmd(), mbCmd(), rbCmd(), bucketsCmd(), statusCmd(), metricsCmd(), csiCmd(), versionCmd()}
}

func lookupCommand(name string) *command {
	for _, c := range commandTable() {
		if c.name == name || c.alias == name {
			return c
		}
	}
	return nil
}

func run(prog string, args []string, stdout, stderr io.Writer) int {
	if strings.HasPrefix(prog, "mount.") { // mount(8) helper: SOURCE MOUNTPOINT -o opts
		return runMount(append([]string{"--daemon"}, args...), stdout, stderr)
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
	case "help":
		return runHelp(args[1:], stdout, stderr)
	}
	if c := lookupCommand(args[0]); c != nil {
		return c.run(args[1:], stdout, stderr)
	}
	hasO := false
	for _, a := range args {
		hasO = hasO || a == "-o" || strings.HasPrefix(a, "-o")
	}
	if strings.HasPrefix(args[0], "-") {
		msg := fmt.Sprintf("kfs: unknown flag %s", args[0])
		if s := suggestFlag(args[0], []string{"help", "version"}); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
		fmt.Fprintln(stderr, msg+"; commands come first: see kfs --help")
		return 2
	}
	if s := suggest(args[0], append(commandNames(), "help")); len(args) < 2 || (s != "" && !hasO) {
		msg := fmt.Sprintf("kfs: unknown command %q", args[0])
		if s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		fmt.Fprintln(stderr, msg+"; see kfs --help")
		return 2
	}
	// `kfs SOURCE MOUNTPOINT -o ...` as mount.fuse3 runs a fuse.kfs helper.
	return runMount(append([]string{"--daemon"}, args...), stdout, stderr)
}

func commandNames() []string {
	var out []string
	for _, c := range commandTable() {
		out = append(out, c.name)
	}
	return out
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `kfs mounts S3 / MinIO buckets as directories, and reaches a mount's control
socket for what a filesystem cannot say.

Usage: kfs COMMAND [flags] [ARGS]

Commands:
`)
	for _, c := range commandTable() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "help", "help on a command, or on a topic: kfs help xattrs")
	fmt.Fprint(w, `
Object tags, retention, legal hold, metadata and bucket settings are extended
attributes (setfattr/getfattr): see 'kfs help xattrs'.

Run 'kfs COMMAND --help' for a command's flags and examples; 'kfs mount --help'
lists every mount option with its default.
`)
}

func versionCmd() *command {
	return &command{name: "version", summary: "print the version", run: runVersion}
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

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
