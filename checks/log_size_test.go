package checks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/nagios"
)

func TestParseLogSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"1048576B", 1 << 20, false},
		{"512k", 512 << 10, false},
		{"512K", 512 << 10, false},
		{"512KB", 512 << 10, false},
		{"100M", 100 << 20, false},
		{"100MiB", 100 << 20, false},
		{"1G", 1 << 30, false},
		{"1.5G", 3 << 29, false},
		{"2t", 2 << 40, false},
		{"", 0, true},
		{"M", 0, true},
		{"-1M", 0, true},
		{"10X", 0, true},
		{"1.2.3M", 0, true},
		{"100 M", 100 << 20, false},
		{"99999999999T", 0, true},
	}
	for _, tt := range tests {
		got, err := parseLogSize(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("parseLogSize(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatLogSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1023, "1023B"},
		{1024, "1.0K"},
		{1536, "1.5K"},
		{150 << 20, "150.0M"},
		{2254857830, "2.1G"},
		{5 << 40, "5.0T"},
		{3 << 50, "3072.0T"},
	}
	for _, tt := range tests {
		if got := formatLogSize(tt.in); got != tt.want {
			t.Errorf("formatLogSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// sparseFile makes a file of size bytes that takes no room on disk.
func sparseFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	logtailWrite(t, path, "")
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// apacheLogs makes a log directory as logrotate leaves one.
func apacheLogs(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "apache2")
	for name, size := range map[string]int64{
		"access.log":            2 << 30,
		"error.log":             150 << 20,
		"other_vhosts.log":      120 << 20,
		"access.log.1":          90 << 20,
		"error.log.2.gz":        3 << 30,
		"ssl_access.log":        1024,
		"archive/access.log.30": 5 << 30,
		"archive/old/x.log":     200 << 20,
	} {
		sparseFile(t, filepath.Join(dir, name), size)
	}
	// A link to a big file is the file's business, not the link's.
	if err := os.Symlink(filepath.Join(dir, "access.log"), filepath.Join(dir, "current.log")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLogSize(t *testing.T) {
	dir := apacheLogs(t)
	empty := t.TempDir()
	link := filepath.Join(t.TempDir(), "apache-link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string // %s is dir
	}{
		{"all under", []string{"-d", dir, "-w", "4G", "-c", "6G"}, nagios.OK,
			"LOG SIZE OK - All files in %s are of expected size|largest=3221225472B;4294967296;6442450944;0\n"},
		{"glob", []string{"-d", dir, "--glob", "*.log", "-w", "100M", "-c", "1G"}, nagios.Critical,
			"LOG SIZE CRITICAL - Files in %s too large: access.log 2.0G, error.log 150.0M, other_vhosts.log 120.0M|largest=2147483648B;104857600;1073741824;0\n"},
		{"warning only", []string{"-d", dir, "--glob", "*.log", "-w", "140M"}, nagios.Warning,
			"LOG SIZE WARNING - Files in %s too large: access.log 2.0G, error.log 150.0M|largest=2147483648B;146800640;;0\n"},
		{"critical only, exact limit is not over", []string{"-d", dir, "--glob", "error.log", "-c", "150M"}, nagios.OK,
			"LOG SIZE OK - All files in %s are of expected size|largest=157286400B;;157286400;0\n"},
		{"many: the rest in long output", []string{"-d", dir, "-w", "100M", "-c", "1G"}, nagios.Critical,
			"LOG SIZE CRITICAL - Files in %s too large: error.log.2.gz 3.0G, access.log 2.0G, error.log 150.0M and 1 more|largest=3221225472B;104857600;1073741824;0\n" +
				"error.log.2.gz 3.0G (3221225472 bytes) is over the critical limit 1G\n" +
				"access.log 2.0G (2147483648 bytes) is over the critical limit 1G\n" +
				"error.log 150.0M (157286400 bytes) is over the warning limit 100M\n" +
				"other_vhosts.log 120.0M (125829120 bytes) is over the warning limit 100M\n"},
		{"recursive", []string{"-d", dir, "-r", "--glob", "*.log*", "-w", "2G", "-c", "4G"}, nagios.Critical,
			"LOG SIZE CRITICAL - Files in %s too large: archive/access.log.30 5.0G, error.log.2.gz 3.0G|largest=5368709120B;2147483648;4294967296;0\n"},
		{"recursive, long options", []string{"--directory=" + dir, "--recursive", "--glob=x.log", "--warning=100M", "--critical=1G"}, nagios.Warning,
			"LOG SIZE WARNING - Files in %s too large: archive/old/x.log 200.0M|largest=209715200B;104857600;1073741824;0\n"},
		{"nothing matches", []string{"-d", dir, "--glob", "*.txt", "-w", "1k"}, nagios.OK,
			"LOG SIZE OK - All files in %s are of expected size|largest=0B;1024;;0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newLogSize(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Run(context.Background())
			if want := strings.ReplaceAll(tt.want, "%s", dir); r.State != tt.state || r.String() != want {
				t.Errorf("got  %s %q\nwant %s %q", r.State, r.String(), tt.state, want)
			}
		})
	}

	others := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"empty directory", []string{"-d", empty, "-w", "1k", "-c", "2k"}, nagios.OK,
			"LOG SIZE OK - All files in " + empty + " are of expected size|largest=0B;1024;2048;0\n"},
		{"directory through a symlink", []string{"-d", link, "--glob", "access.log", "-c", "1G"}, nagios.Critical,
			"LOG SIZE CRITICAL - Files in " + link + " too large: access.log 2.0G|largest=2147483648B;;1073741824;0\n"},
		{"missing directory", []string{"-d", filepath.Join(empty, "nope"), "-w", "1k"}, nagios.Unknown,
			"LOG SIZE UNKNOWN - cannot read directory " + filepath.Join(empty, "nope") + ": no such file or directory\n"},
		{"a file, not a directory", []string{"-d", filepath.Join(dir, "error.log"), "-w", "1k"}, nagios.Unknown,
			"LOG SIZE UNKNOWN - " + filepath.Join(dir, "error.log") + " is not a directory\n"},
	}
	for _, tt := range others {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newLogSize(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if r := c.Run(context.Background()); r.State != tt.state || r.String() != tt.want {
				t.Errorf("got  %s %q\nwant %s %q", r.State, r.String(), tt.state, tt.want)
			}
		})
	}
}

func TestLogSizeTimeout(t *testing.T) {
	dir := apacheLogs(t)
	c, err := newLogSize([]string{"-d", dir, "-w", "1k", "-t", "2:CRITICAL"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := c.Run(ctx); r.State != nagios.Critical || !strings.Contains(r.Output, "context canceled") {
		t.Errorf("got %s %q, want CRITICAL and the reason", r.State, r.Output)
	}
}

func TestLogSizePermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	dir := apacheLogs(t)
	locked := filepath.Join(dir, "archive")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	tests := []struct {
		args  []string
		state nagios.State
		want  string
	}{
		// A subdirectory it cannot read is reported, and does not hide the rest.
		{[]string{"-d", dir, "-r", "-w", "4G"}, nagios.Unknown,
			"LOG SIZE UNKNOWN - cannot read " + locked + ": permission denied|largest=3221225472B;4294967296;;0\n" +
				"cannot read " + locked + ": permission denied\n"},
		{[]string{"-d", dir, "-r", "-w", "2G"}, nagios.Warning,
			"LOG SIZE WARNING - Files in " + dir + " too large: error.log.2.gz 3.0G|largest=3221225472B;2147483648;;0\n" +
				"cannot read " + locked + ": permission denied\n"},
		{[]string{"-d", locked, "-w", "2G"}, nagios.Unknown,
			"LOG SIZE UNKNOWN - cannot read directory " + locked + ": permission denied\n"},
	}
	for _, tt := range tests {
		c, err := newLogSize(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		if r := c.Run(context.Background()); r.State != tt.state || r.String() != tt.want {
			t.Errorf("%v:\n got %s %q\nwant %s %q", tt.args, r.State, r.String(), tt.state, tt.want)
		}
	}
}

func TestLogSizeBadArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "-d/--directory"},
		{[]string{"-d", "/var/log"}, "-w or -c"},
		{[]string{"-d", "/var/log", "-w", "10X"}, `-w "10X"`},
		{[]string{"-d", "/var/log", "-c", "big"}, `-c "big"`},
		{[]string{"-d", "/var/log", "-w", "1M", "--glob", "[a-"}, `--glob "[a-"`},
		{[]string{"-d", "/var/log", "-w", "1M", "--bogus"}, "bogus"},
	}
	for _, tt := range tests {
		var out strings.Builder
		code := Main(context.Background(), "check_log_size", tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_log_size: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, want 3 and %q in\n%s", tt.args, code, tt.want, out.String())
		}
	}
}
