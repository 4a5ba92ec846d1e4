package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"kfs/mountopts"
)

// command is one `kfs COMMAND`: its help and how it runs.
type command struct {
	name, alias string
	args        string // positional arguments, e.g. "[flags] PATH"
	summary     string
	examples    []string
	run         func(args []string, stdout, stderr io.Writer) int
	out         io.Writer // where --help goes (set by flags)
}

// flags makes the flag set of a command; --help prints usage, flags (in
// the --long form) and examples to stdout. A flag error prints one line
// to stderr (parse), never the usage.
func (c *command) flags(stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kfs "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on errors too
	c.out = stdout
	return fs
}

func (c *command) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: kfs %s %s\n\n%s\n", c.name, c.args, c.summary)
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			printFlags(w, fs)
		}
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
}

// printFlags lists flags as --name VALUE, without "(default false)".
func printFlags(w io.Writer, fs *flag.FlagSet) {
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

// parse reads flags and positionals in any order. ok false means the
// command is over with code (help printed, or a usage error reported).
func (c *command) parse(fs *flag.FlagSet, args []string, stderr io.Writer) (pos []string, code int, ok bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.out, fs)
			return nil, 0, false
		}
		if err != nil {
			msg := err.Error()
			if bad, found := strings.CutPrefix(msg, "flag provided but not defined: "); found {
				var names []string
				fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
				msg = "unknown flag " + dashes(bad)
				if s := suggestFlag(bad, names); s != "" {
					msg += " (did you mean --" + s + "?)"
				}
			}
			fmt.Fprintf(stderr, "kfs %s: %s; see kfs %s --help\n", c.name, msg, c.name)
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// usageError reports wrong positional arguments.
func (c *command) usageError(stderr io.Writer) int {
	fmt.Fprintf(stderr, "kfs %s: usage: kfs %s %s (see kfs %s --help)\n", c.name, c.name, c.args, c.name)
	return 2
}

// suggest returns the candidate closest to word, or "".
func suggest(word string, candidates []string) string { return mountopts.Suggest(word, candidates) }

// suggestFlag returns the flag name closest to a mistyped flag ("-v",
// "--verison"): one letter matches a flag it starts, more go by suggest.
func suggestFlag(bad string, names []string) string {
	return mountopts.SuggestFlag(bad, names)
}

// dashes shows a flag the way help writes it: --long, -s.
func dashes(flag string) string {
	name := strings.TrimLeft(flag, "-")
	if len(name) > 1 {
		return "--" + name
	}
	return "-" + name
}
