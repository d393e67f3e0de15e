package checks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	// PHP carries its own time zone database, so a PHP server may have no
	// /usr/share/zoneinfo to read the zone names in its log with.
	_ "time/tzdata"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_php_fatals",
		Summary: "PHP fatal errors (or lines matching a pattern) logged in the last interval",
		New:     newPHPFatals,
	})
}

const (
	defaultPHPPattern = "PHP Fatal error"
	// phpLogSlack is how far before the window a line's time may be before
	// reading stops: PHP-FPM workers write their lines in an order a few
	// seconds off the order of their timestamps.
	phpLogSlack = 5 * time.Minute
)

type phpFatalsCheck struct {
	log       string
	pattern   *regexp.Regexp
	interval  time.Duration
	th        nagios.Thresholds
	stateFile string
	timeout   *timeoutFlag
	// now and local are the clock and the zone of lines that name none;
	// tests set them.
	now   func() time.Time
	local *time.Location
}

func newPHPFatals(args []string) (Check, error) {
	f := newFlags("check_php_fatals", "-l LOG [-i SECONDS] [--pattern REGEXP] [-w RANGE] [-c RANGE] [--state-file PATH] [-t SECONDS]",
		"This plugin counts the lines of a PHP error log that match a pattern (PHP fatal errors by default)\n"+
			"and carry a timestamp within the last interval. It reads the log backwards from its end and\n"+
			"stops at the first line older than the interval, so the size of the log does not matter.")
	log := f.StringP("log", "l", "", "PHP error log to read (required)")
	interval := f.IntP("interval", "i", 1800, "Count the lines of the last SECONDS seconds")
	pattern := f.String("pattern", defaultPHPPattern, "Count lines matching this regular expression (RE2 syntax)")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if the count is outside RANGE")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if the count is outside RANGE")
	stateFile := f.String("state-file", "", "Remember here how far the log was read, so the next run reads only what was added")
	timeout := f.timeout(10, nagios.Unknown)
	if err := f.parse(args); err != nil {
		return nil, err
	}
	if *log == "" {
		return nil, f.failf("-l/--log: the PHP error log to read is required")
	}
	if *interval <= 0 {
		return nil, f.failf("-i/--interval %d: must be a positive number of seconds", *interval)
	}
	if *pattern == "" {
		return nil, f.failf("--pattern: must not be empty")
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		return nil, f.failf("--pattern %q: %v", *pattern, err)
	}
	th, err := f.thresholds(*warn, *crit)
	if err != nil {
		return nil, err
	}
	return &phpFatalsCheck{
		log: *log, pattern: re, interval: time.Duration(*interval) * time.Second, th: th,
		stateFile: *stateFile, timeout: timeout, now: time.Now, local: time.Local,
	}, nil
}

// Timeout is the -t option.
func (c *phpFatalsCheck) Timeout() time.Duration { return c.timeout.d }

// phpFatalsState is what --state-file keeps between runs: where reading
// stopped, and the matches seen so far that may still be in the window.
type phpFatalsState struct {
	Log      string      `json:"log"`
	Pattern  string      `json:"pattern"`
	Position logPosition `json:"position"`
	// Matches counts matching lines by the Unix second of their timestamp.
	Matches map[int64]int `json:"matches,omitempty"`
}

// Run counts the matching lines of the window and judges the count.
func (c *phpFatalsCheck) Run(ctx context.Context) nagios.Result {
	now := c.now()
	since := now.Add(-c.interval)
	count, note, err := c.count(ctx, since)
	if err != nil {
		state := nagios.Unknown
		if ctx.Err() != nil {
			state = c.timeout.state
		}
		return nagios.Resultf(state, "PHP FATALS %s - %v", state, err)
	}
	state := c.th.State(float64(count))
	what := "PHP Fatal errors"
	if c.pattern.String() != defaultPHPPattern {
		what = fmt.Sprintf("lines matching %q", c.pattern.String())
	}
	return nagios.Result{
		State:  state,
		Output: fmt.Sprintf("PHP FATALS %s - %d %s in %d second interval", state, count, what, int64(c.interval/time.Second)),
		Long:   note,
		Perf: []nagios.Perf{{
			Label: "fatals", Value: float64(count), Warn: c.th.Warn, Crit: c.th.Crit, Min: nagios.Float(0),
		}},
	}
}

// count counts the matching lines timestamped at since or later. note is
// for the long output: what the run had to do differently.
func (c *phpFatalsCheck) count(ctx context.Context, since time.Time) (count int, note string, err error) {
	f, err := os.Open(c.log)
	if err != nil {
		return 0, "", fmt.Errorf("cannot read PHP log %s: %w", c.log, pathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", fmt.Errorf("cannot read PHP log %s: %w", c.log, pathError(err))
	}
	if !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("cannot read PHP log %s: not a regular file", c.log)
	}

	var saved phpFatalsState
	from := int64(0)
	if c.stateFile != "" {
		found, err := loadState(c.stateFile, &saved)
		switch {
		case errors.Is(err, errCorruptState):
			note = fmt.Sprintf("%v; started afresh", err)
			saved = phpFatalsState{}
		case err != nil:
			return 0, "", fmt.Errorf("cannot use state file %s: %w", c.stateFile, pathError(err))
		case !found:
		case saved.Log != c.log || saved.Pattern != c.pattern.String():
			// Matches of another log or pattern say nothing about these.
			saved = phpFatalsState{}
		case saved.Position.continues(f, fi):
			from = saved.Position.Offset
		default:
			note = "the log was rotated since the last run: read the new file from its start"
		}
	}

	matches := map[int64]int{}
	for sec, n := range saved.Matches {
		if !time.Unix(sec, 0).Before(since) {
			matches[sec] += n
		}
	}
	clock := phpClock{local: c.local}
	stop := since.Add(-phpLogSlack)
	end, err := scanBackward(ctx, f, from, fi.Size(), func(line []byte) bool {
		t, ok := clock.parse(line)
		if !ok {
			return true
		}
		if t.Before(stop) {
			return false
		}
		if !t.Before(since) && c.pattern.Match(line) {
			matches[t.Unix()]++
		}
		return true
	})
	if err != nil {
		return 0, "", fmt.Errorf("read PHP log %s: %w", c.log, err)
	}
	for _, n := range matches {
		count += n
	}

	if c.stateFile != "" {
		pos, err := positionAt(f, fi, end)
		if err != nil {
			return 0, "", fmt.Errorf("read PHP log %s: %w", c.log, err)
		}
		st := phpFatalsState{Log: c.log, Pattern: c.pattern.String(), Position: pos, Matches: matches}
		if err := saveState(c.stateFile, st); err != nil {
			return 0, "", err
		}
	}
	return count, note, nil
}

// phpClock reads the timestamps PHP puts at the start of its log lines:
// "[21-Nov-2026 22:51:17 UTC] ", with a zone name, a UTC offset or, as
// PHP-FPM writes them, no zone at all (the server's local time). It caches
// the zones it has loaded; one phpClock serves one run.
type phpClock struct {
	local *time.Location
	zones map[string]*time.Location
}

var phpMonths = map[string]time.Month{
	"Jan": time.January, "Feb": time.February, "Mar": time.March, "Apr": time.April,
	"May": time.May, "Jun": time.June, "Jul": time.July, "Aug": time.August,
	"Sep": time.September, "Oct": time.October, "Nov": time.November, "Dec": time.December,
}

// parse returns the time a log line starts with; ok is false for lines that
// have none, such as the stack trace that follows a fatal error.
func (c *phpClock) parse(line []byte) (t time.Time, ok bool) {
	// "[dd-Mon-yyyy hh:mm:ss" is 21 bytes, then "]" or " zone]".
	const stamp = len("[21-Nov-2026 22:51:17")
	if len(line) < stamp+1 || line[0] != '[' || line[3] != '-' || line[7] != '-' ||
		line[12] != ' ' || line[15] != ':' || line[18] != ':' {
		return time.Time{}, false
	}
	month, ok := phpMonths[string(line[4:7])]
	if !ok {
		return time.Time{}, false
	}
	day, ok1 := phpNumber(line[1:3])
	year, ok2 := phpNumber(line[8:12])
	hour, ok3 := phpNumber(line[13:15])
	minute, ok4 := phpNumber(line[16:18])
	sec, ok5 := phpNumber(line[19:21])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	loc := c.local
	switch line[stamp] {
	case ']':
	case ' ':
		closing := -1
		for i := stamp + 1; i < len(line) && i <= stamp+1+maxZoneName; i++ {
			if line[i] == ']' {
				closing = i
				break
			}
		}
		if closing < 0 {
			return time.Time{}, false
		}
		if loc = c.zone(string(line[stamp+1 : closing])); loc == nil {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	t = time.Date(year, month, day, hour, minute, sec, 0, loc)
	if t.Day() != day {
		// 31-Feb and the like: time.Date would move it into the next month.
		return time.Time{}, false
	}
	return t, true
}

// maxZoneName bounds the zone names looked up: the longest in the time
// zone database is 32 bytes long.
const maxZoneName = 40

var zoneOffsetRE = lazyRegexp(`^[+-]\d\d:?\d\d$`)

// zone finds a zone by its name in the log, or nil for a name it does not know.
func (c *phpClock) zone(name string) *time.Location {
	if loc, seen := c.zones[name]; seen {
		return loc
	}
	var loc *time.Location
	switch {
	case name == "UTC":
		loc = time.UTC
	case zoneOffsetRE().MatchString(name):
		// PHP prints "+01:00" when date.timezone is set as an offset.
		h, _ := strconv.Atoi(name[1:3])
		m, _ := strconv.Atoi(name[len(name)-2:])
		secs := h*3600 + m*60
		if name[0] == '-' {
			secs = -secs
		}
		loc = time.FixedZone(name, secs)
	case validZoneName(name):
		if l, err := time.LoadLocation(name); err == nil {
			loc = l
		}
	}
	if c.zones == nil {
		c.zones = map[string]*time.Location{}
	}
	c.zones[name] = loc
	return loc
}

// validZoneName keeps garbage out of time.LoadLocation, which would
// otherwise try each one as a file name.
func validZoneName(name string) bool {
	if name == "" || name == "Local" {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '/' || r == '_' || r == '-' || r == '+') {
			return false
		}
	}
	return true
}

// phpNumber reads a fixed-width decimal number.
func phpNumber(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
