package conf

import (
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/immune-ops/immune/nagios"
)

// Duration is a time.Duration written as "30s", "5m", "1h30m", or a plain
// number of seconds.
type Duration time.Duration

// UnmarshalYAML reads a duration, naming the text when it is not one.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if secs, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return valueError(n, "%q is not a duration (like 30s, 5m or 1h)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go prints it.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// State is a service state in a config file: OK, WARNING, CRITICAL or UNKNOWN.
type State nagios.State

// UnmarshalYAML reads a state's name, naming the line when it is not one.
func (s *State) UnmarshalYAML(n *yaml.Node) error {
	v, err := nagios.ParseState(n.Value)
	if err != nil {
		return valueError(n, "%v", err)
	}
	*s = State(v)
	return nil
}

// MarshalYAML writes the state's name.
func (s State) MarshalYAML() (any, error) { return nagios.State(s).String(), nil }

// S is the state as a nagios.State.
func (s State) S() nagios.State { return nagios.State(s) }
