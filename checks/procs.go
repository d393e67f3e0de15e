package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/shirou/gopsutil/v4/process"
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
	c := &procsCheck{self: int32(os.Getpid())}
	warn := f.StringP("warning", "w", "", "Generate warning state if metric is outside this `RANGE`")
	crit := f.StringP("critical", "c", "", "Generate critical state if metric is outside this `RANGE`")
	metric := f.StringP("metric", "m", "PROCS", "Check thresholds against `TYPE`: PROCS (number of processes), VSZ (virtual memory size, KiB), RSS (resident set size, KiB), CPU (percentage CPU), ELAPSED (time elapsed in seconds)")
	c.timeout = f.timeout(10, nagios.Critical)
	f.CountVarP(&c.verbose, "verbose", "v", "Extra information: -v lists the processes over the thresholds, -vv every matching process")
	f.BoolVarP(&c.byPID, "traditional-filter", "T", false, "Recognise this check's own process by its PID only, not also other check_procs runs of the same executable by /proc/pid/exe")
	c.filterVar(f, "status", "s", "STATUSFLAGS", "Only scan for processes whose ps status flags contain STATUSFLAGS (for example R, Z, S, Ss, I<)", func(s string) (string, error) {
		if c.filter.state != nil {
			return "", nil
		}
		c.filter.state = &s
		return "STATE = " + s, nil
	})
	c.filterVar(f, "ppid", "p", "PPID", "Only scan for children of the parent process ID indicated", func(s string) (string, error) {
		n, err := parseCInt(s, 32)
		if err != nil {
			return "", errors.New("parent process ID must be an integer")
		}
		ppid := int32(n)
		c.filter.ppid = &ppid
		return fmt.Sprintf("PPID = %d", ppid), nil
	})
	c.filterVar(f, "vsz", "z", "VSZ", "Only scan for processes with VSZ (KiB) of at least VSZ", func(s string) (string, error) {
		n, err := parseCInt(s, 64)
		if err != nil {
			return "", errors.New("VSZ must be an integer")
		}
		c.filter.vsz = &n
		return fmt.Sprintf("VSZ >= %d", n), nil
	})
	c.filterVar(f, "rss", "r", "RSS", "Only scan for processes with RSS (KiB) of at least RSS", func(s string) (string, error) {
		n, err := parseCInt(s, 64)
		if err != nil {
			return "", errors.New("RSS must be an integer")
		}
		c.filter.rss = &n
		return fmt.Sprintf("RSS >= %d", n), nil
	})
	c.filterVar(f, "pcpu", "P", "PCPU", "Only scan for processes with a %CPU of at least PCPU", func(s string) (string, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return "", errors.New("PCPU must be a number")
		}
		c.filter.pcpu = &v
		return fmt.Sprintf("PCPU >= %.2f", v), nil
	})
	c.filterVar(f, "user", "u", "USER", "Only scan for processes with user name or ID indicated", func(s string) (string, error) {
		uid, name, err := lookupUser(s)
		if err != nil {
			return "", err
		}
		c.filter.uid = &uid
		return fmt.Sprintf("UID = %d (%s)", uid, name), nil
	})
	c.filterVar(f, "argument-array", "a", "STRING", "Only scan for processes with args that contain STRING", func(s string) (string, error) {
		if c.filter.args != nil {
			return "", nil
		}
		c.filter.args = &s
		return "args '" + s + "'", nil
	})
	c.filterVar(f, "ereg-argument-array", "", "REGEX", "Only scan for processes with args that contain the regular expression REGEX", func(s string) (string, error) {
		re, err := regexp.Compile(s)
		if err != nil {
			return "", fmt.Errorf("could not compile regular expression: %w", err)
		}
		c.filter.argsRE = re
		// The twin writes '|' as ',' so that the status line keeps no perfdata separator.
		return "regex args '" + strings.ReplaceAll(s, "|", ",") + "'", nil
	})
	c.filterVar(f, "command", "C", "COMMAND", "Only scan for exact matches of COMMAND (without path)", func(s string) (string, error) {
		if c.filter.command != nil {
			return "", nil
		}
		c.filter.command = &s
		return "command name '" + s + "'", nil
	})
	f.BoolVarP(&c.noKthreads, "no-kthreads", "k", false, "Only scan for non kernel threads")
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
	if err := f.parse(args); err != nil {
		return nil, err
	}

	// Like the twin, bare arguments are the warning range, the critical
	// range and the status flags, in that order, for whichever is not set yet.
	rest := f.Args()
	if *warn == "" && len(rest) > 0 {
		*warn, rest = rest[0], rest[1:]
	}
	if *crit == "" && len(rest) > 0 {
		*crit, rest = rest[0], rest[1:]
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
	if c.thresholds, err = f.thresholds(*warn, *crit); err != nil {
		return nil, err
	}
	m, ok := procMetrics[*metric]
	if !ok {
		return nil, f.failf("-m %q: metric must be one of PROCS, VSZ, RSS, CPU, ELAPSED", *metric)
	}
	c.metric, c.metricName = m, *metric
	return c, nil
}

// filterVar adds a filter option; set parses its value and returns the
// text the status line shows for it, or "" for a repeat the twin ignores.
func (c *procsCheck) filterVar(f *flagSet, name, short, placeholder, usage string, set func(string) (string, error)) {
	f.VarP(&filterValue{placeholder: placeholder, set: func(s string) error {
		desc, err := set(s)
		if desc != "" {
			c.with = append(c.with, desc)
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
	rd := &procReader{ctx: ctx}
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nagios.Result{}, fmt.Errorf("list processes in %s: %w", rd.path(), err)
	}
	// The twin takes kernel threads to be the children of kthreadd, so
	// kthreadd must be known before any process is judged.
	all := make([]*proc, 0, len(pids))
	var kthreadd int32
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nagios.Result{}, err
		}
		p, err := rd.stat(pid)
		if gone(err) {
			continue
		}
		if err != nil {
			return nagios.Result{}, err
		}
		if kthreadd == 0 && p.comm == "kthreadd" {
			kthreadd = p.pid
		}
		all = append(all, p)
	}
	if c.filter.pcpu != nil || c.metric == metricCPU || c.metric == metricElapsed || c.verbose >= 2 {
		if err := rd.readUptime(); err != nil {
			return nagios.Result{}, err
		}
	}
	// Without it, other check_procs runs of this executable cannot be told
	// apart, and only this process itself is left out.
	exe, _ := os.Stat("/proc/self/exe")
	// Only a process started to run this one check has a parent (a shell, an
	// NRPE child) whose command line carries the check's own arguments;
	// inside the agent the parent is a service manager that an observer counts.
	parent := c.parent
	if parent == 0 && Standalone(ctx) {
		parent = int32(os.Getppid())
	}

	found := 0
	var matched []*proc
	for _, p := range all {
		if err := ctx.Err(); err != nil {
			return nagios.Result{}, err
		}
		if c.ownProcess(rd, p, exe, parent) || (c.noKthreads && kthreadd != 0 && p.ppid == kthreadd) {
			continue
		}
		ok, err := c.matches(rd, p)
		if gone(err) {
			continue
		}
		if err != nil {
			return nagios.Result{}, err
		}
		found++
		if ok {
			matched = append(matched, p)
		}
	}
	if found == 0 {
		return nagios.Resultf(nagios.Unknown, "%s UNKNOWN: no processes found in %s", c.metricName, rd.path()), nil
	}
	return c.judge(rd, matched)
}

// ownProcess reports whether p is this check at work: this process, the one
// that started it, or (without -T) another check_procs of this executable.
func (c *procsCheck) ownProcess(rd *procReader, p *proc, exe os.FileInfo, parent int32) bool {
	if p.pid == c.self || p.pid == parent {
		return true
	}
	if c.byPID || exe == nil || p.comm != procsName {
		return false
	}
	fi, err := os.Stat(rd.path(strconv.Itoa(int(p.pid)), "exe"))
	return err == nil && os.SameFile(fi, exe)
}

// matches applies the filters, cheapest first, so that a process's other
// files are read only when the filters from its stat file let it through.
func (c *procsCheck) matches(rd *procReader, p *proc) (bool, error) {
	f := &c.filter
	if f.ppid != nil && p.ppid != *f.ppid ||
		f.command != nil && p.prog() != *f.command ||
		f.vsz != nil && p.vszKiB < *f.vsz {
		return false, nil
	}
	if f.state != nil || f.uid != nil {
		if err := rd.status(p); err != nil {
			return false, err
		}
		if f.state != nil && !strings.Contains(p.psStat(), *f.state) || f.uid != nil && p.euid != *f.uid {
			return false, nil
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
		args, err := rd.args(p)
		if err != nil {
			return false, err
		}
		if f.args != nil && !strings.Contains(args, *f.args) || f.argsRE != nil && !f.argsRE.MatchString(args) {
			return false, nil
		}
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
				if s == nagios.Warning {
					warn++
				} else {
					crit++
				}
				fails = append(fails, p.prog())
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

// userHZ is the unit of the times in /proc/<pid>/stat. Linux fixes USER_HZ
// at 100 in the user-space ABI of every architecture.
const userHZ = 100

// proc is one process with the fields ps shows. Those of the stat file are
// always there; the rest are read on demand by procReader.
type proc struct {
	pid, ppid, pgrp, session, tpgid int32
	comm                            string
	state                           byte
	nice, threads                   int64
	ticks, start                    uint64 // CPU time used and start time since boot, in 1/userHZ s
	vszKiB                          int64

	statusRead bool
	euid       uint32
	locked     bool // some memory is locked (VmLck), ps's 'L'

	rssKiB  *int64
	argText *string
}

// psCommWidth is the width of ps's comm column, which cuts the longer names
// the kernel gives some of its threads ("kworker/0:0H-events_highpri").
const psCommWidth = 15

// prog is the command name as the twin matches -C against it: ps's comm
// column with anything up to a '/' removed ("kworker/0:1" is "0:1").
func (p *proc) prog() string {
	comm := p.comm[:min(len(p.comm), psCommWidth)]
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
func (p *proc) psStat() string {
	b := []byte{p.state}
	switch {
	case p.nice < 0:
		b = append(b, '<')
	case p.nice > 0:
		b = append(b, 'N')
	}
	if p.locked {
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

// procReader reads processes' files under one /proc root, each at most once
// and only when asked. It reads stat and status itself: gopsutil's getters
// would read stat once per field, take the nice value from the live system
// rather than the tree, lengthen comm from the command line, and fold state
// letters together, so ps's view of -C and -s could not be rebuilt.
type procReader struct {
	ctx    context.Context
	uptime float64 // seconds since boot, once readUptime has run
}

// path is where an entry of /proc is, with the root that WithProcRoot or
// HOST_PROC gives gopsutil, so both read the same tree.
func (rd *procReader) path(elem ...string) string { return procPath(rd.ctx, elem...) }

func (rd *procReader) stat(pid int32) (*proc, error) {
	path := rd.path(strconv.Itoa(int(pid)), "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	p, err := parseProcStat(string(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return p, nil
}

// parseProcStat reads the fields of /proc/<pid>/stat that ps shows. The
// command name is in parentheses and may itself hold spaces and ')'.
func parseProcStat(s string) (*proc, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil, errors.New("no command name in parentheses")
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 21 {
		return nil, fmt.Errorf("%d fields after the command name, want at least 21", len(f))
	}
	if len(f[0]) != 1 {
		return nil, fmt.Errorf("state %q is not one letter", f[0])
	}
	var errs []error
	num := func(text string, bits int) int64 {
		v, err := strconv.ParseInt(text, 10, bits)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	unum := func(text string) uint64 {
		v, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	p := &proc{
		pid:     int32(num(strings.TrimSpace(s[:open]), 32)),
		comm:    s[open+1 : end],
		state:   f[0][0],
		ppid:    int32(num(f[1], 32)),
		pgrp:    int32(num(f[2], 32)),
		session: int32(num(f[3], 32)),
		tpgid:   int32(num(f[5], 32)),
		ticks:   unum(f[11]) + unum(f[12]),
		nice:    num(f[16], 64),
		threads: num(f[17], 64),
		start:   unum(f[19]),
		vszKiB:  int64(unum(f[20]) / 1024),
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// status reads the effective UID (ps's uid) and VmLck from the status file.
func (rd *procReader) status(p *proc) error {
	if p.statusRead {
		return nil
	}
	path := rd.path(strconv.Itoa(int(p.pid)), "status")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if p.euid, p.locked, err = parseProcStatus(string(b)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	p.statusRead = true
	return nil
}

func parseProcStatus(s string) (euid uint32, locked bool, err error) {
	haveUID := false
	for line := range strings.Lines(s) {
		key, value, _ := strings.Cut(line, ":")
		fields := strings.Fields(value)
		switch key {
		case "Uid":
			if len(fields) < 2 {
				return 0, false, fmt.Errorf("line %q has no effective UID", strings.TrimSpace(line))
			}
			v, err := strconv.ParseUint(fields[1], 10, 32)
			if err != nil {
				return 0, false, fmt.Errorf("line %q: %w", strings.TrimSpace(line), err)
			}
			euid, haveUID = uint32(v), true
		case "VmLck":
			locked = len(fields) > 0 && fields[0] != "0"
		}
	}
	if !haveUID {
		return 0, false, errors.New("no Uid line")
	}
	return euid, locked, nil
}

// rss is the resident set in KiB, from statm as ps reads it.
func (rd *procReader) rss(p *proc) (int64, error) {
	if p.rssKiB == nil {
		mem, err := (&process.Process{Pid: p.pid}).MemoryInfoWithContext(rd.ctx)
		if err != nil {
			return 0, fmt.Errorf("read memory of process %d: %w", p.pid, err)
		}
		kib := int64(mem.RSS / 1024)
		p.rssKiB = &kib
	}
	return *p.rssKiB, nil
}

// args is ps's args column: the command line with its NULs and newlines as
// spaces and other control bytes as '?', or "[comm]" when it is empty, as
// for kernel threads, with " <defunct>" for a zombie.
func (rd *procReader) args(p *proc) (string, error) {
	if p.argText != nil {
		return *p.argText, nil
	}
	parts, err := (&process.Process{Pid: p.pid}).CmdlineSliceWithContext(rd.ctx)
	if err != nil {
		return "", fmt.Errorf("read command line of process %d: %w", p.pid, err)
	}
	text := psArgs(strings.Join(parts, " "))
	if text == "" {
		text = "[" + p.comm + "]"
		if p.state == 'Z' {
			text += " <defunct>"
		}
	}
	p.argText = &text
	return text, nil
}

func psArgs(cmdline string) string {
	var b strings.Builder
	for i := 0; i < len(cmdline); {
		r, size := utf8.DecodeRuneInString(cmdline[i:])
		switch {
		case r == '\n':
			b.WriteByte(' ')
		case r == utf8.RuneError && size == 1, r < ' ', r == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteString(cmdline[i : i+size])
		}
		i += size
	}
	// The twin reads args after the blanks that end the comm column and
	// strips trailing blanks, so neither end keeps any.
	return strings.Trim(b.String(), " ")
}

// readUptime reads the seconds since boot, which ps measures ages from.
func (rd *procReader) readUptime() error {
	path := rd.path("uptime")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return fmt.Errorf("read %s: empty", path)
	}
	up, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || up < 0 || math.IsInf(up, 0) {
		return fmt.Errorf("read %s: uptime %q is not a number of seconds", path, fields[0])
	}
	rd.uptime = up
	return nil
}

// elapsed is the process's age in whole seconds, ps's etime.
func (rd *procReader) elapsed(p *proc) int64 {
	return max(0, int64(rd.uptime-float64(p.start)/userHZ))
}

// pcpu is ps's %CPU: CPU time over the process's whole life, truncated to
// tenths of a percent, and to whole percents from 100% up, as procps does.
func (rd *procReader) pcpu(p *proc) float64 {
	secs := rd.elapsed(p)
	if secs == 0 {
		return 0
	}
	tenths := p.ticks * 1000 / userHZ / uint64(secs)
	if tenths > 999 {
		return float64(tenths / 10)
	}
	return float64(tenths) / 10
}

// describe is the twin's -vv line for a matching process.
func (rd *procReader) describe(p *proc) (string, error) {
	err := rd.status(p)
	rss, rssErr := rd.rss(p)
	args, argsErr := rd.args(p)
	return fmt.Sprintf("Matched: uid=%d vsz=%d rss=%d pid=%d ppid=%d pcpu=%.2f stat=%s etime=%s prog=%s args=%s",
		p.euid, p.vszKiB, rss, p.pid, p.ppid, rd.pcpu(p), p.psStat(), psEtime(rd.elapsed(p)), p.prog(), args), errors.Join(err, rssErr, argsErr)
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

// gone reports whether err says the process exited while it was being read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}
