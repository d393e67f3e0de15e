package checks

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/immune-ops/immune/counters"
	"github.com/immune-ops/immune/fixtures/memcached"
	"github.com/immune-ops/immune/nagios"
)

// Instants the counter tests write and read at: a Monday afternoon, the
// evening of that Monday, and the night before, a Sunday.
var (
	counterMonday  = time.Date(2026, 3, 2, 14, 0, 30, 0, time.UTC)
	counterEvening = time.Date(2026, 3, 2, 20, 30, 30, 0, time.UTC)
	counterSunday  = time.Date(2026, 3, 1, 3, 0, 30, 0, time.UTC)
)

// counterWriter counts into srv with a clock the test moves.
type counterWriter struct {
	t   testing.TB
	c   *counters.Counters
	mc  *memcache.Client
	mu  sync.Mutex
	now time.Time
}

func newCounterWriter(t testing.TB, srv *memcached.Server) *counterWriter {
	t.Helper()
	mc, err := counters.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	w := &counterWriter{t: t, mc: mc}
	w.c, err = counters.New(mc, counters.Options{Now: func() time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.now
	}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// count adds n to name in the minute of at.
func (w *counterWriter) count(name string, at time.Time, n uint64) {
	w.t.Helper()
	w.mu.Lock()
	w.now = at
	w.mu.Unlock()
	if err := w.c.IncrBy(context.Background(), name, n); err != nil {
		w.t.Fatal(err)
	}
}

// series counts each of counts in successive minutes, the last one in
// the minute before at, then current in at's minute (0: none).
func (w *counterWriter) series(name string, at time.Time, counts []uint64, current uint64) {
	w.t.Helper()
	for i, n := range counts {
		if n > 0 {
			w.count(name, at.Add(-time.Duration(len(counts)-i)*time.Minute), n)
		}
	}
	if current > 0 {
		w.count(name, at, current)
	}
}

// runCounter runs check_counter with its clock at now.
func runCounter(t testing.TB, ctx context.Context, now time.Time, args ...string) nagios.Result {
	t.Helper()
	c, err := newCounter(args)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	c.(*counterCheck).now = func() time.Time { return now }
	return Run(ctx, "check_counter", c)
}

func TestCounterOutput(t *testing.T) {
	srv := memcached.Start(t)
	w := newCounterWriter(t, srv)
	w.series("orders", counterMonday, []uint64{60, 0, 70, 61, 121}, 30)
	w.series("orders", counterSunday, []uint64{1, 0, 0, 2, 0}, 0)
	w.series("orders", counterEvening, []uint64{10, 10, 10, 10, 10}, 0)
	port := strconv.Itoa(srv.Port)
	peak := []string{"--schedule", "Peak Hours=Mon-Fri 09:00-21:00;-w 300:;-c 200:", "--schedule", "off-peak=*;-w 5:;-c 1:"}
	mondayMinutes := "per minute, oldest first: 13:55 60, 13:56 -, 13:57 70, 13:58 61, 13:59 121, 14:00 30 (current)\n"
	tests := []struct {
		name  string
		now   time.Time
		args  []string
		state nagios.State
		want  string
	}{
		{"count", counterMonday, []string{"-k", "orders"}, nagios.OK,
			"COUNTER OK - orders: 312 in the last 5 complete minutes (62.4/min)|orders=312;;;0 orders_per_min=62.40;;;0.00\n" + mondayMinutes},
		{"low count warns", counterMonday, []string{"-k", "orders", "-w", "400:", "-c", "300:"}, nagios.Warning,
			"COUNTER WARNING - orders: 312 in the last 5 complete minutes (62.4/min)|orders=312;400:;300:;0 orders_per_min=62.40;;;0.00\n" + mondayMinutes},
		{"low count is critical", counterMonday, []string{"--counter=orders", "--critical=400:"}, nagios.Critical,
			"COUNTER CRITICAL - orders: 312 in the last 5 complete minutes (62.4/min)|orders=312;;400:;0 orders_per_min=62.40;;;0.00\n" + mondayMinutes},
		{"high count", counterMonday, []string{"-k", "orders", "-w", "100", "-c", "1000"}, nagios.Warning,
			"COUNTER WARNING - orders: 312 in the last 5 complete minutes (62.4/min)|orders=312;100;1000;0 orders_per_min=62.40;;;0.00\n" + mondayMinutes},
		{"rate", counterMonday, []string{"-k", "orders", "--rate", "-w", "70:", "-c", "50:"}, nagios.Warning,
			"COUNTER WARNING - orders: 312 in the last 5 complete minutes (62.4/min)|orders=312;;;0 orders_per_min=62.40;70.00:;50.00:;0.00\n" + mondayMinutes},
		{"two buckets", counterMonday, []string{"-k", "orders", "-n", "2", "-c", "100:"}, nagios.OK,
			"COUNTER OK - orders: 182 in the last 2 complete minutes (91.0/min)|orders=182;;100:;0 orders_per_min=91.00;;;0.00\n" +
				"per minute, oldest first: 13:58 61, 13:59 121, 14:00 30 (current)\n"},
		{"include current", counterMonday, []string{"-k", "orders", "--include-current", "-c", "311:"}, nagios.Critical,
			"COUNTER CRITICAL - orders: 310.9 per 5 minutes, scaled from 342 in the last 5.5 minutes with the current one (62.2/min)" +
				"|orders=310.9;;311.0:;0.0 orders_per_min=62.18;;;0.00\n" + mondayMinutes},
		{"missing", counterMonday, []string{"-k", "refunds", "-c", "1:"}, nagios.Unknown,
			"COUNTER UNKNOWN - no data for counter refunds in the last 5 minutes (memcached restarted or nothing counting?)" +
				"|refunds=U;;1:;0 refunds_per_min=U;;;0.00\n" +
				"per minute, oldest first: 13:55 -, 13:56 -, 13:57 -, 13:58 -, 13:59 -, 14:00 - (current)\n"},
		{"missing is critical", counterMonday, []string{"-k", "refunds", "-n", "1", "--missing=critical"}, nagios.Critical,
			"COUNTER CRITICAL - no data for counter refunds in the last 1 minute (memcached restarted or nothing counting?)" +
				"|refunds=U;;;0 refunds_per_min=U;;;0.00\nper minute, oldest first: 13:59 -, 14:00 - (current)\n"},
		// Only the current minute has a key: the complete minutes have no data.
		{"only the current minute", counterMonday.Add(-3 * time.Minute), []string{"-k", "orders", "-n", "1"}, nagios.Unknown,
			"COUNTER UNKNOWN - no data for counter orders in the last 1 minute (memcached restarted or nothing counting?)" +
				"|orders=U;;;0 orders_per_min=U;;;0.00\nper minute, oldest first: 13:56 -, 13:57 70 (current)\n"},
		{"only the current minute, included", counterMonday.Add(-3 * time.Minute), []string{"-k", "orders", "-n", "1", "--include-current"}, nagios.OK,
			"COUNTER OK - orders: 46.7 per 1 minute, scaled from 70 in the last 1.5 minutes with the current one (46.7/min)" +
				"|orders=46.7;;;0.0 orders_per_min=46.67;;;0.00\nper minute, oldest first: 13:56 -, 13:57 70 (current)\n"},
		{"peak schedule", counterMonday, append([]string{"-k", "orders", "--tz", "UTC"}, peak...), nagios.OK,
			"COUNTER OK - orders: 312 in the last 5 complete minutes (62.4/min) [Peak Hours]|orders=312;300:;200:;0 orders_per_min=62.40;;;0.00\n" + mondayMinutes},
		{"off-peak schedule", counterSunday, append([]string{"-k", "orders", "--tz", "UTC"}, peak...), nagios.Warning,
			"COUNTER WARNING - orders: 3 in the last 5 complete minutes (0.6/min) [off-peak]|orders=3;5:;1:;0 orders_per_min=0.60;;;0.00\n" +
				"per minute, oldest first: 02:55 1, 02:56 -, 02:57 -, 02:58 2, 02:59 -, 03:00 - (current)\n"},
		{"evening is peak in UTC", counterEvening, append([]string{"-k", "orders", "--tz", "UTC"}, peak...), nagios.Critical,
			"COUNTER CRITICAL - orders: 50 in the last 5 complete minutes (10.0/min) [Peak Hours]|orders=50;300:;200:;0 orders_per_min=10.00;;;0.00\n" +
				"per minute, oldest first: 20:25 10, 20:26 10, 20:27 10, 20:28 10, 20:29 10, 20:30 - (current)\n"},
		{"evening is off-peak in Paris", counterEvening, append([]string{"-k", "orders", "--tz", "Europe/Paris"}, peak...), nagios.OK,
			"COUNTER OK - orders: 50 in the last 5 complete minutes (10.0/min) [off-peak]|orders=50;5:;1:;0 orders_per_min=10.00;;;0.00\n" +
				"per minute, oldest first: 21:25 10, 21:26 10, 21:27 10, 21:28 10, 21:29 10, 21:30 - (current)\n"},
		{"no schedule matches", counterSunday, []string{"-k", "orders", "--tz", "UTC", "-w", "10:",
			"--schedule", "weekdays=Mon-Fri;-c 100:"}, nagios.Warning,
			"COUNTER WARNING - orders: 3 in the last 5 complete minutes (0.6/min) [default]|orders=3;10:;;0 orders_per_min=0.60;;;0.00\n" +
				"per minute, oldest first: 02:55 1, 02:56 -, 02:57 -, 02:58 2, 02:59 -, 03:00 - (current)\n"},
		{"schedule says missing is fine", counterSunday, []string{"-k", "refunds", "--tz", "UTC", "-n", "1",
			"--schedule", "night=22:00-06:00;--missing=ok;-c 1:", "--schedule", "day=*;-c 1:"}, nagios.OK,
			"COUNTER OK - no data for counter refunds in the last 1 minute (memcached restarted or nothing counting?) [night]" +
				"|refunds=U;;1:;0 refunds_per_min=U;;;0.00\nper minute, oldest first: 02:59 -, 03:00 - (current)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The breakdown shows minutes in --tz: UTC unless the case says otherwise.
			args := append([]string{"-H", "127.0.0.1", "-p", port, "--tz", "UTC"}, tt.args...)
			r := runCounter(t, context.Background(), tt.now, args...)
			if r.State != tt.state || r.String() != tt.want {
				t.Errorf("%q:\n got %s %q\nwant %s %q", tt.args, r.State, r.String(), tt.state, tt.want)
			}
		})
	}
}

// TestCounterConcurrentWriters has many goroutines count into one minute,
// and the check read the exact sum.
func TestCounterConcurrentWriters(t *testing.T) {
	srv := memcached.Start(t)
	w := newCounterWriter(t, srv)
	w.now = counterMonday
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := w.c.Incr(context.Background(), "signups"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r := runCounter(t, context.Background(), counterMonday.Add(time.Minute), "-p", strconv.Itoa(srv.Port), "-k", "signups", "-n", "1")
	want := "COUNTER OK - signups: 800 in the last 1 complete minute (800.0/min)"
	if r.State != nagios.OK || r.Output != want {
		t.Errorf("got %s %q, want OK %q", r.State, r.Output, want)
	}
}

func TestCounterFailures(t *testing.T) {
	srv := memcached.Start(t)
	w := newCounterWriter(t, srv)
	key, err := w.c.Key("garbled", counters.Minute(counterMonday)-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.mc.Set(&memcache.Item{Key: key, Value: []byte("abc")}); err != nil {
		t.Fatal(err)
	}
	closed := npClosedPort(t)
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"memcached down", []string{"-p", closed, "-k", "orders"}, nagios.Unknown,
			"COUNTER UNKNOWN - cannot read counter orders: connect to address 127.0.0.1 and port " + closed + ": Connection refused"},
		{"memcached down, with schedules", []string{"-p", closed, "-k", "orders", "--schedule", "always=*"}, nagios.Unknown,
			"COUNTER UNKNOWN - cannot read counter orders: connect to address 127.0.0.1 and port " + closed + ": Connection refused [always]"},
		{"memcached silent", []string{"-p", quiet.port, "-k", "orders", "-t", "1"}, nagios.Unknown,
			"COUNTER UNKNOWN - no answer from memcached at 127.0.0.1:" + quiet.port + " within 1 seconds"},
		{"memcached silent, timeout critical", []string{"-p", quiet.port, "-k", "orders", "-t", "1:CRITICAL"}, nagios.Critical,
			"COUNTER CRITICAL - no answer from memcached at 127.0.0.1:" + quiet.port + " within 1 seconds"},
		{"not a count", []string{"-p", strconv.Itoa(srv.Port), "-k", "garbled"}, nagios.Unknown,
			"COUNTER UNKNOWN - memcached at 127.0.0.1:" + strconv.Itoa(srv.Port) + ": read counter garbled: key " + key + ` holds "abc", not a count`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCounter(t, context.Background(), counterMonday, tt.args...)
			if r.State != tt.state || r.Output != tt.want {
				t.Errorf("%q:\n got %s %q\nwant %s %q", tt.args, r.State, r.Output, tt.state, tt.want)
			}
		})
	}
}

// TestCounterCallerDeadline: the agent's deadline, shorter than -t, ends a
// read from a memcached that never answers.
func TestCounterCallerDeadline(t *testing.T) {
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	c, err := newCounter([]string{"-p", quiet.port, "-k", "orders", "-t", "30"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := c.Run(ctx)
	want := "COUNTER UNKNOWN - no answer from memcached at 127.0.0.1:" + quiet.port + " within 30 seconds"
	if r.State != nagios.Unknown || r.Output != want {
		t.Errorf("got %s %q, want UNKNOWN %q", r.State, r.Output, want)
	}
}

func TestCounterBadArguments(t *testing.T) {
	assertUsageErrors(t, "check_counter", []usageCase{
		{[]string{}, "-k/--counter: the counter's name is required"},
		{[]string{"-k", "two words"}, "space or control character"},
		{[]string{"-k", strings.Repeat("x", 231)}, "at most 230"},
		{[]string{"-k", "orders", "-n", "0"}, "-n/--buckets 0: want 1 to 120 minutes"},
		{[]string{"-k", "orders", "-n", "121"}, "-n/--buckets 121"},
		{[]string{"-k", "orders", "-n", "x"}, `invalid argument "x" for "-n, --buckets"`},
		{[]string{"-k", "orders", "-p", "0"}, "-p/--port 0"},
		{[]string{"-k", "orders", "-p", "70000"}, "-p/--port 70000"},
		{[]string{"-k", "orders", "-H", ""}, "-H/--hostname: empty host"},
		{[]string{"-k", "orders", "-w", "x:"}, `invalid range "x:" for -w`},
		{[]string{"-k", "orders", "-c", "10:5"}, `invalid range "10:5" for -c: start > end`},
		{[]string{"-k", "orders", "--missing=maybe"}, `--missing: "maybe" is not ok, warning, critical or unknown`},
		{[]string{"-k", "orders", "--tz", "Mars/Olympus"}, `--tz "Mars/Olympus"`},
		{[]string{"-k", "orders", "-t", "0"}, `timeout "0" is not a positive number of seconds`},
		{[]string{"-k", "orders", "extra"}, `unexpected argument "extra"`},
		{[]string{"-k", "orders", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"-k", "orders", "--schedule", "peak"}, `--schedule "peak": want NAME=WHEN first`},
		{[]string{"-k", "orders", "--schedule", "peak=Funday"}, `day "Funday"`},
		{[]string{"-k", "orders", "--schedule", "peak=Mon 9-17"}, `time "9": want HH:MM`},
		{[]string{"-k", "orders", "--schedule", "peak=*;-w nope"}, `invalid range "nope" for -w`},
		{[]string{"-k", "orders", "--schedule", "peak=*;-x 5"}, `option "-x 5": want -w RANGE, -c RANGE or --missing=STATE`},
	})
}

func TestParseCounterSchedule(t *testing.T) {
	all := [7]bool{true, true, true, true, true, true, true}
	weekdays := [7]bool{false, true, true, true, true, true, false}
	tests := []struct {
		in      string
		want    counterRule
		wantErr string
	}{
		{"peak=Mon-Fri 09:00-21:00;-w 50:;-c 20:", counterRule{missing: nagios.Warning, name: "peak", days: weekdays,
			spans: []minuteSpan{{540, 1260}},
			th:    nagios.Thresholds{Warn: &nagios.Range{Start: 50, End: math.Inf(1)}, Crit: &nagios.Range{Start: 20, End: math.Inf(1)}}}, ""},
		{" Peak Hours = mon-fri ;-w50:", counterRule{missing: nagios.Warning, name: "Peak Hours", days: weekdays,
			th: nagios.Thresholds{Warn: &nagios.Range{Start: 50, End: math.Inf(1)}}}, ""},
		{"always=*", counterRule{missing: nagios.Warning, name: "always", days: all}, ""},
		{"weekend=Sat,Sun", counterRule{missing: nagios.Warning, name: "weekend", days: [7]bool{true, false, false, false, false, false, true}}, ""},
		{"wrap=Fri-Mon", counterRule{missing: nagios.Warning, name: "wrap", days: [7]bool{true, true, false, false, false, true, true}}, ""},
		{"lunch=12:00-14:00,18:30-24:00;--missing=ok", counterRule{name: "lunch", days: all,
			spans: []minuteSpan{{720, 840}, {1110, 1440}}, missing: nagios.OK}, ""},
		{"night=* 22:00-06:00", counterRule{missing: nagios.Warning, name: "night", days: all, spans: []minuteSpan{{1320, 360}}}, ""},
		{"=*", counterRule{}, "empty schedule name"},
		{"a[b]=*", counterRule{}, "no brackets"},
		{"x=", counterRule{}, "empty WHEN"},
		{"x=Mon 09:00-10:00 extra", counterRule{}, "want days, times"},
		{"x=Mon-Funday", counterRule{}, `day "Funday"`},
		{"x=09:00", counterRule{}, "want HH:MM-HH:MM"},
		{"x=09:00-09:00", counterRule{}, "is empty"},
		{"x=24:00-06:00", counterRule{}, `time "24:00"`},
		{"x=09:60-10:00", counterRule{}, `time "09:60"`},
		{"x=9:5-10:00", counterRule{}, `time "9:5"`},
		{"x=*;-w 1;-w 2", counterRule{}, "-w given twice"},
		{"x=*;--missing=later", counterRule{}, `"later" is not ok`},
	}
	for _, tt := range tests {
		got, err := parseCounterSchedule(tt.in, nagios.Warning)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseCounterSchedule(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !sameRule(got, tt.want) {
			t.Errorf("parseCounterSchedule(%q) = %+v, %v\nwant %+v", tt.in, got, err, tt.want)
		}
	}
}

func sameRule(a, b counterRule) bool {
	if a.name != b.name || a.days != b.days || a.missing != b.missing || len(a.spans) != len(b.spans) ||
		!sameRange(a.th.Warn, b.th.Warn, tolerance{}) || !sameRange(a.th.Crit, b.th.Crit, tolerance{}) {
		return false
	}
	for i := range a.spans {
		if a.spans[i] != b.spans[i] {
			return false
		}
	}
	return true
}

func TestCounterRuleMatches(t *testing.T) {
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 3, day, hh, mm, 0, 0, time.UTC) } // 2 March 2026 is a Monday
	tests := []struct {
		when string
		t    time.Time
		want bool
	}{
		{"Mon-Fri 09:00-21:00", at(2, 9, 0), true},
		{"Mon-Fri 09:00-21:00", at(2, 20, 59), true},
		{"Mon-Fri 09:00-21:00", at(2, 21, 0), false},
		{"Mon-Fri 09:00-21:00", at(2, 8, 59), false},
		{"Mon-Fri 09:00-21:00", at(7, 12, 0), false},
		{"22:00-06:00", at(1, 23, 30), true},
		{"22:00-06:00", at(2, 5, 59), true},
		{"22:00-06:00", at(2, 6, 0), false},
		{"Sat,Sun", at(1, 0, 0), true},
		{"Sat,Sun", at(2, 0, 0), false},
		{"Fri-Mon", at(2, 12, 0), true},
		{"Fri-Mon", at(4, 12, 0), false},
		{"12:00-14:00,18:00-24:00", at(3, 23, 59), true},
		{"12:00-14:00,18:00-24:00", at(3, 15, 0), false},
		{"*", at(5, 3, 3), true},
	}
	for _, tt := range tests {
		r, err := parseCounterSchedule("s="+tt.when, nagios.Unknown)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.matches(tt.t); got != tt.want {
			t.Errorf("%q matches %s = %v, want %v", tt.when, tt.t.Format("Mon 15:04"), got, tt.want)
		}
	}
}

// BenchmarkCheckCounter60 is one check_counter run reading 60 minutes.
func BenchmarkCheckCounter60(b *testing.B) {
	srv := memcached.Start(b)
	w := newCounterWriter(b, srv)
	counts := make([]uint64, 60)
	for i := range counts {
		counts[i] = uint64(i + 1)
	}
	w.series("orders", counterMonday, counts, 0)
	c, err := newCounter([]string{"-p", strconv.Itoa(srv.Port), "-k", "orders", "-n", "60", "-c", "10:"})
	if err != nil {
		b.Fatal(err)
	}
	c.(*counterCheck).now = func() time.Time { return counterMonday }
	want := "COUNTER OK - orders: 1830 in the last 60 complete minutes (30.5/min)"
	b.ResetTimer()
	for range b.N {
		if r := c.Run(context.Background()); r.Output != want {
			b.Fatalf("got %q, want %q", r.Output, want)
		}
	}
}
