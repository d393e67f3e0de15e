package objects

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/conf"
)

// Icinga 2 object names immune defines, as in the Nagios format.
const (
	icingaAgent  = "immune-agent"
	icingaNRPE   = "immune-nrpe"
	icingaStale  = "immune-stale"
	icingaNotify = "immune-notify-"
)

// icingaMacros are the Icinga 2 runtime macros of the Nagios macros a
// contact's notify command may use (conf.NotifyMacros).
var icingaMacros = map[string]string{
	"CONTACTEMAIL":     "$user.email$",
	"CONTACTNAME":      "$user.name$",
	"CONTACTPAGER":     "$user.pager$",
	"HOSTADDRESS":      "$address$",
	"HOSTNAME":         "$host.name$",
	"NOTIFICATIONTYPE": "$notification.type$",
	"SERVICEDESC":      "$service.name$",
	"SERVICENOTES":     "$service.notes$",
	"SERVICENOTESURL":  "$service.notes_url$",
	"SERVICEOUTPUT":    "$service.output$",
	"SERVICESTATE":     "$service.state$",
}

var nagiosMacroRE = regexp.MustCompile(`\$([A-Z0-9_]*)\$`)

// icingaCommand translates a Nagios command line's macros; any other '$'
// is doubled, as Icinga reads a lone one as the start of a macro.
func icingaCommand(line string) string {
	var b strings.Builder
	last := 0
	for _, m := range nagiosMacroRE.FindAllStringSubmatchIndex(line, -1) {
		b.WriteString(strings.ReplaceAll(line[last:m[0]], "$", "$$"))
		if v, ok := icingaMacros[line[m[2]:m[3]]]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(strings.ReplaceAll(line[m[0]:m[1]], "$", "$$"))
		}
		last = m[1]
	}
	b.WriteString(strings.ReplaceAll(line[last:], "$", "$$"))
	return b.String()
}

// quote writes s as an Icinga 2 string literal.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s) + `"`
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[ " + strings.Join(q, ", ") + " ]"
}

// duration writes d as an Icinga 2 duration literal: 90s, 5m, 1h.
func duration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d > 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0 && d > 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return seconds(d) + "s"
}

// attr is one attribute of an Icinga 2 object; an empty value is left out.
type attr struct{ key, value string }

func (b *fileBuilder) object(kind, name string, attrs ...attr) {
	fmt.Fprintf(b, "object %s %s {\n", kind, quote(name))
	for _, a := range attrs {
		if a.value != "" {
			fmt.Fprintf(b, "\t%s = %s\n", a.key, a.value)
		}
	}
	b.WriteString("}\n\n")
}

func icingaFiles(m *model, o Options) map[string][]byte {
	return map[string][]byte{
		"immune-commands.conf":      icingaCommands(m, o),
		"immune-users.conf":         icingaUsers(m),
		"immune-hosts.conf":         icingaHosts(m),
		"immune-services.conf":      icingaServices(m),
		"immune-notifications.conf": icingaNotifications(m),
	}
}

func icingaCommands(m *model, o Options) []byte {
	b := newFile("//")
	nrpe := []string{o.PluginDir + "/check_nrpe", "-H", "$address$", "-p", "$nrpe_port$", "-t", nrpeTimeout}
	b.object("CheckCommand", icingaAgent, attr{"command", quoteList(nrpe)})
	b.object("CheckCommand", icingaNRPE, attr{"command", quoteList(append(nrpe, "-c", "$nrpe_command$"))})
	b.object("CheckCommand", icingaStale, attr{"command", quoteList([]string{o.PluginDir + "/check_dummy", "3", staleOutput})})
	for _, c := range m.contacts {
		// Through a shell, as Nagios runs a command line with a pipe.
		b.object("NotificationCommand", icingaNotify+c.Name,
			attr{"command", quoteList([]string{"/bin/sh", "-c", icingaCommand(c.Notify)})})
	}
	return b.Bytes()
}

func icingaUsers(m *model) []byte {
	b := newFile("//")
	for _, c := range m.contacts {
		var groups []string
		for _, g := range m.groups {
			if slices.Contains(g.Members, c.Name) {
				groups = append(groups, g.Name)
			}
		}
		list := ""
		if len(groups) > 0 {
			list = quoteList(groups)
		}
		b.object("User", c.Name, attr{"email", optQuote(c.Email)}, attr{"pager", optQuote(c.Pager)}, attr{"groups", list})
	}
	for _, g := range m.groups {
		b.object("UserGroup", g.Name, attr{"display_name", optQuote(g.Alias)})
	}
	return b.Bytes()
}

func optQuote(s string) string {
	if s == "" {
		return ""
	}
	return quote(s)
}

func icingaHosts(m *model) []byte {
	b := newFile("//")
	for _, t := range m.types {
		b.object("HostGroup", t, attr{"display_name", quote(t + " hosts")})
	}
	for _, h := range m.hosts {
		b.object("Host", h.Name,
			attr{"address", quote(h.address)},
			attr{"vars.nrpe_port", quote(h.nrpePort)},
			attr{"groups", quoteList([]string{h.HostType})},
			attr{"check_command", quote(icingaAgent)},
			attr{"check_interval", duration(hostCheckInterval)},
			attr{"retry_interval", duration(hostRetryInterval)},
			attr{"max_check_attempts", hostMaxCheckAttempts})
	}
	return b.Bytes()
}

func icingaServices(m *model) []byte {
	b := newFile("//")
	for _, s := range m.services {
		attrs := []attr{{"host_name", quote(s.host)}}
		if s.Active == conf.ActivePassive {
			// Icinga has no freshness threshold: an active check that says
			// UNKNOWN runs each interval without a passive result, as every
			// passive result puts the next check off.
			attrs = append(attrs,
				attr{"check_command", quote(icingaStale)},
				attr{"check_interval", duration(s.Freshness.D())},
				attr{"retry_interval", duration(s.Freshness.D())})
		} else {
			attrs = append(attrs,
				attr{"check_command", quote(icingaNRPE)},
				attr{"vars.nrpe_command", quote(s.Name)},
				attr{"check_interval", duration(s.CheckInterval.D())},
				attr{"retry_interval", duration(s.RetryInterval.D())})
		}
		attrs = append(attrs,
			attr{"max_check_attempts", strconv.Itoa(s.MaxCheckAttempts)},
			attr{"notes", optQuote(s.Notes)},
			attr{"notes_url", optQuote(s.NotesURL)})
		b.object("Service", s.Name, attrs...)
	}
	return b.Bytes()
}

// icingaNotifications writes a Notification per contact per level: a
// notification has one command, and each contact has their own. An
// escalation is a notification whose times begin when Nagios would send
// its first escalated one; Icinga keeps the first ones' notifications
// going, as the Nagios format does by naming them in each escalation.
func icingaNotifications(m *model) []byte {
	b := newFile("//")
	for _, h := range m.hosts {
		for _, user := range m.members(m.hostGroups[h.HostType], nil) {
			b.object("Notification", "immune-"+user,
				attr{"host_name", quote(h.Name)},
				attr{"command", quote(icingaNotify + user)},
				attr{"users", quoteList([]string{user})},
				attr{"interval", duration(hostNotificationInterval)})
		}
	}
	for _, s := range m.services {
		var partner []string
		if s.Partner != "" {
			partner = []string{s.Partner}
		}
		notified := m.members(s.ContactGroups, partner)
		for _, user := range notified {
			b.object("Notification", "immune-"+user,
				attr{"host_name", quote(s.host)},
				attr{"service_name", quote(s.Name)},
				attr{"command", quote(icingaNotify + user)},
				attr{"users", quoteList([]string{user})},
				attr{"interval", duration(s.NotificationInterval.D())})
		}
		for _, e := range m.escalations {
			i := slices.IndexFunc(e.services, func(es conf.Service) bool {
				return es.Name == s.Name && slices.Contains(es.HostTypes, s.hostType)
			})
			if i < 0 {
				continue
			}
			for _, user := range m.members(e.ContactGroups, e.Contacts) {
				if slices.Contains(notified, user) {
					continue
				}
				notified = append(notified, user)
				b.object("Notification", fmt.Sprintf("immune-escalation%d-%s", e.index, user),
					attr{"host_name", quote(s.host)},
					attr{"service_name", quote(s.Name)},
					attr{"command", quote(icingaNotify + user)},
					attr{"users", quoteList([]string{user})},
					attr{"interval", duration(s.NotificationInterval.D())},
					attr{"times", "{ begin = " + duration(escalatedAfter(e.Escalation, e.services[i])) + " }"})
			}
		}
	}
	return b.Bytes()
}
