package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/fixtures/real"
)

// TestPackages builds the packages from freshly built binaries, unpacks the
// .debs as dpkg would, and has systemd check the units.
func TestPackages(t *testing.T) {
	dpkgDeb := real.Command(t, "dpkg-deb", "dpkg")
	analyze := real.Command(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, cmd := range []string{"immune", "immune-agent", "immune-coordinator"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "../"+cmd)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	out := filepath.Join(dir, "dist")
	written, err := build(options{bin: bin, src: "../..", out: out, version: "1.2.3", arch: "amd64", formats: []string{"deb", "rpm"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 6 {
		t.Fatalf("wrote %v, want 3 packages in 2 formats", written)
	}
	root := filepath.Join(dir, "root")
	for _, p := range written {
		if strings.HasSuffix(p, ".deb") {
			if out, err := exec.Command(dpkgDeb, "-x", p, root).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb -x %s: %v\n%s", p, err, out)
			}
		}
	}
	for path, mode := range map[string]os.FileMode{
		"usr/bin/immune": 0o755, "usr/bin/immune-agent": 0o755, "usr/bin/immune-coordinator": 0o755,
		"etc/immune/agent.yaml": 0o640, "etc/immune/fleet.yaml": 0o640,
		"lib/systemd/system/immune-agent.service": 0o644, "lib/systemd/system/immune-coordinator.service": 0o644,
		"usr/share/doc/immune-coordinator/fleet.yaml": 0o644,
		"usr/share/man/man1/immune.1.gz":              0o644, "usr/share/man/man1/immune-push.1.gz": 0o644, "usr/share/man/man1/immune-status.1.gz": 0o644,
		"usr/share/man/man8/immune-agent.8.gz": 0o644, "usr/share/man/man8/immune-coordinator.8.gz": 0o644,
		"usr/share/bash-completion/completions/immune": 0o644, "usr/share/zsh/vendor-completions/_immune": 0o644,
	} {
		st, err := os.Stat(filepath.Join(root, path))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("/%s: %v, mode %v; want %v", path, err, st, mode)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/share/man/man1/immune-demo.1.gz")); err == nil {
		t.Error("immune-demo(1) is packaged, the demo is not")
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/share/bash-completion/completions/immune")); err != nil || !strings.Contains(string(b), "complete -F _immune immune") {
		t.Errorf("bash completion: %v: %.80q", err, b)
	}
	if link, err := os.Readlink(filepath.Join(root, "usr/lib/immune/plugins/check_load")); err != nil || link != "/usr/bin/immune" {
		t.Errorf("check_load plugin link: %q %v", link, err)
	}
	// Upgrades keep the configs: dpkg leaves a changed conffile alone.
	for pkg, conf := range map[string]string{"immune-agent_1.2.3_amd64.deb": "/etc/immune/agent.yaml", "immune-coordinator_1.2.3_amd64.deb": "/etc/immune/fleet.yaml"} {
		got, err := exec.Command(dpkgDeb, "-I", filepath.Join(out, pkg), "conffiles").Output()
		if err != nil || strings.TrimSpace(string(got)) != conf {
			t.Errorf("%s conffiles: %q %v, want %s", pkg, got, err, conf)
		}
	}
	// systemd checks the units against the unpacked root, with the
	// host's targets for them to hang off.
	targets, _ := filepath.Glob("/lib/systemd/system/*.target")
	for _, target := range targets {
		if b, err := os.ReadFile(target); err == nil {
			os.WriteFile(filepath.Join(root, "lib/systemd/system", filepath.Base(target)), b, 0o644)
		}
	}
	// ExecReload runs the system's kill, which procps installs on every
	// Debian host, not the package.
	if b, err := os.ReadFile("/bin/kill"); err == nil {
		os.MkdirAll(filepath.Join(root, "bin"), 0o755)
		os.WriteFile(filepath.Join(root, "bin/kill"), b, 0o755)
	}
	verify := func(unit string) error {
		out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, "/lib/systemd/system/"+unit).CombinedOutput()
		if err != nil {
			return &verifyError{err, string(out)}
		}
		return nil
	}
	for _, unit := range []string{"immune-agent.service", "immune-coordinator.service"} {
		if err := verify(unit); err != nil {
			t.Errorf("systemd-analyze verify %s: %v", unit, err)
		}
	}
	// The check is not vacuous: a unit whose program is missing fails it.
	bad := "[Service]\nExecStart=/usr/bin/immune-nothing\n"
	os.WriteFile(filepath.Join(root, "lib/systemd/system/broken.service"), []byte(bad), 0o644)
	if err := verify("broken.service"); err == nil {
		t.Error("systemd-analyze accepted a unit without its program")
	}
}

type verifyError struct {
	err error
	out string
}

func (e *verifyError) Error() string { return e.err.Error() + ": " + e.out }
