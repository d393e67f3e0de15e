package conf

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/testpki"
)

func TestExampleFleetConfig(t *testing.T) {
	// The example names the packages' token files, which this host need
	// not have: its settings are checked, not the files it names.
	data, err := os.ReadFile("fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFleet("fleet.yaml", data)
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
	if reg.Fall == nil || !reg.Fall.Percent || reg.Fall.Value != 25 || reg.Missing != MissingWait || reg.Kind != KindCount {
		t.Errorf("registrations limit: %+v", reg)
	}
	if !f.Limits[4].DryRun || f.Limits[0].Kind != KindAuto {
		t.Errorf("limits: %+v", f.Limits)
	}
	if j := f.Judge; j.Confidence != 99 || j.Inconclusive != InconclusivePass || j.Holdback.Of(3) != 1 || f.Windows.Warmup.D() != 30*time.Second || f.Windows.Watch.D() != 5*time.Minute {
		t.Errorf("judge %+v, windows %+v", j, f.Windows)
	}
}

// TestBadFleetConfigs: every mistake in a fleet config is reported at its
// place; the expected messages are in testdata/fleet/*.golden.
func TestBadFleetConfigs(t *testing.T) {
	testGoldenErrors(t, "testdata/fleet/*.yaml", func(file string) error {
		_, err := LoadFleet(file)
		return err
	})
}

func TestFleetAgentTLS(t *testing.T) {
	dir := t.TempDir()
	ca, notPEM := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.txt")
	os.WriteFile(ca, testpki.NewCA(t, testpki.Options{CommonName: "agents' CA"}).CertPEM, 0o600)
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	const head = "listen: 127.0.0.1:1\nagent_token_file: t\nallow_plain_http: true\n"
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
			want: "f.yaml:4:1: agent_tls.ca_file: required: the PEM file of the CA that signs the agents' certificates"},
		{name: "both", text: head + "agent_tls:\n  ca_file: " + ca + "\n  insecure: true\nhosts: [{name: a, address: 'h:1', host_type: www}]\n",
			want: "f.yaml:6:3: agent_tls.insecure: insecure skips the verification ca_file is for: give one of them"},
		{name: "missing file", text: head + "hosts:\n  - name: a\n    address: 'h:1'\n    host_type: www\n    agent_tls:\n      ca_file: " + filepath.Join(dir, "none") + "\n",
			want: "f.yaml:9:7: hosts[0].agent_tls.ca_file: read agents' CA: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{name: "not PEM", text: head + "agent_tls:\n  ca_file: " + notPEM + "\nhosts: [{name: a, address: 'h:1', host_type: www}]\n",
			want: "f.yaml:5:3: agent_tls.ca_file: " + notPEM + " holds no PEM certificate"},
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
