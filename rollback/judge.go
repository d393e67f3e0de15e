// Package rollback is the coordinator of the cluster immune system: it
// pushes a revision to a few hosts and then to all, compares every gauge
// with its baseline, and rolls the release back when they suffer.
package rollback

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/conf"
)

// Sample is one reading of a host's gauges; a gauge it lacks is missing.
type Sample struct {
	At     time.Time          `json:"at"`
	Gauges map[string]float64 `json:"gauges"`
}

// HostSamples are the samples of one host: before the push and after the phase.
type HostSamples struct {
	Host     string
	HostType string
	Baseline []Sample
	Observed []Sample
}

// Outcome is a verdict's decision.
type Outcome string

// The outcomes of a verdict.
const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	// Wait: a gauge whose missing policy is "wait" has no reading yet.
	Wait Outcome = "wait"
)

// Reading is one gauge on one host, or on a host type's mean, as judged.
type Reading struct {
	// Host is empty for a host type's aggregate.
	Host     string `json:"host,omitempty"`
	HostType string `json:"host_type"`
	Gauge    string `json:"gauge"`
	// Pre is the baseline mean, Post the value judged (at the breach, or
	// the latest); nil when missing.
	Pre   *float64 `json:"pre"`
	Post  *float64 `json:"post"`
	Delta *float64 `json:"delta"`
	// DeltaPct is the change in percent of Pre, nil when Pre is 0 or missing.
	DeltaPct  *float64 `json:"delta_pct"`
	Threshold string   `json:"threshold"`
	Breached  bool     `json:"breached"`
	// Why says what breached, or why the reading waits.
	Why     string `json:"why,omitempty"`
	Waiting bool   `json:"waiting,omitempty"`
	// Samples are the post-push values in order (NaN: missing), for sparklines.
	Samples Series `json:"samples"`
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

// Verdict is the judgement of one phase.
type Verdict struct {
	Outcome Outcome `json:"outcome"`
	// Reason is one sentence: what breached first, or that all held.
	Reason   string    `json:"reason"`
	Readings []Reading `json:"readings"`
}

// Judge holds every host's samples against the limits: each host's own
// value, and each host type's mean. A limit breaches after breachSamples
// bad samples in a row (or the limit's own count), so one spike passes.
func Judge(phase string, limits []conf.Limit, breachSamples int, hosts []HostSamples) Verdict {
	v := Verdict{Outcome: Pass}
	for _, l := range limits {
		need := breachSamples
		if l.Samples > 0 {
			need = l.Samples
		}
		byType := map[string][]HostSamples{}
		var typeOrder []string
		for _, h := range hosts {
			if !l.AppliesTo(h.HostType) {
				continue
			}
			if _, seen := byType[h.HostType]; !seen {
				typeOrder = append(typeOrder, h.HostType)
			}
			byType[h.HostType] = append(byType[h.HostType], h)
		}
		for _, t := range typeOrder {
			group := byType[t]
			if l.Aggregate != nil {
				v.add(phase, judgeSeries(l.Gauge, "", t, meanSeries(l.Gauge, group, true), meanSeries(l.Gauge, group, false),
					*l.Aggregate, l.Missing, need, len(group)))
			}
			own := conf.Bounds{Max: l.Max, Min: l.Min, Rise: l.Rise, Fall: l.Fall}
			if own == (conf.Bounds{}) {
				continue
			}
			for _, h := range group {
				v.add(phase, judgeSeries(l.Gauge, h.Host, t, series(l.Gauge, h.Baseline), series(l.Gauge, h.Observed), own, l.Missing, need, 1))
			}
		}
	}
	if v.Outcome == Pass {
		v.Reason = fmt.Sprintf("%s: every gauge held its limits", phase)
	}
	return v
}

// add records r, and the first breach (or wait) decides the outcome.
func (v *Verdict) add(phase string, r Reading) {
	v.Readings = append(v.Readings, r)
	switch {
	case r.Breached && v.Outcome != Fail:
		v.Outcome = Fail
		v.Reason = phase + ": " + r.Why
	case r.Waiting && v.Outcome == Pass:
		v.Outcome = Wait
		v.Reason = phase + ": " + r.Why
	}
}

// series is a gauge's values over samples, NaN where missing.
func series(gauge string, samples []Sample) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		if x, ok := s.Gauges[gauge]; ok {
			out[i] = x
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}

// meanSeries is, sample by sample, the mean over the hosts that have the
// gauge; for the baseline, the mean of the hosts' baseline means.
func meanSeries(gauge string, hosts []HostSamples, baseline bool) []float64 {
	if baseline {
		var sum float64
		n := 0
		for _, h := range hosts {
			if m, ok := mean(series(gauge, h.Baseline)); ok {
				sum += m
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return []float64{sum / float64(n)}
	}
	rounds := 0
	for _, h := range hosts {
		rounds = max(rounds, len(h.Observed))
	}
	out := make([]float64, rounds)
	for i := range out {
		var sum float64
		n := 0
		for _, h := range hosts {
			if i < len(h.Observed) {
				if x, ok := h.Observed[i].Gauges[gauge]; ok {
					sum += x
					n++
				}
			}
		}
		out[i] = math.NaN()
		if n > 0 {
			out[i] = sum / float64(n)
		}
	}
	return out
}

func mean(xs []float64) (float64, bool) {
	var sum float64
	n := 0
	for _, x := range xs {
		if !math.IsNaN(x) {
			sum += x
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// judgeSeries judges one gauge's post-push values against its baseline.
// hosts is how many hosts an aggregate averages (1 for a host).
func judgeSeries(gauge, host, hostType string, base, post []float64, b conf.Bounds, missing conf.Missing, need, hosts int) Reading {
	r := Reading{Host: host, HostType: hostType, Gauge: gauge, Threshold: thresholdText(b), Samples: post}
	where := fmt.Sprintf("%s on %s", gauge, host)
	if host == "" {
		where = fmt.Sprintf("%s on %s (mean of %d hosts)", gauge, hostType, hosts)
		if hosts == 1 {
			where = fmt.Sprintf("%s on %s (1 host)", gauge, hostType)
		}
	}
	if pre, ok := mean(base); ok {
		r.Pre = &pre
	}
	run := 0
	seen := false
	for _, x := range post {
		if math.IsNaN(x) {
			switch missing {
			case conf.MissingFail:
				run++
				if run >= need {
					r.Breached = true
					r.Why = fmt.Sprintf("%s has no reading for %d samples in a row", where, run)
					return r
				}
			}
			// Otherwise a gap is neither good nor bad: a run of bad samples
			// across it goes on, so a flapping gauge cannot hide a breach.
			continue
		}
		seen = true
		value := x
		r.Post = &value
		why := breach(b, r.Pre, x)
		if why == "" {
			run = 0
			continue
		}
		run++
		if run >= need {
			r.Breached = true
			r.Why = fmt.Sprintf("%s %s", where, why)
			break
		}
	}
	if r.Post != nil && r.Pre != nil {
		d := *r.Post - *r.Pre
		r.Delta = &d
		if *r.Pre != 0 {
			pct := 100 * d / math.Abs(*r.Pre)
			r.DeltaPct = &pct
		}
	}
	if !seen && !r.Breached {
		switch missing {
		case conf.MissingWait:
			r.Waiting = true
			r.Why = fmt.Sprintf("waiting for a reading of %s", where)
		case conf.MissingFail:
			if len(post) > 0 {
				r.Breached = true
				r.Why = fmt.Sprintf("%s has no reading", where)
			}
		}
	}
	return r
}

// breach says how x breaks the bounds given the baseline pre, or "".
func breach(b conf.Bounds, pre *float64, x float64) string {
	switch {
	case b.Max != nil && x > *b.Max:
		return fmt.Sprintf("is %s, above the limit %s", num(x), num(*b.Max))
	case b.Min != nil && x < *b.Min:
		return fmt.Sprintf("is %s, below the limit %s", num(x), num(*b.Min))
	}
	if pre == nil {
		return ""
	}
	switch {
	case b.Rise != nil && x-*pre > b.Rise.Allowed(*pre):
		return fmt.Sprintf("rose from %s to %s, limit +%s", num(*pre), num(x), b.Rise)
	case b.Fall != nil && *pre-x > b.Fall.Allowed(*pre):
		return fmt.Sprintf("fell from %s to %s, limit -%s", num(*pre), num(x), b.Fall)
	}
	return ""
}

// thresholdText writes bounds as a person reads them: "max 6, rise +10".
func thresholdText(b conf.Bounds) string {
	var parts []string
	if b.Max != nil {
		parts = append(parts, "max "+num(*b.Max))
	}
	if b.Min != nil {
		parts = append(parts, "min "+num(*b.Min))
	}
	if b.Rise != nil {
		parts = append(parts, "rise +"+b.Rise.String())
	}
	if b.Fall != nil {
		parts = append(parts, "fall -"+b.Fall.String())
	}
	return strings.Join(parts, ", ")
}

// num writes a value with at most three decimals, and no trailing zeros.
func num(x float64) string {
	return strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64)
}
