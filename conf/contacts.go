package conf

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Contact is a person or a partner's desk that Nagios notifies.
type Contact struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	Pager string `yaml:"pager"`
	// Notify is the command line that notifies the contact, with Nagios's
	// macros (only those in NotifyMacros, which Icinga 2 has too); default
	// DefaultNotify, a mail to the contact's email.
	Notify string `yaml:"notify"`
}

// DefaultNotify mails the contact; /usr/bin/mail is in Debian's bsd-mailx and mailutils.
const DefaultNotify = `/usr/bin/printf "%b" "$NOTIFICATIONTYPE$: $HOSTNAME$/$SERVICEDESC$ is $SERVICESTATE$\n\n$SERVICEOUTPUT$\n" | /usr/bin/mail -s "$NOTIFICATIONTYPE$: $HOSTNAME$/$SERVICEDESC$ is $SERVICESTATE$" $CONTACTEMAIL$`

// NotifyMacros are the macros a contact's notify command may use: those
// with a meaning in Nagios and Icinga 2 alike, so both formats notify the same.
var NotifyMacros = []string{
	"CONTACTEMAIL", "CONTACTNAME", "CONTACTPAGER", "HOSTADDRESS", "HOSTNAME",
	"NOTIFICATIONTYPE", "SERVICEDESC", "SERVICENOTES", "SERVICENOTESURL", "SERVICEOUTPUT", "SERVICESTATE",
}

// ContactGroup is a rota: the contacts notified together.
type ContactGroup struct {
	Name    string   `yaml:"name"`
	Members []string `yaml:"members"`
	Alias   string   `yaml:"alias"`
}

// Check modes: how Nagios gets a service's results.
const (
	ActiveNRPE    = "nrpe"    // Nagios runs check_nrpe against the agent
	ActivePassive = "passive" // the agent submits, Nagios checks freshness
)

// Service is one of the agents' checks as Nagios sees it, on every host of
// some host types.
type Service struct {
	// Name is the agent's check name, which is also its NRPE command.
	Name      string   `yaml:"name"`
	HostTypes []string `yaml:"host_types"`
	// Active is nrpe (default) or passive.
	Active string `yaml:"active"`
	// Freshness is how old a passive result may get before Nagios marks
	// the service UNKNOWN (default: twice check_interval).
	Freshness        Duration `yaml:"freshness"`
	CheckInterval    Duration `yaml:"check_interval"`
	RetryInterval    Duration `yaml:"retry_interval"`
	MaxCheckAttempts int      `yaml:"max_check_attempts"`
	// NotificationInterval is the time between notifications while a
	// problem lasts; escalations after M minutes count in it.
	NotificationInterval Duration `yaml:"notification_interval"`
	// Notes say what to do; NotesURL is the runbook.
	Notes    string `yaml:"notes"`
	NotesURL string `yaml:"notes_url"`
	// ContactGroups are notified first.
	ContactGroups []string `yaml:"contact_groups"`
	// Partner is the contact of the partner whose API this checks,
	// notified with the contact groups.
	Partner string `yaml:"partner"`
}

// Escalation adds contacts to a problem's notifications once it has lasted
// some notifications or some time.
type Escalation struct {
	// Services and HostTypes choose the services escalated: the named
	// ones, those on the host types, or both (the named ones there).
	Services  []string `yaml:"services"`
	HostTypes []string `yaml:"host_types"`
	// AfterNotifications escalates from the notification after that many;
	// After escalates once the problem has been notified that long.
	// Exactly one is set.
	AfterNotifications int      `yaml:"after_notifications"`
	After              Duration `yaml:"after"`
	ContactGroups      []string `yaml:"contact_groups"`
	Contacts           []string `yaml:"contacts"`
}

// macroRE finds the Nagios macros in a notify command.
var macroRE = regexp.MustCompile(`\$([A-Z0-9_]*)\$`)

// validateNotifications checks the sections `immune nagios-config` reads:
// every name they give must name something, once, and every service and
// escalation must land on some host.
func (f *Fleet) validateNotifications(c *checker, types map[string]bool) {
	contacts := f.validateContacts(c)
	f.Notify.validate(c, contacts)
	groups := f.validateContactGroups(c, contacts)
	services := f.validateServices(c, types, contacts, groups)
	f.validateEscalations(c, types, services, contacts, groups)
}

// validateContacts checks each contact and returns their indexes by name.
func (f *Fleet) validateContacts(c *checker) map[string]int {
	contacts := map[string]int{}
	for i := range f.Contacts {
		ct := &f.Contacts[i]
		path := fmt.Sprintf("contacts.%d", i)
		if checkName(c, path, ct.Name) {
			if prev, dup := contacts[ct.Name]; dup {
				c.errorf(path+".name", "%q is also the name of contacts[%d]", ct.Name, prev)
			} else {
				contacts[ct.Name] = i
			}
		}
		if ct.Notify == "" {
			ct.Notify = DefaultNotify
			if ct.Email == "" {
				c.errorf(path, "no email for the default notify command to mail, and no notify command")
			}
		}
		for _, m := range macroRE.FindAllStringSubmatch(ct.Notify, -1) {
			if !slices.Contains(NotifyMacros, m[1]) {
				c.errorf(path+".notify", "macro $%s$ is not one of $%s$", m[1], strings.Join(NotifyMacros, "$, $"))
			}
		}
		if strings.ContainsAny(ct.Notify+ct.Email+ct.Pager, "\n\r") {
			c.errorf(path, "a line break cannot be written into Nagios's object files")
		}
	}
	return contacts
}

// validateContactGroups checks each rota and returns their indexes by name.
func (f *Fleet) validateContactGroups(c *checker, contacts map[string]int) map[string]int {
	groups := map[string]int{}
	for i, g := range f.ContactGroups {
		path := fmt.Sprintf("contact_groups.%d", i)
		if checkName(c, path, g.Name) {
			if _, clash := contacts[g.Name]; clash {
				c.errorf(path+".name", "%q is also a contact's name: Icinga 2 could not tell them apart", g.Name)
			}
			if prev, dup := groups[g.Name]; dup {
				c.errorf(path+".name", "%q is also the name of contact_groups[%d]", g.Name, prev)
			} else {
				groups[g.Name] = i
			}
		}
		if len(g.Members) == 0 {
			c.errorf(path+".members", "a contact group needs at least one member")
		}
		checkRefs(c, path+".members", g.Members, contacts, "contact")
	}
	return groups
}

// validateServices checks each service, fills in Nagios's defaults, and
// returns the names of the services.
func (f *Fleet) validateServices(c *checker, types map[string]bool, contacts, groups map[string]int) map[string]bool {
	services := map[string]bool{}
	type placed struct{ name, hostType string }
	seen := map[placed]int{}
	for i := range f.Services {
		s := &f.Services[i]
		path := fmt.Sprintf("services.%d", i)
		if checkName(c, path, s.Name) {
			services[s.Name] = true
		}
		if len(s.HostTypes) == 0 {
			c.errorf(path+".host_types", "required: the host types whose agents run this check")
		}
		for j, t := range s.HostTypes {
			tpath := fmt.Sprintf("%s.host_types.%d", path, j)
			if !types[t] {
				c.errorf(tpath, "no host has the type %q, so the service would be on no host", t)
			}
			if prev, dup := seen[placed{s.Name, t}]; dup {
				c.errorf(tpath, "service %q is already on host type %q (services[%d])", s.Name, t, prev)
			}
			seen[placed{s.Name, t}] = i
		}
		setDefault(&s.CheckInterval, DefaultCheckInterval)
		setDefault(&s.RetryInterval, DefaultRetryInterval)
		setDefault(&s.NotificationInterval, DefaultNotificationInterval)
		if s.MaxCheckAttempts == 0 {
			s.MaxCheckAttempts = DefaultMaxCheckAttempts
		} else if s.MaxCheckAttempts < 0 {
			c.errorf(path+".max_check_attempts", "%d: must be positive", s.MaxCheckAttempts)
		}
		for _, d := range []struct {
			field string
			d     Duration
		}{{"check_interval", s.CheckInterval}, {"retry_interval", s.RetryInterval},
			{"notification_interval", s.NotificationInterval}, {"freshness", s.Freshness}} {
			if d.d < 0 || d.d.D()%time.Second != 0 {
				c.errorf(path+"."+d.field, "%s: want whole seconds, not negative", d.d)
			}
		}
		switch s.Active {
		case "":
			s.Active = ActiveNRPE
		case ActiveNRPE, ActivePassive:
		default:
			c.errorf(path+".active", "%q: want nrpe or passive", s.Active)
		}
		if s.Active == ActivePassive {
			setDefault(&s.Freshness, 2*s.CheckInterval.D())
		} else if s.Freshness != 0 {
			c.errorf(path+".freshness", "only a passive service has a freshness threshold")
		}
		if strings.ContainsAny(s.Notes+s.NotesURL, "\n\r") {
			c.errorf(path, "notes and notes_url must be one line each")
		}
		checkRefs(c, path+".contact_groups", s.ContactGroups, groups, "contact group")
		if s.Partner != "" {
			if _, ok := contacts[s.Partner]; !ok {
				c.errorf(path+".partner", "no contact is named %q", s.Partner)
			}
		}
	}
	return services
}

// validateEscalations checks that each escalation escalates something to someone.
func (f *Fleet) validateEscalations(c *checker, types, services map[string]bool, contacts, groups map[string]int) {
	for i := range f.Escalations {
		e := &f.Escalations[i]
		path := fmt.Sprintf("escalations.%d", i)
		for j, name := range e.Services {
			if !services[name] {
				c.errorf(fmt.Sprintf("%s.services.%d", path, j), "no service is named %q", name)
			}
		}
		for j, t := range e.HostTypes {
			if !types[t] {
				c.errorf(fmt.Sprintf("%s.host_types.%d", path, j), "no host has the type %q", t)
			}
		}
		if len(e.Services) == 0 && len(e.HostTypes) == 0 {
			c.errorf(path, "escalates nothing: give services, host_types or both")
		}
		switch {
		case e.AfterNotifications < 0:
			c.errorf(path+".after_notifications", "%d: must be positive", e.AfterNotifications)
		case e.After < 0 || e.After.D()%time.Second != 0:
			c.errorf(path+".after", "%s: want whole seconds, not negative", e.After)
		case (e.AfterNotifications == 0) == (e.After == 0):
			c.errorf(path, "give after_notifications or after, one of them")
		}
		if len(e.ContactGroups)+len(e.Contacts) == 0 {
			c.errorf(path, "escalates to no one: give contacts or contact_groups")
		}
		checkRefs(c, path+".contact_groups", e.ContactGroups, groups, "contact group")
		checkRefs(c, path+".contacts", e.Contacts, contacts, "contact")
		if len(e.Services) > 0 && len(e.HostTypes) > 0 && len(f.EscalatedServices(*e)) == 0 {
			c.errorf(path, "none of its services is on its host types")
		}
	}
}

// objectNameRE is what a contact, group or service may be called: it is
// written unquoted into Nagios's object files and Icinga's names.
var objectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)

// checkName reports whether the object at path has a usable name.
func checkName(c *checker, path, name string) bool {
	switch {
	case name == "":
		c.errorf(path, "name is required")
	case !objectNameRE.MatchString(name):
		c.errorf(path+".name", "%q: use letters, digits, '_', '.', '@' and '-'", name)
	default:
		return true
	}
	return false
}

func checkRefs(c *checker, path string, names []string, known map[string]int, what string) {
	for j, name := range names {
		if _, ok := known[name]; !ok {
			c.errorf(fmt.Sprintf("%s.%d", path, j), "no %s is named %q", what, name)
		}
	}
}

// EscalatedServices are the services an escalation applies to, each on the
// host types it applies on there.
func (f *Fleet) EscalatedServices(e Escalation) []Service {
	var out []Service
	for _, s := range f.Services {
		if len(e.Services) > 0 && !slices.Contains(e.Services, s.Name) {
			continue
		}
		types := s.HostTypes
		if len(e.HostTypes) > 0 {
			types = slices.DeleteFunc(slices.Clone(s.HostTypes), func(t string) bool { return !slices.Contains(e.HostTypes, t) })
		}
		if len(types) > 0 {
			s.HostTypes = types
			out = append(out, s)
		}
	}
	return out
}
