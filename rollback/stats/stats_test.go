package stats

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// reference reads testdata/reference.tsv: values SciPy computed (gen.py
// says how), one kind of check a line.
func reference(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("testdata/reference.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// close reports whether got is want to a relative tol (absolute near 0).
func close(got, want, tol float64) bool {
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	return math.Abs(got-want) <= tol*math.Max(math.Abs(want), 1e-300) || math.Abs(got-want) < 1e-300
}

func TestAgainstSciPy(t *testing.T) {
	rows := reference(t)
	if len(rows) < 100 {
		t.Fatalf("only %d reference rows", len(rows))
	}
	for _, r := range rows {
		name := strings.Join(r, " ")
		switch r[0] {
		case "nch_sf", "nch_cdf":
			d := NewNCHypergeom(atoi(t, r[1]), atoi(t, r[2]), atoi(t, r[3]), atof(t, r[4]))
			x, want := atoi(t, r[5]), atof(t, r[6])
			got := d.SF(x)
			if r[0] == "nch_cdf" {
				got = d.CDF(x)
			}
			// The terms are summed from the mode by their ratios, which
			// costs a few digits over thousands of steps.
			if !close(got, want, 1e-7) {
				t.Errorf("%s: got %g", name, got)
			}
		case "nch_mean":
			d := NewNCHypergeom(atoi(t, r[1]), atoi(t, r[2]), atoi(t, r[3]), atof(t, r[4]))
			if got := d.Mean(); !close(got, atof(t, r[5]), 1e-7) {
				t.Errorf("%s: got %g", name, got)
			}
		case "or_ci99":
			tab := CountTable{C0: atoi(t, r[1]), C1: atoi(t, r[2]), K0: atoi(t, r[3]), K1: atoi(t, r[4]), EC0: 1, EC1: 1, EK0: 1, EK1: 1}
			lo, hi := RateRatioCI(tab, 0.99)
			if !close(lo, atof(t, r[5]), 1e-5) || !close(hi, atof(t, r[6]), 1e-5) {
				t.Errorf("%s: got %g, %g", name, lo, hi)
			}
		case "poisson":
			x, a := atoi(t, r[1]), atof(t, r[2])
			if a < MinLevel {
				continue
			}
			if lo := PoissonLower(x, a); !close(lo, atof(t, r[3]), 1e-8) {
				t.Errorf("%s: lower %g", name, lo)
			}
			if hi := PoissonUpper(x, a); !close(hi, atof(t, r[4]), 1e-8) {
				t.Errorf("%s: upper %g", name, hi)
			}
		case "binom":
			x, n, p := atoi(t, r[1]), atoi(t, r[2]), atof(t, r[3])
			if got := BinomialSF(x, n, p); !close(got, atof(t, r[4]), 1e-9) {
				t.Errorf("%s: sf %g", name, got)
			}
			if got := BinomialCDF(x, n, p); !close(got, atof(t, r[5]), 1e-9) {
				t.Errorf("%s: cdf %g", name, got)
			}
		case "t_sf":
			if got := StudentSF(atof(t, r[1]), atof(t, r[2])); !close(got, atof(t, r[3]), 1e-9) {
				t.Errorf("%s: got %g", name, got)
			}
		case "t_ppf":
			if got := StudentQuantile(atof(t, r[1]), atof(t, r[2])); !close(got, atof(t, r[3]), 1e-8) {
				t.Errorf("%s: got %g", name, got)
			}
		default:
			t.Errorf("unknown reference kind %q", r[0])
		}
	}
}

// TestRateRatioTest: the exact test's p-value against the rate ratio it
// tests, on a table with unequal exposures, and degenerate tables.
func TestRateRatioTest(t *testing.T) {
	// The canaries' rate halved while the control's held: 2 hosts of 24.
	tab := CountTable{C0: 100, C1: 75, K0: 1100, K1: 1650, EC0: 20, EC1: 30, EK0: 220, EK1: 330}
	if got := tab.RateRatio(); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("rate ratio %g", got)
	}
	fall := RateRatioTest(tab, 0.75, Less)
	if fall > 0.01 || fall < 1e-6 {
		t.Errorf("a halving tested against a 25%% fall: p = %g", fall)
	}
	if p := RateRatioTest(tab, 0.4, Less); p < 0.5 {
		t.Errorf("a halving tested against a 60%% fall: p = %g", p)
	}
	lo, hi := RateRatioCI(tab, 0.98)
	if !(lo < 0.5 && 0.5 < hi && hi < 0.75) {
		t.Errorf("98%% interval (%g, %g)", lo, hi)
	}
	for _, bad := range []CountTable{{}, {C1: 5, K1: 5, EC0: 1, EC1: 1, EK0: 1, EK1: 1}} {
		if p := RateRatioTest(bad, 1, Greater); p != 1 {
			t.Errorf("degenerate %+v: p = %g", bad, p)
		}
	}
}

func TestSpendPocock(t *testing.T) {
	var sum float64
	for k := 1; k <= 40; k++ {
		l := SpendPocock(0.01, k, 40)
		if l <= 0 {
			t.Fatalf("look %d gets %g", k, l)
		}
		sum += l
	}
	if math.Abs(sum-0.01) > 1e-15 || SpendPocock(0.01, 41, 40) != 0 || SpendPocock(0.01, 1, 40) <= SpendPocock(0.01, 40, 40) {
		t.Errorf("spent %g; look 41: %g", sum, SpendPocock(0.01, 41, 40))
	}
}

func BenchmarkRateRatioTest(b *testing.B) {
	tab := CountTable{C0: 2000, C1: 3100, K0: 20000, K1: 30000, EC0: 20, EC1: 30, EK0: 200, EK1: 300}
	for b.Loop() {
		RateRatioTest(tab, 0.75, Less)
	}
}

func BenchmarkRateRatioCI(b *testing.B) {
	tab := CountTable{C0: 2000, C1: 3100, K0: 20000, K1: 30000, EC0: 20, EC1: 30, EK0: 200, EK1: 300}
	for b.Loop() {
		RateRatioCI(tab, 0.98)
	}
}
