package rollback

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/immune-ops/immune/conf"
)

// --- limits: the config in force ---

// LimitRow is one configured limit as the config says it.
type LimitRow struct {
	Gauge     string   `json:"gauge"`
	HostTypes []string `json:"host_types"`
	Max       string   `json:"max,omitempty"`
	Min       string   `json:"min,omitempty"`
	Rise      string   `json:"rise,omitempty"`
	Fall      string   `json:"fall,omitempty"`
	Aggregate string   `json:"aggregate,omitempty"`
	Kind      string   `json:"kind"`
	Warmup    string   `json:"warmup"`
	DryRun    bool     `json:"dry_run,omitempty"`
	Missing   string   `json:"missing"`
	Samples   int      `json:"samples"`
	// OwnSamples is set when the limit overrides the fleet's breach_samples.
	OwnSamples bool `json:"own_samples"`
}

// LimitsView is the limits page.
type LimitsView struct {
	Phases         []string   `json:"phases"`
	Baseline       string     `json:"baseline"`
	Observe        string     `json:"observe"`
	SampleInterval string     `json:"sample_interval"`
	MaxWait        string     `json:"max_wait"`
	Warmup         string     `json:"warmup"`
	Watch          string     `json:"watch"`
	Confidence     string     `json:"confidence"`
	Inconclusive   string     `json:"inconclusive"`
	Holdback       string     `json:"holdback"`
	Traffic        string     `json:"traffic,omitempty"`
	BreachSamples  int        `json:"breach_samples"`
	HostTypes      []string   `json:"host_types"`
	Limits         []LimitRow `json:"limits"`
}

func (s *Server) limitsView(*http.Request) (string, any, error) {
	f := s.C.fleet()
	v := LimitsView{
		Baseline: f.Windows.Baseline.String(), Observe: f.Windows.Observe.String(),
		SampleInterval: f.Windows.SampleInterval.String(), MaxWait: f.Windows.MaxWait.String(),
		Warmup: f.Windows.Warmup.String(), Watch: f.Windows.Watch.String(),
		Confidence: strconv.FormatFloat(float64(f.Judge.Confidence), 'f', -1, 64) + "%", Inconclusive: f.Judge.Inconclusive,
		Holdback: holdbackText(f.Judge.Holdback), Traffic: f.Judge.Traffic,
		BreachSamples: f.BreachSamples, HostTypes: hostTypes(f), Limits: []LimitRow{},
	}
	for _, p := range f.Phases {
		v.Phases = append(v.Phases, strconv.FormatFloat(float64(p), 'f', -1, 64)+"%")
	}
	for _, l := range f.Limits {
		row := LimitRow{Gauge: l.Gauge, HostTypes: l.HostTypes, Missing: string(l.Missing), Samples: f.BreachSamples,
			Kind: string(l.Kind), Warmup: f.Windows.Warmup.String(), DryRun: l.DryRun}
		if l.Warmup != nil {
			row.Warmup = l.Warmup.String()
		}
		if len(row.HostTypes) == 0 {
			row.HostTypes = v.HostTypes
		}
		if l.Samples > 0 {
			row.Samples, row.OwnSamples = l.Samples, true
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

func holdbackText(h conf.HostShare) string {
	if h.Percent {
		return strconv.FormatFloat(h.Value, 'f', -1, 64) + "% of each type"
	}
	return strconv.FormatFloat(h.Value, 'f', -1, 64) + " host(s) of each type"
}

func hostTypes(f *conf.Fleet) []string {
	seen := map[string]bool{}
	var types []string
	for _, h := range f.Hosts {
		if !seen[h.HostType] {
			seen[h.HostType] = true
			types = append(types, h.HostType)
		}
	}
	sort.Strings(types)
	return types
}
