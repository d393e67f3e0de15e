package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/counters"
	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_counter",
		Summary: "events counted in memcached over the last minutes, with thresholds by time of week",
		New:     newCounter,
	})
}

// maxCounterBuckets is how far back -n may look: the counters' keys live
// two hours, and older minutes would read as zero.
const maxCounterBuckets = int(counters.DefaultTTL / time.Minute)

type counterCheck struct {
	host           string
	port           int
	name           string
	buckets        int
	rate           bool
	includeCurrent bool
	// base applies when no schedule matches, or none are given.
	base      counterRule
	schedules []counterRule
	loc       *time.Location
	timeout   *timeoutFlag
	now       func() time.Time // tests set it
}

// counterRule is a set of thresholds, and the state a missing counter
// gives, that applies at some times of the week.
type counterRule struct {
	name    string // shown in brackets; empty for the -w/-c of no schedule
	days    [7]bool
	spans   []minuteSpan // none: all day
	th      nagios.Thresholds
	missing nagios.State
}

// minuteSpan is a time of day [from, to) in minutes since midnight; from >
// to wraps past midnight.
type minuteSpan struct{ from, to int }

const counterAbout = `This plugin reads a counter kept in memcached by immune's counters package (or the PHP snippet in
counters/README.md): one key per minute, immune:c:NAME:UNIXMINUTE. It sums the last -n complete
minutes in one request and judges the count, or with --rate the count per minute. Low bounds are
what matter for business counters: -c 10: is CRITICAL when fewer than 10 were counted.

The current minute is still filling, so it is left out unless --include-current is given; then its
count so far is added and the total scaled back to -n minutes (count * n / (n + elapsed fraction)).

A counter with no key in any minute read (memcached restarted, or nothing counting) is UNKNOWN, or
the state --missing gives. memcached down is UNKNOWN: the counter cannot be read, and check_memcached
is the check that reports memcached itself. Not answering within -t gives -t's state (UNKNOWN).

--schedule NAME=WHEN[;-w RANGE][;-c RANGE][;--missing=STATE] sets thresholds for some times of the
week; the first schedule whose WHEN matches the time in --tz applies, else -w, -c and --missing.
A schedule's ranges replace -w and -c (a range it leaves out is not set); --missing is inherited.
WHEN is '*' (always), or days, times or both: days are Mon..Sun, ranges (Mon-Fri, Fri-Mon) and lists
(Sat,Sun); times are HH:MM-HH:MM, end excluded, lists allowed (09:00-12:00,13:00-17:00), and a span
that ends before it starts runs past midnight (22:00-06:00). Days and times are each tested against
the current local time. Example:
  --schedule 'Peak Hours=Mon-Fri 09:00-21:00;-w 50:;-c 20:' --schedule 'off-peak=*;-w 5:;-c 1:'`

func newCounter(args []string) (Check, error) {
	f := newFlags("check_counter", "-k NAME [-H HOST] [-p PORT] [-n MINUTES] [--rate] [--include-current] [-w RANGE] [-c RANGE]\n"+
		"  [--missing=STATE] [--schedule 'NAME=WHEN;-w RANGE;-c RANGE']... [--tz ZONE] [-t SECONDS]", counterAbout)
	host := f.StringP("hostname", "H", "127.0.0.1", "memcached host name, address or unix socket path")
	port := f.IntP("port", "p", defaultMemcachedPort, "memcached TCP port")
	name := f.StringP("counter", "k", "", "Name of the counter (required)")
	buckets := f.IntP("buckets", "n", 5, fmt.Sprintf("Number of complete minutes to sum (1-%d)", maxCounterBuckets))
	rate := f.Bool("rate", false, "Judge the count per minute instead of the count")
	includeCurrent := f.Bool("include-current", false, "Add the current minute so far, scaling the total back to -n minutes")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if the count (or rate) is outside RANGE")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if the count (or rate) is outside RANGE")
	missing := f.String("missing", "unknown", "State when the counter has no data at all: ok, warning, critical or unknown")
	schedules := f.StringArray("schedule", nil, "Thresholds for some times of the week: NAME=WHEN;-w RANGE;-c RANGE (repeatable, first match wins)")
	tz := f.String("tz", "Local", "Time zone the schedules are read in, such as Europe/Paris")
	timeout := f.timeout(10, nagios.Unknown)
	if err := f.parseNoArgs(args); err != nil {
		return nil, err
	}
	if err := checkHostPort(*host, *port); err != nil {
		return nil, f.fail(err)
	}
	if *name == "" {
		return nil, f.failf("-k/--counter: the counter's name is required")
	}
	if err := counters.ValidName(*name); err != nil {
		return nil, f.failf("-k/--counter: %v", err)
	}
	if *buckets < 1 || *buckets > maxCounterBuckets {
		return nil, f.failf("-n/--buckets %d: want 1 to %d minutes (the counters' keys live %v)", *buckets, maxCounterBuckets, counters.DefaultTTL)
	}
	c := &counterCheck{host: *host, port: *port, name: *name, buckets: *buckets, rate: *rate,
		includeCurrent: *includeCurrent, timeout: timeout, now: time.Now}
	var err error
	if c.base.th, err = f.thresholds(*warn, *crit); err != nil {
		return nil, err
	}
	if c.base.missing, err = parseMissing(*missing); err != nil {
		return nil, f.failf("--missing: %v", err)
	}
	if c.loc, err = time.LoadLocation(*tz); err != nil {
		return nil, f.failf("--tz %q: %v", *tz, err)
	}
	for _, text := range *schedules {
		s, err := parseCounterSchedule(text, c.base.missing)
		if err != nil {
			return nil, f.failf("--schedule %q: %v", text, err)
		}
		c.schedules = append(c.schedules, s)
	}
	return c, nil
}

func parseMissing(s string) (nagios.State, error) {
	switch strings.ToLower(s) {
	case "ok":
		return nagios.OK, nil
	case "warning":
		return nagios.Warning, nil
	case "critical":
		return nagios.Critical, nil
	case "unknown":
		return nagios.Unknown, nil
	}
	return nagios.Unknown, fmt.Errorf("%q is not ok, warning, critical or unknown", s)
}

// parseCounterSchedule reads NAME=WHEN[;-w RANGE][;-c RANGE][;--missing=STATE].
func parseCounterSchedule(text string, missing nagios.State) (counterRule, error) {
	parts := strings.Split(text, ";")
	name, when, ok := strings.Cut(parts[0], "=")
	r := counterRule{name: strings.TrimSpace(name), missing: missing}
	if !ok {
		return r, errors.New("want NAME=WHEN first, such as 'peak=Mon-Fri 09:00-21:00'")
	}
	if r.name == "" {
		return r, errors.New("empty schedule name")
	}
	if strings.ContainsAny(r.name, "[]|") || strings.ContainsFunc(r.name, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return r, fmt.Errorf("schedule name %q: no brackets, '|' or control characters", r.name)
	}
	if err := r.parseWhen(when); err != nil {
		return r, err
	}
	seen := map[string]bool{}
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		var flag, value string
		switch {
		case strings.HasPrefix(opt, "--missing="):
			flag, value = "--missing", strings.TrimPrefix(opt, "--missing=")
		case strings.HasPrefix(opt, "-w"), strings.HasPrefix(opt, "-c"):
			flag, value = opt[:2], strings.TrimSpace(opt[2:])
		default:
			return r, fmt.Errorf("option %q: want -w RANGE, -c RANGE or --missing=STATE", opt)
		}
		if seen[flag] {
			return r, fmt.Errorf("%s given twice", flag)
		}
		seen[flag] = true
		switch flag {
		case "--missing":
			st, err := parseMissing(value)
			if err != nil {
				return r, fmt.Errorf("--missing: %v", err)
			}
			r.missing = st
		default:
			rg, err := nagios.ParseRangeFlag(flag, value)
			if err != nil {
				return r, err
			}
			if flag == "-w" {
				r.th.Warn = &rg
			} else {
				r.th.Crit = &rg
			}
		}
	}
	return r, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseWhen reads '*', DAYS, TIMES or DAYS TIMES into r.
func (r *counterRule) parseWhen(when string) error {
	fields := strings.Fields(when)
	if len(fields) == 0 {
		return errors.New("empty WHEN: want '*', days, times or both")
	}
	if len(fields) == 1 && fields[0] == "*" {
		r.days = [7]bool{true, true, true, true, true, true, true}
		return nil
	}
	if len(fields) > 2 {
		return fmt.Errorf("WHEN %q: want days, times or 'DAYS TIMES'", when)
	}
	var days, times string
	switch {
	case len(fields) == 2:
		days, times = fields[0], fields[1]
	case strings.Contains(fields[0], ":"):
		times = fields[0]
	default:
		days = fields[0]
	}
	if err := r.parseDays(days); err != nil {
		return err
	}
	return r.parseTimes(times)
}

func (r *counterRule) parseDays(s string) error {
	if s == "" || s == "*" {
		r.days = [7]bool{true, true, true, true, true, true, true}
		return nil
	}
	for _, item := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, ok := weekdays[strings.ToLower(from)]
		if !ok {
			return fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", from)
		}
		b := a
		if isRange {
			if b, ok = weekdays[strings.ToLower(to)]; !ok {
				return fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			r.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func (r *counterRule) parseTimes(s string) error {
	if s == "" {
		return nil
	}
	for _, item := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(item, "-")
		if !ok {
			return fmt.Errorf("time span %q: want HH:MM-HH:MM", item)
		}
		a, err := parseClock(from, false)
		if err != nil {
			return err
		}
		b, err := parseClock(to, true)
		if err != nil {
			return err
		}
		if a == b {
			return fmt.Errorf("time span %q is empty", item)
		}
		r.spans = append(r.spans, minuteSpan{a, b})
	}
	return nil
}

// parseClock reads HH:MM as minutes since midnight; 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, fmt.Errorf("time %q: want HH:MM from 00:00 to 23:59 (24:00 as an end)", s)
	}
	return h*60 + m, nil
}

// matches reports whether the rule applies at t, in t's location.
func (r counterRule) matches(t time.Time) bool {
	if !r.days[t.Weekday()] {
		return false
	}
	if len(r.spans) == 0 {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	for _, s := range r.spans {
		if s.from < s.to && s.from <= m && m < s.to || s.from > s.to && (m >= s.from || m < s.to) {
			return true
		}
	}
	return false
}

// rule is the first schedule that matches now, else the -w/-c rule.
func (c *counterCheck) rule(now time.Time) counterRule {
	local := now.In(c.loc)
	for _, s := range c.schedules {
		if s.matches(local) {
			return s
		}
	}
	if len(c.schedules) > 0 {
		r := c.base
		r.name = "default"
		return r
	}
	return c.base
}

// Timeout is the -t option.
func (c *counterCheck) Timeout() time.Duration { return c.timeout.d }

// Run reads the counter and judges it against the rule in force now.
func (c *counterCheck) Run(ctx context.Context) nagios.Result {
	now := c.now()
	rule := c.rule(now)
	addr := memcachedAddr(c.host, c.port)
	reading, err := c.read(ctx, now)
	if err != nil {
		if timedOut(ctx) {
			return nagios.Resultf(c.timeout.state, "COUNTER %s - no answer from memcached at %s within %s seconds%s",
				c.timeout.state, addr, strconv.FormatFloat(c.timeout.d.Seconds(), 'f', -1, 64), rule.tag())
		}
		return nagios.Resultf(nagios.Unknown, "COUNTER UNKNOWN - %v%s", err, rule.tag())
	}
	return c.judge(reading, now, rule)
}

func (c *counterCheck) read(ctx context.Context, now time.Time) (counters.Reading, error) {
	mc := memcacheClient(ctx, c.host, c.port, c.timeout.d)
	defer mc.Close()
	cs, err := counters.New(mc, counters.Options{})
	if err != nil {
		return counters.Reading{}, err
	}
	rd, err := cs.Read(ctx, c.name, c.buckets, now)
	var dialErr *memcachedDialError
	if errors.As(err, &dialErr) {
		return rd, fmt.Errorf("cannot read counter %s: %w", c.name, dialErr)
	}
	if err != nil {
		return rd, fmt.Errorf("memcached at %s: %w", memcachedAddr(c.host, c.port), err)
	}
	return rd, nil
}

// tag is how the output names the rule: " [Peak Hours]", or nothing
// without schedules.
func (r counterRule) tag() string {
	if r.name == "" {
		return ""
	}
	return " [" + r.name + "]"
}

func (c *counterCheck) judge(rd counters.Reading, now time.Time, rule counterRule) nagios.Result {
	judged := rd.Complete
	span := float64(c.buckets) // minutes
	if c.includeCurrent {
		judged = append(judged, rd.Current)
		span += now.Sub(rd.Current.Start()).Seconds() / 60
	}
	long := c.breakdown(rd)
	countPerf := nagios.Perf{Label: c.name, Min: nagios.Float(0)}
	ratePerf := nagios.Perf{Label: c.name + "_per_min", Min: nagios.Float(0), Precision: 2}
	judgedPerf := &countPerf
	if c.rate {
		judgedPerf = &ratePerf
	}
	judgedPerf.Warn, judgedPerf.Crit = rule.th.Warn, rule.th.Crit

	window := "the last " + minuteCount(c.buckets, "")
	if c.includeCurrent {
		window += " and the current one"
	}
	if !counters.AnyPresent(judged...) {
		countPerf.Unknown, ratePerf.Unknown = true, true
		return nagios.Result{
			State: rule.missing,
			Output: fmt.Sprintf("COUNTER %s - no data for counter %s in %s (memcached restarted or nothing counting?)%s",
				rule.missing, c.name, window, rule.tag()),
			Long: long,
			Perf: []nagios.Perf{countPerf, ratePerf},
		}
	}

	total := counters.Total(judged...)
	rate := float64(total) / span
	count := float64(total)
	var text string
	if c.includeCurrent {
		count = rate * float64(c.buckets)
		countPerf.Precision = 1
		text = fmt.Sprintf("%.1f per %s, scaled from %d in the last %.1f minutes with the current one (%.1f/min)",
			count, minuteCount(c.buckets, ""), total, span, rate)
	} else {
		text = fmt.Sprintf("%d in the last %s (%.1f/min)", total, minuteCount(c.buckets, "complete "), rate)
	}
	countPerf.Value, ratePerf.Value = count, rate
	state := rule.th.State(count)
	if c.rate {
		state = rule.th.State(rate)
	}
	return nagios.Result{
		State:  state,
		Output: fmt.Sprintf("COUNTER %s - %s: %s%s", state, c.name, text, rule.tag()),
		Long:   long,
		Perf:   []nagios.Perf{countPerf, ratePerf},
	}
}

// minuteCount is "1 minute" or "N minutes", with an adjective between.
func minuteCount(n int, adjective string) string {
	s := strconv.Itoa(n) + " " + adjective + "minute"
	if n != 1 {
		s += "s"
	}
	return s
}

// breakdown lists the minutes read, oldest first, in --tz: "14:02 12",
// or "14:03 -" for a minute with no key.
func (c *counterCheck) breakdown(rd counters.Reading) string {
	var b strings.Builder
	b.WriteString("per minute, oldest first:")
	write := func(bk counters.Bucket, suffix string) {
		fmt.Fprintf(&b, " %s ", bk.Start().In(c.loc).Format("15:04"))
		if bk.Present {
			b.WriteString(strconv.FormatUint(bk.Count, 10))
		} else {
			b.WriteByte('-')
		}
		b.WriteString(suffix)
	}
	for _, bk := range rd.Complete {
		write(bk, ",")
	}
	write(rd.Current, " (current)")
	return b.String()
}
