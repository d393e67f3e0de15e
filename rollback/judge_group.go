package rollback

import (
	"fmt"
	"math"
	"time"

	"github.com/immune-ops/immune/conf"
)

// group is one limit on one host type for one cohort: the hosts that run
// the cohort's release and the control hosts, each with its readings
// before the phase and in the window judged now.
type group struct {
	in       JudgeInput
	l        conf.Limit
	hostType string
	c        Cohort
	kind     conf.Kind
	warmup   time.Duration
	traffic  string
	canaries []hostData
	controls []hostData
	// all is every host of the type, on the release or not: the scale test's.
	all []hostData
}

// hostData is one host's readings of the group's gauge.
type hostData struct {
	name string
	role Role
	pre  Summary
	post Summary
	// since is when the judged window began for this host.
	since time.Time
	// samples are the host's samples since it switched (or since the anchor).
	samples []Sample
	ok      bool // it has readings both before and in the window
}

func newGroup(in JudgeInput, l conf.Limit, hostType string, hosts []string, c Cohort) *group {
	g := &group{in: in, l: l, hostType: hostType, c: c, traffic: in.Fleet.Judge.Traffic}
	if g.traffic == l.Gauge {
		g.traffic = ""
	}
	g.warmup = in.Fleet.Windows.Warmup.D()
	if l.Warmup != nil {
		g.warmup = l.Warmup.D()
	}
	g.kind = resolveKind(l, c, hosts)
	observe := in.Fleet.Windows.Observe.D()
	for _, h := range hosts {
		switched, inCohort := c.Switched[h]
		_, onRelease := in.OnRelease[h]
		start := c.Anchor
		if inCohort {
			start = switched
		}
		hd := hostData{name: h, pre: c.Pre[h][l.Gauge], samples: in.History.Window(h, start, in.Now.Add(time.Nanosecond))}
		// The scale test's window is the whole phase; the effect's the
		// latest observe window, so that a slow burn shows at its height.
		scaleFrom := g.levelStart(start)
		hd.since = scaleFrom
		hd.post = Summarize(since(hd.samples, scaleFrom), l.Gauge, g.traffic)
		hd.ok = hd.pre.N > 0 && hd.post.N > 0
		g.all = append(g.all, hd)
		recent := hd
		recent.since = maxTime(scaleFrom, in.Now.Add(-observe))
		recent.post = Summarize(since(hd.samples, recent.since), l.Gauge, g.traffic)
		recent.ok = recent.pre.N > 0 && recent.post.N > 0
		switch {
		case inCohort:
			recent.role = RoleCanary
			g.canaries = append(g.canaries, recent)
		case !onRelease:
			recent.role = RoleControl
			g.controls = append(g.controls, recent)
		}
	}
	return g
}

// levelStart is when a host's readings start to count: after the warm-up
// for a level, at once for a count.
func (g *group) levelStart(start time.Time) time.Time {
	if g.kind == conf.KindCount {
		return start
	}
	return start.Add(g.warmup)
}

// resolveKind decides auto: a count when every reading of the type before
// the phase was a whole number.
func resolveKind(l conf.Limit, c Cohort, hosts []string) conf.Kind {
	if l.Kind == conf.KindCount || l.Kind == conf.KindLevel {
		return l.Kind
	}
	seen := false
	for _, h := range hosts {
		s := c.Pre[h][l.Gauge]
		if s.N == 0 {
			continue
		}
		seen = true
		if !s.Whole {
			return conf.KindLevel
		}
	}
	if seen {
		return conf.KindCount
	}
	return conf.KindLevel
}

func since(ss []Sample, from time.Time) []Sample {
	for i, s := range ss {
		if !s.At.Before(from) {
			return ss[i:]
		}
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// where names the group in reasons.
func (g *group) where() string {
	return fmt.Sprintf("%s on %s", g.l.Gauge, g.hostType)
}

// base is a reading of the group's effect, before its numbers.
func (g *group) base(test string) Reading {
	return Reading{HostType: g.hostType, Gauge: g.l.Gauge, Phase: g.c.Phase + 1, Test: test, Threshold: thresholdText(g.l), Evidence: g.c.Evidence(g.in.Now)}
}

// effect judges the release's effect on the cohort against the control.
func (g *group) effect() Reading {
	var usable []hostData
	for _, h := range g.canaries {
		if h.ok {
			usable = append(usable, h)
		}
	}
	var controls []hostData
	for _, h := range g.controls {
		if h.ok {
			controls = append(controls, h)
		}
	}
	phase := fmt.Sprintf(" (phase %d's hosts)", g.c.Phase+1)
	if g.c.Phase == len(g.in.Cohorts)-1 {
		phase = ""
	}
	if g.kind == conf.KindCount {
		r := g.countEffect(usable, controls)
		r.Why += suffixIf(r.Breached || r.Inconclusive, phase)
		return r
	}
	r := g.levelEffect(usable, controls)
	r.Why += suffixIf(r.Breached || r.Inconclusive, phase)
	return r
}

func suffixIf(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// limitFor is the size of effect the limit allows, in the gauge's units,
// given the level the canaries would have without the release.
func limitFor(c *conf.Change, counterfactual float64) float64 {
	if c == nil {
		return math.NaN()
	}
	return c.Allowed(counterfactual)
}

// hostReadings are a reading per host for the page (the cohort's canaries
// and the control), with the guards and missing-data policies judged on
// every host running the release.
func (g *group) hostReadings() []Reading {
	var out []Reading
	need := g.in.Fleet.BreachSamples
	if g.l.Samples > 0 {
		need = g.l.Samples
	}
	for _, h := range g.all {
		switched, onRelease := g.in.OnRelease[h.name]
		r := Reading{Host: h.name, HostType: g.hostType, Gauge: g.l.Gauge, Role: RoleControl, Test: "guard", Threshold: thresholdText(g.l)}
		if onRelease {
			r.Role = RoleCanary
		}
		r.Pre = ptr(h.pre.Mean())
		r.Post = ptr(h.post.Mean())
		if r.Pre != nil && r.Post != nil {
			d := *r.Post - *r.Pre
			r.Delta = &d
			if *r.Pre != 0 {
				r.DeltaPct = ptr(100 * d / math.Abs(*r.Pre))
			}
		}
		r.Samples = series(g.l.Gauge, h.samples)
		if onRelease {
			g.guard(&r, h, switched, need)
		}
		out = append(out, r)
	}
	return out
}

// guard holds a host running the release to the limit's absolute bounds
// and its missing-data policy: need bad samples in a row breach.
func (g *group) guard(r *Reading, h hostData, switched time.Time, need int) {
	from := g.levelStart(switched)
	run, seen, total := 0, false, 0
	for _, s := range h.samples {
		if s.At.Before(switched) {
			continue
		}
		total++
		x, ok := s.Gauges[g.l.Gauge]
		if !ok || math.IsNaN(x) {
			if g.l.Missing == conf.MissingFail {
				if run++; run >= need {
					r.Breached = true
					r.Why = fmt.Sprintf("%s on %s has no reading for %d samples in a row", g.l.Gauge, h.name, run)
					return
				}
			}
			continue
		}
		seen = true
		if s.At.Before(from) {
			run = 0
			continue
		}
		why := g.pastBound(h, x)
		if why == "" {
			run = 0
			continue
		}
		if run++; run >= need {
			r.Breached = true
			r.Why = fmt.Sprintf("%s on %s %s", g.l.Gauge, h.name, why)
			return
		}
	}
	if !seen && total > 0 {
		switch g.l.Missing {
		case conf.MissingWait:
			r.Waiting = true
			r.Why = fmt.Sprintf("waiting for a reading of %s on %s", g.l.Gauge, h.name)
		case conf.MissingFail:
			if g.in.Final {
				r.Breached = true
				r.Why = fmt.Sprintf("%s on %s has no reading", g.l.Gauge, h.name)
			}
		}
	}
	if !r.Breached && !r.Waiting && h.pre.N > 0 {
		if why := g.pastBound(h, h.pre.Mean()); why != "" {
			r.Why = fmt.Sprintf("%s on %s already %s before the push: reported, not blamed", g.l.Gauge, h.name, why)
		}
	}
}

// pastBound says how x breaks the limit's absolute bounds, or "". A host
// whose readings were already past the bound before the phase is not
// blamed for staying there.
func (g *group) pastBound(h hostData, x float64) string {
	bounds := []struct {
		b     *float64
		above bool
	}{{g.l.Max, true}, {g.l.Min, false}}
	if a := g.l.Aggregate; a != nil {
		bounds = append(bounds, struct {
			b     *float64
			above bool
		}{a.Max, true}, struct {
			b     *float64
			above bool
		}{a.Min, false})
	}
	for _, bd := range bounds {
		if bd.b == nil {
			continue
		}
		pre := h.pre.Mean()
		switch {
		case bd.above && x > *bd.b:
			if h.pre.N > 0 && pre > *bd.b && x <= pre*1.1 {
				return ""
			}
			return fmt.Sprintf("is %s, above the limit %s", num(x), num(*bd.b))
		case !bd.above && x < *bd.b:
			if h.pre.N > 0 && pre < *bd.b && x >= pre*0.9 {
				return ""
			}
			return fmt.Sprintf("is %s, below the limit %s", num(x), num(*bd.b))
		}
	}
	return ""
}

// series is a gauge's values over samples, NaN where missing.
func series(gauge string, samples []Sample) Series {
	out := make(Series, len(samples))
	for i, s := range samples {
		if x, ok := s.Gauges[gauge]; ok {
			out[i] = x
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}
