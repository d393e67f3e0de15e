package checks

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// FuzzNTPAnswer: any datagram either is no answer to our request, or is
// one whose sample the check judges into a result Nagios reads back.
func FuzzNTPAnswer(f *testing.F) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := toNTPTimestamp(base)
	answer := func(mut func(*ntpPacket)) []byte {
		p := ntpPacket{
			leap: 0, version: 4, mode: ntpModeServer, stratum: 2, poll: 4, precision: -23,
			rootDelay: 1 << 10, rootDisp: 1 << 9, refID: [4]byte{192, 0, 2, 1},
			reference: toNTPTimestamp(base.Add(-time.Minute)), origin: t1,
			receive: toNTPTimestamp(base.Add(3 * time.Millisecond)), transmit: toNTPTimestamp(base.Add(4 * time.Millisecond)),
		}
		if mut != nil {
			mut(&p)
		}
		return p.marshal()
	}
	f.Add(answer(nil))
	f.Add(answer(func(p *ntpPacket) { p.stratum, p.refID = 0, [4]byte{'R', 'A', 'T', 'E'} }))
	f.Add(answer(func(p *ntpPacket) { p.leap = ntpLeapAlarm }))
	f.Add(answer(func(p *ntpPacket) { p.mode = ntpModeClient }))
	f.Add(answer(func(p *ntpPacket) { p.origin++ }))
	f.Add(answer(func(p *ntpPacket) { p.receive, p.transmit = 1, math.MaxUint64 }))
	f.Add(append(answer(nil), make([]byte, 20)...))
	f.Add(answer(nil)[:47])
	f.Fuzz(func(t *testing.T, b []byte) {
		parsed, err := parseNTPPacket(b)
		if (err == nil) != (len(b) >= ntpHeaderLen) {
			t.Fatalf("parse %d bytes: %v", len(b), err)
		}
		if err == nil && !bytes.Equal(parsed.marshal(), b[:ntpHeaderLen]) {
			t.Fatalf("%x parses to %+v, which writes %x", b[:ntpHeaderLen], parsed, parsed.marshal())
		}
		p := &ntpPeer{}
		sent := map[ntpTimestamp]bool{t1: true}
		answered, kissed := p.take(b, sent, toNTPTimestamp(base.Add(5*time.Millisecond)))
		if answered == sent[t1] {
			t.Fatalf("answered %v, but the request is still awaited: %v", answered, sent[t1])
		}
		if answered && !kissed {
			s := p.samples[0]
			if math.IsNaN(s.offset) || math.IsInf(s.offset, 0) || math.IsNaN(s.delay) || math.IsInf(s.delay, 0) {
				t.Fatalf("answer %x gives offset %v, delay %v", b, s.offset, s.delay)
			}
		}
		c, err := newNTPTime([]string{"-H", "127.0.0.1", "-w", "1", "-c", "2"})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, c.(*ntpTimeCheck).judge([]*ntpPeer{p}))
	})
}

// checkResult: a result the check prints reads back with its status line
// and every perfdata item.
func checkResult(t *testing.T, r nagios.Result) {
	t.Helper()
	back, err := nagios.Parse(r.String())
	if err != nil || back.Output != r.Output || len(back.Perf) != len(r.Perf) {
		t.Fatalf("result %q reads back as %q (%v)", r.String(), back.String(), err)
	}
}

// FuzzMemcachedStats: any answer to "stats" is refused or read into stats
// that, written back, read the same; the check measures them or says which
// stat is not a count.
func FuzzMemcachedStats(f *testing.F) {
	f.Add([]byte("STAT pid 1234\r\nSTAT uptime 3600\r\nSTAT time 1767323045\r\nSTAT version 1.6.21\r\nSTAT libevent 2.1.12-stable\r\n" +
		"STAT curr_connections 2\r\nSTAT get_hits 90\r\nSTAT get_misses 10\r\nSTAT evictions 0\r\nSTAT rusage_user 0.123456\r\nEND\r\n"))
	f.Add([]byte("ERROR\r\n"))
	f.Add([]byte("SERVER_ERROR out of memory\r\n"))
	f.Add([]byte("STAT pid 1\r\nSTAT uptime"))
	f.Add([]byte("STAT pid -1\nSTAT get_hits 18446744073709551615\nSTAT get_misses 1\nEND\n"))
	f.Add([]byte("STAT  x\r\nEND\r\n"))
	f.Add([]byte("STAT " + strings.Repeat("x", maxStatLine) + " 1\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := parseStats(bufio.NewReaderSize(bytes.NewReader(b), maxStatLine))
		if err != nil {
			if err.Error() == "" || stats != nil {
				t.Fatalf("refused with %q and stats %v", err, stats)
			}
			return
		}
		var back strings.Builder
		for _, name := range slices.Sorted(maps.Keys(stats)) {
			fmt.Fprintf(&back, "STAT %s %s\r\n", name, stats[name])
		}
		back.WriteString("END\r\n")
		again, err := parseStats(bufio.NewReaderSize(strings.NewReader(back.String()), maxStatLine))
		if err != nil || !maps.Equal(again, stats) {
			t.Fatalf("stats %q written back as %q read as %q, %v", stats, back.String(), again, err)
		}
		m, err := measureMemcached(stats)
		if err != nil && !strings.HasPrefix(err.Error(), "stat ") {
			t.Fatalf("measure: error %q does not name the stat", err)
		}
		if m.hitRatio < 0 || m.hitRatio > 100 || math.IsNaN(m.hitRatio) {
			t.Fatalf("hit ratio %v from %q", m.hitRatio, stats)
		}
	})
}

// mysqlGreetingPacket is a handshake as MariaDB sends it: protocol 10 and
// its version with the "5.5.5-" prefix.
func mysqlGreetingPacket(protocol byte, version string) []byte {
	payload := append([]byte{protocol}, version...)
	payload = append(payload, 0, 0x2a, 0, 0, 0)
	payload = append(payload, "abcdefgh\x00"...)
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), 0}, payload...)
}

// FuzzMySQLGreeting: any bytes a server sends first give its version and
// protocol, or an error; never a version holding the NUL that ends it.
func FuzzMySQLGreeting(f *testing.F) {
	f.Add(mysqlGreetingPacket(10, "5.5.5-10.11.6-MariaDB-0+deb12u1"))
	f.Add(mysqlGreetingPacket(10, "8.0.36"))
	f.Add([]byte("\x17\x00\x00\x00\xff\x6a\x04Host is not allowed"))
	f.Add([]byte("\xff\xff\xff\x00\x0a8.0"))
	f.Add([]byte("\x01\x00\x00\x00\x0a"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		version, protocol, err := readMySQLGreeting(bytes.NewReader(b))
		if err != nil {
			if err.Error() == "" || version != "" {
				t.Fatalf("error %q with version %q", err, version)
			}
			return
		}
		if strings.Contains(version, "\x00") || protocol < 0 || protocol > 0xfe {
			t.Fatalf("%x: version %q, protocol %d", b, version, protocol)
		}
	})
}

// FuzzParseMySQLNumber: a value a query returns is a finite number or
// refused, as monitoring-plugins' is_numeric takes it.
func FuzzParseMySQLNumber(f *testing.F) {
	for _, s := range []string{"42", " 3.5", "1e3", "-0", "NaN", "inf", "0x1p-2", "1_000", "12abc", "", "\t\n7", "1e999"} {
		f.Add(s, true)
	}
	f.Add("", false)
	f.Fuzz(func(t *testing.T, s string, valid bool) {
		v, ok := parseMySQLNumber(sql.NullString{String: s, Valid: valid})
		if ok && (!valid || math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("%q (valid %v) read as %v", s, valid, v)
		}
		if !ok && v != 0 {
			t.Fatalf("%q refused with value %v", s, v)
		}
	})
}
