package rollback

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
)

var nan = math.NaN()

// hostOf builds a host's samples of one gauge; NaN is a missing reading.
func hostOf(name, hostType, gauge string, base, post []float64) HostSamples {
	h := HostSamples{Host: name, HostType: hostType}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	mk := func(xs []float64) []Sample {
		out := make([]Sample, len(xs))
		for i, x := range xs {
			out[i] = Sample{At: t0.Add(time.Duration(i) * 10 * time.Second), Gauges: map[string]float64{}}
			if !math.IsNaN(x) {
				out[i].Gauges[gauge] = x
			}
		}
		return out
	}
	h.Baseline, h.Observed = mk(base), mk(post)
	return h
}

func f(x float64) *float64 { return &x }

func TestJudge(t *testing.T) {
	phpRise := conf.Limit{Gauge: "php_errors", HostTypes: []string{"www"}, Rise: &conf.Change{Value: 10}, Missing: conf.MissingFail}
	loadMax := conf.Limit{Gauge: "loadavg1", Max: f(6), Missing: conf.MissingFail}
	regFall := conf.Limit{Gauge: "registrations", Fall: &conf.Change{Value: 20, Percent: true}, Missing: conf.MissingFail}
	aggLoad := conf.Limit{Gauge: "loadavg1", Aggregate: &conf.Bounds{Rise: &conf.Change{Value: 50, Percent: true}}, Missing: conf.MissingFail}
	tests := []struct {
		name    string
		limits  []conf.Limit
		hosts   []HostSamples
		outcome Outcome
		reason  string
	}{
		{"all quiet", []conf.Limit{phpRise},
			[]HostSamples{hostOf("www1", "www", "php_errors", []float64{0, 0.4}, []float64{0, 1, 0})},
			Pass, "phase 1: every gauge held its limits"},
		{"php errors rise", []conf.Limit{phpRise},
			[]HostSamples{hostOf("www1", "www", "php_errors", []float64{0.2, 0.2}, []float64{41, 41, 41})},
			Fail, "phase 1: php_errors on www1 rose from 0.2 to 41, limit +10"},
		{"a single spike passes", []conf.Limit{phpRise},
			[]HostSamples{hostOf("www1", "www", "php_errors", []float64{0}, []float64{0, 50, 0, 50, 0})},
			Pass, "phase 1: every gauge held its limits"},
		{"limit on another host type", []conf.Limit{phpRise},
			[]HostSamples{hostOf("chat1", "chat", "php_errors", []float64{0}, []float64{99, 99, 99})},
			Pass, "phase 1: every gauge held its limits"},
		{"absolute bound", []conf.Limit{loadMax},
			[]HostSamples{hostOf("db1", "db", "loadavg1", []float64{1}, []float64{7, 8, 9})},
			Fail, "phase 1: loadavg1 on db1 is 9, above the limit 6"},
		{"business gauge falls", []conf.Limit{regFall},
			[]HostSamples{hostOf("www1", "www", "registrations", []float64{100, 100}, []float64{70, 60, 50})},
			Fail, "phase 1: registrations on www1 fell from 100 to 50, limit -20%"},
		{"business gauge dips within the limit", []conf.Limit{regFall},
			[]HostSamples{hostOf("www1", "www", "registrations", []float64{100}, []float64{85, 81, 90})},
			Pass, "phase 1: every gauge held its limits"},
		{"aggregate breaches while each host alone would not be judged", []conf.Limit{aggLoad},
			[]HostSamples{
				hostOf("www1", "www", "loadavg1", []float64{2}, []float64{4, 4, 4}),
				hostOf("www2", "www", "loadavg1", []float64{2}, []float64{3, 3, 3}),
			},
			Fail, "phase 1: loadavg1 on www (mean of 2 hosts) rose from 2 to 3.5, limit +50%"},
		{"missing data fails", []conf.Limit{loadMax},
			[]HostSamples{hostOf("db1", "db", "loadavg1", []float64{1}, []float64{nan, nan, nan})},
			Fail, "phase 1: loadavg1 on db1 has no reading for 3 samples in a row"},
		{"missing data ignored", []conf.Limit{{Gauge: "loadavg1", Max: f(6), Missing: conf.MissingIgnore}},
			[]HostSamples{hostOf("db1", "db", "loadavg1", []float64{1}, []float64{nan, nan, nan})},
			Pass, "phase 1: every gauge held its limits"},
		{"missing data waits", []conf.Limit{{Gauge: "loadavg1", Max: f(6), Missing: conf.MissingWait}},
			[]HostSamples{hostOf("db1", "db", "loadavg1", []float64{1}, []float64{nan, nan})},
			Wait, "phase 1: waiting for a reading of loadavg1 on db1"},
		{"a gap does not hide a breach", []conf.Limit{{Gauge: "loadavg1", Max: f(6), Missing: conf.MissingIgnore}},
			[]HostSamples{hostOf("db1", "db", "loadavg1", []float64{1}, []float64{9, nan, 9, 9})},
			Fail, "phase 1: loadavg1 on db1 is 9, above the limit 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge("phase 1", tt.limits, 3, tt.hosts)
			if v.Outcome != tt.outcome || v.Reason != tt.reason {
				t.Errorf("got %s %q\nwant %s %q", v.Outcome, v.Reason, tt.outcome, tt.reason)
			}
		})
	}
}

func TestJudgeReadings(t *testing.T) {
	limit := conf.Limit{Gauge: "php_errors", Rise: &conf.Change{Value: 10}, Aggregate: &conf.Bounds{Rise: &conf.Change{Value: 5}}, Missing: conf.MissingFail}
	v := Judge("phase 2", []conf.Limit{limit}, 2, []HostSamples{
		hostOf("www1", "www", "php_errors", []float64{1, 3}, []float64{2, 3}),
		hostOf("www2", "www", "php_errors", []float64{0}, []float64{30, 40}),
	})
	if v.Outcome != Fail || len(v.Readings) != 3 {
		t.Fatalf("verdict %+v", v)
	}
	agg, www1, www2 := v.Readings[0], v.Readings[1], v.Readings[2]
	if agg.Host != "" || !agg.Breached || *agg.Pre != 1 || *agg.Post != 21.5 || agg.Threshold != "rise +5" {
		t.Errorf("aggregate: %+v pre %v post %v", agg, *agg.Pre, *agg.Post)
	}
	if www1.Breached || *www1.Pre != 2 || *www1.Post != 3 || *www1.Delta != 1 || *www1.DeltaPct != 50 || www1.Threshold != "rise +10" {
		t.Errorf("www1: %+v", www1)
	}
	if !www2.Breached || *www2.Pre != 0 || *www2.Post != 40 || www2.DeltaPct != nil {
		t.Errorf("www2: %+v", www2)
	}
	if !strings.HasPrefix(v.Reason, "phase 2: php_errors on www (mean of 2 hosts) rose from 1 to 21.5") {
		t.Errorf("reason %q", v.Reason)
	}
}
