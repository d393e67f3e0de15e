package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/immune-ops/immune/nagios"
)

const procsName = "check_procs"

func init() {
	Register(Spec{
		Name:    procsName,
		Summary: "number of processes, or their memory, CPU or age, matching filters",
		New:     newProcs,
	})
}

// procMetric is what -m judges: the number of matching processes, or a
// value of each one.
type procMetric int

const (
	metricProcs procMetric = iota
	metricVSZ
	metricRSS
	metricCPU
	metricElapsed
)

var procMetrics = map[string]procMetric{
	"PROCS": metricProcs, "VSZ": metricVSZ, "RSS": metricRSS, "CPU": metricCPU, "ELAPSED": metricElapsed,
}

// procFilter is the set of filters a process must all pass; nil means unset.
type procFilter struct {
	state    *string
	ppid     *int32
	uid      *uint32
	command  *string
	args     *string
	argsRE   *regexp.Regexp
	vsz, rss *int64
	pcpu     *float64
}

// procsCheck is one configured check_procs.
type procsCheck struct {
	thresholds nagios.Thresholds
	metricName string
	metric     procMetric
	filter     procFilter
	// with describes the filters for the status line, in command-line order.
	with       []string
	verbose    int
	noKthreads bool
	// byPID recognises this check's own process by its PID only (-T), not
	// also other processes running the same executable as check_procs.
	byPID bool
	// self and parent are never counted, as the twin never counts itself and
	// its parent; 0 is no process.
	self, parent int32
	timeout      *timeoutFlag
}

func newProcs(args []string) (Check, error) {
	f := newFlags(procsName,
		"-w <range> -c <range> [-m metric] [-s state] [-p ppid] [-u user] [-r rss] [-z vsz] [-P %cpu] [-a argument-array] [-C command] [-k] [-t timeout] [-v]",
		"Checks all processes and generates WARNING or CRITICAL states if the specified metric is outside the required threshold ranges. The metric defaults to number of processes. Search filters can be applied to limit the processes to check; a process must pass them all. The check never counts its own process, nor, when run as a plugin, the process that started it.")
	var o procsFlags
	o.declare(f)
	return parseBuild(f, args, o.build)
}

// procsFlags are check_procs' options as the command line gives them. The
// filters are parsed as they are read, so that the status line names them
// in command-line order.
type procsFlags struct {
	warn, crit, metric string
	timeout            *timeoutFlag
	verbose            int
	byPID, noKthreads  bool
	filter             procFilter
	with               []string
}

func (o *procsFlags) declare(f *flagSet) {
	f.StringVarP(&o.warn, "warning", "w", "", "Generate warning state if metric is outside this `RANGE`")
	f.StringVarP(&o.crit, "critical", "c", "", "Generate critical state if metric is outside this `RANGE`")
	f.StringVarP(&o.metric, "metric", "m", "PROCS", "Check thresholds against `TYPE`: PROCS (number of processes), VSZ (virtual memory size, KiB), RSS (resident set size, KiB), CPU (percentage CPU), ELAPSED (time elapsed in seconds)")
	o.timeout = f.timeout(10, nagios.Critical)
	f.CountVarP(&o.verbose, "verbose", "v", "Extra information: -v lists the processes over the thresholds, -vv every matching process")
	f.BoolVarP(&o.byPID, "traditional-filter", "T", false, "Recognise this check's own process by its PID only, not also other check_procs runs of the same executable by /proc/pid/exe")
	o.filterVar(f, "status", "s", "STATUSFLAGS", "Only scan for processes whose ps status flags contain STATUSFLAGS (for example R, Z, S, Ss, I<)", func(s string) (string, error) {
		if o.filter.state != nil {
			return "", nil
		}
		o.filter.state = &s
		return "STATE = " + s, nil
	})
	o.filterVar(f, "ppid", "p", "PPID", "Only scan for children of the parent process ID indicated", func(s string) (string, error) {
		n, err := parseCInt(s, 32)
		if err != nil {
			return "", errors.New("parent process ID must be an integer")
		}
		ppid := int32(n)
		o.filter.ppid = &ppid
		return fmt.Sprintf("PPID = %d", ppid), nil
	})
	o.filterVar(f, "vsz", "z", "VSZ", "Only scan for processes with VSZ (KiB) of at least VSZ", func(s string) (string, error) {
		n, err := parseCInt(s, 64)
		if err != nil {
			return "", errors.New("VSZ must be an integer")
		}
		o.filter.vsz = &n
		return fmt.Sprintf("VSZ >= %d", n), nil
	})
	o.filterVar(f, "rss", "r", "RSS", "Only scan for processes with RSS (KiB) of at least RSS", func(s string) (string, error) {
		n, err := parseCInt(s, 64)
		if err != nil {
			return "", errors.New("RSS must be an integer")
		}
		o.filter.rss = &n
		return fmt.Sprintf("RSS >= %d", n), nil
	})
	o.filterVar(f, "pcpu", "P", "PCPU", "Only scan for processes with a %CPU of at least PCPU", func(s string) (string, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return "", errors.New("PCPU must be a number")
		}
		o.filter.pcpu = &v
		return fmt.Sprintf("PCPU >= %.2f", v), nil
	})
	o.filterVar(f, "user", "u", "USER", "Only scan for processes with user name or ID indicated", func(s string) (string, error) {
		uid, name, err := lookupUser(s)
		if err != nil {
			return "", err
		}
		o.filter.uid = &uid
		return fmt.Sprintf("UID = %d (%s)", uid, name), nil
	})
	o.filterVar(f, "argument-array", "a", "STRING", "Only scan for processes with args that contain STRING", func(s string) (string, error) {
		if o.filter.args != nil {
			return "", nil
		}
		o.filter.args = &s
		return "args '" + s + "'", nil
	})
	o.filterVar(f, "ereg-argument-array", "", "REGEX", "Only scan for processes with args that contain the regular expression REGEX", func(s string) (string, error) {
		re, err := regexp.Compile(s)
		if err != nil {
			return "", fmt.Errorf("could not compile regular expression: %w", err)
		}
		o.filter.argsRE = re
		// The twin writes '|' as ',' so that the status line keeps no perfdata separator.
		return "regex args '" + strings.ReplaceAll(s, "|", ",") + "'", nil
	})
	o.filterVar(f, "command", "C", "COMMAND", "Only scan for exact matches of COMMAND (without path)", func(s string) (string, error) {
		if o.filter.command != nil {
			return "", nil
		}
		o.filter.command = &s
		return "command name '" + s + "'", nil
	})
	f.BoolVarP(&o.noKthreads, "no-kthreads", "k", false, "Only scan for non kernel threads")
	// The twin's help names --state and --traditional; getopt reaches the
	// latter by prefix. Both are spelled here as the twin's help spells them.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "state":
			return "status"
		case "traditional":
			return "traditional-filter"
		}
		return pflag.NormalizedName(name)
	})
}

// build checks the options f parsed and makes the check.
func (o *procsFlags) build(f *flagSet) (*procsCheck, error) {
	c := &procsCheck{
		self: int32(os.Getpid()), filter: o.filter, with: o.with,
		verbose: o.verbose, byPID: o.byPID, noKthreads: o.noKthreads, timeout: o.timeout,
	}
	warn, crit := o.warn, o.crit
	// Like the twin, bare arguments are the warning range, the critical
	// range and the status flags, in that order, for whichever is not set yet.
	rest := f.Args()
	if warn == "" && len(rest) > 0 {
		warn, rest = rest[0], rest[1:]
	}
	if crit == "" && len(rest) > 0 {
		crit, rest = rest[0], rest[1:]
	}
	if c.filter.state == nil && len(rest) > 0 {
		c.filter.state = &rest[0]
		c.with = append(c.with, "STATE = "+rest[0])
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return nil, f.failf("unexpected argument %q", rest[0])
	}
	var err error
	if c.thresholds, err = f.thresholds(warn, crit); err != nil {
		return nil, err
	}
	m, ok := procMetrics[o.metric]
	if !ok {
		return nil, f.failf("-m %q: metric must be one of PROCS, VSZ, RSS, CPU, ELAPSED", o.metric)
	}
	c.metric, c.metricName = m, o.metric
	return c, nil
}

// filterVar adds a filter option; set parses its value and returns the
// text the status line shows for it, or "" for a repeat the twin ignores.
func (o *procsFlags) filterVar(f *flagSet, name, short, placeholder, usage string, set func(string) (string, error)) {
	f.VarP(&filterValue{placeholder: placeholder, set: func(s string) error {
		desc, err := set(s)
		if desc != "" {
			o.with = append(o.with, desc)
		}
		return err
	}}, name, short, usage)
}

// filterValue is a pflag.Value that hands its text to a filter's parser.
type filterValue struct {
	placeholder, text string
	set               func(string) error
}

func (v *filterValue) String() string { return v.text }
func (v *filterValue) Type() string   { return v.placeholder }
func (v *filterValue) Set(s string) error {
	v.text = s
	return v.set(s)
}

// parseCInt reads an integer as the twin's sscanf("%d") does when nothing
// may follow it: leading blanks are allowed, trailing text is not.
func parseCInt(s string, bits int) (int64, error) {
	return strconv.ParseInt(strings.TrimLeft(s, " \t\n"), 10, bits)
}

// lookupUser resolves -u: a number is a UID, anything else a user name;
// either must exist, as in the twin.
func lookupUser(s string) (uint32, string, error) {
	var u *user.User
	var err error
	if _, numErr := strconv.Atoi(s); numErr == nil {
		u, err = user.LookupId(s)
	} else {
		u, err = user.Lookup(s)
	}
	if err != nil {
		return 0, "", fmt.Errorf("user %q was not found: %w", s, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("user %q has UID %q, not a number", s, u.Uid)
	}
	return uint32(uid), u.Username, nil
}

// Timeout is the -t option.
func (c *procsCheck) Timeout() time.Duration { return c.timeout.d }

// Run counts the matching processes and judges the count or, with -m, each
// one's value.
func (c *procsCheck) Run(ctx context.Context) nagios.Result {
	r, err := c.run(ctx)
	if err == nil {
		return r
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nagios.Resultf(c.timeout.state, "%s %s: timed out after %v reading processes", c.metricName, c.timeout.state, c.timeout.d)
	case ctx.Err() != nil:
		return nagios.Resultf(nagios.Unknown, "%s UNKNOWN: stopped reading processes: %v", c.metricName, ctx.Err())
	}
	return nagios.Resultf(nagios.Unknown, "%s UNKNOWN: %v", c.metricName, err)
}

func (c *procsCheck) run(ctx context.Context) (nagios.Result, error) {
	rd, err := openProcReader(ctx)
	if err != nil {
		return nagios.Result{}, fmt.Errorf("list processes in %s: %w", procPath(ctx), err)
	}
	defer rd.close()
	pids, err := rd.pids()
	if err != nil {
		return nagios.Result{}, fmt.Errorf("list processes in %s: %w", rd.root, err)
	}
	procs := rd.procs(len(pids))
	for i, pid := range pids {
		procs[i].pid = pid
	}
	needStat := c.needsStat()
	// The twin takes kernel threads to be the children of kthreadd, so
	// kthreadd must be known before any process is judged.
	var kthreadd int32
	if c.noKthreads {
		for i := range procs {
			if err := ctx.Err(); err != nil {
				return nagios.Result{}, err
			}
			p := &procs[i]
			err := rd.stat(p)
			if gone(err) {
				p.gone = true
				continue
			}
			if err != nil {
				return nagios.Result{}, err
			}
			if kthreadd == 0 && p.comm == "kthreadd" {
				kthreadd = p.pid
			}
		}
	}
	if c.filter.pcpu != nil || c.metric == metricCPU || c.metric == metricElapsed || c.verbose >= 2 {
		if err := rd.readUptime(); err != nil {
			return nagios.Result{}, err
		}
	}
	// Only a process started to run this one check has a parent (a shell, an
	// NRPE child) whose command line carries the check's own arguments;
	// inside the agent the parent is a service manager that an observer counts.
	parent := c.parent
	if parent == 0 && Standalone(ctx) {
		parent = int32(os.Getppid())
	}

	// counted is whether any process is one the twin counts, neither this
	// check at work nor a kernel thread left out by -k: with none, the run
	// found no processes at all, which is UNKNOWN.
	counted := false
	matched := make([]*proc, 0, len(procs))
	for i := range procs {
		if err := ctx.Err(); err != nil {
			return nagios.Result{}, err
		}
		p := &procs[i]
		if p.gone || p.pid == c.self || p.pid == parent {
			continue
		}
		if needStat {
			err := rd.stat(p)
			if gone(err) {
				continue
			}
			if err != nil {
				return nagios.Result{}, err
			}
			if c.noKthreads && kthreadd != 0 && p.ppid == kthreadd {
				continue
			}
		}
		// The filters come first: telling another check_procs run takes
		// the comm file, which a process the filters turn down then needs
		// only until one process is counted.
		ok, err := c.matches(rd, p)
		if err == nil && (ok || !counted) {
			var own bool
			if own, err = c.otherRun(rd, p); own {
				continue
			}
		}
		if gone(err) {
			continue
		}
		if err != nil {
			return nagios.Result{}, err
		}
		counted = true
		if ok {
			matched = append(matched, p)
		}
	}
	if !counted {
		return nagios.Resultf(nagios.Unknown, "%s UNKNOWN: no processes found in %s", c.metricName, rd.root), nil
	}
	return c.judge(rd, matched)
}

// needsStat says whether the options need the stat file of every process:
// without them a process costs the listing of /proc and its comm file.
func (c *procsCheck) needsStat() bool {
	f := &c.filter
	return c.noKthreads || f.ppid != nil || f.vsz != nil || f.pcpu != nil || f.state != nil ||
		c.metric == metricVSZ || c.metric == metricCPU || c.metric == metricElapsed || c.verbose >= 2
}

// otherRun reports whether p is another check_procs of this executable,
// which the twin leaves out as it leaves out itself, unless -T.
func (c *procsCheck) otherRun(rd *procReader, p *proc) (bool, error) {
	exe := procSelfExe()
	if c.byPID || exe == nil {
		return false, nil
	}
	comm, err := rd.comm(p)
	if err != nil || comm != procsName {
		return false, err
	}
	fi, err := os.Stat(rd.filePath(p.pid, "exe"))
	return err == nil && os.SameFile(fi, exe), nil
}

// matches applies the filters, cheapest first, so that a process's other
// files are read only when the filters before them let it through.
func (c *procsCheck) matches(rd *procReader, p *proc) (bool, error) {
	f := &c.filter
	if f.ppid != nil && p.ppid != *f.ppid || f.vsz != nil && p.vszKiB < *f.vsz {
		return false, nil
	}
	if f.command != nil {
		comm, err := rd.comm(p)
		if err != nil || psProg(comm) != *f.command {
			return false, err
		}
	}
	if f.state != nil {
		ok, err := rd.statHas(p, *f.state)
		if err != nil || !ok {
			return false, err
		}
	}
	if f.uid != nil {
		if euid, err := rd.euid(p); err != nil || euid != *f.uid {
			return false, err
		}
	}
	if f.rss != nil {
		rss, err := rd.rss(p)
		if err != nil || rss < *f.rss {
			return false, err
		}
	}
	if f.pcpu != nil && rd.pcpu(p) < *f.pcpu {
		return false, nil
	}
	if f.args != nil || f.argsRE != nil {
		return rd.argsMatch(p, func(args string) bool {
			return (f.args == nil || strings.Contains(args, *f.args)) && (f.argsRE == nil || f.argsRE.MatchString(args))
		})
	}
	return true, nil
}

// judge reports on the matching processes as the twin words it.
func (c *procsCheck) judge(rd *procReader, matched []*proc) (nagios.Result, error) {
	state := nagios.OK
	var warn, crit int
	var fails, long []string
	for _, p := range matched {
		if c.metric != metricProcs {
			v, err := c.value(rd, p)
			if gone(err) {
				continue
			}
			if err != nil {
				return nagios.Result{}, err
			}
			switch s := c.thresholds.State(v); s {
			case nagios.Warning, nagios.Critical:
				if c.verbose >= 1 {
					comm, err := rd.comm(p)
					if gone(err) {
						continue
					}
					if err != nil {
						return nagios.Result{}, err
					}
					fails = append(fails, psProg(comm))
				}
				if s == nagios.Warning {
					warn++
				} else {
					crit++
				}
				state = nagios.Worst(state, s)
			}
		}
		if c.verbose >= 2 {
			line, err := rd.describe(p)
			if err != nil && !gone(err) {
				return nagios.Result{}, err
			}
			if err == nil {
				long = append(long, line)
			}
		}
	}
	if c.metric == metricProcs {
		state = c.thresholds.State(float64(len(matched)))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", c.metricName, state)
	if c.metric != metricProcs {
		switch state {
		case nagios.Warning:
			fmt.Fprintf(&b, "%d warn out of ", warn)
		case nagios.Critical:
			fmt.Fprintf(&b, "%d crit, %d warn out of ", crit, warn)
		}
	}
	noun := "processes"
	if len(matched) == 1 {
		noun = "process"
	}
	fmt.Fprintf(&b, "%d %s", len(matched), noun)
	if len(c.with) > 0 {
		b.WriteString(" with " + strings.Join(c.with, ", "))
	}
	if c.verbose >= 1 && len(fails) > 0 {
		b.WriteString(" [" + strings.Join(fails, ", ") + "]")
	}

	r := nagios.Result{State: state, Output: b.String(), Long: strings.Join(long, "\n")}
	count := func(label string, n int) nagios.Perf {
		return nagios.Perf{Label: label, Value: float64(n), Min: nagios.Float(0)}
	}
	if c.metric == metricProcs {
		p := count("procs", len(matched))
		p.Warn, p.Crit = c.thresholds.Warn, c.thresholds.Crit
		r.Perf = []nagios.Perf{p}
	} else {
		r.Perf = []nagios.Perf{count("procs", len(matched)), count("procs_warn", warn), count("procs_crit", crit)}
	}
	return r, nil
}

// value is the per-process quantity -m judges.
func (c *procsCheck) value(rd *procReader, p *proc) (float64, error) {
	switch c.metric {
	case metricVSZ:
		return float64(p.vszKiB), nil
	case metricRSS:
		rss, err := rd.rss(p)
		return float64(rss), err
	case metricCPU:
		return rd.pcpu(p), nil
	default: // metricElapsed: the count (PROCS) is judged once, not per process
		return float64(rd.elapsed(p)), nil
	}
}

// proc is one process with the fields ps shows, each group read from its
// file only when a filter or the report asks for it.
type proc struct {
	pid  int32
	gone bool // it exited while the run read it

	// From the stat file, once statRead.
	statRead                   bool
	ppid, pgrp, session, tpgid int32
	state                      byte
	nice, threads              int64
	ticks, start               uint64 // CPU time used and start time since boot, in 1/userHZ s
	vszKiB                     int64

	// comm is the kernel's name of the process, from stat or the comm file.
	commRead bool
	comm     string

	statusRead bool
	euid       uint32
	locked     bool // some memory is locked (VmLck), ps's 'L'

	rssRead bool
	rssKiB  int64

	// cmdline is ps's args column for a process with a command line, "" for
	// one without.
	cmdlineRead bool
	cmdline     string
}

// psCommWidth is the width of ps's comm column, which cuts the longer names
// the kernel gives some of its threads ("kworker/0:0H-events_highpri").
const psCommWidth = 15

// psProg is the command name as the twin matches -C against it: ps's comm
// column with anything up to a '/' removed ("kworker/0:1" is "0:1").
func psProg(comm string) string {
	comm = comm[:min(len(comm), psCommWidth)]
	trimmed := strings.TrimRight(comm, "/")
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		return comm[i+1:]
	}
	return comm
}

// psStat is ps's STAT column, which -s matches as a substring: the state
// letter, then '<' or 'N' for the nice value, 'L' for locked memory, 's' for
// a session leader, 'l' for a multi-threaded process and '+' for one in
// the foreground process group of its terminal.
func (p *proc) psStat(locked bool) string {
	b := make([]byte, 0, 8)
	b = append(b, p.state)
	switch {
	case p.nice < 0:
		b = append(b, '<')
	case p.nice > 0:
		b = append(b, 'N')
	}
	if locked {
		b = append(b, 'L')
	}
	if p.session == p.pid {
		b = append(b, 's')
	}
	if p.threads > 1 {
		b = append(b, 'l')
	}
	if p.tpgid == p.pgrp {
		b = append(b, '+')
	}
	return string(b)
}

func noArgs(comm string, zombie bool) string {
	if zombie {
		return "[" + comm + "] <defunct>"
	}
	return "[" + comm + "]"
}

// psArgs writes a command line as ps does: the NULs between arguments and
// newlines as spaces, other control bytes and bytes that are not UTF-8 as '?'.
func psArgs(cmdline []byte) string {
	cmdline = bytes.TrimRight(cmdline, "\x00")
	var b strings.Builder
	b.Grow(len(cmdline))
	for i := 0; i < len(cmdline); {
		if c := cmdline[i]; c >= ' ' && c < 0x7f {
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(cmdline[i:])
		switch {
		case r == '\n', r == 0:
			b.WriteByte(' ')
		case r == utf8.RuneError && size == 1, r < ' ', r == 0x7f:
			b.WriteByte('?')
		default:
			b.Write(cmdline[i : i+size])
		}
		i += size
	}
	// The twin reads args after the blanks that end the comm column and
	// strips trailing blanks, so neither end keeps any.
	return strings.Trim(b.String(), " ")
}

// psEtime writes an age as ps's etime column does: [[dd-]hh:]mm:ss.
func psEtime(secs int64) string {
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	switch {
	case d > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	case h > 0:
		return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", m, s)
}
