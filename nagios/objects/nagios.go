package objects

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Nagios object names immune defines; the prefix keeps them apart from a
// site's own objects in the same cfg_dir.
const (
	nagiosPeriod  = "immune-24x7"
	nagiosAgent   = "immune-check-agent"
	nagiosNRPE    = "immune-check-nrpe"
	nagiosStale   = "immune-stale"
	nagiosNotify  = "immune-notify-"
	staleOutput   = "No result from the immune agent within the freshness threshold"
	nagiosHostOpt = "d,u,r"
	nagiosSvcOpt  = "w,u,c,r"
)

// directive is one line of a Nagios object definition.
type directive struct{ key, value string }

// define writes one object; empty values are left out, as Nagios then
// takes its default.
func (b *fileBuilder) define(kind string, ds ...directive) {
	fmt.Fprintf(b, "define %s {\n", kind)
	width := 0
	for _, d := range ds {
		width = max(width, len(d.key))
	}
	for _, d := range ds {
		if d.value != "" {
			fmt.Fprintf(b, "\t%-*s %s\n", width, d.key, nagiosValue(d.value))
		}
	}
	b.WriteString("}\n\n")
}

// nagiosValue escapes what Nagios's object parser would otherwise read as
// the start of a comment.
func nagiosValue(s string) string { return strings.ReplaceAll(oneLine(s), ";", `\;`) }

// interval writes d in units of Nagios's interval_length; Nagios 4 reads
// fractions, so 15s is 0.25 at the default minute.
func (o Options) interval(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(o.IntervalLength), 'f', -1, 64)
}

func nagiosFiles(m *model, o Options) map[string][]byte {
	return map[string][]byte{
		"immune-commands.cfg":    nagiosCommands(m, o),
		"immune-contacts.cfg":    nagiosContacts(m),
		"immune-hosts.cfg":       nagiosHosts(m, o),
		"immune-services.cfg":    nagiosServices(m, o),
		"immune-escalations.cfg": nagiosEscalations(m, o),
	}
}

func nagiosCommands(m *model, o Options) []byte {
	b := newFile("#")
	b.define("timeperiod", directive{"timeperiod_name", nagiosPeriod}, directive{"alias", "Always"},
		directive{"monday", "00:00-24:00"}, directive{"tuesday", "00:00-24:00"}, directive{"wednesday", "00:00-24:00"},
		directive{"thursday", "00:00-24:00"}, directive{"friday", "00:00-24:00"}, directive{"saturday", "00:00-24:00"},
		directive{"sunday", "00:00-24:00"})
	// check_nrpe's defaults suit the agent's listener: TLS, with the
	// anonymous suites it also offers ignored (see agent/nrpe.go).
	nrpe := o.PluginDir + "/check_nrpe -H $HOSTADDRESS$ -p $_HOSTNRPE_PORT$ -t " + nrpeTimeout
	b.define("command", directive{"command_name", nagiosAgent}, directive{"command_line", nrpe})
	b.define("command", directive{"command_name", nagiosNRPE}, directive{"command_line", nrpe + " -c $ARG1$"})
	b.define("command", directive{"command_name", nagiosStale},
		directive{"command_line", o.PluginDir + `/check_dummy 3 "` + staleOutput + `"`})
	for _, c := range m.contacts {
		b.define("command", directive{"command_name", nagiosNotify + c.Name}, directive{"command_line", c.Notify})
	}
	return b.Bytes()
}

func nagiosContacts(m *model) []byte {
	b := newFile("#")
	for _, c := range m.contacts {
		b.define("contact",
			directive{"contact_name", c.Name},
			directive{"alias", c.Name},
			directive{"email", c.Email},
			directive{"pager", c.Pager},
			directive{"host_notification_period", nagiosPeriod},
			directive{"service_notification_period", nagiosPeriod},
			directive{"host_notification_options", nagiosHostOpt},
			directive{"service_notification_options", nagiosSvcOpt},
			directive{"host_notification_commands", nagiosNotify + c.Name},
			directive{"service_notification_commands", nagiosNotify + c.Name})
	}
	for _, g := range m.groups {
		alias := g.Alias
		if alias == "" {
			alias = g.Name
		}
		b.define("contactgroup", directive{"contactgroup_name", g.Name}, directive{"alias", alias},
			directive{"members", strings.Join(g.Members, ",")})
	}
	return b.Bytes()
}

func nagiosHosts(m *model, o Options) []byte {
	b := newFile("#")
	for _, t := range m.types {
		b.define("hostgroup", directive{"hostgroup_name", t}, directive{"alias", t + " hosts"})
	}
	for _, h := range m.hosts {
		b.define("host",
			directive{"host_name", h.Name},
			directive{"alias", h.Name},
			directive{"address", h.address},
			directive{"_nrpe_port", h.nrpePort},
			directive{"hostgroups", h.HostType},
			directive{"check_command", nagiosAgent},
			directive{"check_period", nagiosPeriod},
			directive{"check_interval", o.interval(hostCheckInterval)},
			directive{"retry_interval", o.interval(hostRetryInterval)},
			directive{"max_check_attempts", hostMaxCheckAttempts},
			directive{"notification_period", nagiosPeriod},
			directive{"notification_options", nagiosHostOpt},
			directive{"notification_interval", o.interval(hostNotificationInterval)},
			directive{"contact_groups", strings.Join(m.hostGroups[h.HostType], ",")})
	}
	return b.Bytes()
}

func nagiosServices(m *model, o Options) []byte {
	b := newFile("#")
	for _, s := range m.services {
		ds := []directive{
			{"host_name", s.host},
			{"service_description", s.Name},
		}
		if s.Active == "passive" {
			ds = append(ds,
				directive{"check_command", nagiosStale},
				directive{"active_checks_enabled", "0"},
				directive{"passive_checks_enabled", "1"},
				directive{"check_freshness", "1"},
				// freshness_threshold is in seconds, whatever interval_length is.
				directive{"freshness_threshold", seconds(s.Freshness.D())})
		} else {
			ds = append(ds,
				directive{"check_command", nagiosNRPE + "!" + s.Name},
				directive{"active_checks_enabled", "1"},
				directive{"passive_checks_enabled", "1"})
		}
		ds = append(ds,
			directive{"check_period", nagiosPeriod},
			directive{"check_interval", o.interval(s.CheckInterval.D())},
			directive{"retry_interval", o.interval(s.RetryInterval.D())},
			directive{"max_check_attempts", strconv.Itoa(s.MaxCheckAttempts)},
			directive{"notification_period", nagiosPeriod},
			directive{"notification_options", nagiosSvcOpt},
			directive{"notification_interval", o.interval(s.NotificationInterval.D())},
			directive{"contact_groups", strings.Join(s.ContactGroups, ",")},
			directive{"contacts", s.Partner},
			directive{"notes", s.Notes},
			directive{"notes_url", s.NotesURL})
		b.define("service", ds...)
	}
	return b.Bytes()
}

// nagiosEscalations writes one serviceescalation per escalated service
// and host type. Nagios sends an escalated notification to the
// escalation's contacts only, so each also names the service's own: an
// escalation adds people, it does not take the first ones off the problem.
func nagiosEscalations(m *model, o Options) []byte {
	b := newFile("#")
	for _, e := range m.escalations {
		fmt.Fprintf(b, "# escalations[%d]\n", e.index)
		for _, s := range e.services {
			var partner []string
			if s.Partner != "" {
				partner = []string{s.Partner}
			}
			for _, t := range s.HostTypes {
				b.define("serviceescalation",
					directive{"hostgroup_name", t},
					directive{"service_description", s.Name},
					directive{"first_notification", strconv.Itoa(firstEscalated(e.Escalation, s))},
					directive{"last_notification", "0"},
					directive{"notification_interval", o.interval(s.NotificationInterval.D())},
					directive{"escalation_period", nagiosPeriod},
					directive{"contact_groups", strings.Join(sortedUnion(s.ContactGroups, e.ContactGroups), ",")},
					directive{"contacts", strings.Join(sortedUnion(partner, e.Contacts), ",")})
			}
		}
	}
	return b.Bytes()
}
