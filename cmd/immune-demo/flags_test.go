package main

import (
	"testing"

	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/demo"
)

// TestHostBounds: bin/immune documents --hosts without linking package
// demo; its bounds must be demo's own.
func TestHostBounds(t *testing.T) {
	if cmdflags.DemoMinHosts != demo.MinHosts || cmdflags.DemoMaxHosts != demo.MaxHosts {
		t.Errorf("cmdflags says %d to %d hosts, demo %d to %d", cmdflags.DemoMinHosts, cmdflags.DemoMaxHosts, demo.MinHosts, demo.MaxHosts)
	}
}
