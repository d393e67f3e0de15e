// Package checks holds immune's checks. Each one is a Nagios plugin: it
// parses the same flags as its monitoring-plugins twin, where there is one,
// and reports one nagios.Result. A check is the same object whether it runs
// as bin/check_load, inside the agent on a schedule, or answers NRPE.
package checks

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// Check is one configured check, ready to run any number of times.
type Check interface {
	// Run measures and judges once. It returns when ctx is done at the latest,
	// reporting what a timeout means for this check.
	Run(ctx context.Context) nagios.Result
}

// Timeouter is a Check that has its own deadline, such as the -t option.
type Timeouter interface {
	Timeout() time.Duration
}

// Spec describes a check for the registry.
type Spec struct {
	// Name is the plugin's file name, as Nagios calls it: "check_load".
	Name string
	// Summary is one line for `immune check --list`.
	Summary string
	// New parses the plugin's command-line arguments (without the program
	// name) into a Check. A bad argument gives a *UsageError, -h and -V a *HelpError.
	New func(args []string) (Check, error)
}

var registry = map[string]Spec{}

// Register adds a check; checks call it from init. A second check with the
// same name is a programming error, so it panics at start-up.
func Register(s Spec) {
	if s.Name == "" || s.New == nil {
		panic("checks: Register needs a Name and a New")
	}
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("checks: %s registered twice", s.Name))
	}
	registry[s.Name] = s
}

// Lookup finds a check by its plugin name.
func Lookup(name string) (Spec, bool) {
	s, ok := registry[name]
	return s, ok
}

// ArgParser finds a check by name and returns what parses its arguments:
// it is conf.AgentLoader.Builtin for the agent, so that a mistake in a
// configured check's flags is a config error, found before the agent starts.
func ArgParser(name string) (parseArgs func(args []string) error, ok bool) {
	s, ok := registry[name]
	if !ok {
		return nil, false
	}
	return func(args []string) error {
		_, err := s.New(args)
		return err
	}, true
}

// List returns every registered check, sorted by name.
func List() []Spec {
	specs := make([]Spec, 0, len(registry))
	for _, s := range registry {
		specs = append(specs, s)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}
