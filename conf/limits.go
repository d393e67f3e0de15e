package conf

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Windows are the push's timings.
type Windows struct {
	// Baseline is how long gauges are sampled before the push (default 1m).
	Baseline Duration `yaml:"baseline"`
	// Observe is how long after each phase they are sampled before judging (default 5m).
	Observe Duration `yaml:"observe"`
	// SampleInterval is the time between samples (default 10s).
	SampleInterval Duration `yaml:"sample_interval"`
	// MaxWait bounds how long a phase's verdict may wait past Observe for
	// evidence: a gauge whose missing policy is "wait" without a reading, or
	// a test that cannot yet tell a pass from a breach (default: one more
	// observe window). Then Judge.Inconclusive decides.
	MaxWait Duration `yaml:"max_wait"`
	// Warmup is how long after a host's switch its continuous gauges (load,
	// cpu) are not judged, while caches fill (default 0; a limit's own
	// warmup overrides it). Counts (fatal errors) are judged from the first
	// sample.
	Warmup Duration `yaml:"warmup"`
	// Watch is how long the coordinator keeps judging once every host runs
	// the release, the held-back control included (default: the observe
	// window); a breach then still rolls every host back, reverts and locks.
	Watch Duration `yaml:"watch"`
}

// Judge is how verdicts are reached.
type Judge struct {
	// Confidence is how sure a breach must be, for the whole push: the
	// share of good pushes that may be rolled back by chance is at most
	// 100% minus it (default 99%). It is split over every gauge and host
	// type judged, and over the samples a verdict is looked at.
	Confidence Percent `yaml:"confidence"`
	// Inconclusive is what a phase whose evidence is still too thin once
	// max_wait is over does: pass (go on, the default) or hold (stop
	// advancing until an operator promotes or aborts; breaches still roll
	// back).
	Inconclusive string `yaml:"inconclusive"`
	// Holdback is how many hosts of each type stay on the old release
	// until the last phase's verdict, as its control: a number of hosts
	// ("1", the default) or a share ("5%"); at least one on each type of
	// two hosts or more.
	Holdback HostShare `yaml:"holdback"`
	// Traffic names a gauge that measures each host's traffic (requests
	// per sample): counts are then compared per request and levels per
	// unit of traffic, so a surge no push caused explains itself.
	Traffic string `yaml:"traffic"`
}

// The inconclusive policies.
const (
	InconclusivePass = "pass"
	InconclusiveHold = "hold"
)

// HostShare is a number of hosts ("1") or a share of them ("5%").
type HostShare struct {
	Value   float64
	Percent bool
	set     bool // written in the file, even as 0
}

// UnmarshalYAML reads "2" or "5%".
func (h *HostShare) UnmarshalYAML(n *yaml.Node) error {
	text := strings.TrimSpace(n.Value)
	num, pct := strings.CutSuffix(text, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || pct && v >= 100 || !pct && v != float64(int(v)) {
		return valueError(n, "%q is not a number of hosts (1) or a share under 100%% (5%%)", n.Value)
	}
	*h = HostShare{Value: v, Percent: pct, set: true}
	return nil
}

// Of is how many of n hosts the share is: none for 0, else at least one
// when n is two or more, and never all of them.
func (h HostShare) Of(n int) int {
	if n < 2 || h.Value == 0 {
		return 0
	}
	k := int(h.Value)
	if h.Percent {
		k = int(math.Ceil(h.Value * float64(n) / 100))
	}
	return min(max(k, 1), n-1)
}

// Kind is how a gauge's readings are judged.
type Kind string

// The kinds of gauge.
const (
	// KindAuto: a count when every reading is a whole number, else a level.
	KindAuto Kind = "auto"
	// KindCount: events per sample (fatal errors, registrations), judged
	// with an exact test for counts.
	KindCount Kind = "count"
	// KindLevel: a continuous reading (load, cpu idle), judged across
	// hosts on each host's change.
	KindLevel Kind = "level"
)

// Missing is what a gauge without a reading means.
type Missing string

// The missing-data policies.
const (
	MissingFail   Missing = "fail"   // a missing reading is a bad sample
	MissingIgnore Missing = "ignore" // the host is left out of that gauge
	MissingWait   Missing = "wait"   // the verdict waits for the reading
)

// Limit is what one gauge may do during a push, on some host types.
type Limit struct {
	Gauge string `yaml:"gauge"`
	// HostTypes the limit applies to; empty means every type.
	HostTypes []string `yaml:"host_types"`
	// Max and Min are absolute bounds on each host running the release,
	// guards that need no statistics: breach_samples readings in a row
	// past one roll back. A host already past it before the push is
	// reported, not blamed.
	Max *float64 `yaml:"max"`
	Min *float64 `yaml:"min"`
	// Rise and Fall bound the release's effect on the host type: how much
	// higher (or lower) the gauge is on the hosts running the release than
	// it would have been without it, as the hosts not running it yet show.
	// An amount ("10" a sample) or a percent ("50%"). Rise is for gauges
	// that must not go up (load, errors), Fall for those that must not go
	// down (registrations, orders).
	Rise *Change `yaml:"rise"`
	Fall *Change `yaml:"fall"`
	// Aggregate is the older spelling of the same bounds; its rise and
	// fall apply where the limit sets none, its max and min guard the
	// host type's mean.
	Aggregate *Bounds `yaml:"aggregate"`
	// Kind is count, level or auto (the default).
	Kind Kind `yaml:"kind"`
	// Warmup overrides windows.warmup for this gauge.
	Warmup *Duration `yaml:"warmup"`
	// DryRun judges and shows the limit but never rolls back for it: the
	// way to try a new gauge.
	DryRun bool `yaml:"dry_run"`
	// Missing is what a host without this gauge means (default fail).
	Missing Missing `yaml:"missing"`
	// Samples overrides the fleet's breach_samples for this gauge's guards.
	Samples int `yaml:"samples"`
}

// Bounds are absolute and relative bounds, for an aggregate.
type Bounds struct {
	Max  *float64 `yaml:"max"`
	Min  *float64 `yaml:"min"`
	Rise *Change  `yaml:"rise"`
	Fall *Change  `yaml:"fall"`
}

// Change is an amount or a percent of a baseline.
type Change struct {
	Value   float64
	Percent bool
}

// UnmarshalYAML reads "10", "2.5" or "50%".
func (c *Change) UnmarshalYAML(n *yaml.Node) error {
	text := strings.TrimSpace(n.Value)
	num, pct := strings.CutSuffix(text, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 {
		return valueError(n, "%q is not a change: want an amount (10) or a percent (50%%), not negative", n.Value)
	}
	*c = Change{Value: v, Percent: pct}
	return nil
}

// Allowed is how far a value may move from base under this change.
func (c Change) Allowed(base float64) float64 {
	if c.Percent {
		return abs(base) * c.Value / 100
	}
	return c.Value
}

// String writes the change as it is configured: "+10" or "50%".
func (c Change) String() string {
	if c.Percent {
		return strconv.FormatFloat(c.Value, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(c.Value, 'f', -1, 64)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// Percent is a share of hosts: "5%" or a number of percent.
type Percent float64

// UnmarshalYAML reads "5%", "100%" or 5.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"), 64)
	if err != nil || v <= 0 || v > 100 {
		return valueError(n, "%q is not a share of hosts from 0%% to 100%%", n.Value)
	}
	*p = Percent(v)
	return nil
}

// Revert is how the offending commit is reverted after a rollback.

func (l *Limit) validate(c *checker, path string, types map[string]bool) {
	if l.Gauge == "" {
		c.errorf(path, "gauge is required")
	}
	for i, t := range l.HostTypes {
		if !types[t] {
			c.errorf(fmt.Sprintf("%s.host_types.%d", path, i), "no host has the type %q", t)
		}
	}
	if l.Max == nil && l.Min == nil && l.Rise == nil && l.Fall == nil && l.Aggregate == nil {
		c.errorf(path, "sets no bound: give max, min, rise, fall or aggregate")
	}
	if l.Max != nil && l.Min != nil && *l.Min > *l.Max {
		c.errorf(path+".min", "%v is above max %v", *l.Min, *l.Max)
	}
	switch l.Missing {
	case "":
		l.Missing = MissingFail
	case MissingFail, MissingIgnore, MissingWait:
	default:
		c.errorf(path+".missing", "%q: want fail, ignore or wait", l.Missing)
	}
	switch l.Kind {
	case "":
		l.Kind = KindAuto
	case KindAuto, KindCount, KindLevel:
	default:
		c.errorf(path+".kind", "%q: want count, level or auto", l.Kind)
	}
	if l.Warmup != nil && *l.Warmup < 0 {
		c.errorf(path+".warmup", "%s: must not be negative", *l.Warmup)
	}
	if a := l.Aggregate; a != nil {
		if l.Rise == nil {
			l.Rise = a.Rise
		}
		if l.Fall == nil {
			l.Fall = a.Fall
		}
	}
	if l.Samples < 0 {
		c.errorf(path+".samples", "%d: must be positive", l.Samples)
	}
}

// AppliesTo reports whether the limit holds on hosts of type t.
func (l *Limit) AppliesTo(t string) bool {
	if len(l.HostTypes) == 0 {
		return true
	}
	for _, ht := range l.HostTypes {
		if ht == t {
			return true
		}
	}
	return false
}

// Default judge settings.
const (
	DefaultConfidence = 99
)

func (j *Judge) validate(c *checker) {
	switch {
	case j.Confidence == 0:
		j.Confidence = DefaultConfidence
	case j.Confidence < 50 || j.Confidence >= 100:
		c.errorf("judge.confidence", "%v%%: want at least 50%% and under 100%%", float64(j.Confidence))
	}
	switch j.Inconclusive {
	case "":
		j.Inconclusive = InconclusivePass
	case InconclusivePass, InconclusiveHold:
	default:
		c.errorf("judge.inconclusive", "%q: want pass or hold", j.Inconclusive)
	}
	if !j.Holdback.set {
		j.Holdback = HostShare{Value: 1, set: true}
	}
}

// Alpha is the chance of rolling a good push back the confidence allows.
func (j *Judge) Alpha() float64 { return 1 - float64(j.Confidence)/100 }
