// Package objects writes a fleet's hosts, services, contacts and escalation
// paths as Nagios object config or as Icinga 2 DSL, so on-call staff get
// them in the tool they already use without hand-written object files.
//
// Output is stable: the same fleet gives the same bytes (everything sorted,
// no timestamps), so it can be diffed and committed.
package objects

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/immune-ops/immune/conf"
)

// The output formats.
const (
	FormatNagios  = "nagios"
	FormatIcinga2 = "icinga2"
)

// Options are the settings of the monitoring server the config is for.
type Options struct {
	// Format is FormatNagios (default) or FormatIcinga2.
	Format string
	// PluginDir holds check_nrpe and check_dummy (default Debian's /usr/lib/nagios/plugins).
	PluginDir string
	// IntervalLength is Nagios's interval_length, the unit its object
	// intervals are written in (default 60s, Nagios's own).
	IntervalLength time.Duration
}

// Defaults of the options.
const (
	DefaultPluginDir      = "/usr/lib/nagios/plugins"
	DefaultIntervalLength = time.Minute
)

// A host's own check, the agent answering NRPE, has no settings in the
// fleet config: these are Nagios's usual ones.
const (
	hostCheckInterval        = time.Minute
	hostRetryInterval        = 15 * time.Second
	hostMaxCheckAttempts     = "3"
	hostNotificationInterval = 30 * time.Minute
)

// nrpeTimeout is check_nrpe's -t: longer than the agent's default check
// timeout (10s), so a slow check reports its own timeout state.
const nrpeTimeout = "30"

// Generate renders the fleet's objects as files, by name.
func Generate(f *conf.Fleet, o Options) (map[string][]byte, error) {
	if o.PluginDir == "" {
		o.PluginDir = DefaultPluginDir
	}
	if o.IntervalLength == 0 {
		o.IntervalLength = DefaultIntervalLength
	}
	if o.IntervalLength < time.Second || o.IntervalLength%time.Second != 0 {
		return nil, fmt.Errorf("interval length %s: want whole seconds", o.IntervalLength)
	}
	m := newModel(f)
	switch o.Format {
	case "", FormatNagios:
		return nagiosFiles(m, o), nil
	case FormatIcinga2:
		return icingaFiles(m, o), nil
	}
	return nil, fmt.Errorf("format %q: want %s or %s", o.Format, FormatNagios, FormatIcinga2)
}

// Write puts the files in dir, creating it; each file is replaced whole,
// so a Nagios reloading meanwhile never reads half of one.
func Write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, name)
		if err := renameio.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// model is the fleet in the shape both formats write, sorted.
type model struct {
	hosts    []host
	types    []string
	services []service // by host, then name
	contacts []conf.Contact
	groups   []conf.ContactGroup
	// escalations are the fleet's, each with the services it escalates.
	escalations []escalation
	// hostGroups are the contact groups notified of a host type's hosts
	// going down: those of its services.
	hostGroups map[string][]string
}

type host struct {
	conf.Host
	address, nrpePort string
}

// service is one check on one host.
type service struct {
	conf.Service
	host, hostType string
}

type escalation struct {
	conf.Escalation
	index    int
	services []conf.Service
}

func newModel(f *conf.Fleet) *model {
	m := &model{hostGroups: map[string][]string{}}
	for _, h := range f.Hosts {
		addr, port, _ := net.SplitHostPort(h.NRPE)
		m.hosts = append(m.hosts, host{Host: h, address: addr, nrpePort: port})
		if !slices.Contains(m.types, h.HostType) {
			m.types = append(m.types, h.HostType)
		}
	}
	sort.Slice(m.hosts, func(i, j int) bool { return m.hosts[i].Name < m.hosts[j].Name })
	sort.Strings(m.types)
	for _, h := range m.hosts {
		for _, s := range f.Services {
			if slices.Contains(s.HostTypes, h.HostType) {
				m.services = append(m.services, service{Service: s, host: h.Name, hostType: h.HostType})
			}
		}
	}
	sort.SliceStable(m.services, func(i, j int) bool {
		a, b := m.services[i], m.services[j]
		return a.host < b.host || a.host == b.host && a.Name < b.Name
	})
	for _, s := range f.Services {
		for _, t := range s.HostTypes {
			m.hostGroups[t] = sortedUnion(m.hostGroups[t], s.ContactGroups)
		}
	}
	m.contacts = slices.Clone(f.Contacts)
	sort.Slice(m.contacts, func(i, j int) bool { return m.contacts[i].Name < m.contacts[j].Name })
	m.groups = slices.Clone(f.ContactGroups)
	sort.Slice(m.groups, func(i, j int) bool { return m.groups[i].Name < m.groups[j].Name })
	for i, e := range f.Escalations {
		m.escalations = append(m.escalations, escalation{Escalation: e, index: i, services: f.EscalatedServices(e)})
	}
	return m
}

func sortedUnion(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// members are the contacts of the groups and the named contacts, once each, sorted.
func (m *model) members(groups, contacts []string) []string {
	out := sortedUnion(contacts)
	for _, g := range m.groups {
		if slices.Contains(groups, g.Name) {
			out = sortedUnion(out, g.Members)
		}
	}
	return out
}

// firstEscalated is the number of the first notification an escalation
// sends to its contacts: after N notifications, or the first one sent once
// the problem has been notified for its time, at the service's interval.
func firstEscalated(e conf.Escalation, s conf.Service) int {
	if e.AfterNotifications > 0 {
		return e.AfterNotifications + 1
	}
	return 1 + int(math.Ceil(float64(e.After)/float64(s.NotificationInterval)))
}

// escalatedAfter is how long after the first notification an escalation
// begins, as Icinga 2's times.begin counts.
func escalatedAfter(e conf.Escalation, s conf.Service) time.Duration {
	return time.Duration(firstEscalated(e, s)-1) * s.NotificationInterval.D()
}

// fileBuilder writes one file, with a header saying where it came from.
type fileBuilder struct{ bytes.Buffer }

func newFile(comment string) *fileBuilder {
	b := &fileBuilder{}
	fmt.Fprintf(b, "%s Written by immune nagios-config from the fleet config; edits here are overwritten.\n\n", comment)
	return b
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// oneLine guards the writers against text the fleet validation let
// through: a line break would end a Nagios directive early.
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
