package stats

import "math"

// SpendPocock is the share of alpha that look k of looks may use, so that
// a test repeated at every look keeps its error at alpha however often it
// is looked at: the increment of Lan and DeMets' Pocock-type spending
// function alpha*ln(1+(e-1)*t) at t = k/looks. The increments of looks 1
// to looks sum to alpha (a Bonferroni split over the looks, which needs no
// assumption on how the looks' statistics correlate); a look past looks
// gets nothing, so a verdict that waits longer than planned only passes.
// Pocock's shape spends early, where harm is gross and should stop the
// push within a few samples.
func SpendPocock(alpha float64, k, looks int) float64 {
	if k < 1 || looks < 1 || k > looks {
		return 0
	}
	spent := func(i int) float64 {
		return alpha * math.Log(1+(math.E-1)*float64(i)/float64(looks))
	}
	return spent(k) - spent(k-1)
}
