package conf

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Fleet is the coordinator's configuration (conf/fleet.yaml documents it):
// the hosts, how a push proceeds, and the limits a push must stay within.
type Fleet struct {
	// Listen is the coordinator's API and status pages (host:port).
	Listen string `yaml:"listen"`
	// AdvertiseURL is where agents reach the coordinator for artifacts,
	// such as http://coordinator.example.com:5680 (default: http:// and
	// the listen address, which only fits when that names a reachable host).
	AdvertiseURL string `yaml:"advertise_url"`
	// DataDir holds the push store and artifacts (default ~/.local/state/immune-coordinator).
	DataDir string `yaml:"data_dir"`
	// OperatorTokenFile holds the credential people use to clear locks.
	OperatorTokenFile string `yaml:"operator_token_file"`
	// DeployTokenFile holds the credential agents accept deploys from.
	DeployTokenFile string `yaml:"deploy_token_file"`
	// AgentTokenFile is the agents' read credential, unless a host names its own.
	AgentTokenFile string `yaml:"agent_token_file"`
	// MySQL, when set, is a DSN for a store several coordinators share;
	// only the one holding MySQL's GET_LOCK drives pushes.
	MySQL string `yaml:"mysql"`
	Hosts []Host `yaml:"hosts"`
	// Phases are the share of hosts each phase takes, ending at 100%
	// (default [5%, 100%]); the first phase takes at least one host of every type.
	Phases  []Percent `yaml:"phases"`
	Windows Windows   `yaml:"windows"`
	// BreachSamples is how many bad samples in a row make a breach, so a
	// single spike rolls nothing back (default 3).
	BreachSamples int     `yaml:"breach_samples"`
	Limits        []Limit `yaml:"limits"`
	Revert        Revert  `yaml:"revert"`
}

// Host is one agent.
type Host struct {
	Name string `yaml:"name"`
	// Address is the agent's HTTP API, host:port.
	Address  string `yaml:"address"`
	HostType string `yaml:"host_type"`
	// TokenFile overrides the fleet's agent_token_file for this host.
	TokenFile string `yaml:"token_file"`
}

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
type Revert struct {
	// Repo is the working copy the commands run in.
	Repo string `yaml:"repo"`
	// Command reverts the commit; {revision} is replaced by it (default
	// git revert --no-edit {revision}).
	Command []string `yaml:"command"`
	// Push publishes the revert (default git push; empty list: none).
	Push    []string `yaml:"push"`
	Timeout Duration `yaml:"timeout"`
}

// Defaults of the fleet's settings.
const (
	DefaultBaseline       = time.Minute
	DefaultObserve        = 5 * time.Minute
	DefaultSampleInterval = 10 * time.Second
	DefaultBreachSamples  = 3
	DefaultRevertTimeout  = 2 * time.Minute
)

// LoadFleet reads and validates a fleet config, filling in defaults.
func LoadFleet(path string) (*Fleet, error) {
	var f Fleet
	if err := load(path, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseFleet is LoadFleet for text already read; name is used in errors.
func ParseFleet(name string, data []byte) (*Fleet, error) {
	var f Fleet
	if err := decode(name, data, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (f *Fleet) validate(c *checker) {
	if f.Listen == "" {
		c.errorf("listen", "required: host:port of the coordinator's API")
	} else if _, _, err := net.SplitHostPort(f.Listen); err != nil {
		c.errorf("listen", "%q is not host:port", f.Listen)
	}
	if f.DataDir == "" {
		f.DataDir = defaultStateDir(c, "data_dir", "immune-coordinator")
	}
	if len(f.Hosts) == 0 {
		c.errorf("hosts", "at least one host is required")
	}
	names := map[string]int{}
	types := map[string]bool{}
	for i, h := range f.Hosts {
		path := fmt.Sprintf("hosts.%d", i)
		switch {
		case h.Name == "":
			c.errorf(path, "name is required")
		case !hostNameRE.MatchString(h.Name):
			c.errorf(path+".name", "%q: use letters, digits, '_', '.' and '-'", h.Name)
		}
		if prev, dup := names[h.Name]; dup && h.Name != "" {
			c.errorf(path+".name", "%q is also the name of hosts[%d]", h.Name, prev)
		}
		names[h.Name] = i
		if _, _, err := net.SplitHostPort(h.Address); err != nil {
			c.errorf(path+".address", "%q is not host:port of the agent's HTTP API", h.Address)
		}
		if h.HostType == "" {
			c.errorf(path+".host_type", "required (www, chat, db, memcache, ...)")
		}
		types[h.HostType] = true
		if h.TokenFile == "" && f.AgentTokenFile == "" {
			c.errorf(path, "no token_file, and no agent_token_file for the fleet")
		}
	}
	if len(f.Phases) == 0 {
		f.Phases = []Percent{5, 100}
	}
	for i := range f.Phases {
		if i > 0 && f.Phases[i] <= f.Phases[i-1] {
			c.errorf(fmt.Sprintf("phases.%d", i), "%v%% is not more than the phase before", float64(f.Phases[i]))
		}
	}
	if last := f.Phases[len(f.Phases)-1]; last != 100 {
		c.errorf(fmt.Sprintf("phases.%d", len(f.Phases)-1), "the last phase must be 100%%, not %v%%", float64(last))
	}
	w := &f.Windows
	setDefault(&w.Baseline, DefaultBaseline)
	setDefault(&w.Observe, DefaultObserve)
	setDefault(&w.SampleInterval, DefaultSampleInterval)
	setDefault(&w.MaxWait, w.Observe.D())
	if w.SampleInterval.D() < 100*time.Millisecond {
		c.errorf("windows.sample_interval", "%s is under the 100ms minimum", w.SampleInterval)
	}
	if w.Observe < w.SampleInterval {
		c.errorf("windows.observe", "%s is shorter than one sample interval (%s)", w.Observe, w.SampleInterval)
	}
	if f.BreachSamples == 0 {
		f.BreachSamples = DefaultBreachSamples
	} else if f.BreachSamples < 0 {
		c.errorf("breach_samples", "%d: must be positive", f.BreachSamples)
	}
	for i := range f.Limits {
		f.Limits[i].validate(c, fmt.Sprintf("limits.%d", i), types)
	}
	if len(f.Revert.Command) == 0 {
		f.Revert.Command = []string{"git", "revert", "--no-edit", "{revision}"}
	}
	if f.Revert.Push == nil {
		f.Revert.Push = []string{"git", "push"}
	}
	setDefault(&f.Revert.Timeout, DefaultRevertTimeout)
}

func setDefault(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

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
