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
	// P(X >= x; mean) is the regularized lower incomplete gamma P(x, mean),
	// rising in mean: bisect its log, which keeps its digits in the tail
	// where gonum's own inversion loses them.
	target := math.Log(math.Max(a, MinLevel))
	return bisectLog(func(mean float64) bool {
		return math.Log(mathext.GammaIncReg(float64(x), mean)) >= target
	}, float64(x))
}

// PoissonUpper is the exact (Garwood) upper confidence bound at one-sided
// level a for the mean of a Poisson count x: the mean above which seeing x
// or fewer has chance under a.
func PoissonUpper(x int, a float64) float64 {
	// P(X <= x; mean) is the regularized upper incomplete gamma
	// Q(x+1, mean), falling in mean.
	target := math.Log(math.Max(a, MinLevel))
	return bisectLog(func(mean float64) bool {
		return math.Log(mathext.GammaIncRegComp(float64(max(x, 0)+1), mean)) <= target
	}, float64(max(x, 1)))
}

// bisectLog finds the mean where turn becomes true, turn being false below
// it and true above, by bisection on its log around guess.
func bisectLog(turn func(mean float64) bool, guess float64) float64 {
	lo, hi := math.Log(guess)-1, math.Log(guess)+1
	for !turn(math.Exp(hi)) {
		lo, hi = hi, hi+2*(hi-lo)
	}
	for turn(math.Exp(lo)) {
		hi, lo = lo, lo-2*(hi-lo)
	}
	for range 100 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if turn(math.Exp(mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Exp((lo + hi) / 2)
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
