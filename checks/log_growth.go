package checks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_log_growth",
		Summary: "lines per second a log grew since the last run",
		New:     newLogGrowth,
	})
}

type logGrowthCheck struct {
	file      string
	th        nagios.Thresholds
	stateFile string
	timeout   *timeoutFlag
	now       func() time.Time // tests set it
}

func newLogGrowth(args []string) (Check, error) {
	f := newFlags("check_log_growth", "-f FILE [-w RANGE] [-c RANGE] [--state-file PATH | --state-dir DIR] [-t SECONDS]",
		"This plugin reports how many lines per second a log grew since its last run, counting only the\n"+
			"lines appended since then. The first run records where the log ends. A rotated log (renamed,\n"+
			"replaced or truncated) is counted from the start of the new file.")
	file := f.StringP("file", "f", "", "Log file to watch (required)")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if lines per second are outside RANGE")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if lines per second are outside RANGE")
	stateFile := f.String("state-file", "", "File that keeps the position and time of the last run (default: one per log in --state-dir)")
	stateDir := f.String("state-dir", "", "Directory of the state files (default: the user's cache directory/immune)")
	timeout := f.timeout(10, nagios.Unknown)
	if err := f.parse(args); err != nil {
		return nil, err
	}
	if *file == "" {
		return nil, f.failf("-f/--file: the log file to watch is required")
	}
	th, err := f.thresholds(*warn, *crit)
	if err != nil {
		return nil, err
	}
	c := &logGrowthCheck{file: *file, th: th, stateFile: *stateFile, timeout: timeout, now: time.Now}
	if c.stateFile == "" {
		dir := *stateDir
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				return nil, f.failf("no --state-file or --state-dir given, and no cache directory to keep state in: %v", err)
			}
			dir = filepath.Join(cache, "immune")
		}
		c.stateFile = filepath.Join(dir, growthStateName(c.file))
	}
	return c, nil
}

// growthStateName names the state file of one log: readable, and unique
// per path even where two logs share a base name.
func growthStateName(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	sum := sha256.Sum256([]byte(abs))
	base := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, filepath.Base(abs))
	return "log_growth-" + base + "-" + hex.EncodeToString(sum[:6]) + ".json"
}

// Timeout is the -t option.
func (c *logGrowthCheck) Timeout() time.Duration { return c.timeout.d }

// logGrowthState is what the state file keeps: where the log ended, and when.
type logGrowthState struct {
	File     string      `json:"file"`
	Position logPosition `json:"position"`
	Time     time.Time   `json:"time"`
}

// Run measures the growth since the last run and judges the rate.
func (c *logGrowthCheck) Run(ctx context.Context) nagios.Result {
	r, err := c.run(ctx)
	if err != nil {
		state := nagios.Unknown
		if ctx.Err() != nil {
			state = c.timeout.state
		}
		return nagios.Resultf(state, "LOG GROWTH %s - %v", state, err)
	}
	return r
}

func (c *logGrowthCheck) run(ctx context.Context) (nagios.Result, error) {
	now := c.now()
	f, err := os.Open(c.file)
	if err != nil {
		return nagios.Result{}, fmt.Errorf("cannot read log %s: %w", c.file, pathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nagios.Result{}, fmt.Errorf("cannot read log %s: %w", c.file, pathError(err))
	}
	if !fi.Mode().IsRegular() {
		return nagios.Result{}, fmt.Errorf("cannot read log %s: not a regular file", c.file)
	}
	size := fi.Size()
	pos, err := positionAt(f, fi, size)
	if err != nil {
		return nagios.Result{}, fmt.Errorf("read log %s: %w", c.file, err)
	}
	next := logGrowthState{File: c.file, Position: pos, Time: now}

	var saved logGrowthState
	found, err := loadState(c.stateFile, &saved)
	var note string
	switch {
	case errors.Is(err, errCorruptState):
		note = fmt.Sprintf("%v; recorded a new baseline", err)
		found = false
	case err != nil:
		return nagios.Result{}, fmt.Errorf("cannot use state file %s: %w", c.stateFile, pathError(err))
	case found && saved.File != c.file:
		note = fmt.Sprintf("state file %s was kept for %s; recorded a new baseline", c.stateFile, saved.File)
		found = false
	}
	if !found {
		if err := saveState(c.stateFile, next); err != nil {
			return nagios.Result{}, err
		}
		return nagios.Result{
			State:  nagios.OK,
			Output: fmt.Sprintf("LOG GROWTH OK - %s baseline recorded at %d bytes, rate from the next run", c.file, size),
			Long:   note,
		}, nil
	}

	elapsed := now.Sub(saved.Time)
	if elapsed <= 0 {
		// Keep the old state: the next run measures from it again.
		return nagios.Result{}, fmt.Errorf("no time has passed since the last run at %s (did the clock go back?)",
			saved.Time.Format(time.RFC3339))
	}
	from := saved.Position.Offset
	if !saved.Position.continues(f, fi) {
		from = 0
		note = "the log was rotated since the last run: counted the new file from its start"
	}
	lines, err := countNewlines(ctx, f, from, size)
	if err != nil {
		return nagios.Result{}, fmt.Errorf("read log %s: %w", c.file, err)
	}
	if err := saveState(c.stateFile, next); err != nil {
		return nagios.Result{}, err
	}
	rate := float64(lines) / elapsed.Seconds()
	state := c.th.State(rate)
	return nagios.Result{
		State: state,
		Output: fmt.Sprintf("LOG GROWTH %s - %s increasing by %.2f lines per second (%d lines over %d second period)",
			state, c.file, rate, lines, int64(elapsed.Round(time.Second)/time.Second)),
		Long: note,
		Perf: []nagios.Perf{{
			Label: "rate", Value: rate, Warn: c.th.Warn, Crit: c.th.Crit, Min: nagios.Float(0), Precision: 2,
		}},
	}, nil
}
