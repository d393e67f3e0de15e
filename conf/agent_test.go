package conf

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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
		d.MaxArtifactBytes != DefaultMaxArtifactBytes || len(d.PreActivate) == 0 || len(d.PostActivate) == 0 ||
		d.MaxUnpackedBytes != DefaultMaxUnpackedBytes || d.MaxEntries != DefaultMaxEntries || d.MinFreeBytes != DefaultMinFreeBytes {
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
		_, err := builtins.Load(file)
		return err
	})
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

func TestClosestKey(t *testing.T) {
	known := []string{"allowed_hosts", "listen", "max_connections", "timeout"}
	for _, tc := range []struct{ key, want string }{
		{"listn", "listen"},
		{"alowed_hosts", "allowed_hosts"},
		{"allowed-hosts", "allowed_hosts"},
		{"timeuot", "timeout"},
		{"colour", ""},
		{"max_conns", ""},
	} {
		if got := closest(tc.key, known); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestMisindented(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
	}{
		{"fine", "a:\n  b: 1\n  c:\n    - d: 1\n      e: 2\n    - f\ng: 1\n", 0},
		{"list at key's column", "a:\n- b: 1\n  c: 2\nd: 3\n", 0},
		{"block scalar", "a: |\n  free\n     text\nb: 1\n", 0},
		{"dedent to nothing", "a:\n  b: 1\n c: 2\n", 3},
		{"item key off", "a:\n  - b: 1\n     c: 2\n", 0},
		{"item key back", "a:\n  - b: 1\n   c: 2\n", 3},
	} {
		line, _, _, ok := misindented([]byte(tc.text))
		if !ok {
			line = 0
		}
		if line != tc.line {
			t.Errorf("%s: line %d, want %d", tc.name, line, tc.line)
		}
	}
}
