package conf

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
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
	// AgentTLS, when set, has the coordinator speak https to the agents
	// (whose http.cert_file and key_file serve it), so that the deploy
	// token never crosses the network in clear text.
	AgentTLS *AgentTLS `yaml:"agent_tls"`
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
	// Contacts, ContactGroups, Services and Escalations are what
	// `immune nagios-config` writes as Nagios or Icinga 2 objects.
	Contacts      []Contact      `yaml:"contacts"`
	ContactGroups []ContactGroup `yaml:"contact_groups"`
	Services      []Service      `yaml:"services"`
	Escalations   []Escalation   `yaml:"escalations"`
}

// Host is one agent.
type Host struct {
	Name string `yaml:"name"`
	// Address is the agent's HTTP API, host:port.
	Address  string `yaml:"address"`
	HostType string `yaml:"host_type"`
	// TokenFile overrides the fleet's agent_token_file for this host.
	TokenFile string `yaml:"token_file"`
	// NRPE is the agent's NRPE listener, host:port (default: the host of
	// address, port 5666), which Nagios's check_nrpe queries.
	NRPE string `yaml:"nrpe"`
	// AgentTLS overrides the fleet's agent_tls for this host.
	AgentTLS *AgentTLS `yaml:"agent_tls"`
}

// AgentTLS is how the coordinator verifies the agents' certificates.
type AgentTLS struct {
	// CAFile holds the PEM certificates of the CA that signs the agents'
	// certificates; each must name its host as in the host's address (a
	// DNS name or an IP address in its subject alternative names).
	CAFile string `yaml:"ca_file"`
	// Insecure skips the verification: the traffic is encrypted but anyone
	// in the path can pose as an agent and read the deploy token. Only for
	// trials, never with a ca_file.
	Insecure bool `yaml:"insecure"`
}

// TLS is the agent_tls that applies to the host, nil for plain http.
func (f *Fleet) TLS(h Host) *AgentTLS {
	if h.AgentTLS != nil {
		return h.AgentTLS
	}
	return f.AgentTLS
}

func (t *AgentTLS) validate(c *checker, path string) {
	switch {
	case t.CAFile != "" && t.Insecure:
		c.errorf(path+".insecure", "insecure skips the verification ca_file is for: give one of them")
	case t.CAFile == "" && !t.Insecure:
		c.errorf(path+".ca_file", "required: the PEM file of the CA that signs the agents' certificates")
	case t.CAFile != "":
		if _, err := t.CertPool(); err != nil {
			c.errorf(path+".ca_file", "%v", err)
		}
	}
}

// CertPool reads the CA certificates of ca_file.
func (t *AgentTLS) CertPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read agents' CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", t.CAFile)
	}
	return pool, nil
}

// NRPEPort is NRPE's registered port, where an agent's NRPE listener is
// unless a host says otherwise.
const NRPEPort = "5666"

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

	DefaultCheckInterval        = time.Minute
	DefaultRetryInterval        = 15 * time.Second
	DefaultNotificationInterval = 30 * time.Minute
)

// LoadFleet reads and validates a fleet config, filling in defaults.
func LoadFleet(path string) (*Fleet, error) {
	var f Fleet
	if err := load(path, &f, f.validate); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseFleet is LoadFleet for text already read; name is used in errors.
func ParseFleet(name string, data []byte) (*Fleet, error) {
	var f Fleet
	if err := decode(name, data, &f, f.validate); err != nil {
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
	if f.AgentTLS != nil {
		f.AgentTLS.validate(c, "agent_tls")
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
		if h.NRPE == "" {
			if host, _, err := net.SplitHostPort(h.Address); err == nil {
				f.Hosts[i].NRPE = net.JoinHostPort(host, NRPEPort)
			}
		} else if _, _, err := net.SplitHostPort(h.NRPE); err != nil {
			c.errorf(path+".nrpe", "%q is not host:port of the agent's NRPE listener", h.NRPE)
		}
		if h.AgentTLS != nil {
			h.AgentTLS.validate(c, path+".agent_tls")
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
	f.validateNotifications(c, types)
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

// macroRE finds the Nagios macros in a notify command.
var macroRE = regexp.MustCompile(`\$([A-Z0-9_]*)\$`)

// validateNotifications checks the sections `immune nagios-config` reads:
// every name they give must name something, once, and every service and
// escalation must land on some host.
func (f *Fleet) validateNotifications(c *checker, types map[string]bool) {
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
