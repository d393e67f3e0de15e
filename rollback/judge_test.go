package rollback

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
)

// trial is a small fleet judged in process: every host sampled each 10 s,
// a baseline window, then the phase's hosts switched at once.
type trial struct {
	fleet    *conf.Fleet
	canaries []string
	// gen is each host's gauges at sample i; i < 0 is before the phase.
	gen         func(host string, canary bool, i int) map[string]float64
	pre, post   int
	scale       bool
	everyOnRels bool // every host is on the release (the watch)
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

const step = 10 * time.Second

func at(i int) time.Time { return t0.Add(time.Duration(i) * step) }

// fleetOf is a fleet of hosts named by type ("www", 24) with limits.
func fleetOf(t testing.TB, types map[string]int, limits string, extra string) *conf.Fleet {
	t.Helper()
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:1\nagent_token_file: /x\nhosts:\n")
	for _, typ := range []string{"www", "db", "chat"} {
		for i := 1; i <= types[typ]; i++ {
			fmt.Fprintf(&b, "  - {name: %s%02d, address: '127.0.0.1:1', host_type: %s}\n", typ, i, typ)
		}
	}
	b.WriteString("windows: {baseline: 1m, observe: 3m, sample_interval: 10s, max_wait: 1m, warmup: 30s}\n")
	b.WriteString(extra)
	b.WriteString("limits:\n" + limits)
	fl, err := conf.ParseFleet("fleet.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// run judges the trial after each sample after the switch, and returns
// the first verdict that is not Observe, or the last, with its look.
func (tr trial) run() (Verdict, int) {
	h := NewHistory(24 * time.Hour)
	canary := map[string]bool{}
	for _, c := range tr.canaries {
		canary[c] = true
	}
	for i := -tr.pre; i < 0; i++ {
		for _, host := range tr.fleet.Hosts {
			h.Add(host.Name, Sample{At: at(i), Gauges: tr.gen(host.Name, canary[host.Name], i)})
		}
	}
	co := Cohort{Anchor: at(0), Switched: map[string]time.Time{}, Pre: map[string]map[string]Summary{},
		Scale: tr.scale, Window: time.Duration(tr.post) * step}
	for _, host := range tr.fleet.Hosts {
		ss := h.Window(host.Name, at(-tr.pre), at(0))
		co.Pre[host.Name] = map[string]Summary{}
		for g := range gaugeNames(ss) {
			co.Pre[host.Name][g] = Summarize(ss, g, tr.fleet.Judge.Traffic)
		}
	}
	onRelease := map[string]time.Time{}
	for _, c := range tr.canaries {
		co.Switched[c] = at(0)
		onRelease[c] = at(0)
	}
	if tr.everyOnRels {
		for _, host := range tr.fleet.Hosts {
			onRelease[host.Name] = at(0)
		}
	}
	var v Verdict
	for i := 0; i < tr.post; i++ {
		for _, host := range tr.fleet.Hosts {
			h.Add(host.Name, Sample{At: at(i), Gauges: tr.gen(host.Name, canary[host.Name], i)})
		}
		v = Judge(JudgeInput{Label: "phase 1", Fleet: tr.fleet, Now: at(i), Look: i + 1, Looks: tr.post, Family: 4,
			Cohorts: []Cohort{co}, OnRelease: onRelease, History: h, Final: i == tr.post-1, Closing: i == tr.post-1})
		if v.Outcome != Observe {
			return v, i + 1
		}
	}
	return v, tr.post
}

// noisy draws gauges around each host's own level: load with Gaussian
// noise, events Poisson, all scaled by the fleet's traffic at sample i.
type noisy struct {
	seed    uint64
	traffic func(i int) float64                                   // fleet-wide, 1 = usual
	effect  func(g string, canary bool, i int, x float64) float64 // the release's
}

func (n noisy) gen(host string, canary bool, i int) map[string]float64 {
	r := rand.New(rand.NewPCG(n.seed, uint64(len(host))*7919+uint64(hostNum(host))*131+uint64(i+1000)))
	level := rand.New(rand.NewPCG(n.seed, uint64(hostNum(host)))).NormFloat64()*0.2 + 1
	tr := 1.0
	if n.traffic != nil {
		tr = n.traffic(i)
	}
	out := map[string]float64{
		"loadavg1":      math.Max(0, 2*level*tr+r.NormFloat64()*0.2),
		"php_errors":    float64(poisson(r, 0.2*level*tr)),
		"registrations": float64(poisson(r, 5*level*tr)),
		"requests":      float64(poisson(r, 200*level*tr)),
	}
	if n.effect != nil && i >= 0 {
		for g, x := range out {
			out[g] = n.effect(g, canary, i, x)
		}
	}
	return out
}

func hostNum(h string) int {
	n := 0
	for _, c := range h {
		n = n*31 + int(c)
	}
	return n
}

// poisson draws a Poisson count (Knuth's method, fine for small means;
// a normal approximation above 50).
func poisson(r *rand.Rand, mean float64) int {
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

const demoLimits = `  - {gauge: loadavg1, host_types: [www], rise: 50%}
  - {gauge: php_errors, host_types: [www], rise: 5, kind: count}
  - {gauge: registrations, host_types: [www], fall: 25%, kind: count}
`

func TestJudgeScenarios(t *testing.T) {
	fl := fleetOf(t, map[string]int{"www": 24}, demoLimits, "judge: {traffic: requests}\n")
	canaries := []string{"www01", "www02"}
	surge := func(i int) float64 {
		if i >= 5 {
			return 1.7
		}
		return 1
	}
	tests := []struct {
		name    string
		n       noisy
		outcome Outcome
		reason  string // a part of the reason
		within  int    // looks, for a breach
	}{
		{name: "quiet", n: noisy{}, outcome: Pass, reason: "every gauge held its limits"},
		{name: "a surge the whole fleet sees", n: noisy{traffic: surge}, outcome: Pass},
		{name: "an evening decline", n: noisy{traffic: func(i int) float64 { return 1 - 0.01*float64(i+6) }}, outcome: Pass},
		{name: "warm-up doubles load for 20 s", n: noisy{effect: func(g string, c bool, i int, x float64) float64 {
			if c && g == "loadavg1" && i < 2 {
				return 2 * x
			}
			return x
		}}, outcome: Pass},
		{name: "gross fatal errors", n: noisy{effect: func(g string, c bool, i int, x float64) float64 {
			if c && g == "php_errors" {
				return x + 40
			}
			return x
		}}, outcome: Fail, reason: "php_errors on www rose", within: 2},
		{name: "load 80% higher", n: noisy{effect: func(g string, c bool, i int, x float64) float64 {
			if c && g == "loadavg1" {
				return 1.8 * x
			}
			return x
		}}, outcome: Fail, reason: "loadavg1 on www rose", within: 12},
		{name: "registrations halved under a traffic rise", n: noisy{traffic: surge, effect: func(g string, c bool, i int, x float64) float64 {
			if c && g == "registrations" {
				return math.Round(x / 2)
			}
			return x
		}}, outcome: Fail, reason: "registrations on www fell"},
		{name: "load 20% higher, within the limit", n: noisy{effect: func(g string, c bool, i int, x float64) float64 {
			if c && g == "loadavg1" {
				return 1.2 * x
			}
			return x
		}}, outcome: Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.n.seed = 7
			v, looks := trial{fleet: fl, canaries: canaries, gen: tt.n.gen, pre: 18, post: 30}.run()
			if v.Outcome != tt.outcome || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("got %s after %d looks: %s\nwant %s %q", v.Outcome, looks, v.Reason, tt.outcome, tt.reason)
			}
			if tt.within > 0 && looks > tt.within {
				t.Errorf("breach took %d looks, want at most %d: %s", looks, tt.within, v.Reason)
			}
		})
	}
}

// TestJudgeExplains: a breach's reason says what, against what, by how
// much, how sure, and the limit.
func TestJudgeExplains(t *testing.T) {
	fl := fleetOf(t, map[string]int{"www": 24}, demoLimits, "")
	n := noisy{seed: 3, effect: func(g string, c bool, i int, x float64) float64 {
		if c && g == "registrations" {
			return math.Round(x * 0.4)
		}
		return x
	}}
	v, _ := trial{fleet: fl, canaries: []string{"www01", "www02", "www03"}, gen: n.gen, pre: 18, post: 30}.run()
	want := `^phase 1: registrations on www fell \d+(\.\d+)?% against the hosts still on the old release \([\d.]+ vs [\d.]+ a sample, [\d.]+% confidence; limit fall 25%\)$`
	if v.Outcome != Fail || !matches(want, v.Reason) {
		t.Fatalf("got %s: %q\nwant %s", v.Outcome, v.Reason, want)
	}
	var effect *Reading
	for i, r := range v.Readings {
		if r.Host == "" && r.Gauge == "registrations" {
			effect = &v.Readings[i]
		}
	}
	if effect == nil || effect.Low == nil || effect.High == nil || *effect.Low > *effect.Delta || *effect.High < *effect.Delta ||
		effect.Canaries != 3 || effect.Controls != 21 || effect.Confidence == nil || *effect.Confidence < 0.99 {
		t.Errorf("effect reading %+v", effect)
	}
}

func TestJudgeGuardsAndPolicies(t *testing.T) {
	steady := func(g string, v float64) func(string, bool, int) map[string]float64 {
		return func(string, bool, int) map[string]float64 { return map[string]float64{g: v} }
	}
	tests := []struct {
		name    string
		types   map[string]int
		limits  string
		gen     func(host string, canary bool, i int) map[string]float64
		outcome Outcome
		reason  string
	}{
		{"above the bound", map[string]int{"db": 3}, "  - {gauge: loadavg1, max: 6}\n",
			func(h string, c bool, i int) map[string]float64 {
				if c && i >= 0 {
					return map[string]float64{"loadavg1": 9}
				}
				return map[string]float64{"loadavg1": 1}
			}, Fail, "loadavg1 on db01 is 9, above the limit 6"},
		{"already past the bound before the push", map[string]int{"db": 3}, "  - {gauge: loadavg1, max: 6}\n",
			steady("loadavg1", 9), Pass, "every gauge held"},
		{"missing data fails", map[string]int{"db": 3}, "  - {gauge: loadavg1, max: 6}\n",
			func(h string, c bool, i int) map[string]float64 {
				if c && i >= 0 {
					return map[string]float64{}
				}
				return map[string]float64{"loadavg1": 1}
			}, Fail, "loadavg1 on db01 has no reading for 3 samples in a row"},
		{"missing data ignored", map[string]int{"db": 3}, "  - {gauge: loadavg1, max: 6, missing: ignore}\n",
			func(h string, c bool, i int) map[string]float64 {
				if c && i >= 0 {
					return map[string]float64{}
				}
				return map[string]float64{"loadavg1": 1}
			}, Pass, "every gauge held"},
		{"missing data waits", map[string]int{"db": 3}, "  - {gauge: loadavg1, max: 6, missing: wait}\n",
			func(h string, c bool, i int) map[string]float64 {
				if c && i >= 0 {
					return map[string]float64{}
				}
				return map[string]float64{"loadavg1": 1}
			}, Wait, "waiting for a reading of loadavg1 on db01"},
		{"a type of one host cannot be compared", map[string]int{"db": 1}, "  - {gauge: loadavg1, rise: 50%}\n",
			steady("loadavg1", 1), Wait, "too few hosts to compare with (1 on the release, 0 with readings left on the old one)"},
		{"a dry run never rolls back", map[string]int{"db": 3}, "  - {gauge: loadavg1, max: 6, dry_run: true}\n",
			func(h string, c bool, i int) map[string]float64 {
				if c && i >= 0 {
					return map[string]float64{"loadavg1": 9}
				}
				return map[string]float64{"loadavg1": 1}
			}, Pass, "every gauge held"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := fleetOf(t, tt.types, tt.limits, "")
			v, looks := trial{fleet: fl, canaries: []string{"db01"}, gen: tt.gen, pre: 6, post: 6}.run()
			if v.Outcome != tt.outcome || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("got %s after %d looks: %s\nwant %s %q", v.Outcome, looks, v.Reason, tt.outcome, tt.reason)
			}
		})
	}
}

// TestJudgeAtScale: at the last phase a change of the whole type that
// begins with it is the push's (the database that every web host's new
// query loads), and one already under way before it is not.
func TestJudgeAtScale(t *testing.T) {
	fl := fleetOf(t, map[string]int{"db": 4}, "  - {gauge: loadavg1, host_types: [db], rise: 50%}\n", "")
	for _, tt := range []struct {
		name    string
		gen     func(host string, canary bool, i int) map[string]float64
		outcome Outcome
		reason  string
	}{
		{"a step at the phase", func(h string, c bool, i int) map[string]float64 {
			x := 1 + 0.01*float64(hostNum(h)%7)
			if i >= 0 {
				x *= 2.2
			}
			return map[string]float64{"loadavg1": x}
		}, Fail, "loadavg1 on db rose"},
		{"a rise already under way", func(h string, c bool, i int) map[string]float64 {
			return map[string]float64{"loadavg1": 1 + 0.01*float64(hostNum(h)%7) + 0.12*float64(i+6)}
		}, Pass, "every gauge held"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, looks := trial{fleet: fl, canaries: []string{"db01", "db02", "db03"}, gen: tt.gen, pre: 6, post: 9, scale: true}.run()
			if v.Outcome != tt.outcome || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("got %s after %d looks: %s\nwant %s %q", v.Outcome, looks, v.Reason, tt.outcome, tt.reason)
			}
		})
	}
}

// TestJudgeFalseRollbacks: good pushes under noise, surges and declines
// are rolled back at most as often as the confidence allows.
func TestJudgeFalseRollbacks(t *testing.T) {
	fl := fleetOf(t, map[string]int{"www": 24}, demoLimits, "judge: {traffic: requests}\n")
	const seeds = 200
	rolled := 0
	for seed := range uint64(seeds) {
		n := noisy{seed: seed + 100}
		switch seed % 3 {
		case 1:
			n.traffic = func(i int) float64 { return 1 + 0.7*float64(min(max(i-int(seed%9), 0), 1)) }
		case 2:
			n.traffic = func(i int) float64 { return 1 - 0.015*float64(i+6) }
		}
		if v, _ := (trial{fleet: fl, canaries: []string{"www01", "www02"}, gen: n.gen, pre: 18, post: 30}).run(); v.Outcome == Fail {
			rolled++
			t.Logf("seed %d: %s", seed, v.Reason)
		}
	}
	// 99% confidence allows 1%; 2 of 200 leaves room for chance.
	if rolled > 2 {
		t.Errorf("%d of %d good pushes rolled back", rolled, seeds)
	}
}

func matches(pattern, s string) bool {
	ok, _ := regexp.MatchString(pattern, s)
	return ok
}
