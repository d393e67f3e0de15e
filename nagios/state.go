// Package nagios speaks the Nagios plugin protocol: service states and their
// exit codes, threshold ranges, performance data, and the text a plugin prints.
package nagios

import (
	"fmt"
	"strings"
)

// State is a service state as Nagios reads it from a plugin's exit code.
type State int

// The four plugin states, in exit-code order.
const (
	OK State = iota
	Warning
	Critical
	Unknown
)

var stateNames = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// String returns the state as Nagios prints it: OK, WARNING, CRITICAL or UNKNOWN.
func (s State) String() string {
	if s < OK || s > Unknown {
		return "UNKNOWN"
	}
	return stateNames[s]
}

// ExitCode is the process exit code that reports s to Nagios.
func (s State) ExitCode() int {
	if s < OK || s > Unknown {
		return int(Unknown)
	}
	return int(s)
}

// StateFromExit maps a plugin's exit code to a state; codes Nagios does not
// define (negative, above 3, a signal) are UNKNOWN.
func StateFromExit(code int) State {
	if code < 0 || code > int(Unknown) {
		return Unknown
	}
	return State(code)
}

// ParseState reads a state name, case-insensitively ("ok", "WARNING", "crit").
func ParseState(s string) (State, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "OK", "0":
		return OK, nil
	case "WARNING", "WARN", "1":
		return Warning, nil
	case "CRITICAL", "CRIT", "2":
		return Critical, nil
	case "UNKNOWN", "3":
		return Unknown, nil
	}
	return Unknown, fmt.Errorf("invalid state %q: want OK, WARNING, CRITICAL or UNKNOWN", s)
}

// MarshalText writes the state's name, so states read well in JSON and YAML.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// severity orders states for Worst: OK < UNKNOWN < WARNING < CRITICAL, the
// order monitoring-plugins uses when it folds several results into one.
var severity = [...]int{OK: 0, Warning: 2, Critical: 3, Unknown: 1}

// Worst returns the most severe of the states (OK when there are none).
func Worst(states ...State) State {
	worst := OK
	for _, s := range states {
		if s < OK || s > Unknown {
			s = Unknown
		}
		if severity[s] > severity[worst] {
			worst = s
		}
	}
	return worst
}
