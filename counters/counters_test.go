package counters

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/immune-ops/immune/fixtures/memcached"
)

// base is a fixed instant on a minute boundary: 2026-03-02 14:00:00 UTC.
var base = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// newCounters starts a memcached and returns Counters whose clock is now,
// and the client behind them.
func newCounters(t testing.TB, now func() time.Time, opts Options) (*Counters, *memcache.Client, *memcached.Server) {
	t.Helper()
	srv := memcached.Start(t)
	mc, err := NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	opts.Now = now
	c, err := New(mc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, mc, srv
}

func TestKeyScheme(t *testing.T) {
	mc := memcache.New("127.0.0.1:1")
	tests := []struct {
		opts    Options
		name    string
		minute  int64
		want    string
		wantErr string
	}{
		{Options{}, "orders", Minute(base), "immune:c:orders:29541000", ""},
		{Options{Prefix: "shop:"}, "orders", 7, "shop:orders:7", ""},
		{Options{}, "checkout.v2:paid", 1, "immune:c:checkout.v2:paid:1", ""},
		{Options{}, "", 1, "", "empty counter name"},
		{Options{}, "two words", 1, "", "space or control character"},
		{Options{}, "tab\tname", 1, "", "space or control character"},
		{Options{}, "del\x7f", 1, "", "space or control character"},
		{Options{}, strings.Repeat("x", MaxNameLen), 1, "immune:c:" + strings.Repeat("x", MaxNameLen) + ":1", ""},
		{Options{}, strings.Repeat("x", MaxNameLen+1), 1, "", "at most 230"},
	}
	for _, tt := range tests {
		c, err := New(mc, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Key(tt.name, tt.minute)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Key(%q) error %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Key(%q, %d) = %q, %v; want %q", tt.name, tt.minute, got, err, tt.want)
		}
		if len(got) > 250 {
			t.Errorf("Key(%q) is %d bytes, over memcached's 250", tt.name, len(got))
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	mc := memcache.New("127.0.0.1:1")
	for _, tt := range []struct {
		client *memcache.Client
		opts   Options
	}{
		{nil, Options{}},
		{mc, Options{Prefix: "has space:"}},
		{mc, Options{Prefix: strings.Repeat("p", 240)}},
		{mc, Options{TTL: time.Millisecond}},
		{mc, Options{TTL: MaxTTL + time.Second}},
		{mc, Options{TTL: -time.Hour}},
	} {
		if _, err := New(tt.client, tt.opts); err == nil {
			t.Errorf("New(%v, %+v) succeeded, want an error", tt.client != nil, tt.opts)
		}
	}
}

func TestMinute(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(59, 999), 0},
		{time.Unix(60, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-60, 0), -1},
		{time.Unix(-61, 0), -2},
	} {
		if got := Minute(tt.t); got != tt.want {
			t.Errorf("Minute(%d) = %d, want %d", tt.t.Unix(), got, tt.want)
		}
	}
}

func TestIncrCountsExactlyPerMinute(t *testing.T) {
	var now atomic.Pointer[time.Time]
	clock := func() time.Time { return *now.Load() }
	c, _, _ := newCounters(t, clock, Options{})
	ctx := context.Background()
	// Counts land in the minute the clock is in: 3 at 13:57, none at
	// 13:58, 7+5 at 13:59:59, 100 set at 14:00, 2 more at 14:00:30.
	steps := []struct {
		at  time.Time
		do  func() error
		why string
	}{
		{base.Add(-3 * time.Minute), func() error { return c.IncrBy(ctx, "orders", 3) }, "incr by 3"},
		{base.Add(-time.Second), func() error { return c.IncrBy(ctx, "orders", 7) }, "incr by 7"},
		{base.Add(-time.Second), func() error {
			for range 5 {
				if err := c.Incr(ctx, "orders"); err != nil {
					return err
				}
			}
			return nil
		}, "5 incrs"},
		{base, func() error { return c.Set(ctx, "orders", 100) }, "set 100"},
		{base.Add(30 * time.Second), func() error { return c.IncrBy(ctx, "orders", 2) }, "incr by 2"},
	}
	for _, s := range steps {
		at := s.at
		now.Store(&at)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.why, err)
		}
	}

	r, err := c.Read(ctx, "orders", 5, base.Add(45*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := Minute(base)
	want := Reading{Name: "orders", Complete: []Bucket{
		{Minute: m - 5}, {Minute: m - 4}, {Minute: m - 3, Count: 3, Present: true},
		{Minute: m - 2}, {Minute: m - 1, Count: 12, Present: true},
	}, Current: Bucket{Minute: m, Count: 102, Present: true}}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("Read:\n got %+v\nwant %+v", r, want)
	}
	if got := Total(r.Complete...); got != 15 {
		t.Errorf("Total = %d, want 15", got)
	}
	if !AnyPresent(r.Complete...) || AnyPresent(r.Complete[:2]...) {
		t.Errorf("AnyPresent wrong for %+v", r.Complete)
	}
	if got := r.Complete[0].Start(); !got.Equal(base.Add(-5 * time.Minute)) {
		t.Errorf("Start = %v, want %v", got, base.Add(-5*time.Minute))
	}

	missing, err := c.Read(ctx, "never_counted", 3, base)
	if err != nil {
		t.Fatal(err)
	}
	if AnyPresent(append(missing.Complete, missing.Current)...) {
		t.Errorf("a counter never written reads as present: %+v", missing)
	}
}

// TestConcurrentIncrIsExact races goroutines to create the same missing
// key, round after round, then has them all increment one key: every
// count must arrive, none twice.
func TestConcurrentIncrIsExact(t *testing.T) {
	c, _, _ := newCounters(t, clockAt(base), Options{})
	ctx := context.Background()
	const goroutines, increments, rounds = 32, 100, 20
	run := func(name string, each int) {
		t.Helper()
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range each {
					if err := c.Incr(ctx, name); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for i := range rounds {
		name := "race" + strconv.Itoa(i)
		run(name, 1)
		assertCount(t, c, name, goroutines)
	}
	run("sustained", increments)
	assertCount(t, c, "sustained", goroutines*increments)
}

func assertCount(t *testing.T, c *Counters, name string, want uint64) {
	t.Helper()
	r, err := c.Read(context.Background(), name, 1, base)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Current.Present || r.Current.Count != want {
		t.Errorf("%s: count %d (present %v), want exactly %d", name, r.Current.Count, r.Current.Present, want)
	}
}

func TestKeysExpireAfterTTL(t *testing.T) {
	for _, tt := range []struct {
		ttl  time.Duration
		want int
	}{
		{0, int(DefaultTTL / time.Second)},
		{10 * time.Minute, 600},
	} {
		c, _, srv := newCounters(t, time.Now, Options{TTL: tt.ttl})
		ctx := context.Background()
		if err := c.Incr(ctx, "ttl"); err != nil {
			t.Fatal(err)
		}
		// A second increment must not extend the key's life.
		if err := c.Incr(ctx, "ttl"); err != nil {
			t.Fatal(err)
		}
		key, err := c.Key("ttl", Minute(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		left := remainingTTL(t, srv.Addr, key)
		// memcached's clock ticks in whole seconds.
		if left > tt.want || left < tt.want-5 {
			t.Errorf("TTL %v: key %s expires in %ds, want about %ds", tt.ttl, key, left, tt.want)
		}
	}
}

// remainingTTL asks memcached, with its meta get command, how many seconds
// key has left; -1 means it never expires.
func remainingTTL(t *testing.T, addr, key string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "mg %s t\r\n", key)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	ttl, ok := strings.CutPrefix(strings.TrimSpace(line), "HD t")
	if !ok {
		t.Fatalf("mg %s: %q", key, line)
	}
	n, err := strconv.Atoi(ttl)
	if err != nil {
		t.Fatalf("mg %s: %q", key, line)
	}
	return n
}

func TestReadRefusesWhatIsNotACount(t *testing.T) {
	c, mc, _ := newCounters(t, clockAt(base), Options{})
	key, err := c.Key("garbled", Minute(base)-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Set(&memcache.Item{Key: key, Value: []byte("a:1:{s:1:\"x\";}")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(context.Background(), "garbled", 2, base)
	if err == nil || !strings.Contains(err.Error(), "not a count") {
		t.Errorf("Read of a non-numeric value: %v, want a 'not a count' error", err)
	}
	if err := c.Incr(context.Background(), "garbled"); err != nil {
		t.Fatal(err)
	}
	if err := c.Incr(context.Background(), "bad name"); err == nil {
		t.Error("Incr with a space in the name succeeded")
	}
	if _, err := c.Read(context.Background(), "orders", 0, base); err == nil {
		t.Error("Read of 0 buckets succeeded")
	}
}

func TestErrorsSayWhatWasBeingDone(t *testing.T) {
	srv := memcached.Start(t)
	mc, err := NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(mc, Options{Now: clockAt(base)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx := context.Background()
	if err := c.Incr(ctx, "orders"); err == nil || !strings.Contains(err.Error(), "increment immune:c:orders:") {
		t.Errorf("Incr against a stopped memcached: %v", err)
	}
	if _, err := c.Read(ctx, "orders", 5, base); err == nil || !strings.Contains(err.Error(), "read counter orders") {
		t.Errorf("Read against a stopped memcached: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Incr(cancelled, "orders"); !errors.Is(err, context.Canceled) {
		t.Errorf("Incr with a cancelled context: %v", err)
	}
	if _, err := NewClient("no-port"); err == nil {
		t.Error("NewClient without a port succeeded")
	}
}

func BenchmarkIncr(b *testing.B) {
	c, _, _ := newCounters(b, time.Now, Options{})
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := c.Incr(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIncrParallel(b *testing.B) {
	c, _, _ := newCounters(b, time.Now, Options{})
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Incr(ctx, "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
