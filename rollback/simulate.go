package rollback

import (
	"io"
	"log/slog"
	"time"

	"github.com/immune-ops/immune/conf"
)

// Model is a simulated fleet for SimulatePush: each host's gauges at a
// moment, given whether it runs the release (and since when) and the
// share of the fleet that does. ok false: the host does not answer.
type Model interface {
	Gauges(host string, at time.Time, onRelease bool, switched time.Time, share float64) (gauges map[string]float64, ok bool)
}

// SimResult is how a simulated push ended.
type SimResult struct {
	// RolledBack: the judge rolled the push back, at RolledBackAt, in
	// Phase (from 0), for Reason.
	RolledBack   bool
	RolledBackAt time.Time
	Phase        int
	Reason       string
	// Deployed is when the first phase switched its hosts; Phases when
	// each phase did.
	Deployed time.Time
	Phases   []time.Time
	// Looks is how many looks the judge took.
	Looks int
}

// SimulatePush drives one push of the fleet's phases over a model on a
// virtual clock from start: the baseline, each phase's deploy (at once)
// and observation, the held-back hosts and the watch, judged by the same
// code as a real push, sample by sample, in a fraction of the time. It is
// how the judge's error rates are measured over many seeds.
func SimulatePush(f *conf.Fleet, m Model, start time.Time) SimResult {
	c := &Coordinator{Fleet: f, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p := &Push{ID: "sim", Phases: planPhases(f), State: StateBaseline}
	h := NewHistory(historyKeep(f))
	interval := f.Windows.SampleInterval.D()
	onRelease := map[string]time.Time{}
	now := start
	sample := func() {
		share := float64(len(onRelease)) / float64(len(f.Hosts))
		for _, host := range f.Hosts {
			at, on := onRelease[host.Name]
			g, ok := m.Gauges(host.Name, now, on, at, share)
			if !ok {
				g = map[string]float64{}
			}
			h.Add(host.Name, Sample{At: now, Gauges: g})
		}
	}
	for end := start.Add(f.Windows.Baseline.D()); now.Before(end); now = now.Add(interval) {
		sample()
	}
	var res SimResult
	// Bounded: every phase ends by its window and max_wait.
	limit := 10 * c.plannedLooks(p)
	for looks := 0; looks < limit; {
		ph := &p.Phases[p.Phase]
		c.anchorAt(p, h, now)
		ph.Started, ph.Switched, ph.Deployed = now, map[string]time.Time{}, map[string]string{}
		share := float64(len(onRelease)) / float64(len(f.Hosts))
		for _, name := range ph.Hosts {
			if _, on := onRelease[name]; on {
				ph.Deployed[name] = ""
				continue
			}
			// A host that does not answer is skipped, as deploy does.
			if _, ok := m.Gauges(name, now, false, time.Time{}, share); !ok {
				ph.Deployed[name] = skippedPrefix + "not answering"
				continue
			}
			onRelease[name] = now
			ph.Switched[name] = now
			ph.Deployed[name] = ""
		}
		if p.Phase == 0 {
			res.Deployed = now
		}
		res.Phases = append(res.Phases, now)
		for ; looks < limit; looks++ {
			now = now.Add(interval)
			sample()
			v, done := c.lookAt(p, h, now, true)
			if !done {
				continue
			}
			phase := p.Phase
			next, _ := c.conclude(p, v)
			res.Looks = p.Looks
			switch next {
			case StateRollingBack:
				res.RolledBack, res.RolledBackAt, res.Phase, res.Reason = true, now, phase, p.Reason
				return res
			case StateLive:
				res.Phase, res.Reason = phase, v.Reason
				return res
			}
			break
		}
	}
	res.Reason = "the simulation ran out of looks"
	return res
}
