package checks

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// phpNow is the instant the fixtures' times are relative to: their last
// fatal was logged 13 seconds before it.
var phpNow = time.Date(2026, time.November, 21, 22, 51, 30, 0, time.UTC)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// runPHPFatals runs check_php_fatals at now, reading zoneless times in local.
func runPHPFatals(t *testing.T, ctx context.Context, now time.Time, local *time.Location, args ...string) nagios.Result {
	t.Helper()
	c, err := newPHPFatals(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	pc := c.(*phpFatalsCheck)
	pc.now = func() time.Time { return now }
	pc.local = local
	return pc.Run(ctx)
}

// phpLine is one line as PHP logs it at t, in zone ("" for none: local).
func phpLine(t time.Time, zone *time.Location, msg string) string {
	if zone == nil {
		return fmt.Sprintf("[%s] %s\n", t.Format("02-Jan-2006 15:04:05"), msg)
	}
	return fmt.Sprintf("[%s %s] %s\n", t.In(zone).Format("02-Jan-2006 15:04:05"), zone, msg)
}

const (
	phpFatal = "PHP Fatal error:  Uncaught Error: Call to undefined function mb_strlen() in /var/www/x.php:12"
	phpTrace = "Stack trace:\n#0 {main}\n  thrown in /var/www/x.php on line 12\n"
	phpWarn  = "PHP Warning:  Undefined array key \"id\" in /var/www/app/src/Api.php on line 40"
)

func TestPHPClockParse(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	tests := []struct {
		line string
		want time.Time
		ok   bool
	}{
		{"[21-Nov-2026 22:51:17 UTC] PHP Fatal error:  x", time.Date(2026, 11, 21, 22, 51, 17, 0, time.UTC), true},
		{"[21-Nov-2026 23:51:17 Europe/Berlin] PHP Fatal error:  x", time.Date(2026, 11, 21, 22, 51, 17, 0, time.UTC), true},
		{"[21-Jul-2026 23:51:17 Europe/Berlin] x", time.Date(2026, 7, 21, 21, 51, 17, 0, time.UTC), true},
		{"[21-Nov-2026 17:51:17 America/New_York] x", time.Date(2026, 11, 21, 22, 51, 17, 0, time.UTC), true},
		{"[21-Nov-2026 23:51:17 +01:00] x", time.Date(2026, 11, 21, 22, 51, 17, 0, time.UTC), true},
		{"[21-Nov-2026 17:51:17 -0500] x", time.Date(2026, 11, 21, 22, 51, 17, 0, time.UTC), true},
		// No zone: the server's local time, here Berlin.
		{"[21-Nov-2026 23:51:17] PHP Fatal error:  x", time.Date(2026, 11, 21, 22, 51, 17, 0, time.UTC), true},
		{"[01-Jan-2027 00:00:00 UTC]", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"[29-Feb-2028 12:00:00 UTC] leap day", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), true},
		{"", time.Time{}, false},
		{"Stack trace:", time.Time{}, false},
		{"#0 /var/www/x.php(3): foo()", time.Time{}, false},
		{"[21-Nov-2026 22:51:17", time.Time{}, false},
		{"[21-Nov-2026 22:51:17 UTC", time.Time{}, false},
		{"[21-nov-2026 22:51:17 UTC] lower-case month", time.Time{}, false},
		{"[29-Feb-2026 12:00:00 UTC] no leap day", time.Time{}, false},
		{"[00-Nov-2026 12:00:00 UTC] day 0", time.Time{}, false},
		{"[21-Nov-2026 24:00:00 UTC] hour 24", time.Time{}, false},
		{"[21-Nov-2026 23:60:00 UTC] minute 60", time.Time{}, false},
		{"[21-Nov-2026 23:00:60 UTC] second 60", time.Time{}, false},
		{"[21-Nov-2026 22:51:17 Mars/Olympus_Mons] unknown zone", time.Time{}, false},
		{"[21-Nov-2026 22:51:17 ../../etc/passwd] a path", time.Time{}, false},
		{"[21-Nov-2026 22:51:17 Local] Go's own name", time.Time{}, false},
		{"[21-Nov-2026 22:51:17 " + strings.Repeat("A", 100) + "] long zone", time.Time{}, false},
		{"[21-Nov-2026 22:51:17x] junk after the time", time.Time{}, false},
		{"[2x-Nov-2026 22:51:17 UTC]", time.Time{}, false},
		{"[21-Nov-2026 2:51:17 UTC] short hour", time.Time{}, false},
	}
	clock := phpClock{local: berlin}
	for _, tt := range tests {
		got, ok := clock.parse([]byte(tt.line))
		if ok != tt.ok || (ok && !got.Equal(tt.want)) {
			t.Errorf("parse(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPHPFatalsFixtures(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	fixture := func(name string) string { return filepath.Join("testdata", "php_fatals", name) }
	tests := []struct {
		name  string
		local *time.Location
		args  []string
		want  string
		state nagios.State
	}{
		{"app.log default window", time.UTC, []string{"-l", fixture("app.log")},
			// 22:21:30 (the window's first second), 22:35:40, 22:40:59 (logged out of
			// order), 22:51:17; not 22:21:29 nor the stack traces.
			"PHP FATALS OK - 4 PHP Fatal errors in 1800 second interval|fatals=4;;;0\n", nagios.OK},
		{"warning", time.UTC, []string{"-l", fixture("app.log"), "-w", "1", "-c", "10"},
			"PHP FATALS WARNING - 4 PHP Fatal errors in 1800 second interval|fatals=4;1;10;0\n", nagios.Warning},
		{"critical", time.UTC, []string{"--log=" + fixture("app.log"), "--warning=0", "--critical=3"},
			"PHP FATALS CRITICAL - 4 PHP Fatal errors in 1800 second interval|fatals=4;0;3;0\n", nagios.Critical},
		{"wider window", time.UTC, []string{"-l", fixture("app.log"), "-i", "3600", "-w", "1", "-c", "10"},
			"PHP FATALS WARNING - 6 PHP Fatal errors in 3600 second interval|fatals=6;1;10;0\n", nagios.Warning},
		{"whole day", time.UTC, []string{"-l", fixture("app.log"), "-i86400"},
			"PHP FATALS OK - 7 PHP Fatal errors in 86400 second interval|fatals=7;;;0\n", nagios.OK},
		{"one fatal keeps the plural", time.UTC, []string{"-l", fixture("app.log"), "-i", "60", "-w", "1", "-c", "10"},
			"PHP FATALS OK - 1 PHP Fatal errors in 60 second interval|fatals=1;1;10;0\n", nagios.OK},
		{"nothing in the window", time.UTC, []string{"-l", fixture("app.log"), "-i", "10", "-w", "1", "-c", "10"},
			"PHP FATALS OK - 0 PHP Fatal errors in 10 second interval|fatals=0;1;10;0\n", nagios.OK},
		{"other pattern", time.UTC, []string{"-l", fixture("app.log"), "--pattern", `PHP (Parse|Fatal) error`, "-i", "3600"},
			"PHP FATALS OK - 7 lines matching \"PHP (Parse/Fatal) error\" in 3600 second interval|fatals=7;;;0\n", nagios.OK},
		{"Berlin zone", time.UTC, []string{"-l", fixture("berlin.log"), "-w", "1", "-c", "10"},
			"PHP FATALS WARNING - 4 PHP Fatal errors in 1800 second interval|fatals=4;1;10;0\n", nagios.Warning},
		{"mixed zones and offsets", time.UTC, []string{"-l", fixture("mixed_zones.log"), "-w", "1", "-c", "10"},
			"PHP FATALS WARNING - 4 PHP Fatal errors in 1800 second interval|fatals=4;1;10;0\n", nagios.Warning},
		{"PHP-FPM local times", berlin, []string{"-l", fixture("fpm_local.log"), "-w", "1", "-c", "10"},
			"PHP FATALS WARNING - 4 PHP Fatal errors in 1800 second interval|fatals=4;1;10;0\n", nagios.Warning},
		{"local times read in the wrong zone", time.UTC, []string{"-l", fixture("fpm_local.log"), "-w", "1", "-c", "10"},
			// An hour ahead, every fatal after 21:51 looks recent.
			"PHP FATALS WARNING - 6 PHP Fatal errors in 1800 second interval|fatals=6;1;10;0\n", nagios.Warning},
		{"garbage lines are skipped", time.UTC, []string{"-l", fixture("garbage.log"), "-w", "1", "-c", "10"},
			"PHP FATALS OK - 1 PHP Fatal errors in 1800 second interval|fatals=1;1;10;0\n", nagios.OK},
		{"empty log", time.UTC, []string{"-l", fixture("empty.log"), "-w", "1", "-c", "10"},
			"PHP FATALS OK - 0 PHP Fatal errors in 1800 second interval|fatals=0;1;10;0\n", nagios.OK},
		{"missing log", time.UTC, []string{"-l", fixture("missing.log")},
			"PHP FATALS UNKNOWN - cannot read PHP log testdata/php_fatals/missing.log: no such file or directory\n", nagios.Unknown},
		{"directory for a log", time.UTC, []string{"-l", fixture("")},
			"PHP FATALS UNKNOWN - cannot read PHP log testdata/php_fatals: not a regular file\n", nagios.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runPHPFatals(t, context.Background(), phpNow, tt.local, tt.args...)
			if r.State != tt.state || r.String() != tt.want {
				t.Errorf("got  %s %q\nwant %s %q", r.State, r.String(), tt.state, tt.want)
			}
		})
	}
}

// TestPHPFatalsReadsOnlyTheWindow shows where reading stops: at the first
// line older than the window and its slack, even if older lines above it
// would match.
func TestPHPFatalsReadsOnlyTheWindow(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  int
	}{
		{"stops at the first line before the slack", []string{
			phpLine(phpNow.Add(-time.Minute), time.UTC, phpFatal), // misplaced: never reached
			phpLine(phpNow.Add(-30*time.Minute-phpLogSlack-time.Second), time.UTC, phpWarn),
			phpLine(phpNow.Add(-10*time.Minute), time.UTC, phpFatal),
		}, 1},
		{"reads on through lines out of order within the slack", []string{
			phpLine(phpNow.Add(-time.Minute), time.UTC, phpFatal),
			phpLine(phpNow.Add(-30*time.Minute-phpLogSlack+time.Second), time.UTC, phpWarn),
			phpLine(phpNow.Add(-10*time.Minute), time.UTC, phpFatal),
		}, 2},
		{"lines without a time do not stop it", []string{
			phpLine(phpNow.Add(-time.Minute), time.UTC, phpFatal),
			"PHP Fatal error: a line with no time is not counted\n",
			phpTrace,
			phpLine(phpNow.Add(-10*time.Minute), time.UTC, phpFatal), phpTrace,
		}, 2},
		{"lines from the future count", []string{
			phpLine(phpNow.Add(time.Minute), time.UTC, phpFatal),
		}, 1},
		{"an unfinished last line waits for its newline", []string{
			phpLine(phpNow.Add(-time.Minute), time.UTC, phpFatal),
			strings.TrimSuffix(phpLine(phpNow, time.UTC, phpFatal), "\n"),
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "php_errors.log")
			logtailWrite(t, path, strings.Join(tt.lines, ""))
			r := runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", path)
			want := fmt.Sprintf("PHP FATALS OK - %d PHP Fatal errors in 1800 second interval", tt.want)
			if r.Output != want {
				t.Errorf("got %q, want %q", r.Output, want)
			}
		})
	}
}

func TestPHPFatalsHugeLines(t *testing.T) {
	huge := strings.Repeat("A", 5<<20)
	path := filepath.Join(t.TempDir(), "php_errors.log")
	logtailWrite(t, path, phpLine(phpNow.Add(-20*time.Minute), time.UTC, phpFatal)+
		// A fatal whose message is a dumped 5 MB request body.
		phpLine(phpNow.Add(-5*time.Minute), time.UTC, "PHP Fatal error:  Uncaught JsonException: "+huge)+
		// A 5 MB line with no time at all.
		huge+"\n"+
		phpLine(phpNow.Add(-time.Minute), time.UTC, phpWarn+huge))
	r := runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", path, "-w", "1", "-c", "5")
	if want := "PHP FATALS WARNING - 2 PHP Fatal errors in 1800 second interval|fatals=2;1;5;0\n"; r.String() != want {
		t.Errorf("got %q, want %q", r.String(), want)
	}
}

// TestPHPFatalsStateFile runs the check again and again on one log that
// grows and is rotated, as an agent would.
func TestPHPFatalsStateFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "php_errors.log")
	state := filepath.Join(dir, "state", "php_fatals.json")
	at := func(d time.Duration) time.Time { return phpNow.Add(d) }
	fatalAt := func(d time.Duration) string { return phpLine(at(d), time.UTC, phpFatal) + phpTrace }
	steps := []struct {
		name   string
		change func(t *testing.T)
		now    time.Duration // after phpNow
		want   int
		long   string
	}{
		{"first run reads backwards", func(t *testing.T) {
			logtailWrite(t, log, phpLine(at(-3*time.Hour), time.UTC, phpWarn)+
				fatalAt(-2*time.Hour)+fatalAt(-20*time.Minute)+fatalAt(-time.Minute))
		}, 0, 2, ""},
		{"nothing new", func(*testing.T) {}, 0, 2, ""},
		{"lines before the offset are not read again", func(t *testing.T) {
			// Rewritten in place, same size, away from the bytes that
			// identify the log: a run that read them again would count
			// the fatal.
			data, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			old := phpLine(at(-2*time.Hour), time.UTC, phpFatal)
			now := phpLine(at(-3*time.Minute), time.UTC, phpFatal)
			logtailWrite(t, log, strings.Replace(string(data), old, now, 1))
		}, 0, 2, ""},
		{"appended lines are counted", func(t *testing.T) {
			logtailAppend(t, log, phpLine(at(30*time.Second), time.UTC, phpWarn)+fatalAt(time.Minute))
		}, 2 * time.Minute, 3, ""},
		{"the window moves on", func(*testing.T) {}, 15 * time.Minute, 2, ""},
		{"rotated by rename", func(t *testing.T) {
			if err := os.Rename(log, log+".1"); err != nil {
				t.Fatal(err)
			}
			logtailWrite(t, log, fatalAt(16*time.Minute))
		}, 17 * time.Minute, 3, "the log was rotated since the last run: read the new file from its start"},
		{"rotated by copytruncate", func(t *testing.T) {
			logtailWrite(t, log, "")
			logtailAppend(t, log, fatalAt(18*time.Minute))
		}, 19 * time.Minute, 4, "the log was rotated since the last run: read the new file from its start"},
		{"copytruncated and grown past the old offset", func(t *testing.T) {
			logtailWrite(t, log, strings.Repeat(phpLine(at(19*time.Minute), time.UTC, phpWarn), 20)+fatalAt(20*time.Minute))
		}, 20 * time.Minute, 5, "the log was rotated since the last run: read the new file from its start"},
		{"the old file's fatals leave the window", func(*testing.T) {}, 2 * time.Hour, 0, ""},
	}
	for _, st := range steps {
		st.change(t)
		r := runPHPFatals(t, context.Background(), at(st.now), time.UTC, "-l", log, "--state-file", state)
		want := fmt.Sprintf("PHP FATALS OK - %d PHP Fatal errors in 1800 second interval", st.want)
		if r.Output != want || r.Long != st.long {
			t.Fatalf("%s:\n got %q long %q\nwant %q long %q", st.name, r.Output, r.Long, want, st.long)
		}
	}
}

func TestPHPFatalsStateFileProblems(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "php_errors.log")
	logtailWrite(t, log, phpLine(phpNow.Add(-time.Minute), time.UTC, phpFatal))

	corrupt := filepath.Join(dir, "corrupt.json")
	logtailWrite(t, corrupt, "{\"log\": ")
	r := runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", log, "--state-file", corrupt)
	if r.State != nagios.OK || r.Output != "PHP FATALS OK - 1 PHP Fatal errors in 1800 second interval" ||
		!strings.Contains(r.Long, "corrupt state file") {
		t.Errorf("corrupt state file: %s %q %q", r.State, r.Output, r.Long)
	}
	var saved phpFatalsState
	if found, err := loadState(corrupt, &saved); !found || err != nil || saved.Position.Offset == 0 {
		t.Errorf("corrupt state file was not replaced: %v %v %+v", found, err, saved)
	}

	// A state file kept for another pattern does not lend its matches.
	r = runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", log, "--state-file", corrupt, "--pattern", "Uncaught")
	if r.Output != `PHP FATALS OK - 1 lines matching "Uncaught" in 1800 second interval` {
		t.Errorf("other pattern: %q", r.Output)
	}

	r = runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", log, "--state-file", dir)
	if r.State != nagios.Unknown || !strings.HasPrefix(r.Output, "PHP FATALS UNKNOWN - cannot use state file "+dir+": ") {
		t.Errorf("state file is a directory: %s %q", r.State, r.Output)
	}

	blocker := filepath.Join(dir, "blocker")
	logtailWrite(t, blocker, "")
	r = runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", log, "--state-file", filepath.Join(blocker, "state.json"))
	if r.State != nagios.Unknown || !strings.Contains(r.Output, "state") {
		t.Errorf("state file cannot be written: %s %q", r.State, r.Output)
	}
}

func TestPHPFatalsPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	path := filepath.Join(t.TempDir(), "php_errors.log")
	logtailWrite(t, path, phpLine(phpNow, time.UTC, phpFatal))
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	r := runPHPFatals(t, context.Background(), phpNow, time.UTC, "-l", path)
	if want := "PHP FATALS UNKNOWN - cannot read PHP log " + path + ": permission denied"; r.State != nagios.Unknown || r.Output != want {
		t.Errorf("got %s %q, want %q", r.State, r.Output, want)
	}
}

func TestPHPFatalsTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	log := filepath.Join("testdata", "php_fatals", "app.log")
	tests := []struct {
		args  []string
		state nagios.State
	}{
		{[]string{"-l", log}, nagios.Unknown},
		{[]string{"-l", log, "-t", "5:CRITICAL"}, nagios.Critical},
	}
	for _, tt := range tests {
		r := runPHPFatals(t, ctx, phpNow, time.UTC, tt.args...)
		if r.State != tt.state || !strings.Contains(r.Output, "context canceled") {
			t.Errorf("%v: %s %q, want %s and the reason", tt.args, r.State, r.Output, tt.state)
		}
	}
}

func TestPHPFatalsBadArguments(t *testing.T) {
	log := filepath.Join("testdata", "php_fatals", "app.log")
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{}, "-l/--log"},
		{[]string{"-l", log, "-i", "0"}, "-i/--interval 0"},
		{[]string{"-l", log, "-i", "-5"}, "-i/--interval -5"},
		{[]string{"-l", log, "-i", "soon"}, "soon"},
		{[]string{"-l", log, "--pattern", "("}, "--pattern \"(\""},
		{[]string{"-l", log, "--pattern", ""}, "--pattern"},
		{[]string{"-l", log, "-w", "abc"}, "-w"},
		{[]string{"-l", log, "-c", "5:1"}, "-c"},
		{[]string{"-l", log, "-t", "0"}, "timeout"},
		{[]string{"-l", log, "--bogus"}, "bogus"},
	}
	for _, tt := range tests {
		var out strings.Builder
		code := Main(context.Background(), "check_php_fatals", tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_php_fatals: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, want 3 and %q in\n%s", tt.args, code, tt.want, out.String())
		}
	}
}

// BenchmarkPHPFatals counts the fatals of the last half hour at the end of
// logs of very different sizes: the time per run should be the same.
func BenchmarkPHPFatals(b *testing.B) {
	dir := b.TempDir()
	for _, mb := range []int{16, 512} {
		path := filepath.Join(dir, fmt.Sprintf("php_errors_%dMB.log", mb))
		writeBenchLog(b, path, int64(mb)<<20)
		b.Run(fmt.Sprintf("size=%dMB", mb), func(b *testing.B) {
			c, err := newPHPFatals([]string{"-l", path, "-w", "1", "-c", "100"})
			if err != nil {
				b.Fatal(err)
			}
			pc := c.(*phpFatalsCheck)
			pc.now = func() time.Time { return phpNow }
			for b.Loop() {
				if r := pc.Run(context.Background()); r.Output != "PHP FATALS WARNING - 18 PHP Fatal errors in 1800 second interval" {
					b.Fatalf("got %q", r.Output)
				}
			}
		})
	}
}

// writeBenchLog writes a log of about size bytes: days of old warnings and
// fatals, then the last half hour with a line a second and 18 fatals.
func writeBenchLog(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var recent strings.Builder
	for s := 1800; s > 0; s-- {
		msg := phpWarn
		if s%100 == 0 {
			msg = phpFatal
		}
		recent.WriteString(phpLine(phpNow.Add(-time.Duration(s)*time.Second), time.UTC, msg))
	}
	// Old lines, a minute apart, going back as far as the size needs.
	var chunk strings.Builder
	old := phpNow.Add(-7 * 24 * time.Hour)
	for i := 0; chunk.Len() < 1<<20; i++ {
		msg := phpWarn
		if i%10 == 0 {
			msg = phpFatal + "\n" + strings.TrimSuffix(phpTrace, "\n")
		}
		chunk.WriteString(phpLine(old.Add(time.Duration(i)*time.Minute), time.UTC, msg))
	}
	for written := int64(recent.Len()); written < size; written += int64(chunk.Len()) {
		if _, err := w.WriteString(chunk.String()); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.WriteString(recent.String()); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

func FuzzPHPClockParse(f *testing.F) {
	f.Add([]byte("[21-Nov-2026 22:51:17 UTC] PHP Fatal error:  x"))
	f.Add([]byte("[21-Nov-2026 22:51:17 Europe/Berlin] x"))
	f.Add([]byte("[21-Nov-2026 22:51:17 +01:00] x"))
	f.Add([]byte("[21-Nov-2026 22:51:17] x"))
	f.Fuzz(func(t *testing.T, line []byte) {
		clock := phpClock{local: time.UTC}
		if _, ok := clock.parse(line); ok && line[0] != '[' {
			t.Errorf("parse(%q) found a time in a line that has none", line)
		}
	})
}
