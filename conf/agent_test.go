package conf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestExampleAgentConfig: the documented example is valid, and its defaults land.
func TestExampleAgentConfig(t *testing.T) {
	a, err := LoadAgent("agent.yaml")
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
	a, err := ParseAgent("agent.yaml", []byte(text+"\n"+strings.Join(section, "\n")+"\n"))
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
	testGoldenErrors(t, "testdata/bad/*.yaml", func(file string) error {
		_, err := LoadAgent(file)
		return err
	})
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

// selfSigned is a self-signed certificate in PEM.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agents' CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
