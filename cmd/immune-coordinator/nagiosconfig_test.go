package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/nagios/objects"
)

func TestNagiosConfigCommand(t *testing.T) {
	good, err := os.ReadFile("../../nagios/objects/testdata/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), "contacts: [carol]", "contacts: [mallory]", 1)
	tests := []struct {
		name, fleet string
		args        []string
		code        int
		files       int
		stderr      string
	}{
		{"nagios", string(good), nil, 0, 5, ""},
		{"icinga2", string(good), []string{"--format", "icinga2"}, 0, 5, ""},
		{"unknown contact writes nothing", bad, nil, 1, -1, `fleet.yaml:46:16: escalations[1].contacts[0]: no contact is named "mallory"`},
		{"unknown format writes nothing", string(good), []string{"--format", "nagios3"}, 2, -1, `invalid value "nagios3" for flag -format: want nagios or icinga2`},
		{"no out", string(good), []string{"--out", ""}, 2, -1, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fleet := filepath.Join(dir, "fleet.yaml")
			if err := os.WriteFile(fleet, []byte(tt.fleet), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "objects")
			args := append([]string{"nagios-config", "--fleet", fleet, "--out", out}, tt.args...)
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
			entries, err := os.ReadDir(out)
			switch {
			case tt.files < 0 && !os.IsNotExist(err):
				t.Errorf("%s written for an invalid run: %v", out, entries)
			case tt.files >= 0 && len(entries) != tt.files:
				t.Errorf("%d files written, want %d: %v", len(entries), tt.files, err)
			}
		})
	}
}

// TestNagiosConfigDefaults: bin/immune documents nagios-config's defaults
// without linking package objects; they must be objects' own.
func TestNagiosConfigDefaults(t *testing.T) {
	if cmdflags.NagiosFormat != objects.FormatNagios || cmdflags.Icinga2Format != objects.FormatIcinga2 ||
		cmdflags.NagiosPluginDir != objects.DefaultPluginDir || cmdflags.NagiosIntervalLength != objects.DefaultIntervalLength {
		t.Errorf("cmdflags' nagios-config defaults differ from package objects'")
	}
}
