package conf

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/testpki"
	"github.com/immune-ops/immune/nagios"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// builtins stands in for checks.ArgParser, which conf does not import:
// the checks the example and testdata name, each refusing "10:5" as
// check_load does. cmd/immune-agent's test runs the same files through the
// real checks.
var builtins = AgentLoader{Builtin: func(name string) (func([]string) error, bool) {
	switch name {
	case "check_load", "check_disk", "check_procs", "check_php_fatals", "check_log_growth":
		return func(args []string) error {
			if i := slices.Index(args, "10:5"); i > 0 {
				return fmt.Errorf("%s: %s %q: warning threshold must be float or float triplet", name, args[i-1], args[i])
			}
			return nil
		}, true
	}
	return nil, false
}}

// TestExampleAgentConfig: the documented example is valid, and its defaults land.
func TestExampleAgentConfig(t *testing.T) {
	a, err := builtins.Load("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.HostType != "www" || a.NRPE.Listen != "127.0.0.1:5666" || a.HTTP.Listen == "" || a.DataDir == "" {
		t.Errorf("example config: %+v", a)
	}
	names := map[string]Check{}
	for _, c := range a.Checks {
		names[c.Name] = c
	}
	for _, want := range []string{"check_load", "check_disk", "check_procs", "check_php_fatals"} {
		if _, ok := names[want]; !ok {
			t.Errorf("example config has no NRPE command %s", want)
		}
	}
	disk := names["check_disk"]
	if disk.Interval.D() != 5*time.Minute || disk.RetryInterval.D() != time.Minute || disk.MaxCheckAttempts != DefaultMaxCheckAttempts ||
		disk.Timeout.D() != DefaultTimeout || disk.TimeoutState.S() != nagios.Critical {
		t.Errorf("check_disk defaults: %+v", disk)
	}
	if procs := names["check_procs"]; procs.RetryInterval.D() != 15*time.Second {
		t.Errorf("retry interval defaults to a quarter of the interval: %v", procs.RetryInterval)
	}
}

// TestExampleDeployConfig: the commented-out deploy section of the example,
// once uncommented, is valid as written, so the documentation cannot rot.
func TestExampleDeployConfig(t *testing.T) {
	data, err := os.ReadFile("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	at := strings.Index(text, "\n# deploy:\n")
	if at < 0 {
		t.Fatal("agent.yaml documents no deploy section")
	}
	var section []string
	for _, line := range strings.Split(text[at+1:], "\n") {
		if line != "# deploy:" && !strings.HasPrefix(line, "#   ") {
			break
		}
		section = append(section, strings.TrimPrefix(line, "# "))
	}
	a, err := builtins.Parse("agent.yaml", []byte(text+"\n"+strings.Join(section, "\n")+"\n"))
	if err != nil {
		t.Fatalf("the example's deploy section, uncommented:\n%s\n%v", strings.Join(section, "\n"), err)
	}
	d := a.Deploy
	if d == nil || d.Root != "/srv/www" || d.Keep != 5 || d.HookTimeout.D() != time.Minute || d.TokenFile == "" ||
		d.MaxArtifactBytes != DefaultMaxArtifactBytes || len(d.PreActivate) == 0 || len(d.PostActivate) == 0 {
		t.Errorf("deploy section: %+v", d)
	}
	if b, err := ParseAgent("deploy.yaml", []byte("host_type: www\nhttp: {listen: \"127.0.0.1:0\"}\ndeploy: {root: /srv/www, token_file: /t}\n")); err != nil {
		t.Error(err)
	} else if d := b.Deploy; d.Keep != DefaultDeployKeep || d.HookTimeout.D() != DefaultHookTimeout || d.MaxArtifactBytes != DefaultMaxArtifactBytes {
		t.Errorf("deploy defaults: %+v", d)
	}
}

// TestBadAgentConfigs: every mistake is reported with file, line and field;
// the expected messages are in testdata/bad/*.golden.
func TestBadAgentConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs in testdata/bad")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := builtins.Load(file)
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(line, file+":") {
					t.Errorf("error %q does not start with the file's name", line)
				}
			}
		})
	}
}

// TestZeroAgentLoader: without a Builtin, names and args of built-in checks
// are left to whoever makes the checks.
func TestZeroAgentLoader(t *testing.T) {
	if _, err := LoadAgent("testdata/bad/bad_args.yaml"); err != nil {
		t.Error(err)
	}
}

func TestExpandArgs(t *testing.T) {
	c := Check{Args: []string{"-w", "$ARG1$", "-c", "$ARG2$", "--x=$ARG1$,$ARG3$"}}
	if n := c.ArgCount(); n != 3 {
		t.Errorf("ArgCount = %d", n)
	}
	got := strings.Join(c.ExpandArgs([]string{"5", "10"}), " ")
	if got != "-w 5 -c 10 --x=5," {
		t.Errorf("ExpandArgs = %q", got)
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1": "127.0.0.1/32", "::1": "::1/128", "10.1.2.3/8": "10.0.0.0/8", "fd00::/8": "fd00::/8", "::ffff:10.0.0.1": "10.0.0.1/32"} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "host", "10.0.0.0/33", "1.2.3"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q): no error", bad)
		}
	}
}

func TestExampleFleetConfig(t *testing.T) {
	f, err := LoadFleet("fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Hosts) != 6 || len(f.Phases) != 2 || f.Phases[0] != 5 || f.BreachSamples != 3 || len(f.Limits) != 6 {
		t.Errorf("example fleet: %+v", f)
	}
	if f.Windows.MaxWait.D() != 5*time.Minute || f.Revert.Timeout.D() != 2*time.Minute {
		t.Errorf("windows %+v, revert %+v", f.Windows, f.Revert)
	}
	reg := f.Limits[5]
	if reg.Aggregate == nil || reg.Aggregate.Fall == nil || !reg.Aggregate.Fall.Percent || reg.Aggregate.Fall.Value != 20 || reg.Missing != MissingWait {
		t.Errorf("registrations limit: %+v", reg)
	}
}

func TestBadFleetConfigs(t *testing.T) {
	tests := []struct{ text, want string }{
		{"listen: x\nhosts: []\n", `f.yaml:1:1: listen: "x" is not host:port
f.yaml:2:1: hosts: at least one host is required`},
		{"listen: 127.0.0.1:1\nagent_token_file: t\nhosts: [{name: a, address: 'h:1', host_type: www}]\nphases: [50%, 40%]\n",
			"f.yaml:4:15: phases[1]: 40% is not more than the phase before\nf.yaml:4:15: phases[1]: the last phase must be 100%, not 40%"},
		{"listen: 127.0.0.1:1\nagent_token_file: t\nhosts: [{name: a, address: 'h:1', host_type: www}]\nlimits:\n  - gauge: load\n    host_types: [db]\n    rise: lots\n",
			`f.yaml:7: limits[0].rise: "lots" is not a change: want an amount (10) or a percent (50%), not negative`},
		{"listen: 127.0.0.1:1\nagent_token_file: t\nhosts: [{name: a, address: 'h:1', host_type: www}]\nlimits:\n  - gauge: load\n    host_types: [db]\n    missing: maybe\n",
			"f.yaml:5:5: limits[0]: sets no bound: give max, min, rise, fall or aggregate\nf.yaml:6:18: limits[0].host_types[0]: no host has the type \"db\"\nf.yaml:7:5: limits[0].missing: \"maybe\": want fail, ignore or wait"},
	}
	for _, tt := range tests {
		_, err := ParseFleet("f.yaml", []byte(tt.text))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got %v\nwant %s", tt.text, err, tt.want)
		}
	}
}

func TestFleetAgentTLS(t *testing.T) {
	dir := t.TempDir()
	ca, notPEM := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.txt")
	os.WriteFile(ca, testpki.NewCA(t, testpki.Options{CommonName: "agents' CA"}).CertPEM, 0o600)
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	const head = "listen: 127.0.0.1:1\nagent_token_file: t\n"
	tests := []struct {
		name, text string
		fleet      AgentTLS // the fleet's, when want is ""
		host       *AgentTLS
		want       string
	}{
		{name: "ca_file", text: head + "agent_tls: {ca_file: " + ca + "}\nhosts: [{name: a, address: 'h:1', host_type: www}]\n",
			fleet: AgentTLS{CAFile: ca}},
		{name: "host override", text: head + "hosts: [{name: a, address: 'h:1', host_type: www, agent_tls: {insecure: true}}]\n",
			host: &AgentTLS{Insecure: true}},
		{name: "neither", text: head + "agent_tls: {}\nhosts: [{name: a, address: 'h:1', host_type: www}]\n",
			want: "f.yaml:3:1: agent_tls.ca_file: required: the PEM file of the CA that signs the agents' certificates"},
		{name: "both", text: head + "agent_tls:\n  ca_file: " + ca + "\n  insecure: true\nhosts: [{name: a, address: 'h:1', host_type: www}]\n",
			want: "f.yaml:5:3: agent_tls.insecure: insecure skips the verification ca_file is for: give one of them"},
		{name: "missing file", text: head + "hosts:\n  - name: a\n    address: 'h:1'\n    host_type: www\n    agent_tls:\n      ca_file: " + filepath.Join(dir, "none") + "\n",
			want: "f.yaml:8:7: hosts[0].agent_tls.ca_file: read agents' CA: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{name: "not PEM", text: head + "agent_tls:\n  ca_file: " + notPEM + "\nhosts: [{name: a, address: 'h:1', host_type: www}]\n",
			want: "f.yaml:4:3: agent_tls.ca_file: " + notPEM + " holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFleet("f.yaml", []byte(tt.text))
			if tt.want != "" {
				if err == nil || err.Error() != tt.want {
					t.Fatalf("got %v\nwant %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := f.TLS(f.Hosts[0])
			switch {
			case tt.host != nil && (got == nil || *got != *tt.host):
				t.Errorf("host's TLS %+v, want %+v", got, tt.host)
			case tt.host == nil && (got == nil || *got != tt.fleet):
				t.Errorf("host's TLS %+v, want the fleet's %+v", got, tt.fleet)
			}
		})
	}
}
