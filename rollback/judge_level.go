package rollback

import (
	"fmt"
	"math"

	"github.com/immune-ops/immune/rollback/stats"
)

// levelEffect judges a continuous gauge: each host's change from before
// the phase, the canaries' against the control's, with Student's t across
// hosts (a host is the unit, so readings that follow each other, as load
// averages do, do not fake certainty).
func (g *group) levelEffect(canaries, controls []hostData) Reading {
	r := g.base("levels across hosts")
	r.Canaries, r.Controls = len(canaries), len(controls)
	if len(canaries) == 0 || len(controls) == 0 {
		g.thin(&r, len(canaries), len(controls))
		return r
	}
	dc, preC, postC := changes(canaries)
	dk, _, _ := changes(controls)
	mc, mk := meanOf(dc), meanOf(dk)
	effect := mc - mk
	// The spread of changes comes from both groups: three hosts in all
	// give it one degree of freedom. Under that, each host's own spread
	// of readings stands in for it.
	df := float64(len(dc) + len(dk) - 2)
	var se float64
	if df >= 1 {
		s2 := (sumSq(dc, mc) + sumSq(dk, mk)) / df
		se = math.Sqrt(s2 * (1/float64(len(dc)) + 1/float64(len(dk))))
	} else {
		vc, dfc := withinHost(canaries)
		vk, dfk := withinHost(controls)
		se, df = math.Sqrt(vc+vk), math.Min(dfc, dfk)
		if math.IsNaN(se) || df < 1 {
			g.thin(&r, len(canaries), len(controls))
			return r
		}
	}
	counterfactual := meanOf(preC) + mk
	r.Pre, r.Post, r.Control = ptr(meanOf(preC)), ptr(meanOf(postC)), ptr(counterfactual)
	g.decide(&r, effect, counterfactual, func(threshold float64, rise bool) float64 {
		return tTail(effect, threshold, se, df, rise)
	}, func(alpha float64) (float64, float64) {
		if se == 0 {
			return effect, effect
		}
		h := stats.StudentQuantile(1-alpha/2, df) * se
		return effect - h, effect + h
	}, "the hosts still on the old release")
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
	d := make([]float64, len(hosts))
	pre := make([]float64, len(hosts))
	post := make([]float64, len(hosts))
	trend := make([]float64, len(hosts))
	for i, h := range hosts {
		pre[i] = h.pre.Mean()
		post[i] = perTraffic(h.post.Mean(), h.post, h.pre)
		d[i] = post[i] - pre[i]
		trend[i] = h.pre.Late - h.pre.Early
	}
	effect := meanOf(d)
	df := float64(len(d) - 1)
	se := math.Sqrt(sumSq(d, effect) / df / float64(len(d)))
	if df < 1 {
		// One host: its own spread of readings before and after.
		se, df = withinHost(hosts)
		se = math.Sqrt(se)
		if math.IsNaN(se) || df < 1 {
			return r
		}
	}
	base := meanOf(pre)
	r.Pre, r.Post, r.Control = ptr(base), ptr(meanOf(post)), ptr(base)
	if g.underWay(&r, meanOf(trend), effect) {
		return r
	}
	g.decide(&r, effect, base, func(threshold float64, rise bool) float64 {
		return tTail(effect, threshold, se, df, rise)
	}, nil, fmt.Sprintf("their own readings before phase %d", g.c.Phase+1))
	return r
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
// and the degrees of freedom the smallest of them has.
func withinHost(hosts []hostData) (variance, df float64) {
	df = math.Inf(1)
	n := float64(len(hosts))
	for _, h := range hosts {
		v := h.pre.Var()/float64(h.pre.N) + h.post.Var()/float64(h.post.N)
		variance += v / (n * n)
		df = math.Min(df, float64(min(h.pre.N, h.post.N)-1))
	}
	return variance, df
}

// changes are each host's post-pre difference, with the pre and post means.
func changes(hosts []hostData) (d, pre, post []float64) {
	for _, h := range hosts {
		a, b := h.pre.Mean(), h.post.Mean()
		pre = append(pre, a)
		post = append(post, b)
		d = append(d, b-a)
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
