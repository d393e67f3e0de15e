package checks

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_load",
		Summary: "load average over 1, 5 and 15 minutes, optionally per CPU",
		New:     newLoad,
	})
}

type loadCheck struct {
	warn, crit [3]float64
	perCPU     bool
	topProcs   int
}

func newLoad(args []string) (Check, error) {
	f := newFlags("check_load", "[-r] -w WLOAD1,WLOAD5,WLOAD15 -c CLOAD1,CLOAD5,CLOAD15 [-n NUMBER_OF_PROCS]",
		"This plugin tests the current system load average.")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if load average exceeds WLOADn")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if load average exceeds CLOADn")
	perCPU := f.BoolP("percpu", "r", false, "Divide the load averages by the number of CPUs")
	top := f.IntP("procs-to-show", "n", 0, "Number of processes to show when printing the top consuming processes (0: none)")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	c := &loadCheck{perCPU: *perCPU, topProcs: *top}
	var err error
	if c.warn, err = parseLoadTriplet(*warn); err != nil {
		return nil, f.failf("-w %q: warning threshold must be float or float triplet", *warn)
	}
	if c.crit, err = parseLoadTriplet(*crit); err != nil {
		return nil, f.failf("-c %q: critical threshold must be float or float triplet", *crit)
	}
	for i, minutes := range []int{1, 5, 15} {
		if c.warn[i] > c.crit[i] {
			return nil, f.failf("%d-minute warning load %g is greater than critical load %g", minutes, c.warn[i], c.crit[i])
		}
	}
	if c.topProcs < 0 {
		return nil, f.failf("-n %d: must not be negative", c.topProcs)
	}
	return c, nil
}

// parseLoadTriplet reads "5", "5,4" or "5,4,3"; missing values repeat the
// last one given, as check_load does.
func parseLoadTriplet(s string) ([3]float64, error) {
	var t [3]float64
	parts := strings.Split(s, ",")
	if s == "" || len(parts) > 3 {
		return t, fmt.Errorf("want 1 to 3 numbers, got %q", s)
	}
	for i := range t {
		p := parts[min(i, len(parts)-1)]
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 {
			return t, fmt.Errorf("%q is not a non-negative number", p)
		}
		t[i] = v
	}
	return t, nil
}

func (c *loadCheck) Run(ctx context.Context) nagios.Result {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return nagios.Resultf(nagios.Unknown, "LOAD UNKNOWN - could not read the load average: %v", err)
	}
	total := [3]float64{avg.Load1, avg.Load5, avg.Load15}
	judged := total
	if c.perCPU {
		n, err := cpu.CountsWithContext(ctx, true)
		if err != nil || n < 1 {
			n = runtime.NumCPU()
		}
		for i := range judged {
			judged[i] /= float64(n)
		}
	}
	state := nagios.OK
	for i := range judged {
		t := nagios.Thresholds{Warn: &nagios.Range{End: c.warn[i]}, Crit: &nagios.Range{End: c.crit[i]}}
		state = nagios.Worst(state, t.State(judged[i]))
	}

	r := nagios.Result{State: state}
	text := fmt.Sprintf("total load average: %.2f, %.2f, %.2f", total[0], total[1], total[2])
	if c.perCPU {
		text = fmt.Sprintf("scaled load average: %.2f, %.2f, %.2f - %s", judged[0], judged[1], judged[2], text)
	}
	r.Output = fmt.Sprintf("LOAD %s - %s", state, text)
	for i, label := range []string{"load1", "load5", "load15"} {
		p := nagios.Perf{Label: label, Value: total[i], Min: nagios.Float(0), Precision: 3}
		if !c.perCPU {
			p.Warn, p.Crit = &nagios.Range{End: c.warn[i]}, &nagios.Range{End: c.crit[i]}
			r.Perf = append(r.Perf, p)
			continue
		}
		r.Perf = append(r.Perf, p, nagios.Perf{
			Label: "scaled_" + label, Value: judged[i], Min: nagios.Float(0), Precision: 3,
			Warn: &nagios.Range{End: c.warn[i]}, Crit: &nagios.Range{End: c.crit[i]},
		})
	}
	if c.topProcs > 0 && state != nagios.OK {
		r.Long = topProcesses(ctx, c.topProcs)
	}
	return r
}

// topProcesses lists the n processes that used the most CPU over their lifetime.
func topProcesses(ctx context.Context, n int) string {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return "could not list processes: " + err.Error()
	}
	type row struct {
		pid  int32
		cpu  float64
		user string
		cmd  string
	}
	rows := make([]row, 0, len(procs))
	for _, p := range procs {
		pct, err := p.CPUPercentWithContext(ctx)
		if err != nil {
			continue
		}
		user, _ := p.UsernameWithContext(ctx)
		cmd, _ := p.CmdlineWithContext(ctx)
		if cmd == "" {
			cmd, _ = p.NameWithContext(ctx)
		}
		rows = append(rows, row{p.Pid, pct, user, cmd})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].cpu > rows[j].cpu })
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %-10s %5s %s", "PID", "USER", "%CPU", "COMMAND")
	for _, r := range rows[:min(n, len(rows))] {
		fmt.Fprintf(&b, "\n%7d %-10s %5.1f %s", r.pid, r.user, r.cpu, r.cmd)
	}
	return b.String()
}
