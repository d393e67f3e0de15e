package agent

import (
	"context"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/net"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
)

// tcpErrorCounters are the counters of /proc/net/snmp's Tcp line that
// count trouble: failed connects, resets and bad segments.
var tcpErrorCounters = []string{"AttemptFails", "EstabResets", "InErrs", "OutRsts"}

// systemSample is one reading of the cumulative system counters.
type systemSample struct {
	at        time.Time
	cpuIdle   float64 // seconds idle (+iowait) over all CPUs
	cpuTotal  float64 // seconds of all CPU time
	tcpErrors int64
}

// Gauges reads the system gauges and the configured check gauges. Rates and
// percentages are over the time since the previous reading, so the sampler
// reads every few seconds and a snapshot takes the latest window.
type Gauges struct {
	host, hostType string
	checks         []conf.Gauge
	store          *Store

	mu          sync.Mutex
	prev, last  systemSample
	cpuIdlePct  float64
	tcpErrorsPM float64 // per minute
	sampledAt   time.Time
}

// NewGauges prepares the gauges of a host.
func NewGauges(host, hostType string, cfg []conf.Gauge, store *Store) *Gauges {
	return &Gauges{host: host, hostType: hostType, checks: cfg, store: store}
}

// Configure changes the check gauges, for a reloaded config.
func (g *Gauges) Configure(cfg []conf.Gauge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks = cfg
}

// sampleInterval is how often the system counters are read.
const sampleInterval = 5 * time.Second

// Run samples the system counters until ctx ends.
func (g *Gauges) Run(ctx context.Context) {
	g.sample(ctx)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.sample(ctx)
		}
	}
}

func (g *Gauges) sample(ctx context.Context) {
	s := systemSample{at: time.Now()}
	if times, err := cpu.TimesWithContext(ctx, false); err == nil && len(times) > 0 {
		t := times[0]
		s.cpuIdle = t.Idle + t.Iowait
		s.cpuTotal = t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	if counters, err := net.ProtoCountersWithContext(ctx, []string{"tcp"}); err == nil && len(counters) > 0 {
		for _, name := range tcpErrorCounters {
			s.tcpErrors += counters[0].Stats[name]
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.prev, g.last = g.last, s
	if g.prev.at.IsZero() {
		return
	}
	if d := g.last.cpuTotal - g.prev.cpuTotal; d > 0 {
		g.cpuIdlePct = 100 * (g.last.cpuIdle - g.prev.cpuIdle) / d
	}
	if secs := g.last.at.Sub(g.prev.at).Seconds(); secs > 0 {
		g.tcpErrorsPM = float64(g.last.tcpErrors-g.prev.tcpErrors) * 60 / secs
	}
	g.sampledAt = s.at
}

// Snapshot returns every gauge now.
func (g *Gauges) Snapshot(ctx context.Context) agentapi.Snapshot {
	now := time.Now()
	g.mu.Lock()
	hostType, checks := g.hostType, g.checks
	g.mu.Unlock()
	snap := agentapi.Snapshot{Host: g.host, HostType: hostType, TakenAt: now, Gauges: map[string]agentapi.Gauge{}, Missing: map[string]string{}}
	if avg, err := load.AvgWithContext(ctx); err == nil {
		snap.Gauges["loadavg1"] = agentapi.Gauge{Value: avg.Load1, At: now, Source: "system"}
		snap.Gauges["loadavg5"] = agentapi.Gauge{Value: avg.Load5, At: now, Source: "system"}
	} else {
		snap.Missing["loadavg1"] = "cannot read the load average: " + err.Error()
	}
	g.mu.Lock()
	if !g.sampledAt.IsZero() {
		snap.Gauges["cpu_idle"] = agentapi.Gauge{Value: g.cpuIdlePct, At: g.sampledAt, Source: "system"}
		snap.Gauges["tcp_errors"] = agentapi.Gauge{Value: g.tcpErrorsPM, At: g.sampledAt, Source: "system"}
	} else {
		snap.Missing["cpu_idle"] = "not sampled yet"
		snap.Missing["tcp_errors"] = "not sampled yet"
	}
	g.mu.Unlock()
	for _, cg := range checks {
		v, at, why := g.checkGauge(cg)
		if why != "" {
			snap.Missing[cg.Name] = why
			continue
		}
		snap.Gauges[cg.Name] = agentapi.Gauge{Value: v, At: at, Source: "check " + cg.Check}
	}
	if len(snap.Missing) == 0 {
		snap.Missing = nil
	}
	return snap
}

// checkGauge reads a configured gauge from its check's latest perfdata.
func (g *Gauges) checkGauge(cg conf.Gauge) (float64, time.Time, string) {
	st, ok := g.store.Get(cg.Check)
	if !ok || !st.Checked() {
		return 0, time.Time{}, "check " + cg.Check + " has not run yet"
	}
	p, found := perfItem(st.Perf, cg.Label)
	switch {
	case !found && cg.Label == "":
		return 0, time.Time{}, "check " + cg.Check + " gave no perfdata"
	case !found:
		return 0, time.Time{}, "check " + cg.Check + " gave no perfdata labelled " + cg.Label
	case p.Unknown:
		return 0, time.Time{}, "check " + cg.Check + " could not measure " + p.Label
	}
	return p.Value, st.LastCheck, ""
}

// perfItem finds the item labelled label, or the first item when label is empty.
func perfItem(items []nagios.Perf, label string) (nagios.Perf, bool) {
	for _, p := range items {
		if label == "" || p.Label == label {
			return p, true
		}
	}
	return nagios.Perf{}, false
}
