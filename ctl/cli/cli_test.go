package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kfs/ctl"
)

func TestParseTakesFlagsAndArgumentsInAnyOrder(t *testing.T) {
	c := &Command{Name: "demo", Args: "[flags] A B", Summary: "a demo", Examples: []string{"kfs demo a b"}}
	var out, errb bytes.Buffer
	fs := c.Flags(&out)
	n := fs.Int("count", 3, "how many")
	v := fs.Bool("verbose", false, "say more")
	pos, code, ok := c.Parse(fs, []string{"a", "--count", "5", "b", "--verbose"}, &errb)
	if !ok || code != 0 || strings.Join(pos, ",") != "a,b" || *n != 5 || !*v {
		t.Fatalf("parse: %v %d %v count=%d verbose=%v", pos, code, ok, *n, *v)
	}

	fs = c.Flags(&out)
	fs.Int("count", 3, "how many")
	if _, code, ok := c.Parse(fs, []string{"--cuont", "1"}, &errb); ok || code != 2 ||
		errb.String() != "kfs demo: unknown flag --cuont (did you mean --count?); see kfs demo --help\n" {
		t.Errorf("a mistyped flag: %d %v %q", code, ok, errb.String())
	}

	out.Reset()
	fs = c.Flags(&out)
	fs.Int("count", 3, "how many")
	fs.String("x", "", "a short one")
	if _, code, ok := c.Parse(fs, []string{"--help"}, io.Discard); ok || code != 0 {
		t.Fatalf("--help: %d %v", code, ok)
	}
	for _, want := range []string{"Usage: kfs demo [flags] A B", "a demo", "--count INT\n      how many (default 3)", "  -x STRING", "Examples:\n  kfs demo a b"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	errb.Reset()
	if code := c.UsageError(&errb); code != 2 || !strings.Contains(errb.String(), "usage: kfs demo [flags] A B") {
		t.Errorf("usage error: %d %q", code, errb.String())
	}
}

func TestTableAndHelp(t *testing.T) {
	custom := &Command{Name: "custom", Summary: "prints its own help", Help: func(w io.Writer) { io.WriteString(w, "custom help\n") }}
	tab := append(Commands(), custom)
	seen := map[string]bool{}
	for _, c := range tab {
		if c.Name == "" || c.Summary == "" || c.Run == nil && c.Help == nil {
			t.Errorf("incomplete command %+v", c)
		}
		if seen[c.Name] {
			t.Errorf("two commands named %s", c.Name)
		}
		seen[c.Name] = true
	}
	if c := tab.Lookup("umount"); c == nil || c.Name != "unmount" {
		t.Errorf("alias umount: %+v", c)
	}
	if tab.Lookup("nope") != nil {
		t.Error("found a command that is not there")
	}
	help := Help(tab, func(w io.Writer) { io.WriteString(w, "program usage\n") })
	for _, c := range []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{nil, 0, "program usage", ""},
		{[]string{"xattrs"}, 0, "user.s3.tag.<Key>", ""},
		{[]string{"custom"}, 0, "custom help", ""},
		{[]string{"presign"}, 0, "Usage: kfs presign", ""},
		{[]string{"prsign"}, 2, "", "did you mean presign?"},
	} {
		var out, errb bytes.Buffer
		if code := help.Run(c.args, &out, &errb); code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errb.String(), c.inErr) {
			t.Errorf("help %v: %d %q %q", c.args, code, out.String(), errb.String())
		}
	}
}

// Every client command answers --help on stdout and a wrong number of
// arguments with exit 2 and one line, before dialing anything.
func TestEveryCommandHelpsAndRefusesBadArguments(t *testing.T) {
	for _, c := range Commands() {
		var out, errb bytes.Buffer
		if code := c.Run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage: kfs "+c.Name) {
			t.Errorf("%s --help: %d %q %q", c.Name, code, out.String(), errb.String())
		}
		out.Reset()
		errb.Reset()
		args := []string{"a", "b", "c", "d", "e", "f"}
		switch c.Name {
		case "compose", "warm", "rm", "sync": // many paths: none is wrong
			args = nil
		}
		if code := c.Run(args, &out, &errb); code != 2 || out.Len() != 0 || strings.Count(strings.TrimSpace(errb.String()), "\n") > 0 {
			t.Errorf("%s %v: exit %d, stdout %q, stderr %q; want exit 2 and one line", c.Name, args, code, out.String(), errb.String())
		}
	}
}

// kfs cp needs a mount on one side, and says so; a missing source is
// named.
func TestCpOutsideAMount(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	cp := Commands().Lookup("cp")
	var out, errb bytes.Buffer
	if code := cp.Run([]string{src, dst}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "one of SRC and DST must be in a kfs mount") {
		t.Fatalf("cp between local files: %d %q", code, errb.String())
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("a refused copy made its destination")
	}
	errb.Reset()
	if code := cp.Run([]string{"--metadata", "a=b", src, dst}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "must be in a kfs mount") {
		t.Errorf("--metadata outside a mount: %d %q", code, errb.String())
	}
}

func TestHelpers(t *testing.T) {
	h := headerFlags{}
	if err := h.Set("owner=data=team"); err != nil || h["owner"] != "data=team" {
		t.Errorf("set: %v %v", h, err)
	}
	if err := h.Set("=x"); err == nil {
		t.Error("an empty name was accepted")
	}
	if err := h.Set("novalue"); err == nil {
		t.Error("a value without = was accepted")
	}
	attrs, err := uploadAttrs(headerFlags{"Owner": "me"}, "text/csv", "a=1&b=2")
	if err != nil || attrs["user.s3.meta.owner"] != "me" || attrs["user.s3.content-type"] != "text/csv" || attrs["user.s3.tags"] != "a=1&b=2" {
		t.Errorf("attrs %v %v", attrs, err)
	}
	if _, err := uploadAttrs(nil, "", "a=1&a=2"); err == nil {
		t.Error("a repeated tag was accepted")
	}
	if _, err := uploadAttrs(headerFlags{"bad name": "x"}, "", ""); err == nil {
		t.Error("a metadata name with a space was accepted")
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := human(n); got != want {
			t.Errorf("human(%d) = %q, want %q", n, got, want)
		}
	}
	for path, want := range map[string]string{"a.csv": "csv none", "a.JSONL.gz": "json gzip", "x.parquet": "parquet none", "t.csv.bz2": "csv bzip2"} {
		r := ctl.SelectRequest{}
		inferSelect(&r, path)
		if got := r.Input + " " + r.Compression; got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	r := ctl.SelectRequest{Input: "json", Compression: "none"}
	inferSelect(&r, "x.csv.gz")
	if r.Input != "json" || r.Compression != "none" {
		t.Errorf("given formats were overridden: %+v", r)
	}
	if dashes("v") != "-v" || dashes("--verbose") != "--verbose" {
		t.Error("dashes")
	}
	live := ctl.Status{Extra: map[string]any{"event_sources": []ctl.SourceState{{State: "retrying"}, {State: "live"}}}}
	if !eventSourceLive(live) || eventSourceLive(ctl.Status{}) {
		t.Error("eventSourceLive")
	}
	if sameMount(t.TempDir(), t.TempDir()) {
		t.Error("two directories outside kfs are on the same kfs mount")
	}
}
