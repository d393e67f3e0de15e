package rollback

import (
	"fmt"
	"math"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback/stats"
)

// counts are a set of hosts' events and exposure before and in the window.
type counts struct {
	pre, post         int
	preN, postN       float64 // host-samples
	preExp, postExp   float64 // traffic, or host-samples without it
	early, late       float64 // events a sample in the pre window's halves
	preRate, postRate float64 // events a host-sample
}

func sumCounts(hosts []hostData) counts {
	var c counts
	traffic := true
	var early, late float64
	for _, h := range hosts {
		c.pre += int(math.Round(h.pre.Sum))
		c.post += int(math.Round(h.post.Sum))
		c.preN += float64(h.pre.N)
		c.postN += float64(h.post.N)
		c.preExp += h.pre.Traffic
		c.postExp += h.post.Traffic
		if h.pre.Traffic <= 0 || h.post.Traffic <= 0 {
			traffic = false
		}
		early += h.pre.Early
		late += h.pre.Late
	}
	if !traffic {
		c.preExp, c.postExp = c.preN, c.postN
	}
	if n := float64(len(hosts)); n > 0 {
		c.early, c.late = early/n, late/n
	}
	c.preRate, c.postRate = float64(c.pre)/max1(c.preN), float64(c.post)/max1(c.postN)
	return c
}

func max1(x float64) float64 { return math.Max(x, 1) }

// countEffect judges an event count: the canaries' events against the
// control's, before and in the window. A percent limit is a ratio of rate
// ratios, tested exactly on the 2×2 table conditioned on its margins
// (Fisher's noncentral hypergeometric, exposures by traffic when it is
// read); an amount limit is a difference of differences of rates, bounded
// with exact Poisson limits, so that a gauge that was zero everywhere
// before still shows a sudden flood.
func (g *group) countEffect(canaries, controls []hostData) Reading {
	r := g.base("counts, exact")
	r.Canaries, r.Controls = len(canaries), len(controls)
	if len(canaries) == 0 || len(controls) == 0 {
		g.thin(&r, len(canaries), len(controls))
		return r
	}
	c, k := sumCounts(canaries), sumCounts(controls)
	counterfactual := c.preRate + k.postRate - k.preRate
	if k.preRate > 0 && c.preRate > 0 {
		counterfactual = c.preRate * k.postRate / k.preRate
	}
	effect := c.postRate - counterfactual
	r.Pre, r.Post, r.Control = ptr(c.preRate), ptr(c.postRate), ptr(counterfactual)
	table := stats.CountTable{C0: c.pre, C1: c.post, K0: k.pre, K1: k.post, EC0: c.preExp, EC1: c.postExp, EK0: k.preExp, EK1: k.postExp}
	g.decide(&r, effect, counterfactual, func(threshold float64, rise bool) float64 {
		if g.percent(rise) {
			return ratioTail(table, counterfactual, threshold, rise)
		}
		return additiveTail(threshold, rise, []term{{c.post, c.postN, 1}, {c.pre, c.preN, -1}, {k.post, k.postN, -1}, {k.pre, k.preN, 1}})
	}, func(alpha float64) (float64, float64) {
		if g.percent(true) || g.percent(false) {
			lo, hi := stats.RateRatioCI(table, 1-alpha)
			return (lo - 1) * counterfactual, (hi - 1) * counterfactual
		}
		terms := []term{{c.post, c.postN, 1}, {c.pre, c.preN, -1}, {k.post, k.postN, -1}, {k.pre, k.preN, 1}}
		return boundOf(terms, alpha, false), boundOf(terms, alpha, true)
	}, "the hosts still on the old release")
	return r
}

// countScale judges an event count across every host of the type against
// its rate before the phase (per request when traffic is read).
func (g *group) countScale(hosts []hostData) Reading {
	r := g.base("before/after at scale")
	r.Canaries = len(hosts)
	if len(hosts) == 0 {
		return r
	}
	c := sumCounts(hosts)
	if c.preN == 0 || c.postN == 0 {
		return r
	}
	// Rates per host-sample, at the traffic before the phase.
	postRate := float64(c.post) / c.postExp * c.preExp / c.preN
	r.Pre, r.Post, r.Control = ptr(c.preRate), ptr(postRate), ptr(c.preRate)
	effect := postRate - c.preRate
	if g.underWay(&r, c.late-c.early, effect) {
		return r
	}
	g.decide(&r, effect, c.preRate, func(threshold float64, rise bool) float64 {
		if g.percent(rise) && c.preRate > 0 {
			theta := 1 + threshold/c.preRate
			if !rise {
				theta = 1 - threshold/c.preRate
			}
			// Given all the events, the share after the phase is binomial.
			n := c.pre + c.post
			p := theta * c.postExp / (theta*c.postExp + c.preExp)
			if rise {
				return stats.BinomialSF(c.post, n, p)
			}
			return stats.BinomialCDF(c.post, n, p)
		}
		scale := c.preExp / c.preN // traffic a host-sample before the phase
		return additiveTail(threshold, rise, []term{{c.post, c.postExp / scale, 1}, {c.pre, c.preN, -1}})
	}, nil, fmt.Sprintf("their own readings before phase %d", g.c.Phase+1))
	return r
}

// percent reports whether the limit's rise (or fall) is a percent.
func (g *group) percent(rise bool) bool {
	c := g.l.Fall
	if rise {
		c = g.l.Rise
	}
	return c != nil && c.Percent
}

// ratioTail is the exact p-value that the canaries' rate ratio is past
// the limit: threshold is the allowed change of a rate of counterfactual.
func ratioTail(t stats.CountTable, counterfactual, threshold float64, rise bool) float64 {
	if counterfactual <= 0 {
		return 1
	}
	if rise {
		return stats.RateRatioTest(t, 1+threshold/counterfactual, stats.Greater)
	}
	theta := 1 - threshold/counterfactual
	if theta <= 0 {
		return 1
	}
	return stats.RateRatioTest(t, theta, stats.Less)
}

// term is a count over an exposure with its sign in a sum of rates.
type term struct {
	x    int
	exp  float64
	sign float64
}

// boundOf bounds a sum of Poisson rates: each term at its exact limit
// with a share alpha/len of the error (Bonferroni), high or low.
func boundOf(terms []term, alpha float64, high bool) float64 {
	a := alpha / float64(len(terms))
	var sum float64
	for _, t := range terms {
		if t.exp <= 0 {
			return math.NaN()
		}
		up := (t.sign > 0) == high
		if up {
			sum += t.sign * stats.PoissonUpper(t.x, a) / t.exp
		} else {
			sum += t.sign * stats.PoissonLower(t.x, a) / t.exp
		}
	}
	return sum
}

// additiveTail is the smallest error level at which the exact bound of
// the sum of rates is past the threshold: above it for a rise, below
// minus it for a fall. 1 when no level makes it so.
func additiveTail(threshold float64, rise bool, terms []term) float64 {
	past := func(alpha float64) bool {
		if rise {
			return boundOf(terms, alpha, false) > threshold
		}
		return boundOf(terms, alpha, true) < -threshold
	}
	if !past(1) {
		return 1
	}
	lo, hi := math.Log10(stats.MinLevel), 0.0 // log10 of the level
	if past(math.Pow(10, lo)) {
		return stats.MinLevel
	}
	for range 60 {
		mid := (lo + hi) / 2
		if past(math.Pow(10, mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Pow(10, hi)
}

// scaleOf judges hosts' change from before the phase, without a control:
// the whole type at a phase that brought most of the fleet onto the
// release, or a type with no host left to compare with.
func (g *group) scaleOf(of []hostData, test string) Reading {
	var hosts []hostData
	for _, h := range of {
		if h.ok {
			hosts = append(hosts, h)
		}
	}
	var r Reading
	if g.kind == conf.KindCount {
		r = g.countScale(hosts)
	} else {
		r = g.levelScale(hosts)
	}
	r.Test = test
	return r
}
