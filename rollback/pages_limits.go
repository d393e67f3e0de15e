package rollback

import (
	"net/http"
	"strconv"

	"github.com/immune-ops/immune/conf"
)

// The limits page: the push config in force.

// LimitRow is one configured limit as the config says it.
type LimitRow struct {
	Gauge     string   `json:"gauge"`
	HostTypes []string `json:"host_types"`
	Max       string   `json:"max,omitempty"`
	Min       string   `json:"min,omitempty"`
	Rise      string   `json:"rise,omitempty"`
	Fall      string   `json:"fall,omitempty"`
	Aggregate string   `json:"aggregate,omitempty"`
	Missing   string   `json:"missing"`
	Samples   int      `json:"samples"`
	// OwnSamples is set when the limit overrides the fleet's breach_samples.
	OwnSamples bool   `json:"own_samples"`
	Kind       string `json:"kind"`
	// Warmup is how long a level is not judged after a host's switch;
	// OwnWarmup is set when the limit overrides windows.warmup.
	Warmup    string `json:"warmup"`
	OwnWarmup bool   `json:"own_warmup"`
	DryRun    bool   `json:"dry_run"`
}

// LimitsView is the limits page.
type LimitsView struct {
	Phases         []string `json:"phases"`
	Baseline       string   `json:"baseline"`
	Observe        string   `json:"observe"`
	SampleInterval string   `json:"sample_interval"`
	MaxWait        string   `json:"max_wait"`
	Warmup         string   `json:"warmup"`
	Watch          string   `json:"watch"`
	BreachSamples  int      `json:"breach_samples"`
	// Confidence, Inconclusive, Holdback ("1" or "5%") and Traffic are the
	// judge's settings.
	Confidence   string     `json:"confidence"`
	Inconclusive string     `json:"inconclusive"`
	Holdback     string     `json:"holdback"`
	HoldbackText string     `json:"-"`
	Traffic      string     `json:"traffic,omitempty"`
	HostTypes    []string   `json:"host_types"`
	Limits       []LimitRow `json:"limits"`
}

func (s *Server) limitsView(*http.Request) (string, any, error) {
	f := s.C.Fleet
	v := LimitsView{
		Baseline: f.Windows.Baseline.String(), Observe: f.Windows.Observe.String(),
		SampleInterval: f.Windows.SampleInterval.String(), MaxWait: f.Windows.MaxWait.String(),
		Warmup: f.Windows.Warmup.String(), Watch: f.Windows.Watch.String(), BreachSamples: f.BreachSamples,
		Confidence:   strconv.FormatFloat(float64(f.Judge.Confidence), 'f', -1, 64) + "%",
		Inconclusive: f.Judge.Inconclusive, Traffic: f.Judge.Traffic,
		HostTypes: hostTypes(f), Limits: []LimitRow{},
	}
	v.Holdback, v.HoldbackText = holdbackText(f.Judge.Holdback)
	for _, p := range f.Phases {
		v.Phases = append(v.Phases, strconv.FormatFloat(float64(p), 'f', -1, 64)+"%")
	}
	for _, l := range f.Limits {
		row := LimitRow{Gauge: l.Gauge, HostTypes: l.HostTypes, Missing: string(l.Missing), Samples: f.BreachSamples,
			Kind: string(l.Kind), Warmup: v.Warmup, DryRun: l.DryRun}
		if len(row.HostTypes) == 0 {
			row.HostTypes = v.HostTypes
		}
		if l.Samples > 0 {
			row.Samples, row.OwnSamples = l.Samples, true
		}
		if l.Warmup != nil {
			row.Warmup, row.OwnWarmup = l.Warmup.String(), true
		}
		if l.Max != nil {
			row.Max = num(*l.Max)
		}
		if l.Min != nil {
			row.Min = num(*l.Min)
		}
		if l.Rise != nil {
			row.Rise = "+" + l.Rise.String()
		}
		if l.Fall != nil {
			row.Fall = "-" + l.Fall.String()
		}
		if l.Aggregate != nil {
			row.Aggregate = "mean: " + thresholdText(conf.Limit{Max: l.Aggregate.Max, Min: l.Aggregate.Min, Rise: l.Aggregate.Rise, Fall: l.Aggregate.Fall})
		}
		v.Limits = append(v.Limits, row)
	}
	return "Push limits", v, nil
}

// holdbackText writes judge.holdback as configured ("1", "5%") and as the
// page says it.
func holdbackText(h conf.HostShare) (config, text string) {
	config = strconv.FormatFloat(h.Value, 'f', -1, 64)
	switch {
	case h.Percent:
		config += "%"
		return config, config + " of each type"
	case h.Value == 0:
		return config, "none"
	case h.Value == 1:
		return config, "1 host of each type"
	}
	return config, config + " hosts of each type"
}
