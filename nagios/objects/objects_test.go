package objects_test

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/fixtures/real"
	"github.com/immune-ops/immune/nagios/objects"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func loadFleet(t *testing.T, path string) *conf.Fleet {
	t.Helper()
	f, err := conf.LoadFleetSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func generate(t *testing.T, f *conf.Fleet, o objects.Options) map[string][]byte {
	t.Helper()
	files, err := objects.Generate(f, o)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGolden compares both formats with testdata/golden, and checks that
// the same fleet gives the same bytes however often it is written.
func TestGolden(t *testing.T) {
	for _, format := range []string{objects.FormatNagios, objects.FormatIcinga2} {
		t.Run(format, func(t *testing.T) {
			files := generate(t, loadFleet(t, "testdata/fleet.yaml"), objects.Options{Format: format})
			again := generate(t, loadFleet(t, "testdata/fleet.yaml"), objects.Options{Format: format})
			if !maps.EqualFunc(files, again, bytes.Equal) {
				t.Error("two runs on the same fleet differ")
			}
			dir := filepath.Join("testdata", "golden", format)
			if *update {
				os.RemoveAll(dir)
				if err := objects.Write(dir, files); err != nil {
					t.Fatal(err)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, names) {
				t.Fatalf("files %v, golden %v", got, names)
			}
			for name, data := range files {
				want, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, want) {
					t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, dir, data)
				}
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	f := loadFleet(t, "testdata/fleet.yaml")
	tests := []struct {
		o    objects.Options
		want string
	}{
		{objects.Options{Format: "nagios3"}, `format "nagios3"`},
		{objects.Options{IntervalLength: 1500 * time.Millisecond}, "whole seconds"},
	}
	for _, tt := range tests {
		if _, err := objects.Generate(f, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.o, err, tt.want)
		}
	}
}

func TestIntervalLength(t *testing.T) {
	f := loadFleet(t, "testdata/fleet.yaml")
	tests := []struct {
		length time.Duration
		want   string // payments_api's check_interval of 30s
	}{
		{time.Minute, "0.5"},
		{time.Second, "30"},
		{15 * time.Second, "2"},
	}
	for _, tt := range tests {
		files := generate(t, f, objects.Options{IntervalLength: tt.length})
		_, svc, _ := strings.Cut(string(files["immune-services.cfg"]), "payments_api\n")
		if !regexp.MustCompile(`\n\tcheck_interval +` + regexp.QuoteMeta(tt.want) + `\n`).MatchString(svc) {
			t.Errorf("interval_length %s: payments_api lacks %q:\n%s", tt.length, tt.want, svc)
		}
	}
}

// TestExampleFleet keeps conf/fleet.yaml's example generating.
func TestExampleFleet(t *testing.T) {
	f := loadFleet(t, "../../conf/fleet.yaml")
	for _, format := range []string{objects.FormatNagios, objects.FormatIcinga2} {
		if len(generate(t, f, objects.Options{Format: format})) == 0 {
			t.Errorf("%s: no files", format)
		}
	}
}

// realDaemon returns the path of a Debian program the test runs. Without
// it the test is skipped, unless IMMUNE_REQUIRE_REAL is set (make test sets it).
func realDaemon(t *testing.T, path, pkg string) string {
	t.Helper()
	return real.Program(t, path, pkg)
}

// runAs are the user and group a Nagios or Icinga run by the test runs as:
// whoever runs the test.
func runAs(t *testing.T) (string, string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Username, g.Name
}

// nagiosMain writes a nagios.cfg in dir that reads the objects in objDir,
// with extra settings after the paths.
func nagiosMain(t *testing.T, dir, objDir, extra string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "checkresults"), 0o700); err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	for _, s := range [][2]string{
		{"log_file", "nagios.log"}, {"object_cache_file", "objects.cache"}, {"precached_object_file", "objects.precache"},
		{"resource_file", "resource.cfg"}, {"status_file", "status.dat"}, {"state_retention_file", "retention.dat"},
		{"command_file", "nagios.cmd"}, {"lock_file", "nagios.lock"}, {"temp_file", "nagios.tmp"}, {"temp_path", "."},
		{"check_result_path", "checkresults"}, {"query_socket", "nagios.qh"},
	} {
		fmt.Fprintf(&cfg, "%s=%s\n", s[0], filepath.Join(dir, s[1]))
	}
	usr, grp := runAs(t)
	fmt.Fprintf(&cfg, "cfg_dir=%s\nnagios_user=%s\nnagios_group=%s\nuse_syslog=0\nretain_state_information=0\nillegal_macro_output_chars=`~$&|'\"<>\n%s", objDir, usr, grp, extra)
	if err := os.WriteFile(filepath.Join(dir, "resource.cfg"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nagios.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNagiosVerifies runs Debian's nagios4 -v on the generated objects of
// the golden fleet and of conf/fleet.yaml's example.
func TestNagiosVerifies(t *testing.T) {
	bin := realDaemon(t, "/usr/sbin/nagios4", "nagios4-core")
	for _, fleet := range []string{"testdata/fleet.yaml", "../../conf/fleet.yaml"} {
		t.Run(fleet, func(t *testing.T) {
			dir := t.TempDir()
			objDir := filepath.Join(dir, "immune")
			if err := objects.Write(objDir, generate(t, loadFleet(t, fleet), objects.Options{})); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "-v", nagiosMain(t, dir, objDir, "")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Total Errors:   0") {
				t.Fatalf("nagios4 -v: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Total Warnings: 0") {
				t.Errorf("nagios4 -v warns:\n%s", out)
			}
		})
	}
}

// TestIcingaValidates runs Debian's icinga2 daemon -C on the generated DSL.
func TestIcingaValidates(t *testing.T) {
	bin := realDaemon(t, "/usr/sbin/icinga2", "icinga2-bin")
	for _, fleet := range []string{"testdata/fleet.yaml", "../../conf/fleet.yaml"} {
		t.Run(fleet, func(t *testing.T) {
			dir := t.TempDir()
			objDir := filepath.Join(dir, "immune")
			if err := objects.Write(objDir, generate(t, loadFleet(t, fleet), objects.Options{Format: objects.FormatIcinga2})); err != nil {
				t.Fatal(err)
			}
			main := filepath.Join(dir, "icinga2.conf")
			if err := os.WriteFile(main, []byte(fmt.Sprintf("include_recursive %q\n", objDir)), 0o600); err != nil {
				t.Fatal(err)
			}
			usr, grp := runAs(t)
			args := []string{"daemon", "-C", "-c", main, "-DRunAsUser=" + usr, "-DRunAsGroup=" + grp}
			for _, d := range []string{"DataDir", "LogDir", "CacheDir", "SpoolDir", "InitRunDir"} {
				path := filepath.Join(dir, strings.ToLower(d))
				if err := os.MkdirAll(path, 0o700); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-D"+d+"="+path)
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Finished validating the configuration") {
				t.Fatalf("icinga2 daemon -C: %v\n%s", err, out)
			}
			if fleet == "testdata/fleet.yaml" {
				for _, want := range []string{"3 Hosts.", "2 HostGroups.", "6 Services.", "4 Users.", "2 UserGroups.",
					"3 CheckCommands.", "4 NotificationCommands.", "26 Notifications."} {
					if !strings.Contains(string(out), "Instantiated "+want) {
						t.Errorf("icinga2 -C did not instantiate %s\n%s", want, out)
					}
				}
			}
			if strings.Contains(string(out), "warning/") {
				t.Errorf("icinga2 -C warns:\n%s", out)
			}
		})
	}
}
