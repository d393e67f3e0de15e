package rollback

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/immune-ops/immune/conf"
)

// planPhases picks each phase's hosts: the first phase takes at least one
// host of every type, each a growing share of every type in a stable
// order; the hosts held back as the control (judge.holdback of each type)
// join only in a last phase of their own, which is then watched.
func planPhases(f *conf.Fleet) []PushPhase {
	byType := map[string][]string{}
	for _, h := range f.Hosts {
		byType[h.HostType] = append(byType[h.HostType], h.Name)
	}
	held := map[string][]string{}
	for t, names := range byType {
		sort.Strings(names)
		k := f.Judge.Holdback.Of(len(names))
		held[t] = names[len(names)-k:]
		byType[t] = names[:len(names)-k]
	}
	var phases []PushPhase
	for _, share := range f.Phases {
		var hosts []string
		for _, names := range byType {
			n := int(math.Ceil(float64(share) / 100 * float64(len(names))))
			hosts = append(hosts, names[:min(max(n, 1), len(names))]...)
		}
		sort.Strings(hosts)
		phases = append(phases, PushPhase{Percent: float64(share), Hosts: hosts})
	}
	var all []string
	for t := range held {
		all = append(all, held[t]...)
	}
	if len(all) > 0 {
		for _, names := range byType {
			all = append(all, names...)
		}
		sort.Strings(all)
		phases = append(phases, PushPhase{Percent: 100, Hosts: all, Holdback: true})
	}
	return phases
}

// Snapshot reads every host's gauges once, as each sample of a push does.
func (c *Coordinator) Snapshot(ctx context.Context) (map[string][]Sample, error) {
	out := map[string][]Sample{}
	h := NewHistory(time.Hour)
	c.sampleOnce(ctx, h)
	for _, host := range c.fleet().Hosts {
		out[host.Name] = h.Window(host.Name, time.Time{}, time.Now().Add(time.Hour))
	}
	return out, ctx.Err()
}

// sampleOnce reads every host's gauges into h; a host that does not answer
// gives a sample with no gauges (all missing).
func (c *Coordinator) sampleOnce(ctx context.Context, h *History) {
	interval := c.fleet().Windows.SampleInterval.D()
	failed := forEach(ctx, c.fleet().Hosts, c.parallel(), func(ctx context.Context, host conf.Host) error {
		rctx, cancel := context.WithTimeout(ctx, interval)
		defer cancel()
		start := time.Now()
		s, err := c.agents().Snapshot(rctx, host)
		c.Metrics.observeCall("snapshot", start, err)
		if err != nil {
			s = Sample{At: time.Now(), Gauges: map[string]float64{}}
		}
		h.Add(host.Name, s)
		return err
	})
	c.Metrics.setUnreachable(len(failed))
}

// sampleFor samples every host each sample interval for d, calling look
// after each round; look returning true stops it.
func (c *Coordinator) sampleFor(ctx context.Context, h *History, d time.Duration, look func() (bool, error)) error {
	interval := c.fleet().Windows.SampleInterval.D()
	end := time.Now().Add(d)
	for {
		began := time.Now()
		c.sampleOnce(ctx, h)
		if err := ctx.Err(); err != nil {
			return err
		}
		if look != nil {
			if stop, err := look(); stop || err != nil {
				return err
			}
		}
		next := began.Add(interval)
		if d >= 0 && !next.Before(end) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
}

// historyKeep is how long a push's samples stay in memory: every window
// the judge reads.
func historyKeep(f *conf.Fleet) time.Duration {
	w := f.Windows
	return w.Baseline.D() + max(w.Observe.D(), w.Watch.D()) + w.MaxWait.D() + 2*w.SampleInterval.D()
}

// baseline samples every host for the baseline window.
func (c *Coordinator) baseline(ctx context.Context, p *Push, h *History) error {
	if err := c.sampleFor(ctx, h, c.fleet().Windows.Baseline.D(), nil); err != nil {
		return err
	}
	p.Phase = 0
	return c.step(p, StateDeploying, "baseline taken on %d hosts; deploying phase 1", len(c.fleet().Hosts))
}

// anchor summarizes every host's gauges over the baseline window before
// the phase begins, sampling that window first when the coordinator has
// not seen it (after a restart).
func (c *Coordinator) anchor(ctx context.Context, p *Push, h *History) error {
	ph := &p.Phases[p.Phase]
	if ph.Pre != nil {
		return nil
	}
	now := time.Now()
	from := now.Add(-c.fleet().Windows.Baseline.D())
	seen := 0
	for _, host := range c.fleet().Hosts {
		if len(h.Window(host.Name, from, now)) > 0 {
			seen++
		}
	}
	if seen == 0 {
		c.event(p, "phase %d: no recent readings (the coordinator restarted); sampling a baseline first", p.Phase+1)
		if err := c.sampleFor(ctx, h, c.fleet().Windows.Baseline.D(), nil); err != nil {
			return err
		}
		now = time.Now()
	}
	c.anchorAt(p, h, now)
	return nil
}

// anchorAt summarizes every host's readings in the baseline window before
// now as the phase's Pre.
func (c *Coordinator) anchorAt(p *Push, h *History, now time.Time) {
	from := now.Add(-c.fleet().Windows.Baseline.D())
	ph := &p.Phases[p.Phase]
	ph.Pre = map[string]map[string]Summary{}
	for _, host := range c.fleet().Hosts {
		ss := h.Window(host.Name, from, now.Add(time.Nanosecond))
		sums := map[string]Summary{}
		for g := range gaugeNames(ss) {
			sums[g] = Summarize(ss, g, c.fleet().Judge.Traffic)
		}
		ph.Pre[host.Name] = sums
	}
}

func gaugeNames(ss []Sample) map[string]bool {
	names := map[string]bool{}
	for _, s := range ss {
		for g := range s.Gauges {
			names[g] = true
		}
	}
	return names
}

// window is how long a phase is observed.
func (c *Coordinator) window(ph PushPhase) time.Duration {
	if ph.Holdback {
		return c.fleet().Windows.Watch.D()
	}
	return c.fleet().Windows.Observe.D()
}

// plannedLooks is how many looks the judge may take over the whole push,
// which its error is spent over.
func (c *Coordinator) plannedLooks(p *Push) int {
	w := c.fleet().Windows
	var total time.Duration
	for _, ph := range p.Phases {
		total += c.window(ph)
		if !ph.Holdback {
			total += w.MaxWait.D()
		}
	}
	return max(1, int(total/w.SampleInterval.D())+len(p.Phases))
}

// family is how many tests share the push's error: each limit with a rise
// or fall that can roll back, on each host type, for each phase's effect
// and each phase judged at scale.
func (c *Coordinator) family(p *Push) int {
	types := indexTypes(c.fleet())
	pairs := 0
	for _, l := range c.fleet().Limits {
		if l.DryRun || l.Rise == nil && l.Fall == nil {
			continue
		}
		for _, t := range types.order {
			if l.AppliesTo(t) {
				pairs++
			}
		}
	}
	tests := 0
	for i := range p.Phases {
		if !p.Phases[i].Holdback {
			tests++
		}
		if c.atScale(p, i) {
			tests++
		}
	}
	return max(1, pairs*tests)
}

// atScale reports whether phase i brings most of the fleet onto the
// release: a change of a whole host type that begins with it is judged
// as the push's, control or not.
func (c *Coordinator) atScale(p *Push, i int) bool {
	if i == 0 {
		return false
	}
	return p.Phases[i].Holdback || 2*len(p.Phases[i].Hosts) >= len(c.fleet().Hosts)
}

// cohorts are the phases deployed so far, for the judge.
func (c *Coordinator) cohorts(p *Push) ([]Cohort, map[string]time.Time) {
	var out []Cohort
	onRelease := map[string]time.Time{}
	for i := 0; i <= p.Phase && i < len(p.Phases); i++ {
		ph := p.Phases[i]
		co := Cohort{Phase: i, Anchor: ph.Started, Switched: map[string]time.Time{}, Pre: ph.Pre,
			Scale: c.atScale(p, i), Window: c.window(ph), Holdback: ph.Holdback}
		for host, at := range ph.Switched {
			if _, earlier := onRelease[host]; !earlier {
				co.Switched[host] = at
				onRelease[host] = at
			}
		}
		out = append(out, co)
	}
	return out, onRelease
}

// observe judges the phase at every sample until a verdict: a breach rolls
// back at once; a pass needs the whole window, and waits up to max_wait
// more while the evidence is too thin; then judge.inconclusive decides.
func (c *Coordinator) observe(ctx context.Context, p *Push, h *History) error {
	var verdict Verdict
	err := c.sampleFor(ctx, h, -1, func() (bool, error) {
		v, done := c.look(p, h, time.Now())
		verdict = v
		if done {
			return true, nil
		}
		return false, c.Store.SavePush(p)
	})
	if err != nil {
		return err
	}
	next, msg := c.conclude(p, verdict)
	if next == StateLive {
		p.Finished = time.Now().UTC()
		if err := c.step(p, StateLive, "%s", msg); err != nil {
			return err
		}
		return c.releasePushLock(p.ID)
	}
	return c.step(p, next, "%s", msg)
}

// label names the phase being observed in reasons.
func label(p *Push) string {
	if p.Phases[p.Phase].Holdback {
		return "watch"
	}
	return fmt.Sprintf("phase %d", p.Phase+1)
}

// look judges the phase being observed at now, from the samples in h, and
// says whether its verdict is reached. It reads nothing but p and h, so a
// simulated fleet on a virtual clock judges exactly as a real one.
func (c *Coordinator) look(p *Push, h *History, now time.Time) (Verdict, bool) {
	return c.lookAt(p, h, now, false)
}

// lookAt is look, quick as a simulation wants it or in full for the page.
func (c *Coordinator) lookAt(p *Push, h *History, now time.Time, quick bool) (Verdict, bool) {
	ph := &p.Phases[p.Phase]
	deadline := ph.Started.Add(c.window(*ph))
	giveUp := deadline.Add(c.fleet().Windows.MaxWait.D())
	if ph.Holdback {
		giveUp = deadline
	}
	c.takeOrders(p)
	cohorts, onRelease := c.cohorts(p)
	p.Looks++
	final := !now.Before(deadline)
	closing := final && !ph.Closed
	ph.Closed = ph.Closed || final
	began := time.Now()
	v := Judge(JudgeInput{Label: label(p), Fleet: c.fleet(), Now: now, Look: p.Looks, Looks: c.plannedLooks(p),
		Family: c.family(p), Cohorts: cohorts, OnRelease: onRelease, History: h, Final: final, Closing: closing, Quick: quick})
	c.Metrics.observeVerdict(time.Since(began))
	if p.Aborted != "" {
		v.Outcome, v.Reason = Fail, fmt.Sprintf("%s: aborted by %s", label(p), p.Aborted)
	}
	ph.Verdict = &v
	switch {
	case v.Outcome == Fail, p.Promoted != "":
		return v, true
	case p.Held != "":
		return v, false
	case v.Outcome == Pass:
		return v, true
	case v.Outcome == Wait && !now.Before(giveUp):
		if c.fleet().Judge.Inconclusive != conf.InconclusiveHold || ph.Holdback || waitingForReading(v) != "" {
			return v, true
		}
		p.Held = "the judge (judge.inconclusive: hold)"
		c.event(p, "%s after max_wait; held: breaches still roll back; promote or abort to go on", v.Reason)
	}
	return v, false
}

// conclude records a phase's final verdict and says where the push goes
// next, with the event to record.
func (c *Coordinator) conclude(p *Push, v Verdict) (State, string) {
	ph := &p.Phases[p.Phase]
	ph.Observed = time.Now().UTC()
	switch v.Outcome {
	case Fail:
		p.Reason = v.Reason
		return StateRollingBack, fmt.Sprintf("%s; rolling back %d hosts", p.Reason, len(p.Touched))
	case Wait:
		if why := waitingForReading(v); why != "" {
			p.Reason = label(p) + ": " + why + fmt.Sprintf(" (no reading after waiting %s)", c.fleet().Windows.MaxWait)
			return StateRollingBack, fmt.Sprintf("%s; rolling back %d hosts", p.Reason, len(p.Touched))
		}
		if p.Promoted != "" {
			v.Reason += "; promoted by " + p.Promoted
		} else {
			v.Reason += "; inconclusive after max_wait, passed (judge.inconclusive: pass)"
		}
		ph.Verdict = &v
	case Observe, Pass:
		if p.Promoted != "" {
			v.Reason = fmt.Sprintf("%s: promoted by %s", label(p), p.Promoted)
			ph.Verdict = &v
		}
	}
	p.Held, p.Promoted = "", ""
	if p.Phase+1 < len(p.Phases) {
		p.Phase++
		return StateDeploying, fmt.Sprintf("%s; deploying %s", v.Reason, phaseName(p.Phases[p.Phase], p.Phase))
	}
	return StateLive, fmt.Sprintf("%s; live on all %d hosts", v.Reason, p.HostsDone())
}

// waitingForReading says which gauge with missing: wait holds the verdict
// for want of a reading, or "" (then the push fails after max_wait, as for
// a missing gauge).
func waitingForReading(v Verdict) string {
	for _, r := range v.Readings {
		if r.Waiting && !r.DryRun {
			return r.Why
		}
	}
	return ""
}

func phaseName(ph PushPhase, i int) string {
	if ph.Holdback {
		return "the hosts held back as the control"
	}
	return fmt.Sprintf("phase %d", i+1)
}
