package rollback

import (
	"fmt"
	"math"

	"github.com/immune-ops/immune/rollback/stats"
)

// levelEffect judges a continuous gauge: each host's change from before
// the phase, the canaries' against the control's, with Student's t across
// hosts (a host is the unit, so readings that follow each other, as load
// averages do, do not fake certainty). Where every mean is positive the
// changes are ratios: a release that adds half to each host's load adds
// half whatever the host's own level, so hosts agree and the test is sharp.
func (g *group) levelEffect(canaries, controls []hostData) Reading {
	r := g.base("levels across hosts")
	r.Canaries, r.Controls = len(canaries), len(controls)
	if len(canaries) == 0 || len(controls) == 0 {
		g.thin(&r, len(canaries), len(controls))
		return r
	}
	log := onLogScale(canaries, controls)
	// The control shares any traffic change: no rescaling, whose own
	// noise would only blur the comparison.
	dc, preC, postC := changes(canaries, log, false)
	dk, _, _ := changes(controls, log, false)
	mc, mk := meanOf(dc), meanOf(dk)
	t := levelTest{effect: mc - mk, log: log}
	// The spread of changes comes from both groups: three hosts in all
	// give it one degree of freedom. Under that, each host's own spread
	// of readings stands in for it.
	t.df = float64(len(dc) + len(dk) - 2)
	if t.df >= 1 {
		s2 := (sumSq(dc, mc) + sumSq(dk, mk)) / t.df
		t.se = math.Sqrt(s2 * (1/float64(len(dc)) + 1/float64(len(dk))))
	} else {
		// Each host's own spread says nothing of how differently two
		// hosts answer what the whole fleet sees (a surge moves one host's
		// cpu headroom twice as much as another's): it stands in only for
		// the phase being observed, never to judge an earlier phase's
		// hosts against a lone host held back.
		if g.c.Phase != g.in.Cohorts[len(g.in.Cohorts)-1].Phase {
			return r
		}
		vc, dfc := withinHost(canaries, log)
		vk, dfk := withinHost(controls, log)
		t.se, t.df = math.Sqrt(vc+vk), math.Min(dfc, dfk)
		if math.IsNaN(t.se) || t.df < 1 {
			g.thin(&r, len(canaries), len(controls))
			return r
		}
	}
	t.cf = meanOf(preC) + mk
	if log {
		t.cf = meanOf(preC) * math.Exp(mk)
	}
	r.Pre, r.Post, r.Control = ptr(meanOf(preC)), ptr(meanOf(postC)), ptr(t.cf)
	g.decide(&r, t.natural(), t.cf, t.tail, t.interval, "the hosts still on the old release")
	return r
}

// levelScale judges a continuous gauge across every host of the type,
// each against its own readings before the phase: at scale the control
// shares what the release does to shared infrastructure, so the whole
// type's change that begins with the phase is the push's.
func (g *group) levelScale(hosts []hostData) Reading {
	r := g.base("before/after at scale")
	r.Canaries = len(hosts)
	if len(hosts) == 0 {
		return r
	}
	log := onLogScale(hosts)
	d, pre, post := changes(hosts, log, true)
	trend := make([]float64, len(hosts))
	for i, h := range hosts {
		trend[i] = h.pre.Late - h.pre.Early
		if log && h.pre.Early > 0 && h.pre.Late > 0 {
			trend[i] = math.Log(h.pre.Late / h.pre.Early)
		}
	}
	t := levelTest{effect: meanOf(d), df: float64(len(d) - 1), log: log, cf: meanOf(pre)}
	t.se = math.Sqrt(sumSq(d, t.effect) / t.df / float64(len(d)))
	if t.df < 1 {
		// One host: its own spread of readings before and after.
		v, df := withinHost(hosts, log)
		t.se, t.df = math.Sqrt(v), df
		if math.IsNaN(t.se) || t.df < 1 {
			return r
		}
	}
	r.Pre, r.Post, r.Control = ptr(t.cf), ptr(meanOf(post)), ptr(t.cf)
	if g.underWay(&r, meanOf(trend), t.effect) {
		return r
	}
	g.decide(&r, t.natural(), t.cf, t.tail, nil, fmt.Sprintf("their own readings before phase %d", g.c.Phase+1))
	return r
}

// levelTest is a t-test of a change, on a log scale (ratios) or not.
type levelTest struct {
	effect, se, df float64
	// cf is the level the effect is measured from (the counterfactual).
	cf  float64
	log bool
}

// natural is the effect in the gauge's units.
func (t levelTest) natural() float64 {
	if t.log {
		return t.cf * (math.Exp(t.effect) - 1)
	}
	return t.effect
}

// tail is the one-sided p-value that the effect is past threshold (in the
// gauge's units): above it for a rise, below minus it for a fall.
func (t levelTest) tail(threshold float64, rise bool) float64 {
	target := threshold
	if t.log {
		share := threshold / math.Abs(t.cf)
		if !rise && share >= 1 {
			return 1 // a gauge cannot fall by all it has, on a ratio
		}
		target = math.Log1p(share)
		if !rise {
			target = -math.Log1p(-share)
		}
	}
	return tTail(t.effect, target, t.se, t.df, rise)
}

// interval is the effect's two-sided interval at alpha, in the gauge's units.
func (t levelTest) interval(alpha float64) (float64, float64) {
	h := 0.0
	if t.se > 0 {
		h = stats.StudentQuantile(1-alpha/2, t.df) * t.se
	}
	lo, hi := t.effect-h, t.effect+h
	if t.log {
		return t.cf * (math.Exp(lo) - 1), t.cf * (math.Exp(hi) - 1)
	}
	return lo, hi
}

// onLogScale reports whether every host's means before and in the window
// are positive, so that changes can be judged as ratios.
func onLogScale(groups ...[]hostData) bool {
	for _, hosts := range groups {
		for _, h := range hosts {
			if !(h.pre.Mean() > 0) || !(h.post.Mean() > 0) {
				return false
			}
		}
	}
	return true
}

// perTraffic rescales a level read at post's traffic to pre's, when the
// traffic gauge was read in both: a surge then explains itself.
func perTraffic(x float64, post, pre Summary) float64 {
	if post.Traffic <= 0 || pre.Traffic <= 0 || post.N == 0 || pre.N == 0 {
		return x
	}
	return x * (pre.Traffic / float64(pre.N)) / (post.Traffic / float64(post.N))
}

// tTail is the one-sided p-value that the effect is past the threshold:
// above it for a rise, below minus it for a fall.
func tTail(effect, threshold, se, df float64, rise bool) float64 {
	diff := effect - threshold
	if !rise {
		diff = -effect - threshold
	}
	if se == 0 || math.IsNaN(se) {
		if diff > 0 {
			return 0
		}
		return 1
	}
	return stats.StudentSF(diff/se, df)
}

// withinHost is the variance of the mean change of hosts judged on their
// own readings (each host's readings before and after, as if independent),
// and the degrees of freedom the smallest of them has; on a log scale by
// the delta method (a mean's relative variance).
func withinHost(hosts []hostData, log bool) (variance, df float64) {
	df = math.Inf(1)
	n := float64(len(hosts))
	for _, h := range hosts {
		vPre, vPost := h.pre.Var()/float64(h.pre.N), h.post.Var()/float64(h.post.N)
		if log {
			vPre /= h.pre.Mean() * h.pre.Mean()
			vPost /= h.post.Mean() * h.post.Mean()
		}
		variance += (vPre + vPost) / (n * n)
		df = math.Min(df, float64(min(h.pre.N, h.post.N)-1))
	}
	return variance, df
}

// changes are each host's change, post-pre or log(post/pre), with the pre
// and post means; with perRequest the post mean is taken at the pre
// window's traffic, when the traffic gauge was read.
func changes(hosts []hostData, log, perRequest bool) (d, pre, post []float64) {
	for _, h := range hosts {
		a, b := h.pre.Mean(), h.post.Mean()
		if perRequest {
			b = perTraffic(b, h.post, h.pre)
		}
		pre = append(pre, a)
		post = append(post, b)
		if log {
			d = append(d, math.Log(b/a))
		} else {
			d = append(d, b-a)
		}
	}
	return d, pre, post
}

func sumSq(xs []float64, m float64) float64 {
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return s
}
