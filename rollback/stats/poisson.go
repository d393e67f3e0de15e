package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// PoissonLower is the exact (Garwood) lower confidence bound at one-sided
// level a for the mean of a Poisson count x: the mean below which seeing x
// or more has chance under a. It is 0 for x = 0.
func PoissonLower(x int, a float64) float64 {
	if x <= 0 {
		return 0
	}
	return mathext.GammaIncRegInv(float64(x), math.Max(a, MinLevel))
}

// PoissonUpper is the exact (Garwood) upper confidence bound at one-sided
// level a for the mean of a Poisson count x: the mean above which seeing x
// or fewer has chance under a.
func PoissonUpper(x int, a float64) float64 {
	// The complement keeps its digits where 1-a would round to 1.
	return mathext.GammaIncRegCompInv(float64(max(x, 0)+1), math.Max(a, MinLevel))
}

// MinLevel is the smallest error level the Poisson bounds are computed
// at: gonum's inversion is exact to there, and no verdict needs more.
const MinLevel = 1e-60

// BinomialSF is P(X >= x) for X ~ Binomial(n, p), exact through the
// regularized incomplete beta function, so tiny tails keep their digits.
func BinomialSF(x, n int, p float64) float64 {
	switch {
	case x <= 0:
		return 1
	case x > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	return mathext.RegIncBeta(float64(x), float64(n-x+1), p)
}

// BinomialCDF is P(X <= x) for X ~ Binomial(n, p).
func BinomialCDF(x, n int, p float64) float64 {
	switch {
	case x < 0:
		return 0
	case x >= n:
		return 1
	case p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	return mathext.RegIncBeta(float64(n-x), float64(x+1), 1-p)
}

// StudentSF is P(T > t) for Student's t with df degrees of freedom, exact
// in both tails through the incomplete beta function.
func StudentSF(t, df float64) float64 {
	if math.IsInf(t, 1) {
		return 0
	}
	if math.IsInf(t, -1) {
		return 1
	}
	tail := 0.5 * mathext.RegIncBeta(df/2, 0.5, df/(df+t*t))
	if t > 0 {
		return tail
	}
	return 1 - tail
}

// StudentQuantile is the t with P(T <= t) = p, df degrees of freedom.
func StudentQuantile(p, df float64) float64 {
	if p == 0.5 {
		return 0
	}
	q := p
	if p > 0.5 {
		q = 1 - p
	}
	// 2q = I_{df/(df+t²)}(df/2, 1/2), so x = df/(df+t²) inverts it.
	x := mathext.InvRegIncBeta(df/2, 0.5, 2*q)
	t := math.Sqrt(df * (1 - x) / x)
	if p < 0.5 {
		return -t
	}
	return t
}
