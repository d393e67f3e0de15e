// Package initdir writes the files `immune agent init` and `immune
// coordinator init` lay out: a config and fresh tokens, never over files
// that are already there unless asked, with permissions that keep the
// tokens from anyone but root and the daemons' `immune` group.
package initdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/google/renameio/v2"
)

// Dir is a directory being initialised.
type Dir struct {
	Path string
	// Force overwrites files that exist; without it they are kept.
	Force bool
	// Written and Kept are the files written and those left as they were.
	Written, Kept []string
	group         int // the immune group's id, or -1
}

// Open makes dir (0755) and finds the group tokens are shared with.
func Open(path string, force bool) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", path, err)
	}
	d := &Dir{Path: path, Force: force, group: -1}
	// The packages run the daemons as the immune user: root writes the
	// tokens and lets that group read them.
	if os.Geteuid() == 0 {
		if g, err := user.LookupGroup("immune"); err == nil {
			d.group, _ = strconv.Atoi(g.Gid)
		}
	}
	return d, nil
}

// Join is the path of name in the directory.
func (d *Dir) Join(name string) string { return filepath.Join(d.Path, name) }

// Abs is the absolute path of name in the directory, as a config names
// the files beside it (the daemons' working directory is not this one).
func (d *Dir) Abs(name string) string {
	if p, err := filepath.Abs(d.Join(name)); err == nil {
		return p
	}
	return d.Join(name)
}

// WriteConfig writes a config file (0644: it holds no secret, only the
// names of the files that do).
func (d *Dir) WriteConfig(name string, text []byte) error {
	return d.write(name, text, 0o644, false)
}

// WriteToken writes a fresh random token (0600, or 0640 for the immune
// group when root runs this on a host with the packages installed), or
// keeps the one there.
func (d *Dir) WriteToken(name string) error {
	return d.write(name, []byte(NewToken()+"\n"), 0o600, true)
}

// CopyToken writes the token read from src (the coordinator's copy) as
// name, with a token's permissions.
func (d *Dir) CopyToken(name, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read token to copy: %w", err)
	}
	if len(b) == 0 {
		return fmt.Errorf("read token to copy: %s is empty", src)
	}
	return d.write(name, b, 0o600, true)
}

func (d *Dir) write(name string, data []byte, mode fs.FileMode, secret bool) error {
	path := d.Join(name)
	if _, err := os.Lstat(path); err == nil && !d.Force {
		d.Kept = append(d.Kept, path)
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("look at %s: %w", path, err)
	}
	if secret && d.group >= 0 {
		mode = 0o640
	}
	if err := renameio.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if secret && d.group >= 0 {
		if err := os.Chown(path, 0, d.group); err != nil {
			return fmt.Errorf("give %s to the immune group: %w", path, err)
		}
	}
	d.Written = append(d.Written, path)
	return nil
}

// NewToken is 32 random bytes in hex.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Do runs the steps that write the files, stopping at the first error,
// then reports what was written and kept.
func (d *Dir) Do(w io.Writer, steps ...func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	d.Report(w)
	return nil
}

// Report prints what was written and what was kept.
func (d *Dir) Report(w io.Writer) {
	for _, p := range d.Written {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	for _, p := range d.Kept {
		fmt.Fprintf(w, "kept  %s (it exists; --force overwrites it)\n", p)
	}
}

// DataDir is where a daemon keeps its state: /var/lib/<name> when the
// config goes to /etc/immune (the packages' layout), else beside it.
func DataDir(dir, name string) string {
	if abs, err := filepath.Abs(dir); err == nil && abs == "/etc/immune" {
		return filepath.Join("/var/lib", name)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "state"))
	if err != nil {
		return filepath.Join(dir, "state")
	}
	return abs
}
