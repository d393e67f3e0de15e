package conf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Fleet is the coordinator's configuration (conf/fleet.yaml documents it):
// the hosts, how a push proceeds, and the limits a push must stay within.
type Fleet struct {
	// Listen is the coordinator's API and status pages (host:port).
	Listen string `yaml:"listen"`
	// TLS serves the API and pages over https.
	ServeTLS *ServerTLS `yaml:"tls"`
	// AllowPlainHTTP lets agents on other machines fetch releases over
	// plain http: anyone in the path may read or alter them in flight.
	AllowPlainHTTP bool `yaml:"allow_plain_http"`
	// AdvertiseURL is where agents reach the coordinator for artifacts,
	// such as http://coordinator.example.com:5680 (default: http:// and
	// the listen address, which only fits when that names a reachable host).
	AdvertiseURL string `yaml:"advertise_url"`
	// DataDir holds the push store and artifacts (default ~/.local/state/immune-coordinator).
	DataDir string `yaml:"data_dir"`
	// MaxArtifactBytes bounds an uploaded release artifact (default 1 GiB).
	MaxArtifactBytes int64 `yaml:"max_artifact_bytes"`
	// OperatorTokenFile holds the credential people use to clear locks.
	OperatorTokenFile string `yaml:"operator_token_file"`
	// DeployTokenFile holds the credential agents accept deploys from.
	DeployTokenFile string `yaml:"deploy_token_file"`
	// AgentTokenFile is the agents' read credential, unless a host names its own.
	AgentTokenFile string `yaml:"agent_token_file"`
	// ReadTokenFile holds the credential that reads what the agents
	// protect: the fleet's check output (/fleet) and the revert's output
	// in the API. The operator token reads them too. Browsers give it as
	// the password of HTTP Basic authentication (any user name).
	ReadTokenFile string `yaml:"read_token_file"`
	// OpenReads lets anyone read those without a credential: only for a
	// coordinator that listens where only its staff reach.
	OpenReads bool `yaml:"open_reads"`
	// FleetRefresh is how often the fleet page asks the agents for their
	// checks; every view in between is served from what they said last
	// (default 15s).
	FleetRefresh Duration `yaml:"fleet_refresh"`
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
	Judge   Judge     `yaml:"judge"`
	// BreachSamples is how many bad samples in a row make a breach, so a
	// single spike rolls nothing back (default 3).
	BreachSamples int     `yaml:"breach_samples"`
	Limits        []Limit `yaml:"limits"`
	Revert        Revert  `yaml:"revert"`
	// Rollback bounds how long a rollback keeps asking hosts that fail.
	Rollback Rollback `yaml:"rollback"`
	// Notify is who hears of pushes as they happen.
	Notify Notify `yaml:"notify"`
	// Bisect finds the culprit of a rolled-back push of several commits.
	Bisect Bisect `yaml:"bisect"`
	// Contacts, ContactGroups, Services and Escalations are what
	// `immune nagios-config` writes as Nagios or Icinga 2 objects.
	Contacts      []Contact      `yaml:"contacts"`
	ContactGroups []ContactGroup `yaml:"contact_groups"`
	Services      []Service      `yaml:"services"`
	Escalations   []Escalation   `yaml:"escalations"`
}

// ServerTLS is the coordinator's certificate and key (PEM files).
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ArtifactBase is the address agents fetch artifacts from, as configured:
// advertise_url, else the listen address under https with tls, http without.
func (f *Fleet) ArtifactBase() string {
	if f.AdvertiseURL != "" {
		return strings.TrimRight(f.AdvertiseURL, "/")
	}
	if f.ServeTLS != nil {
		return "https://" + f.Listen
	}
	return "http://" + f.Listen
}

// remoteHosts are the hosts whose agents are not on this machine.
func (f *Fleet) remoteHosts() []string {
	var names []string
	for _, h := range f.Hosts {
		host, _, err := net.SplitHostPort(h.Address)
		if err != nil || IsLoopback(host) {
			continue
		}
		names = append(names, h.Name)
	}
	return names
}

// IsLoopback tells whether host (a name or an address) is this machine's
// loopback: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateTLS checks the listener's certificate, and that agents on other
// machines fetch releases over https unless plain http is allowed.
func (f *Fleet) validateTLS(c *checker) {
	if t := f.ServeTLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			c.errorf("tls", "cert_file and key_file are both required")
		}
		c.keyPair("tls", t.CertFile, t.KeyFile)
	}
	base := f.ArtifactBase()
	if f.ServeTLS != nil && strings.HasPrefix(base, "http://") {
		c.errorf("advertise_url", "%q: the coordinator serves https (tls is set); advertise https://", f.AdvertiseURL)
		return
	}
	// Checked for a coordinator about to run (Load), not for a tool that
	// reads its hosts (nagios-config, tests that parse text).
	if remote := f.remoteHosts(); c.files && len(remote) > 0 && strings.HasPrefix(base, "http://") && !f.AllowPlainHTTP {
		field := "advertise_url"
		if f.AdvertiseURL == "" {
			field = "listen"
		}
		more := ""
		if len(remote) > 3 {
			more = fmt.Sprintf(" and %d more", len(remote)-3)
			remote = remote[:3]
		}
		c.errorf(field, "agents on other machines (%s%s) would fetch releases from %s over plain http, where anyone in the path can read or alter them: set tls (cert_file, key_file) and an https advertise_url, or allow_plain_http: true", strings.Join(remote, ", "), more, base)
	}
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
	pool, err := CertPool(t.CAFile)
	if errors.Is(err, errNoPEM) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read agents' CA: %w", err)
	}
	return pool, nil
}

// errNoPEM is a CA file without a certificate in it.
var errNoPEM = errors.New("holds no PEM certificate")

// CertPool reads a file of PEM certificates, as CA files are.
func CertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %w", file, errNoPEM)
	}
	return pool, nil
}

// NRPEPort is NRPE's registered port, where an agent's NRPE listener is
// unless a host says otherwise.
const NRPEPort = "5666"

// Rollback is how a rollback treats hosts that do not answer it.
type Rollback struct {
	// Timeout is how long hosts that fail the rollback (5xx, no answer)
	// are retried; then they are recorded as left on the release, and the
	// revert and the commit lock go ahead (default 10m).
	Timeout Duration `yaml:"timeout"`
}

// Bisect is how the culprit of a rolled-back push of several commits is
// found: halves of the range are pushed again to the first phase's hosts,
// each judged like a phase, until one commit is left; only it is reverted.
type Bisect struct {
	Enabled bool `yaml:"enabled"`
	// Build makes a revision's artifact, run in revert.repo: {revision} is
	// the commit, {out} the .tar.gz file to write. For example
	// [git, archive, --format=tar.gz, -o, "{out}", "{revision}"].
	Build []string `yaml:"build"`
	// Settle is how long the hosts rest after each rollback before the
	// next short push is measured from them: gauges that count over a
	// window (fatal errors in the last minute) must forget the last one
	// (default: windows.observe).
	Settle Duration `yaml:"settle"`
	// MaxSteps bounds the pushes it makes (default 6: 64 commits); Timeout
	// the whole search (default 30m). On any doubt the whole range is reverted.
	MaxSteps int      `yaml:"max_steps"`
	Timeout  Duration `yaml:"timeout"`
}

// Revert is how a rolled-back push's commits are reverted.
type Revert struct {
	// Repo is the coordinator's working copy of the application.
	Repo string `yaml:"repo"`
	// Remote and Branch are what the working copy follows: a push must
	// resolve there after a fetch, and the revert is made on top of
	// Remote/Branch and pushed to it. No remote: reverts are committed
	// where the working copy stands.
	Remote string `yaml:"remote"`
	Branch string `yaml:"branch"`
	// EachCommit reverts commit by commit; by default one commit reverts
	// every commit the push brought, newest first, and lists them.
	EachCommit bool `yaml:"each_commit"`
	// Command, when set, is run instead ({revision} replaced by the
	// pushed revision): the older way, which reverts that commit alone.
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
	// DefaultRollbackTimeout is how long a rollback retries a host that
	// answers with errors or not at all before leaving it on the release.
	DefaultRollbackTimeout = 10 * time.Minute

	DefaultCheckInterval        = time.Minute
	DefaultRetryInterval        = 15 * time.Second
	DefaultNotificationInterval = 30 * time.Minute
	DefaultFleetRefresh         = 15 * time.Second
)

// LoadFleet reads and validates a fleet config, filling in defaults.
func LoadFleet(path string) (*Fleet, error) {
	var f Fleet
	if err := load(path, &f, f.validate); err != nil {
		return nil, err
	}
	return &f, nil
}

// LoadFleetSettings is LoadFleet without the check of the files the config
// names (tokens, CA): for tools that read the fleet, such as the Nagios
// config generator, on hosts that do not run the coordinator.
func LoadFleetSettings(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseFleet(path, data)
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
	} else {
		c.address("listen", f.Listen, "the coordinator's API", true)
	}
	if f.AdvertiseURL != "" {
		if u, err := url.Parse(f.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.errorf("advertise_url", "%q is not an http:// or https:// URL", f.AdvertiseURL)
		}
	}
	f.validateTLS(c)
	c.token("operator_token_file", f.OperatorTokenFile)
	c.token("deploy_token_file", f.DeployTokenFile)
	c.token("agent_token_file", f.AgentTokenFile)
	c.token("read_token_file", f.ReadTokenFile)
	setDefault(&f.FleetRefresh, DefaultFleetRefresh)
	if f.MySQL != "" {
		if _, err := mysql.ParseDSN(f.MySQL); err != nil {
			c.errorf("mysql", "not a MySQL DSN (user:password@tcp(host:3306)/db): %v", err)
		}
	}
	if f.DataDir == "" {
		f.DataDir = defaultStateDir(c, "data_dir", "immune-coordinator")
	}
	c.directoryOK("data_dir", f.DataDir)
	if f.AgentTLS != nil {
		f.AgentTLS.validate(c, "agent_tls")
	}
	switch {
	case f.MaxArtifactBytes == 0:
		f.MaxArtifactBytes = 1 << 30
	case f.MaxArtifactBytes < 0:
		c.errorf("max_artifact_bytes", "%d: must be positive", f.MaxArtifactBytes)
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
		c.address(path+".address", h.Address, "the agent's HTTP API", false)
		c.token(path+".token_file", h.TokenFile)
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
		} else {
			c.address(path+".nrpe", h.NRPE, "the agent's NRPE listener", false)
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
	setDefault(&w.Watch, w.Observe.D())
	if w.SampleInterval.D() < 100*time.Millisecond {
		c.errorf("windows.sample_interval", "%s is under the 100ms minimum", w.SampleInterval)
	}
	if w.Observe < w.SampleInterval {
		c.errorf("windows.observe", "%s is shorter than one sample interval (%s)", w.Observe, w.SampleInterval)
	}
	for _, d := range []struct {
		field string
		d     Duration
	}{{"baseline", w.Baseline}, {"max_wait", w.MaxWait}, {"warmup", w.Warmup}, {"watch", w.Watch}} {
		if d.d < 0 {
			c.errorf("windows."+d.field, "%s: must not be negative", d.d)
		}
	}
	f.Judge.validate(c)
	if f.BreachSamples == 0 {
		f.BreachSamples = DefaultBreachSamples
	} else if f.BreachSamples < 0 {
		c.errorf("breach_samples", "%d: must be positive", f.BreachSamples)
	}
	for i := range f.Limits {
		f.Limits[i].validate(c, fmt.Sprintf("limits.%d", i), types)
	}
	if f.Revert.Remote != "" && f.Revert.Branch == "" {
		f.Revert.Branch = "main"
	}
	if f.Revert.Push == nil {
		f.Revert.Push = []string{"git", "push"}
	}
	setDefault(&f.Revert.Timeout, DefaultRevertTimeout)
	setDefault(&f.Rollback.Timeout, DefaultRollbackTimeout)
	if b := &f.Bisect; b.Enabled {
		if len(b.Build) == 0 {
			c.errorf("bisect.build", "required with enabled: the command that makes a revision's artifact ({revision}, {out})")
		}
		if f.Revert.Repo == "" || len(f.Revert.Command) > 0 {
			c.errorf("bisect.enabled", "needs revert.repo, and no revert.command: bisect reverts the culprit through the working copy")
		}
		if b.MaxSteps == 0 {
			b.MaxSteps = 6
		}
		setDefault(&b.Timeout, 30*time.Minute)
		setDefault(&b.Settle, f.Windows.Observe.D())
	}
	if f.Rollback.Timeout < 0 {
		c.errorf("rollback.timeout", "%s: must not be negative", f.Rollback.Timeout)
	}
	f.validateNotifications(c, types)
}

func setDefault(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}
