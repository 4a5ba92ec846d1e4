package main

import (
	"bytes"
	"kfs/fs/mountproc"
	"os"
	"regexp"
	"strings"
	"testing"
)

// README's option table and `kfs mount --help` give the same defaults
// (the cache-dir default had drifted apart).
func TestReadmeOptionDefaultsMatchHelp(t *testing.T) {
	var help bytes.Buffer
	mountproc.PrintHelp(&help)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // option -> README's default column
	row := regexp.MustCompile(`(?m)^\| ([^|]+) \| ([^|]+) \|`)
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		for _, name := range regexp.MustCompile("`([a-z-]+)`").FindAllStringSubmatch(m[1], -1) {
			rows[name[1]] = m[2]
		}
	}
	flag := regexp.MustCompile(`(?m)^  --([a-z-]+)[^\n]*\n\s+[^\n]*\(default ([^)]+)\)\s*$`)
	checked := 0
	for _, m := range flag.FindAllStringSubmatch(help.String(), -1) {
		name, def := m[1], m[2]
		col, ok := rows[name]
		if !ok {
			t.Errorf("--%s (default %s) is not in README's option table", name, def)
			continue
		}
		if !strings.Contains(col, def) {
			t.Errorf("--%s: help says default %s, README says %s", name, def, strings.TrimSpace(col))
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d defaults compared: the patterns no longer match\n%s", checked, help.String())
	}
}

// Usage errors: one line on stderr (nothing on stdout, so U=$(kfs ...)
// never captures help text), exit 2, a suggestion where one is close.
func TestUsageErrorsAreOneLineOnStderr(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"presign", "--expire", "1d", "f"}, "unknown flag --expire (did you mean --expires?)"},
		{[]string{"-v"}, "did you mean --version?"},
		{[]string{"help", "prsign"}, "did you mean presign?"},
		{[]string{"prsign", "f"}, "did you mean presign?"},
		{[]string{"version", "extra"}, "takes no arguments"},
		{[]string{"select", "/tmp/x.csv"}, "--sql QUERY is required"},
		{[]string{"mount", "--entry-tl", "1s", "b", "/mnt"}, "did you mean --entry-ttl?"},
		{[]string{"mount", "-o", "entry_tl=1s", "b", "/mnt"}, "did you mean entry_ttl?"},
		{[]string{"cp", "--if-match", "abc", "x", "y"}, "need --server-side"},
		{[]string{"cp", "--metadata", "a=b", "x", "y"}, "must be in a kfs mount"},
		{[]string{"rm", "--version-id", "v", "a", "b"}, "usage"},
		{[]string{"ls", "--max", "-1", "/x"}, "--max must not be negative"},
		{[]string{"cat", "--offset", "-1", "/x"}, "must not be negative"},
	} {
		var out, errb bytes.Buffer
		code := run("kfs", c.args, &out, &errb)
		msg := errb.String()
		if code != 2 || out.Len() != 0 || !strings.Contains(msg, c.want) || strings.Count(strings.TrimSpace(msg), "\n") > 0 {
			t.Errorf("kfs %v: exit %d, stdout %q, stderr %q; want exit 2, no stdout, one line with %q", c.args, code, out.String(), msg, c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run("kfs", []string{"presign", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage: kfs presign") {
		t.Errorf("--help: exit %d, stdout %q", code, out.String())
	}
}
