// Package rollback is the coordinator of the cluster immune system: it
// pushes a revision to a few hosts and then to all, judges every gauge on
// the hosts running it against the hosts not running it yet, and rolls the
// release back when it harms them.
package rollback

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback/stats"
)

// Sample is one reading of a host's gauges; a gauge it lacks is missing.
type Sample struct {
	At     time.Time          `json:"at"`
	Gauges map[string]float64 `json:"gauges"`
}

// Outcome is a verdict's decision.
type Outcome string

// The outcomes of a verdict.
const (
	// Pass: the phase's window is over and no limit was crossed.
	Pass Outcome = "pass"
	// Fail: a limit was crossed with the configured confidence.
	Fail Outcome = "fail"
	// Observe: nothing crossed yet and the window is not over.
	Observe Outcome = "observe"
	// Wait: the window is over but the evidence is too thin to pass, or a
	// gauge whose missing policy is "wait" has no reading yet.
	Wait Outcome = "wait"
)

// Role is what a host is to a reading.
type Role string

// The roles of a host in a phase.
const (
	RoleCanary  Role = "canary"  // runs the release
	RoleControl Role = "control" // does not run it yet
)

// Reading is one gauge on one host, or the release's effect on one host
// type, as judged at one look.
type Reading struct {
	// Host is empty for a host type's effect.
	Host     string `json:"host,omitempty"`
	HostType string `json:"host_type"`
	Gauge    string `json:"gauge"`
	Role     Role   `json:"role,omitempty"`
	// Phase is the phase whose hosts an effect is of, from 1.
	Phase int `json:"phase,omitempty"`
	// Test says how the effect was judged: "counts, exact", "levels across
	// hosts", "before/after at scale", "guard".
	Test string `json:"test,omitempty"`
	// Pre is the mean before the phase, Post the mean judged; for an
	// effect, Post is the hosts running the release and Control what they
	// would have read without it, as the control hosts show.
	Pre     *float64 `json:"pre"`
	Post    *float64 `json:"post"`
	Control *float64 `json:"control,omitempty"`
	// Delta is Post-Pre for a host, the effect (Post-Control) for a type.
	Delta *float64 `json:"delta"`
	// DeltaPct is Delta in percent of Pre (Control for an effect).
	DeltaPct *float64 `json:"delta_pct"`
	// Low and High bound the effect at the verdict's confidence, in the
	// units of Delta (nil when unbounded).
	Low  *float64 `json:"low,omitempty"`
	High *float64 `json:"high,omitempty"`
	// Confidence is how sure the effect is past its limit (1 - p).
	Confidence *float64 `json:"confidence,omitempty"`
	// Evidence is the share of the phase's observe window seen, 0 to 1.
	Evidence  float64 `json:"evidence,omitempty"`
	Canaries  int     `json:"canaries,omitempty"`
	Controls  int     `json:"controls,omitempty"`
	Threshold string  `json:"threshold"`
	Breached  bool    `json:"breached"`
	// Inconclusive: the evidence cannot yet tell a pass from a breach.
	Inconclusive bool `json:"inconclusive,omitempty"`
	// DryRun: the limit is shown, never rolled back for.
	DryRun bool `json:"dry_run,omitempty"`
	// Why says in one sentence what breached, or why the reading waits.
	Why     string `json:"why,omitempty"`
	Waiting bool   `json:"waiting,omitempty"`
	// Samples are the host's values since the phase began (NaN: missing),
	// for sparklines.
	Samples Series `json:"samples,omitempty"`
}

// Series is a gauge's values in order, NaN where a sample is missing. JSON
// has no NaN, so a missing value is written as null and read back as NaN.
type Series []float64

// MarshalJSON writes missing values as null.
func (s Series) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, x := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads null as a missing value.
func (s *Series) UnmarshalJSON(data []byte) error {
	var xs []*float64
	if err := json.Unmarshal(data, &xs); err != nil {
		return fmt.Errorf("read series: %w", err)
	}
	out := make(Series, len(xs))
	for i, x := range xs {
		out[i] = math.NaN()
		if x != nil {
			out[i] = *x
		}
	}
	*s = out
	return nil
}

// Verdict is the judgement of a phase at one look.
type Verdict struct {
	Outcome Outcome `json:"outcome"`
	// Reason is one sentence: what breached first, or that all held.
	Reason string `json:"reason"`
	// At is when it was reached; Look counts the looks since the push's
	// first deploy, of Looks planned.
	At       time.Time `json:"at,omitzero"`
	Look     int       `json:"look,omitempty"`
	Looks    int       `json:"looks,omitempty"`
	Evidence float64   `json:"evidence"`
	Readings []Reading `json:"readings"`
}

// Cohort is the hosts one phase switched to the release, with the window
// before the phase that their change, and the control's, is measured from.
type Cohort struct {
	// Phase is the phase's index, from 0.
	Phase int
	// Anchor is when the phase began deploying.
	Anchor time.Time
	// Switched is when each host of the cohort began running the release.
	Switched map[string]time.Time
	// Pre is every host's summary of every gauge before Anchor.
	Pre map[string]map[string]Summary
	// Scale: the phase brought most of the fleet onto the release, so a
	// change of a whole host type that begins with it is blamed on the
	// push even when the control sees it too (shared infrastructure).
	Scale bool
	// Window is how long the phase is observed.
	Window time.Duration
	// Holdback: the phase put the release on the control itself; from
	// then on only the guards and the change at scale are judged.
	Holdback bool
}

// Evidence is the share of the cohort's window seen by now.
func (c Cohort) Evidence(now time.Time) float64 {
	if c.Window <= 0 {
		return 1
	}
	return min(1, float64(now.Sub(c.Anchor))/float64(c.Window))
}

// JudgeInput is everything one look of the judge reads.
type JudgeInput struct {
	// Label names the phase in reasons: "phase 1".
	Label  string
	Fleet  *conf.Fleet
	Now    time.Time
	Look   int
	Looks  int
	Family int
	// Cohorts are the phases deployed so far, the one observed last.
	Cohorts []Cohort
	// OnRelease is every host running the release, and since when.
	OnRelease map[string]time.Time
	// Unreachable hosts are not counted as missing readings.
	History *History
	// Final: the window is over, a pass is due unless evidence is thin.
	Final bool
	// Closing: this is the phase's first final look, the one a pass or a
	// breach at the end of the window is decided at, which most of the
	// error is kept for.
	Closing bool
	// Quick skips the effects' intervals before the final look: nobody
	// reads them in a simulation, and they are most of a look's cost.
	Quick bool
}

// earlyShare is the share of a test's error spent over the looks before
// the window closes: enough for gross harm, which is far past any level,
// to roll back within a few samples; the rest is kept for the closing look,
// where a moderate effect has its whole window of evidence.
const earlyShare = 0.2

// level is the significance one test may use at this look: the push's
// alpha split over the family of tests (Bonferroni), then over the looks
// (a share spent evenly at every look, the rest at the closing look of the
// test's own phase); the shares sum to alpha, so looking again and again
// keeps the error at alpha.
func (in JudgeInput) level(cohort int) float64 {
	alpha := in.Fleet.Judge.Alpha() / float64(max(in.Family, 1))
	l := stats.SpendPocock(earlyShare*alpha, in.Look, in.Looks)
	if in.Closing && cohort == len(in.Cohorts)-1 {
		l += (1 - earlyShare) * alpha
	}
	return l
}

// Judge judges every limit on every host type at one look: the release's
// effect against the control for each cohort, the whole type's change at
// scale, and the guards on each host running the release.
func Judge(in JudgeInput) Verdict {
	v := Verdict{Outcome: Observe, At: in.Now, Look: in.Look, Looks: in.Looks}
	if n := len(in.Cohorts); n > 0 {
		v.Evidence = in.Cohorts[n-1].Evidence(in.Now)
	}
	types := indexTypes(in.Fleet)
	for _, l := range in.Fleet.Limits {
		for _, t := range types.order {
			if !l.AppliesTo(t) {
				continue
			}
			for _, r := range judgeType(in, l, t, types.hosts[t]) {
				v.add(in.Label, r)
			}
		}
	}
	switch {
	case v.Outcome == Fail:
	case !in.Final:
		v.Outcome = Observe
		v.Reason = fmt.Sprintf("%s: observing, %.0f%% of the window seen, nothing crossed its limit", in.Label, 100*v.Evidence)
	case v.Outcome == Wait:
	case len(in.Cohorts) > 0 && in.Cohorts[len(in.Cohorts)-1].Holdback:
		v.Outcome = Pass
		v.Reason = fmt.Sprintf("%s: every gauge held its limits on every host", in.Label)
	default:
		v.Outcome = Pass
		v.Reason = fmt.Sprintf("%s: every gauge held its limits against the hosts still on the old release", in.Label)
	}
	return v
}

// add records r: the first breach decides the outcome, a reading that
// waits or is inconclusive makes a final verdict wait.
func (v *Verdict) add(label string, r Reading) {
	v.Readings = append(v.Readings, r)
	switch {
	case r.DryRun:
	case r.Breached && v.Outcome != Fail:
		v.Outcome = Fail
		v.Reason = label + ": " + r.Why
	case (r.Waiting || r.Inconclusive) && v.Outcome != Fail && v.Outcome != Wait:
		v.Outcome = Wait
		v.Reason = label + ": " + r.Why
	}
}

type typeIndex struct {
	order []string
	hosts map[string][]string
}

func indexTypes(f *conf.Fleet) typeIndex {
	ix := typeIndex{hosts: map[string][]string{}}
	for _, h := range f.Hosts {
		if _, seen := ix.hosts[h.HostType]; !seen {
			ix.order = append(ix.order, h.HostType)
		}
		ix.hosts[h.HostType] = append(ix.hosts[h.HostType], h.Name)
	}
	return ix
}

// judgeType judges one limit on one host type: an effect reading per
// cohort, a reading at scale where a cohort brought most of the fleet,
// the guards, and a reading per host for the page.
func judgeType(in JudgeInput, l conf.Limit, hostType string, hosts []string) []Reading {
	var out []Reading
	watching := len(in.Cohorts) > 0 && in.Cohorts[len(in.Cohorts)-1].Holdback
	for i, c := range in.Cohorts {
		g := newGroup(in, l, hostType, hosts, c)
		if !watching && len(g.canaries) > 0 && (l.Rise != nil || l.Fall != nil) {
			r := g.effect()
			// An earlier phase's hosts were passed at its verdict: they
			// are judged on, for a slow burn, but only a breach counts.
			if i < len(in.Cohorts)-1 && r.Inconclusive {
				r.Inconclusive, r.Why = false, ""
			}
			out = append(out, r)
			// No host of the type is left to compare with: before and
			// after on the release's own hosts is the only evidence, so
			// a gross harm still rolls back.
			if len(g.controls) == 0 && !c.Scale {
				out = append(out, g.scaleOf(g.canaries, "before/after, no control"))
			}
		}
		if c.Scale && (l.Rise != nil || l.Fall != nil) {
			out = append(out, g.scaleOf(g.all, "before/after at scale"))
		}
	}
	if len(in.Cohorts) > 0 {
		last := newGroup(in, l, hostType, hosts, in.Cohorts[len(in.Cohorts)-1])
		out = append(out, last.hostReadings()...)
	}
	for i := range out {
		out[i].DryRun = l.DryRun
		if l.DryRun && out[i].Breached {
			out[i].Why += " (dry run: not rolled back)"
		}
	}
	return out
}

// thresholdText writes a limit as a person reads it: "max 6, rise +10".
func thresholdText(l conf.Limit) string {
	var parts []string
	if l.Max != nil {
		parts = append(parts, "max "+num(*l.Max))
	}
	if l.Min != nil {
		parts = append(parts, "min "+num(*l.Min))
	}
	if l.Rise != nil {
		parts = append(parts, "rise "+signedChange(l.Rise))
	}
	if l.Fall != nil {
		parts = append(parts, "fall "+strings.TrimPrefix(signedChange(l.Fall), "+"))
	}
	return strings.Join(parts, ", ")
}

func signedChange(c *conf.Change) string {
	if c.Percent {
		return c.String()
	}
	return "+" + c.String()
}

// num writes a value with at most three decimals, and no trailing zeros.
func num(x float64) string {
	return strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64)
}

func ptr(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// pct writes a confidence as "99.9%", never rounding up to 100%.
func pct(conf float64) string {
	for digits := 1; digits < 10; digits++ {
		s := strconv.FormatFloat(100*conf, 'f', digits, 64)
		if v, _ := strconv.ParseFloat(s, 64); v < 100 {
			return strings.TrimRight(strings.TrimRight(s, "0"), ".") + "%"
		}
	}
	return ">99.9999999%"
}
