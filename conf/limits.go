package conf

import (
	"fmt"
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
	// MaxWait bounds how long a gauge whose missing policy is "wait" may
	// hold a verdict back (default: one more observe window).
	MaxWait Duration `yaml:"max_wait"`
}

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
	// Max and Min are absolute bounds on each host's value.
	Max *float64 `yaml:"max"`
	Min *float64 `yaml:"min"`
	// Rise and Fall bound the change from the host's baseline: an amount
	// ("10") or a percent of the baseline ("50%"). Rise is for gauges that
	// must not go up (load, errors), Fall for those that must not go down
	// (registrations, orders).
	Rise *Change `yaml:"rise"`
	Fall *Change `yaml:"fall"`
	// Aggregate bounds the mean over the host type's hosts in the same ways.
	Aggregate *Bounds `yaml:"aggregate"`
	// Missing is what a host without this gauge means (default fail).
	Missing Missing `yaml:"missing"`
	// Samples overrides the fleet's breach_samples for this gauge.
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
		return fmt.Errorf("line %d: %q is not a change: want an amount (10) or a percent (50%%), not negative", n.Line, n.Value)
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
		return fmt.Errorf("line %d: %q is not a share of hosts from 0%% to 100%%", n.Line, n.Value)
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
