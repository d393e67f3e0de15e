package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
)

// passiveCheckName is the agent's own check of passive submission: it is
// scheduled, served over NRPE and the API, and submitted, like any other.
const passiveCheckName = "immune_passive"

// passiveCheck reports whether passive results are kept and delivered, so
// that a spool the agent cannot use, which no longer stops the agent,
// shows where Nagios looks.
type passiveCheck struct{ p *Passive }

// passiveJob is the scheduled job of the passive check: hard at the first
// problem, since a problem here is already one that loses or delays results.
func passiveJob(p *Passive) *job {
	critical := conf.State(nagios.Critical)
	return &job{
		cfg: conf.Check{
			Name:             passiveCheckName,
			Interval:         conf.Duration(time.Minute),
			RetryInterval:    conf.Duration(15 * time.Second),
			MaxCheckAttempts: 1,
			Timeout:          conf.Duration(conf.DefaultTimeout),
			TimeoutState:     &critical,
		},
		check: passiveCheck{p},
	}
}

// Run is CRITICAL while the spool's directory cannot be used (results are
// in memory only, lost if the agent stops), WARNING while its disk takes
// no writes or a target is down, and OK otherwise.
func (c passiveCheck) Run(context.Context) nagios.Result {
	h := c.p.spool.Health()
	state := nagios.OK
	var problems []string
	switch {
	case h.OpenErr != nil:
		state = nagios.Critical
		problems = append(problems, fmt.Sprintf("spool %s cannot be used (%v): %d results held in memory only, lost if the agent stops",
			h.Dir, h.OpenErr, h.InMemory))
	case h.WriteErr != nil:
		state = nagios.Warning
		problems = append(problems, fmt.Sprintf("spool %s cannot be written (%v): %d results held in memory", h.Dir, h.WriteErr, h.InMemory))
	}
	var queues []string
	perf := []nagios.Perf{{Label: "in_memory", Value: float64(h.InMemory), Min: nagios.Float(0)}}
	for _, t := range c.p.Targets() {
		queues = append(queues, fmt.Sprintf("%s %d queued", t.Name, t.Queued))
		if t.Down {
			state = nagios.Worst(state, nagios.Warning)
			problems = append(problems, fmt.Sprintf("%s down (%s): %d queued", t.Name, t.LastError, t.Queued))
		}
		if t.Dropped > 0 {
			problems = append(problems, fmt.Sprintf("%s lost %d results to the spool's bounds since the agent started", t.Name, t.Dropped))
		}
		perf = append(perf,
			nagios.Perf{Label: t.Name + "_queued", Value: float64(t.Queued), Min: nagios.Float(0)},
			nagios.Perf{Label: t.Name + "_dropped", Value: float64(t.Dropped), UOM: "c"},
		)
	}
	out := "PASSIVE " + state.String() + " - "
	if len(problems) > 0 {
		out += strings.Join(problems, "; ")
	} else {
		out += strings.Join(queues, ", ")
	}
	return nagios.Result{State: state, Output: out, Perf: perf}
}
