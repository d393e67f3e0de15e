package stats

import (
	"math"
)

// CountTable is a 2×2 table of event counts, canary and control before
// and after, with the exposure of each cell (host-samples, or traffic).
type CountTable struct {
	C0, C1, K0, K1     int
	EC0, EC1, EK0, EK1 float64
}

// Alternative is the direction a one-sided test looks in.
type Alternative int

// The alternatives.
const (
	// Greater: the canaries' rate ratio is above theta0 (a rise).
	Greater Alternative = iota
	// Less: it is below theta0 (a fall).
	Less
)

// RateRatio is the canaries' rate ratio over the control's: (C1/EC1 ÷
// C0/EC0) ÷ (K1/EK1 ÷ K0/EK0), the release's multiplicative effect.
func (t CountTable) RateRatio() float64 {
	return (float64(t.C1) / t.EC1 * t.EC0 / float64(t.C0)) / (float64(t.K1) / t.EK1 * t.EK0 / float64(t.K0))
}

// exposureOdds is what turns a rate ratio into the odds ratio of the
// table's conditional distribution: psi = theta * exposureOdds.
func (t CountTable) exposureOdds() float64 {
	return t.EC1 * t.EK0 / (t.EC0 * t.EK1)
}

func (t CountTable) usable() bool {
	return t.EC0 > 0 && t.EC1 > 0 && t.EK0 > 0 && t.EK1 > 0 && t.C0 >= 0 && t.C1 >= 0 && t.K0 >= 0 && t.K1 >= 0
}

// RateRatioTest is the exact one-sided p-value, for Poisson counts, that
// the canaries' rate ratio is past theta0: conditioned on all four margins
// the canaries' count after is Fisher's noncentral hypergeometric with
// odds ratio theta0 times the exposures' odds, whatever the rates of the
// cells (the nuisance parameters drop out). Greater gives P(X >= C1), Less
// P(X <= C1). A table with an empty margin carries no evidence: 1.
func RateRatioTest(t CountTable, theta0 float64, alt Alternative) float64 {
	if !t.usable() || theta0 <= 0 || math.IsInf(theta0, 0) || math.IsNaN(theta0) {
		return 1
	}
	d := NewNCHypergeom(t.C0+t.C1, t.K0+t.K1, t.C1+t.K1, theta0*t.exposureOdds())
	if alt == Greater {
		return d.SF(t.C1)
	}
	return d.CDF(t.C1)
}

// RateRatioCI is the exact confidence interval for the canaries' rate
// ratio at level (0.99 for 99%): the thetas no one-sided test at
// (1-level)/2 rejects. A bound the table cannot limit is 0 or +Inf.
func RateRatioCI(t CountTable, level float64) (lo, hi float64) {
	if !t.usable() {
		return 0, math.Inf(1)
	}
	a := (1 - level) / 2
	odds := t.exposureOdds()
	n1, n2, m := t.C0+t.C1, t.K0+t.K1, t.C1+t.K1
	x := t.C1
	lowX, highX := max(0, m-n2), min(n1, m)
	if lowX == highX {
		return 0, math.Inf(1)
	}
	// The bounds lie within some standard errors of the odds ratio's
	// estimate (each cell shrunk by a half, so that none is empty).
	half := func(n int) float64 { return float64(n) + 0.5 }
	est := math.Log(half(t.C1) * half(t.K0) / (half(t.C0) * half(t.K1)))
	se := math.Sqrt(1/half(t.C0) + 1/half(t.C1) + 1/half(t.K0) + 1/half(t.K1))
	span := 12*se + 2
	// P(X >= x; psi) grows with psi: the lower bound is where it reaches a.
	lo, hi = 0, math.Inf(1)
	if x > lowX {
		lo = math.Exp(bisectLogPsi(est-span, est+span, func(logPsi float64) bool {
			return NewNCHypergeom(n1, n2, m, math.Exp(logPsi)).SF(x) >= a
		})) / odds
	}
	if x < highX {
		hi = math.Exp(bisectLogPsi(est-span, est+span, func(logPsi float64) bool {
			return NewNCHypergeom(n1, n2, m, math.Exp(logPsi)).CDF(x) < a
		})) / odds
	}
	return lo, hi
}

// bisectLogPsi finds where above turns true on log psi in [lo, hi], which
// it does once, to within 1e-7 of the bracket.
func bisectLogPsi(lo, hi float64, above func(float64) bool) float64 {
	for range 28 {
		mid := (lo + hi) / 2
		if above(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return (lo + hi) / 2
}

// NCHypergeom is Fisher's noncentral hypergeometric distribution: the
// count in the first row and first column of a 2×2 table whose first row
// totals n1, second n2, first column m, with odds ratio psi.
type NCHypergeom struct {
	n1, n2, m int
	logPsi    float64
	low, high int // the support
	mode      int
	// logTotal is the log of the sum of the unnormalized terms, each taken
	// relative to the mode's.
	logTotal float64
}

// NewNCHypergeom is the distribution for the margins and odds ratio.
func NewNCHypergeom(n1, n2, m int, psi float64) *NCHypergeom {
	d := &NCHypergeom{n1: n1, n2: n2, m: m, logPsi: math.Log(psi), low: max(0, m-n2), high: min(n1, m)}
	d.mode = d.findMode()
	up := d.sumFrom(d.mode, 1, 0)
	down := d.sumFrom(d.mode-1, -1, d.logRatioDown(d.mode))
	d.logTotal = logAdd(up, down)
	return d
}

// logRatio is log(term(x+1)/term(x)).
func (d *NCHypergeom) logRatio(x int) float64 {
	return math.Log(float64(d.n1-x)) + math.Log(float64(d.m-x)) + d.logPsi -
		math.Log(float64(x+1)) - math.Log(float64(d.n2-d.m+x+1))
}

// logRatioDown is log(term(x-1)/term(x)).
func (d *NCHypergeom) logRatioDown(x int) float64 {
	if x <= d.low {
		return math.Inf(-1)
	}
	return -d.logRatio(x - 1)
}

// findMode is the x where the terms stop growing: the root of the
// quadratic their ratio gives, clamped to the support and nudged.
func (d *NCHypergeom) findMode() int {
	psi := math.Exp(d.logPsi)
	a := psi - 1
	b := -((float64(d.m)+float64(d.n1)+2)*psi + float64(d.n2) - float64(d.m))
	c := psi * (float64(d.n1) + 1) * (float64(d.m) + 1)
	var x float64
	if math.Abs(a) < 1e-12 {
		x = -c / b
	} else {
		disc := math.Max(b*b-4*a*c, 0)
		x = -2 * c / (b - math.Sqrt(disc)) // the root in the support
	}
	mode := min(max(int(math.Floor(x)), d.low), d.high)
	for mode < d.high && d.logRatio(mode) > 0 {
		mode++
	}
	for mode > d.low && d.logRatio(mode-1) < 0 {
		mode--
	}
	return mode
}

// negligible is how far below the largest term (in log) a term can be
// left out of a sum without changing it in float64.
const negligible = -745

// sumFrom sums the terms from x on in steps of dir (+1 or -1), the first
// term's log (relative to the mode's) being first; it returns the log of
// the sum relative to the mode's term.
func (d *NCHypergeom) sumFrom(x, dir int, first float64) float64 {
	total := math.Inf(-1)
	lt := first
	for ; x >= d.low && x <= d.high; x += dir {
		total = logAdd(total, lt)
		if lt-total < negligible/16 && lt < total {
			break
		}
		if dir > 0 {
			if x == d.high {
				break
			}
			lt += d.logRatio(x)
		} else {
			lt += d.logRatioDown(x)
		}
	}
	return total
}

// logTerm is a term's log relative to the mode's.
func (d *NCHypergeom) logTerm(x int) float64 {
	lt := 0.0
	for i := d.mode; i < x; i++ {
		lt += d.logRatio(i)
	}
	for i := d.mode; i > x; i-- {
		lt += d.logRatioDown(i)
	}
	return lt
}

// LogPMF is log P(X = x).
func (d *NCHypergeom) LogPMF(x int) float64 {
	if x < d.low || x > d.high {
		return math.Inf(-1)
	}
	return d.logTerm(x) - d.logTotal
}

// SF is P(X >= x).
func (d *NCHypergeom) SF(x int) float64 {
	switch {
	case x <= d.low:
		return 1
	case x > d.high:
		return 0
	case x <= d.mode:
		return 1 - d.CDF(x-1)
	}
	return math.Exp(d.sumFrom(x, 1, d.logTerm(x)) - d.logTotal)
}

// CDF is P(X <= x).
func (d *NCHypergeom) CDF(x int) float64 {
	switch {
	case x < d.low:
		return 0
	case x >= d.high:
		return 1
	case x >= d.mode:
		return 1 - d.SF(x+1)
	}
	return math.Exp(d.sumFrom(x, -1, d.logTerm(x)) - d.logTotal)
}

// Mean is E[X], summed over the terms that matter.
func (d *NCHypergeom) Mean() float64 {
	var mean float64
	lt := 0.0
	for x := d.mode; x <= d.high; x++ {
		p := math.Exp(lt - d.logTotal)
		mean += float64(x) * p
		if x < d.high {
			lt += d.logRatio(x)
		}
		if lt < negligible/16 {
			break
		}
	}
	lt = d.logRatioDown(d.mode)
	for x := d.mode - 1; x >= d.low; x-- {
		p := math.Exp(lt - d.logTotal)
		mean += float64(x) * p
		lt += d.logRatioDown(x)
		if lt < negligible/16 {
			break
		}
	}
	return mean
}

// logAdd is log(exp(a)+exp(b)).
func logAdd(a, b float64) float64 {
	if math.IsInf(a, -1) {
		return b
	}
	if math.IsInf(b, -1) {
		return a
	}
	if a < b {
		a, b = b, a
	}
	return a + math.Log1p(math.Exp(b-a))
}
