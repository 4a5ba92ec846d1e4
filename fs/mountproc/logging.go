package mountproc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"kfs/mountopts"
)

// problems counts the warnings and errors logged since the mount and keeps
// the last few, for `kfs status`.
type problems struct {
	mu    sync.Mutex // protects the fields below
	count int64      // GUARDED_BY(mu)
	last  []string   // GUARDED_BY(mu): at most 10
}

func (p *problems) add(r slog.Record) {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	p.last = append(p.last, b.String())
	if len(p.last) > 10 {
		p.last = p.last[1:]
	}
}

func (p *problems) snapshot() (int64, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count, append([]string(nil), p.last...)
}

// countingHandler passes records on and counts the warnings and errors.
type countingHandler struct {
	slog.Handler
	p *problems
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.p.add(r)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.p}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.p}
}

// defaultLogFile is where a daemon logs without --log-file.
func defaultLogFile() string {
	if os.Geteuid() == 0 {
		return "/var/log/kfs/kfs.log"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kfs", "kfs.log")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "kfs", "kfs.log")
}

// newLogger builds the mount's logger: text or JSON, at the chosen level,
// to --log-file, else stderr, else (a daemon) defaultLogFile.
func newLogger(o mountopts.Options, stderr io.Writer, daemon bool) (*slog.Logger, *problems, error) {
	w := stderr
	path := o.LogFile
	if path == "" && daemon {
		path = defaultLogFile()
	}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, nil, exitError{2, fmt.Errorf("log file: %v", err)}
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, exitError{2, fmt.Errorf("log file: %v", err)}
		}
		w = f
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.LogLevel))
	if o.Debug {
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, ho)
	if o.LogFormat == "json" {
		h = slog.NewJSONHandler(w, ho)
	}
	p := &problems{}
	return slog.New(countingHandler{h, p}).With("pid", os.Getpid()), p, nil
}
