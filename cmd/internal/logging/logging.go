// Package logging is how the agent and the coordinator log: text or JSON
// lines at a level, to stderr (the journal, under systemd) or to a file that
// SIGUSR1 reopens after logrotate moved it.
package logging

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// Flags are the logging flags a daemon takes.
type Flags struct {
	Format string
	Level  string
	File   string
	// Verbose is the older -v: the same as --log-level debug.
	Verbose bool
}

// Register adds --log-format, --log-level, --log-file and -v to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Format, "log-format", "text", "log line `format`: text or json")
	fs.StringVar(&f.Level, "log-level", "info", "least `level` logged: debug, info, warn or error")
	fs.StringVar(&f.File, "log-file", "", "append logs to `file` instead of stderr; SIGUSR1 reopens it (for logrotate)")
	fs.BoolVar(&f.Verbose, "v", false, "log debug messages (--log-level debug)")
}

// Logger is a configured logger and the file it writes to, if any.
type Logger struct {
	*slog.Logger
	out *Reopener
}

// New builds the logger the flags describe; stderr is used when no file is
// named. Errors name the flag at fault.
func (f *Flags) New(stderr io.Writer) (*Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", f.Level)
	}
	if f.Verbose {
		level = slog.LevelDebug
	}
	var w io.Writer = stderr
	var out *Reopener
	if f.File != "" {
		var err error
		if out, err = OpenReopener(f.File); err != nil {
			return nil, fmt.Errorf("--log-file: %w", err)
		}
		w = out
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(f.Format) {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		if out != nil {
			out.Close()
		}
		return nil, fmt.Errorf("--log-format %q: use text or json", f.Format)
	}
	return &Logger{Logger: slog.New(h), out: out}, nil
}

// Reopen reopens the log file (a no-op when logging to stderr), logging
// the outcome.
func (l *Logger) Reopen() {
	if l.out == nil {
		l.Info("SIGUSR1: logging to stderr, nothing to reopen")
		return
	}
	if err := l.out.Reopen(); err != nil {
		l.Error("reopen log file; still writing to the old one", "file", l.out.path, "err", err)
		return
	}
	l.Info("log file reopened", "file", l.out.path)
}

// Close closes the log file, if any.
func (l *Logger) Close() error {
	if l.out == nil {
		return nil
	}
	return l.out.Close()
}

// Reopener is a log file that can be reopened under its name: after
// logrotate renames it, Reopen starts a new file and no line is lost,
// since every write goes whole to one file or the other.
type Reopener struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenReopener opens path for appending, creating it (0640) if missing.
func OpenReopener(path string) (*Reopener, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	return &Reopener{path: path, f: f}, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return f, nil
}

func (r *Reopener) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

// Reopen opens the file under its name again and closes the old one; on
// error the old one is kept.
func (r *Reopener) Reopen() error {
	f, err := openLog(r.path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (r *Reopener) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
