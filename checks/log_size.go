package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_log_size",
		Summary: "every file in a log directory under a size limit",
		New:     newLogSize,
	})
}

// logSizeShown is how many offending files the status line names; the
// long output lists them all when there are more.
const logSizeShown = 3

type logSizeCheck struct {
	dir        string
	glob       string
	recursive  bool
	warn, crit sizeLimit
	timeout    *timeoutFlag
}

// sizeLimit is a -w or -c size as given and in bytes; set is false when
// the option was not given.
type sizeLimit struct {
	text  string
	bytes int64
	set   bool
}

func (l sizeLimit) exceeded(size int64) bool { return l.set && size > l.bytes }

func (l sizeLimit) perf() *nagios.Range {
	if !l.set {
		return nil
	}
	return &nagios.Range{End: float64(l.bytes)}
}

func newLogSize(args []string) (Check, error) {
	f := newFlags("check_log_size", "-d DIR [--glob PATTERN] [-r] -w SIZE -c SIZE [-t SECONDS]",
		"This plugin checks that every file in a directory is no larger than a limit. Sizes are bytes\n"+
			"or a number with a unit: k, M, G or T (powers of 1024), as in 512k, 100M or 1.5G.")
	dir := f.StringP("directory", "d", "", "Directory whose files to check (required)")
	glob := f.String("glob", "", "Check only the files whose name matches this shell pattern, such as '*.log'")
	recursive := f.BoolP("recursive", "r", false, "Check the files in subdirectories too")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if a file is larger than SIZE")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if a file is larger than SIZE")
	timeout := f.timeout(10, nagios.Unknown)
	if err := f.parse(args); err != nil {
		return nil, err
	}
	if *dir == "" {
		return nil, f.failf("-d/--directory: the directory to check is required")
	}
	if *glob != "" {
		if _, err := filepath.Match(*glob, ""); err != nil {
			return nil, f.failf("--glob %q: %v", *glob, err)
		}
	}
	c := &logSizeCheck{dir: *dir, glob: *glob, recursive: *recursive, timeout: timeout}
	for _, o := range []struct {
		flag, text string
		dst        *sizeLimit
	}{{"-w", *warn, &c.warn}, {"-c", *crit, &c.crit}} {
		if o.text == "" {
			continue
		}
		n, err := parseLogSize(o.text)
		if err != nil {
			return nil, f.failf("%s %q: %v", o.flag, o.text, err)
		}
		*o.dst = sizeLimit{text: o.text, bytes: n, set: true}
	}
	if !c.warn.set && !c.crit.set {
		return nil, f.failf("-w or -c: a size limit is required")
	}
	return c, nil
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseLogSize reads "1048576", "512k", "100M", "1.5G" or "2TB": a number of
// bytes with an optional unit, in powers of 1024 as log sizes are usually
// thought of.
func parseLogSize(s string) (int64, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	if num == "" {
		return 0, errors.New("want a size such as 1048576, 512k, 100M or 1G")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q: use k, M, G or T", s[i:])
	}
	bytes := math.Round(v * mult)
	if bytes >= math.MaxInt64 {
		return 0, errors.New("too large")
	}
	return int64(bytes), nil
}

// formatLogSize writes n bytes in the largest unit that keeps the number at
// least 1, with one decimal: 512B, 1.5K, 2.1G.
func formatLogSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	unit := 0
	for v >= 1024 && unit < 4 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f%c", v, " KMGT"[unit])
}

// Timeout is the -t option.
func (c *logSizeCheck) Timeout() time.Duration { return c.timeout.d }

// sizedFile is one file checked, named relative to the directory.
type sizedFile struct {
	name string
	size int64
}

// Run lists the directory's files and judges each one's size.
func (c *logSizeCheck) Run(ctx context.Context) nagios.Result {
	fi, err := os.Stat(c.dir)
	if err != nil {
		return nagios.Resultf(nagios.Unknown, "LOG SIZE UNKNOWN - cannot read directory %s: %v", c.dir, pathError(err))
	}
	if !fi.IsDir() {
		return nagios.Resultf(nagios.Unknown, "LOG SIZE UNKNOWN - %s is not a directory", c.dir)
	}
	files, problems, err := c.list(ctx)
	if err != nil {
		state := nagios.Unknown
		if ctx.Err() != nil {
			state = c.timeout.state
		}
		return nagios.Resultf(state, "LOG SIZE %s - %v", state, err)
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].size > files[j].size })

	var largest int64
	if len(files) > 0 {
		largest = files[0].size
	}
	var over []sizedFile
	var long []string
	state := nagios.OK
	for _, f := range files {
		s, limit := nagios.OK, sizeLimit{}
		switch {
		case c.crit.exceeded(f.size):
			s, limit = nagios.Critical, c.crit
		case c.warn.exceeded(f.size):
			s, limit = nagios.Warning, c.warn
		default:
			continue
		}
		state = nagios.Worst(state, s)
		over = append(over, f)
		long = append(long, fmt.Sprintf("%s %s (%d bytes) is over the %s limit %s",
			f.name, formatLogSize(f.size), f.size, strings.ToLower(s.String()), limit.text))
	}
	if len(problems) > 0 {
		state = nagios.Worst(state, nagios.Unknown)
	}

	r := nagios.Result{State: state, Perf: []nagios.Perf{{
		Label: "largest", Value: float64(largest), UOM: "B",
		Warn: c.warn.perf(), Crit: c.crit.perf(), Min: nagios.Float(0),
	}}}
	switch {
	case len(over) > 0:
		shown := make([]string, 0, logSizeShown)
		for _, f := range over[:min(len(over), logSizeShown)] {
			shown = append(shown, f.name+" "+formatLogSize(f.size))
		}
		text := strings.Join(shown, ", ")
		if len(over) > logSizeShown {
			text += fmt.Sprintf(" and %d more", len(over)-logSizeShown)
		}
		r.Output = fmt.Sprintf("LOG SIZE %s - Files in %s too large: %s", state, c.dir, text)
		if len(over) <= logSizeShown {
			long = nil
		}
	case len(problems) > 0:
		r.Output = fmt.Sprintf("LOG SIZE %s - %s", state, problems[0])
	default:
		r.Output = fmt.Sprintf("LOG SIZE OK - All files in %s are of expected size", c.dir)
	}
	r.Long = strings.Join(append(long, problems...), "\n")
	return r
}

// list finds the files to check. Entries it cannot read below the directory
// are problems to report, not a reason to stop looking at the rest.
func (c *logSizeCheck) list(ctx context.Context) (files []sizedFile, problems []string, err error) {
	// WalkDir does not follow a symlink even as its root, and
	// /var/log/something -> /data/logs is common.
	root, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read directory %s: %w", c.dir, pathError(err))
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("list %s: %w", c.dir, ctxErr)
		}
		name, _ := filepath.Rel(root, path)
		if err != nil {
			if path == root {
				return fmt.Errorf("cannot read directory %s: %w", c.dir, pathError(err))
			}
			problems = append(problems, fmt.Sprintf("cannot read %s: %v", path, pathError(err)))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if path != root && !c.recursive {
				return fs.SkipDir
			}
			return nil
		}
		// Symlinks are skipped: the file they point to is checked where it
		// lives, and a link loop cannot trap the walk.
		if !d.Type().IsRegular() {
			return nil
		}
		if c.glob != "" {
			if ok, _ := filepath.Match(c.glob, d.Name()); !ok {
				return nil
			}
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			// Rotated away between listing and looking.
			return nil
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("cannot read %s: %v", path, pathError(err)))
			return nil
		}
		files = append(files, sizedFile{name: name, size: info.Size()})
		return nil
	})
	return files, problems, err
}
