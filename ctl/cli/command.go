// Package cli is the client side of kfs's command line: the command
// framework (flags in any order, one-line usage errors with suggestions,
// --help with examples) and the subcommands that reach a mount's control
// socket or the filesystem (presign, stat, ls, cp, select, watch, status,
// ...). The mount process's own command lives in fs/mountproc, the CSI
// driver's in ctl/csi; package main puts them in one table.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"kfs/mountopts"
)

// Command is one `kfs COMMAND`: its help and how it runs.
type Command struct {
	Name, Alias string
	Args        string // positional arguments, e.g. "[flags] PATH"
	Summary     string
	Examples    []string
	Run         func(args []string, stdout, stderr io.Writer) int
	Help        func(w io.Writer) // prints the command's help, when it parses its own flags (nil: from Flags)
	out         io.Writer         // where --help goes (set by flags)
}

// Flags makes the flag set of a command; --help prints usage, Flags (in
// the --long form) and examples to stdout. A flag error prints one line
// to stderr (parse), never the usage.
func (c *Command) Flags(stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kfs "+c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on errors too
	c.out = stdout
	return fs
}

func (c *Command) Usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: kfs %s %s\n\n%s\n", c.Name, c.Args, c.Summary)
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			PrintFlags(w, fs)
		}
	}
	if len(c.Examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.Examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
}

// PrintFlags lists flags as --name VALUE, without "(default false)".
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		prefix := "--"
		if len(f.Name) == 1 {
			prefix = "-"
		}
		line := "  " + prefix + f.Name
		if name != "" {
			line += " " + strings.ToUpper(name)
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "[]" && !strings.Contains(usage, "default") {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
}

// Parse reads flags and positionals in any order. ok false means the
// command is over with code (help printed, or a usage error reported).
func (c *Command) Parse(fs *flag.FlagSet, args []string, stderr io.Writer) (pos []string, code int, ok bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.Usage(c.out, fs)
			return nil, 0, false
		}
		if err != nil {
			msg := err.Error()
			if bad, found := strings.CutPrefix(msg, "flag provided but not defined: "); found {
				var names []string
				fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
				msg = "unknown flag " + dashes(bad)
				if s := SuggestFlag(bad, names); s != "" {
					msg += " (did you mean --" + s + "?)"
				}
			}
			fmt.Fprintf(stderr, "kfs %s: %s; see kfs %s --help\n", c.Name, msg, c.Name)
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// UsageError reports wrong positional arguments.
func (c *Command) UsageError(stderr io.Writer) int {
	fmt.Fprintf(stderr, "kfs %s: usage: kfs %s %s (see kfs %s --help)\n", c.Name, c.Name, c.Args, c.Name)
	return 2
}

// Suggest returns the candidate closest to word, or "".
func Suggest(word string, candidates []string) string { return mountopts.Suggest(word, candidates) }

// SuggestFlag returns the flag name closest to a mistyped flag ("-v",
// "--verison"): one letter matches a flag it starts, more go by Suggest.
func SuggestFlag(bad string, names []string) string {
	return mountopts.SuggestFlag(bad, names)
}

// Table is a program's commands.
type Table []*Command

// Lookup finds a command by name or alias (nil: none).
func (t Table) Lookup(name string) *Command {
	for _, c := range t {
		if c.Name == name || c.Alias == name {
			return c
		}
	}
	return nil
}

// Names lists the commands' names.
func (t Table) Names() []string {
	var out []string
	for _, c := range t {
		out = append(out, c.Name)
	}
	return out
}

// dashes shows a flag the way help writes it: --long, -s.
func dashes(flag string) string {
	name := strings.TrimLeft(flag, "-")
	if len(name) > 1 {
		return "--" + name
	}
	return "-" + name
}

// Commands are the client subcommands, in the order help lists them.
func Commands() Table {
	return Table{Unmount(), presignCmd(), statCmd(), lsCmd(), versionsCmd(), restoreCmd(), catCmd(), warmCmd(), rmCmd(),
		cpCmd(), composeCmd(), selectCmd(), watchCmd(), mbCmd(), rbCmd(), bucketsCmd(), statusCmd(), syncCmd(), metricsCmd()}
}
