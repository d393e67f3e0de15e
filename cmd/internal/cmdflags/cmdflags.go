// Package cmdflags defines the flags of every immune command in one place.
// The commands parse with these definitions, and `immune man` and
// `immune completion` document and complete the same ones, so a page
// never lists a flag the command lacks. Each function defines its
// command's flags on a FlagSet and returns where their values land.
//
// The package links nothing heavier than the standard library: bin/immune
// imports it, and a check run through bin/immune must start as fast as a
// C plugin.
package cmdflags

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/immune-ops/immune/cmd/internal/logging"
)

// Agent are the flags of immune-agent (immune agent).
type Agent struct {
	Config, CheckConfig *string
	Log                 logging.Flags
}

// AgentFlags defines immune-agent's flags on fs.
func AgentFlags(fs *flag.FlagSet) *Agent {
	a := &Agent{
		Config:      fs.String("config", "", "agent config `file` (see /usr/share/doc/immune-agent/agent.yaml); SIGHUP reloads it"),
		CheckConfig: fs.String("check-config", "", "validate the config `file` and exit: 0 when valid"),
	}
	a.Log.Register(fs)
	return a
}

// Coordinator are the flags of immune-coordinator (immune coordinator).
type Coordinator struct {
	Config, CheckConfig *string
	Log                 logging.Flags
}

// CoordinatorFlags defines immune-coordinator's flags on fs.
func CoordinatorFlags(fs *flag.FlagSet) *Coordinator {
	c := &Coordinator{
		Config:      fs.String("config", "", "fleet config `file` (see /usr/share/doc/immune-coordinator/fleet.yaml); SIGHUP reloads it"),
		CheckConfig: fs.String("check-config", "", "validate the fleet config `file` and exit: 0 when valid"),
	}
	c.Log.Register(fs)
	return c
}

// Demo are the flags of immune demo.
type Demo struct {
	Exit  *bool
	Hosts *int
}

// The bounds of the demo fleet's size; package demo holds the same
// (cmd/immune-demo's test says they agree).
const (
	DemoMinHosts = 4
	DemoMaxHosts = 200
)

// DemoFlags defines immune demo's flags on fs.
func DemoFlags(fs *flag.FlagSet) *Demo {
	return &Demo{
		Exit:  fs.Bool("exit", false, "stop when the demo is done: exit 0 when every step held, else 1 with what failed"),
		Hosts: fs.Int("hosts", 20, fmt.Sprintf("agents in the fleet, %d to %d: 60%% www, 20%% chat, 10%% db, 10%% memcache", DemoMinHosts, DemoMaxHosts)),
	}
}

// NagiosConfig are the flags of immune nagios-config.
type NagiosConfig struct {
	Fleet, Out, Format, PluginDir *string
	IntervalLength                *time.Duration
}

// The defaults of nagios-config, which package nagios/objects holds too
// (cmd/immune-coordinator's test says they agree): bin/immune does not
// link objects, which links the config parser.
const (
	NagiosFormat         = "nagios"
	Icinga2Format        = "icinga2"
	NagiosPluginDir      = "/usr/lib/nagios/plugins"
	NagiosIntervalLength = time.Minute
)

// NagiosConfigFlags defines immune nagios-config's flags on fs.
func NagiosConfigFlags(fs *flag.FlagSet) *NagiosConfig {
	return &NagiosConfig{
		Fleet:          fs.String("fleet", "", "fleet config `file` (required)"),
		Out:            fs.String("out", "", "`dir`ectory the object files are written to (required)"),
		Format:         Choice(fs, "format", NagiosFormat, "`format`: nagios (object config) or icinga2 (Icinga 2 DSL)", NagiosFormat, Icinga2Format),
		PluginDir:      fs.String("plugin-dir", NagiosPluginDir, "`dir`ectory of check_nrpe and check_dummy on the monitoring server"),
		IntervalLength: fs.Duration("interval-length", NagiosIntervalLength, "Nagios's interval_length, the unit of intervals in its objects"),
	}
}

// Choices is a flag.Value that takes one of a few words; completion offers them.
type Choices interface {
	flag.Value
	Choices() []string
}

type choice struct {
	value   *string
	choices []string
}

// Choice defines a string flag that takes one of choices only: another
// word is a flag error, which names the flag.
func Choice(fs *flag.FlagSet, name, value, usage string, choices ...string) *string {
	c := &choice{value: &value, choices: choices}
	fs.Var(c, name, usage)
	return c.value
}

func (c *choice) String() string {
	if c == nil || c.value == nil {
		return ""
	}
	return *c.value
}

func (c *choice) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("want %s", strings.Join(c.choices, " or "))
	}
	*c.value = s
	return nil
}

func (c *choice) Choices() []string { return c.choices }
