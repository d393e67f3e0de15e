package conf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// Agent is the host agent's configuration (conf/agent.yaml documents it).
type Agent struct {
	// Host is this host's name as Nagios and the coordinator know it (default: the system's host name).
	Host string `yaml:"host"`
	// HostType groups hosts for push limits: www, chat, db, memcache, ...
	HostType string `yaml:"host_type"`
	// DataDir holds check state, the passive spool, the generated API token
	// and TLS keys; created when missing (default ~/.local/state/immune).
	DataDir string `yaml:"data_dir"`
	// MaxConcurrent caps how many checks run at once (default 4).
	MaxConcurrent int `yaml:"max_concurrent"`
	// Checks are run on their schedules and answer NRPE under their names.
	Checks []Check `yaml:"checks"`
	// Gauges are the readings the coordinator compares during a push, beyond the built-in ones.
	Gauges []Gauge `yaml:"gauges"`
	NRPE   NRPE    `yaml:"nrpe"`
	HTTP   HTTP    `yaml:"http"`
	// Passive sends every result to Nagios or Icinga as it comes.
	Passive Passive `yaml:"passive"`
	// Deploy lets the coordinator install releases on this host; nil (the
	// section left out) turns the deploy routes off.
	Deploy *Deploy `yaml:"deploy"`
}

// Check is one scheduled check: a built-in check, an external plugin or a Go plugin.
type Check struct {
	// Name is the service's name and the NRPE command that runs it.
	Name string `yaml:"name"`
	// Builtin names one of immune's checks (check_load, ...); args are its flags.
	Builtin string `yaml:"builtin"`
	// Plugin is the path of an external Nagios plugin, run without a shell.
	Plugin string `yaml:"plugin"`
	// GoPlugin is the path of a Go plugin built with immune's plugins/sdk.
	GoPlugin string   `yaml:"go_plugin"`
	Args     []string `yaml:"args"`
	// Interval between checks while the state is OK or hard (default 1m).
	Interval Duration `yaml:"interval"`
	// RetryInterval between checks while a problem is soft (default: a quarter of interval, at least 1s).
	RetryInterval Duration `yaml:"retry_interval"`
	// MaxCheckAttempts is how many non-OK results in a row make a hard state (default 3).
	MaxCheckAttempts int `yaml:"max_check_attempts"`
	// Timeout of one run (default 10s), and the state it gives (default CRITICAL, as in Nagios).
	Timeout      Duration `yaml:"timeout"`
	TimeoutState *State   `yaml:"timeout_state"`
	// NRPEArgs lets NRPE queries fill $ARG1$, $ARG2$... in args (needs nrpe.allow_arguments).
	NRPEArgs bool `yaml:"nrpe_args"`
	// Fresh is how old the last result may be for NRPE to be answered with it
	// instead of running the check (default 0: always run).
	Fresh Duration `yaml:"fresh"`
}

// Gauge names a perfdata value of a check as a gauge for the coordinator.
type Gauge struct {
	Name  string `yaml:"name"`
	Check string `yaml:"check"`
	// Label is the perfdata label (default: the only one, or the first).
	Label string `yaml:"label"`
}

// NRPE is the NRPE listener.
type NRPE struct {
	// Listen is host:port; empty turns NRPE off.
	Listen string `yaml:"listen"`
	// AllowedHosts are addresses or CIDRs that may connect (default: loopback only).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowArguments lets queries pass arguments to checks that declare nrpe_args.
	AllowArguments bool `yaml:"allow_arguments"`
	// Plaintext turns TLS off. check_nrpe must then be run with -n.
	Plaintext bool `yaml:"plaintext"`
	// CertFile and KeyFile are the server's certificate; when unset a
	// self-signed one is made in the data dir at first start.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires clients to show a certificate it signed.
	ClientCAFile string `yaml:"client_ca_file"`
	// Timeout for running the command a query names, NRPE's
	// command_timeout (default 10s).
	Timeout Duration `yaml:"timeout"`
	// HandshakeTimeout for the TLS handshake and reading the query (default
	// 5s): a client that connects and sends nothing lets go of its
	// connection slot this soon, or sooner when a new client needs it.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// QueueTimeout is how long a query waits for one of max_concurrent's
	// slots when every one runs a check (default 3s); then it is answered
	// UNKNOWN, saying the check queue is full.
	QueueTimeout Duration `yaml:"queue_timeout"`
	// MaxConnections served at once (default 64).
	MaxConnections int `yaml:"max_connections"`
}

// HTTP is the API the coordinator and operators read.
type HTTP struct {
	// Listen is host:port; empty turns the API off.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token every request but /healthz needs
	// (default: data_dir/api.token, made with a random token at first start).
	TokenFile string `yaml:"token_file"`
	// CertFile and KeyFile serve the API over TLS; with ClientCAFile, a client
	// certificate it signed is accepted instead of the token.
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Passive is where results are submitted as they come.
type Passive struct {
	// CommandFile is Nagios's external command file (nagios.cmd).
	CommandFile string `yaml:"command_file"`
	// Icinga is the Icinga 2 API.
	Icinga *Icinga `yaml:"icinga"`
	// SpoolMaxBytes bounds the on-disk queue of results waiting for a target
	// that is down (default 64 MiB); the oldest are dropped first, and logged.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
}

// Icinga is an Icinga 2 API endpoint.
type Icinga struct {
	URL          string `yaml:"url"`
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	// CAFile verifies the API's certificate; Insecure skips that (tests only).
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure"`
}

// Deploy is where and how releases the coordinator pushes are installed.
type Deploy struct {
	// Root holds releases/<revision>/ and the current and previous symlinks
	// (absolute; created when missing).
	Root string `yaml:"root"`
	// Keep is how many releases stay unpacked (default 5); the current and
	// the previous one are never removed.
	Keep int `yaml:"keep"`
	// PreActivate and PostActivate are commands ([path, args...], run without
	// a shell in the new release's dir) run before and after the switch of
	// current. A path with a '/' that is not absolute is inside the release.
	PreActivate  []string `yaml:"pre_activate"`
	PostActivate []string `yaml:"post_activate"`
	// HookTimeout bounds each hook run (default 60s).
	HookTimeout Duration `yaml:"hook_timeout"`
	// TokenFile holds the coordinator's deploy credential, the only one that
	// may deploy or roll back; it must differ from the HTTP API's token.
	TokenFile string `yaml:"token_file"`
	// MaxArtifactBytes bounds the download of one artifact (default 1 GiB).
	MaxArtifactBytes int64 `yaml:"max_artifact_bytes"`
	// MaxUnpackedBytes bounds the files one artifact unpacks to, summed
	// (default 2 GiB), and MaxEntries the files, dirs and links it makes
	// (default 100000): a small artifact cannot fill the disk or its inodes.
	MaxUnpackedBytes int64 `yaml:"max_unpacked_bytes"`
	MaxEntries       int   `yaml:"max_entries"`
	// MinFreeBytes is the space a deploy leaves free on root's filesystem
	// (default 512 MiB): checked against the artifact's size before
	// unpacking, and against each entry's as it is unpacked.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// ArtifactCAFile verifies the coordinator's certificate when it
	// serves artifacts over https (default: the system's roots).
	ArtifactCAFile string `yaml:"artifact_ca_file"`
}

// Defaults of the agent's settings.
const (
	DefaultInterval         = time.Minute
	DefaultMaxCheckAttempts = 3
	DefaultTimeout          = 10 * time.Second
	DefaultMaxConcurrent    = 4
	DefaultNRPETimeout      = 10 * time.Second
	DefaultNRPEHandshake    = 5 * time.Second
	DefaultNRPEQueueTimeout = 3 * time.Second
	DefaultNRPEMaxConns     = 64
	DefaultSpoolMaxBytes    = 64 << 20
	DefaultDeployKeep       = 5
	DefaultHookTimeout      = 60 * time.Second
	DefaultMaxArtifactBytes = 1 << 30
	DefaultMaxUnpackedBytes = 2 << 30
	DefaultMaxEntries       = 100000
	DefaultMinFreeBytes     = 512 << 20
	// MinInterval is the shortest schedule: anything faster is a mistake
	// that would load the host it watches.
	MinInterval = time.Second
)

// AgentLoader reads agent configs. Its zero value checks everything but
// the names and arguments of built-in checks, which only the checks know:
// conf takes them from its caller rather than importing package checks, so
// that the coordinator, which imports conf for its own config, links none
// of the checks and their libraries.
type AgentLoader struct {
	// Builtin knows the built-in checks; the agent gives checks.ArgParser.
	// Nil leaves builtin names and args unchecked.
	Builtin BuiltinLookup
}

// BuiltinLookup finds a built-in check by name and returns what parses its
// arguments; ok is false when there is no such check.
type BuiltinLookup func(name string) (parseArgs func(args []string) error, ok bool)

// Load reads and validates an agent config, filling in defaults.
func (l AgentLoader) Load(path string) (*Agent, error) {
	var a Agent
	if err := load(path, &a, func(c *checker) { a.validate(c, l.Builtin) }); err != nil {
		return nil, err
	}
	return &a, nil
}

// Parse is Load for text already read; name is used in errors.
func (l AgentLoader) Parse(name string, data []byte) (*Agent, error) {
	var a Agent
	if err := decode(name, data, &a, func(c *checker) { a.validate(c, l.Builtin) }); err != nil {
		return nil, err
	}
	return &a, nil
}

// LoadAgent is the zero AgentLoader's Load: built-in checks go unchecked.
func LoadAgent(path string) (*Agent, error) { return AgentLoader{}.Load(path) }

// ParseAgent is the zero AgentLoader's Parse: built-in checks go unchecked.
func ParseAgent(name string, data []byte) (*Agent, error) { return AgentLoader{}.Parse(name, data) }

var (
	checkNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	argRefRE    = regexp.MustCompile(`\$ARG([0-9]+)\$`)
)

func (a *Agent) validate(c *checker, builtin BuiltinLookup) {
	if a.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			c.errorf("host", "not set, and the system's host name is unknown: %v", err)
		}
		a.Host = h
	}
	if a.HostType == "" {
		c.errorf("host_type", "required (www, chat, db, memcache, ...)")
	}
	if a.DataDir == "" {
		a.DataDir = defaultStateDir(c, "data_dir", "immune")
	}
	c.directoryOK("data_dir", a.DataDir)
	if a.MaxConcurrent == 0 {
		a.MaxConcurrent = DefaultMaxConcurrent
	} else if a.MaxConcurrent < 0 {
		c.errorf("max_concurrent", "%d: must be positive", a.MaxConcurrent)
	}
	names := map[string]int{}
	for i := range a.Checks {
		a.Checks[i].validate(c, fmt.Sprintf("checks.%d", i), builtin)
		if prev, dup := names[a.Checks[i].Name]; dup && a.Checks[i].Name != "" {
			c.errorf(fmt.Sprintf("checks.%d.name", i), "%q is also the name of checks[%d]", a.Checks[i].Name, prev)
		}
		names[a.Checks[i].Name] = i
	}
	gauges := map[string]bool{}
	for i, g := range a.Gauges {
		path := fmt.Sprintf("gauges.%d", i)
		switch {
		case g.Name == "":
			c.errorf(path, "name is required")
		case gauges[g.Name]:
			c.errorf(path+".name", "%q is defined twice", g.Name)
		}
		gauges[g.Name] = true
		if _, ok := names[g.Check]; !ok {
			c.errorf(path+".check", "%q is not the name of a check", g.Check)
		}
	}
	a.NRPE.validate(c, a.Checks)
	a.HTTP.validate(c)
	a.Passive.validate(c)
	if a.Deploy != nil {
		if a.HTTP.Listen == "" {
			c.errorf("deploy", "needs the HTTP API the coordinator deploys through: set http.listen")
		}
		a.Deploy.validate(c)
	}
}

func (ch *Check) validate(c *checker, path string, builtin BuiltinLookup) {
	if ch.Name == "" {
		c.errorf(path, "name is required")
	} else if !checkNameRE.MatchString(ch.Name) {
		c.errorf(path+".name", "%q: use letters, digits, '_', '.' and '-' only (it is an NRPE command name)", ch.Name)
	}
	kinds := 0
	for _, k := range []string{ch.Builtin, ch.Plugin, ch.GoPlugin} {
		if k != "" {
			kinds++
		}
	}
	if kinds != 1 {
		c.errorf(path, "set exactly one of builtin, plugin or go_plugin")
	}
	if ch.Builtin != "" && kinds == 1 && builtin != nil {
		parseArgs, ok := builtin(ch.Builtin)
		switch {
		case !ok:
			c.errorf(path+".builtin", "no check named %q (immune check --list shows them)", ch.Builtin)
		case ch.ArgCount() == 0:
			// Arguments are known now: a mistake in them is a config error.
			if err := parseArgs(ch.Args); err != nil {
				c.errorf(path+".args", "%v", err)
			}
		}
	}
	for _, p := range []struct{ field, file string }{{"plugin", ch.Plugin}, {"go_plugin", ch.GoPlugin}} {
		if p.file != "" && !filepath.IsAbs(p.file) {
			c.errorf(path+"."+p.field, "%q: give an absolute path", p.file)
		} else {
			c.executable(path+"."+p.field, p.file)
		}
	}
	if ch.Interval == 0 {
		ch.Interval = Duration(DefaultInterval)
	}
	if ch.Interval.D() < MinInterval {
		c.errorf(path+".interval", "%s is under the %s minimum", ch.Interval, MinInterval)
	}
	if ch.RetryInterval == 0 {
		ch.RetryInterval = Duration(max(ch.Interval.D()/4, MinInterval))
	}
	if ch.RetryInterval.D() < MinInterval {
		c.errorf(path+".retry_interval", "%s is under the %s minimum", ch.RetryInterval, MinInterval)
	}
	if ch.MaxCheckAttempts == 0 {
		ch.MaxCheckAttempts = DefaultMaxCheckAttempts
	} else if ch.MaxCheckAttempts < 0 {
		c.errorf(path+".max_check_attempts", "%d: must be positive", ch.MaxCheckAttempts)
	}
	if ch.Timeout == 0 {
		ch.Timeout = Duration(DefaultTimeout)
	}
	if ch.Timeout < 0 {
		c.errorf(path+".timeout", "%s: must be positive", ch.Timeout)
	}
	if ch.TimeoutState == nil {
		s := State(nagios.Critical)
		ch.TimeoutState = &s
	}
	if ch.Fresh < 0 {
		c.errorf(path+".fresh", "%s: must not be negative", ch.Fresh)
	}
	refs := false
	for _, a := range ch.Args {
		if argRefRE.MatchString(a) {
			refs = true
		}
	}
	if refs && !ch.NRPEArgs {
		c.errorf(path+".args", "uses $ARGn$ but nrpe_args is not set")
	}
}

// ArgCount is how many $ARGn$ the check's args use: the NRPE arguments it takes.
func (ch *Check) ArgCount() int {
	n := 0
	for _, a := range ch.Args {
		for _, m := range argRefRE.FindAllStringSubmatch(a, -1) {
			var i int
			fmt.Sscan(m[1], &i)
			n = max(n, i)
		}
	}
	return n
}

// ExpandArgs fills $ARG1$, $ARG2$... in the check's args with NRPE arguments.
func (ch *Check) ExpandArgs(nrpeArgs []string) []string {
	out := make([]string, len(ch.Args))
	for i, a := range ch.Args {
		out[i] = argRefRE.ReplaceAllStringFunc(a, func(ref string) string {
			var n int
			fmt.Sscan(argRefRE.FindStringSubmatch(ref)[1], &n)
			if n >= 1 && n <= len(nrpeArgs) {
				return nrpeArgs[n-1]
			}
			return ""
		})
	}
	return out
}

func (n *NRPE) validate(c *checker, checks []Check) {
	if n.Listen == "" {
		return
	}
	c.address("nrpe.listen", n.Listen, "the NRPE listener", true)
	for i, h := range n.AllowedHosts {
		if _, err := ParsePrefix(h); err != nil {
			c.errorf(fmt.Sprintf("nrpe.allowed_hosts.%d", i), "%v", err)
		}
	}
	if (n.CertFile == "") != (n.KeyFile == "") {
		c.errorf("nrpe", "cert_file and key_file go together")
	}
	c.keyPair("nrpe", n.CertFile, n.KeyFile)
	c.caFile("nrpe.client_ca_file", n.ClientCAFile)
	if n.Plaintext && (n.CertFile != "" || n.ClientCAFile != "") {
		c.errorf("nrpe.plaintext", "plaintext with certificates set: choose one")
	}
	if n.Timeout == 0 {
		n.Timeout = Duration(DefaultNRPETimeout)
	}
	if n.HandshakeTimeout == 0 {
		n.HandshakeTimeout = Duration(DefaultNRPEHandshake)
	} else if n.HandshakeTimeout < 0 {
		c.errorf("nrpe.handshake_timeout", "%s: must be positive", n.HandshakeTimeout)
	}
	if n.QueueTimeout == 0 {
		n.QueueTimeout = Duration(DefaultNRPEQueueTimeout)
	} else if n.QueueTimeout < 0 {
		c.errorf("nrpe.queue_timeout", "%s: must be positive", n.QueueTimeout)
	}
	if n.MaxConnections == 0 {
		n.MaxConnections = DefaultNRPEMaxConns
	}
	for i, ch := range checks {
		if ch.NRPEArgs && !n.AllowArguments {
			c.errorf(fmt.Sprintf("checks.%d.nrpe_args", i), "set, but nrpe.allow_arguments is off")
		}
	}
}

// ParsePrefix reads an address ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8").
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (h *HTTP) validate(c *checker) {
	if h.Listen == "" {
		return
	}
	c.address("http.listen", h.Listen, "the HTTP API", true)
	if (h.CertFile == "") != (h.KeyFile == "") {
		c.errorf("http", "cert_file and key_file go together")
	}
	c.keyPair("http", h.CertFile, h.KeyFile)
	c.caFile("http.client_ca_file", h.ClientCAFile)
	c.token("http.token_file", h.TokenFile)
	if h.ClientCAFile != "" && h.CertFile == "" {
		c.errorf("http.client_ca_file", "client certificates need TLS: set cert_file and key_file")
	}
}

func (p *Passive) validate(c *checker) {
	if p.SpoolMaxBytes == 0 {
		p.SpoolMaxBytes = DefaultSpoolMaxBytes
	} else if p.SpoolMaxBytes < 0 {
		c.errorf("passive.spool_max_bytes", "%d: must be positive", p.SpoolMaxBytes)
	}
	if p.Icinga != nil {
		if p.Icinga.URL == "" {
			c.errorf("passive.icinga.url", "required")
		} else if !strings.HasPrefix(p.Icinga.URL, "https://") {
			c.errorf("passive.icinga.url", "%q: the Icinga 2 API speaks HTTPS only", p.Icinga.URL)
		}
		if p.Icinga.User == "" {
			c.errorf("passive.icinga.user", "required")
		}
		c.token("passive.icinga.password_file", p.Icinga.PasswordFile)
		c.caFile("passive.icinga.ca_file", p.Icinga.CAFile)
	}
}

// defaultStateDir is ~/.local/state/name, for a data_dir left unset.
func defaultStateDir(c *checker, field, name string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		c.errorf(field, "not set, and there is no home directory for the default: %v", err)
		return ""
	}
	return filepath.Join(home, ".local", "state", name)
}

func (d *Deploy) validate(c *checker) {
	if d.Root == "" {
		c.errorf("deploy.root", "required: the directory releases are unpacked in")
	} else if !filepath.IsAbs(d.Root) {
		c.errorf("deploy.root", "%q: give an absolute path", d.Root)
	}
	if d.Keep == 0 {
		d.Keep = DefaultDeployKeep
	} else if d.Keep < 2 {
		c.errorf("deploy.keep", "%d: must be at least 2, as the current and previous releases are always kept", d.Keep)
	}
	for _, h := range []struct {
		field string
		argv  []string
	}{{"pre_activate", d.PreActivate}, {"post_activate", d.PostActivate}} {
		if len(h.argv) > 0 && h.argv[0] == "" {
			c.errorf("deploy."+h.field+".0", "the command is empty")
		}
	}
	if d.HookTimeout == 0 {
		d.HookTimeout = Duration(DefaultHookTimeout)
	} else if d.HookTimeout < 0 {
		c.errorf("deploy.hook_timeout", "%s: must be positive", d.HookTimeout)
	}
	if d.TokenFile == "" {
		c.errorf("deploy.token_file", "required: the file holding the coordinator's deploy token")
	}
	c.token("deploy.token_file", d.TokenFile)
	c.caFile("deploy.artifact_ca_file", d.ArtifactCAFile)
	if d.MaxArtifactBytes == 0 {
		d.MaxArtifactBytes = DefaultMaxArtifactBytes
	} else if d.MaxArtifactBytes < 0 {
		c.errorf("deploy.max_artifact_bytes", "%d: must be positive", d.MaxArtifactBytes)
	}
	if d.MaxUnpackedBytes == 0 {
		d.MaxUnpackedBytes = DefaultMaxUnpackedBytes
	} else if d.MaxUnpackedBytes < 0 {
		c.errorf("deploy.max_unpacked_bytes", "%d: must be positive", d.MaxUnpackedBytes)
	}
	if d.MaxEntries == 0 {
		d.MaxEntries = DefaultMaxEntries
	} else if d.MaxEntries < 0 {
		c.errorf("deploy.max_entries", "%d: must be positive", d.MaxEntries)
	}
	if d.MinFreeBytes == 0 {
		d.MinFreeBytes = DefaultMinFreeBytes
	} else if d.MinFreeBytes < 0 {
		c.errorf("deploy.min_free_bytes", "%d: must be positive", d.MinFreeBytes)
	}
}
