package rollback

import (
	"fmt"
	"math"

	"github.com/immune-ops/immune/conf"
)

// decide fills in an effect reading: the effect and its share of the
// counterfactual, whether it is past the limit with the confidence this
// look allows, and, on a final look, whether the evidence is enough to
// say it is not. tail gives the one-sided p-value that the effect is
// past a threshold (rise: above it; fall: below minus it); interval gives
// the effect's two-sided interval at a level (nil: none).
func (g *group) decide(r *Reading, effect, counterfactual float64, tail func(threshold float64, rise bool) float64,
	interval func(alpha float64) (float64, float64), against string) {
	r.Delta = ptr(effect)
	if counterfactual != 0 {
		r.DeltaPct = ptr(100 * effect / math.Abs(counterfactual))
	}
	// The interval's each side is a one-sided bound at the confidence: a
	// pass needs the side toward the limit to exclude it.
	alpha := 2 * g.in.Fleet.Judge.Alpha()
	if g.in.Quick && !g.in.Final {
		interval = nil
	}
	if interval != nil {
		lo, hi := interval(alpha)
		r.Low, r.High = ptr(lo), ptr(hi)
	}
	level := g.in.level(g.cohortIndex())
	for _, side := range []struct {
		rise   bool
		change bool
	}{{true, g.l.Rise != nil}, {false, g.l.Fall != nil}} {
		if !side.change {
			continue
		}
		c := g.l.Rise
		if !side.rise {
			c = g.l.Fall
		}
		threshold := limitFor(c, counterfactual)
		p := tail(threshold, side.rise)
		conf := 1 - p
		if r.Confidence == nil || conf > *r.Confidence {
			r.Confidence = ptr(conf)
		}
		if p < level {
			r.Breached = true
			r.Why = g.sentence(r, side.rise, against, conf)
			return
		}
		if !g.in.Final {
			continue
		}
		// Final: a pass needs the interval to exclude a breach.
		if side.rise && (r.High == nil && interval != nil || r.High != nil && *r.High > threshold) ||
			!side.rise && (r.Low == nil && interval != nil || r.Low != nil && *r.Low < -threshold) {
			r.Inconclusive = true
			r.Why = fmt.Sprintf("%s: too little evidence yet to rule out a %s past %s (effect %s, interval %s to %s)",
				g.where(), map[bool]string{true: "rise", false: "fall"}[side.rise], c, signed(effect), optNum(r.Low), optNum(r.High))
		}
	}
}

// sentence explains a breach with its numbers: "registrations on www fell
// 46% against the hosts still on the old release (3.4 vs 6.3 a sample,
// 99.9% confidence; limit fall 25%)".
func (g *group) sentence(r *Reading, rise bool, against string, conf float64) string {
	verb := "rose"
	if !rise {
		verb = "fell"
	}
	size := ""
	if r.DeltaPct != nil {
		size = fmt.Sprintf("%s%%", num(math.Abs(*r.DeltaPct)))
	} else if r.Delta != nil {
		size = fmt.Sprintf("by %s", num(math.Abs(*r.Delta)))
	}
	var what string
	if rise {
		what = "limit rise " + signedChange(g.l.Rise)
	} else {
		what = "limit fall " + g.l.Fall.String()
	}
	return fmt.Sprintf("%s %s %s against %s (%s vs %s a sample, %s confidence; %s)",
		g.where(), verb, size, against, optNum(r.Post), optNum(r.Control), pct(conf), what)
}

// thin marks an effect that cannot be judged for want of hosts: a reason
// to wait on a final look, nothing before.
func (g *group) thin(r *Reading, canaries, controls int) {
	if !g.in.Final {
		return
	}
	r.Inconclusive = true
	switch {
	case canaries == 0:
		r.Why = fmt.Sprintf("%s: no reading from the hosts running the release yet", g.where())
	default:
		r.Why = fmt.Sprintf("%s: too few hosts to compare with (%d on the release, %d with readings left on the old one)", g.where(), canaries, controls)
	}
}

// underWay reports, and notes in r, a change that was already under way
// before the phase: the trend between the halves of the window before it,
// carried on to the middle of the window judged, explains at least half
// of the change. Such a change is not the push's.
func (g *group) underWay(r *Reading, trend, effect float64) bool {
	baseline := g.in.Fleet.Windows.Baseline.D()
	if trend == 0 || effect == 0 || math.Signbit(trend) != math.Signbit(effect) || baseline <= 0 {
		return false
	}
	from := g.levelStart(g.c.Anchor)
	if g.kind == conf.KindCount {
		from = g.c.Anchor
	}
	// The halves' middles are baseline/2 apart; the later one baseline/4
	// before the anchor.
	span := float64(g.in.Now.Sub(from))/2 + float64(from.Sub(g.c.Anchor)) + float64(baseline)/4
	carried := trend * span / (float64(baseline) / 2)
	if math.Abs(carried) < math.Abs(effect)/2 {
		return false
	}
	r.Why = fmt.Sprintf("%s was already moving before phase %d (%s within the window before it): not blamed on the push",
		g.where(), g.c.Phase+1, signed(trend))
	return true
}

func optNum(x *float64) string {
	if x == nil {
		return "–"
	}
	return num(*x)
}

// signed writes a change with its sign, and a change that rounds to
// nothing as 0 rather than -0.
func signed(x float64) string {
	switch r := math.Round(x*1000) / 1000; {
	case r > 0:
		return "+" + num(r)
	case r < 0:
		return num(r)
	}
	return "0"
}

// cohortIndex is the group's cohort's place among the input's cohorts.
func (g *group) cohortIndex() int {
	for i, c := range g.in.Cohorts {
		if c.Phase == g.c.Phase {
			return i
		}
	}
	return -1
}
