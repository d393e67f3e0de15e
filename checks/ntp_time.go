package checks

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_ntp_time",
		Summary: "offset of the local clock from an NTP server",
		New:     newNTPTime,
	})
}

const (
	// ntpSamples is how many answers each address is asked for, as the
	// twin's AVG_NUM.
	ntpSamples = 4
	// ntpResendAfter is how long an unanswered request waits before it is
	// sent again: UDP may have lost it.
	ntpResendAfter = time.Second
)

type ntpTimeCheck struct {
	host       string
	port       int
	network    string // "ip", "ip4" or "ip6"
	thresholds nagios.Thresholds
	quiet      bool
	timeOffset int
	timeout    *timeoutFlag
	verbose    int
}

func newNTPTime(args []string) (Check, error) {
	f := newFlags("check_ntp_time",
		"-H <host> [-p <port>] [-4|-6] [-w <warn>] [-c <crit>] [-q] [-o <time offset>] [-t <timeout>] [-v]",
		"This plugin checks the clock offset between the local host and a remote NTP server.")
	// The twin's help calls it --time_offset while its parser wants
	// --time-offset; take either.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	c := &ntpTimeCheck{network: "ip"}
	f.VarPF(familyFlag{&c.network, "ip4"}, "use-ipv4", "4", "Use IPv4 connection").NoOptDefVal = "true"
	f.VarPF(familyFlag{&c.network, "ip6"}, "use-ipv6", "6", "Use IPv6 connection").NoOptDefVal = "true"
	host := f.StringP("hostname", "H", "", "Host name or IP address of the NTP server")
	port := f.StringP("port", "p", "123", "Port number or service name")
	quiet := f.BoolP("quiet", "q", false, "Returns UNKNOWN instead of CRITICAL if offset cannot be found")
	warn := f.StringP("warning", "w", "60", "Offset to result in warning status (seconds)")
	crit := f.StringP("critical", "c", "120", "Offset to result in critical status (seconds)")
	offset := f.IntP("time-offset", "o", 0, "Seconds to add to the measured offset, as the twin does: -o -200 for a server known to run 200 s ahead")
	c.timeout = f.timeout(10, nagios.Critical)
	verbose := f.CountP("verbose", "v", "Show details of each server and, repeated, of each answer")
	if err := f.parseNoArgs(args); err != nil {
		return nil, err
	}
	if *host == "" {
		return nil, f.failf("-H: hostname was not supplied")
	}
	p, err := net.LookupPort("udp", *port)
	if err != nil || p == 0 {
		return nil, f.failf("-p %q: not a UDP port number or service name", *port)
	}
	if c.thresholds, err = f.thresholds(*warn, *crit); err != nil {
		return nil, err
	}
	c.host, c.port, c.quiet, c.timeOffset, c.verbose = *host, p, *quiet, *offset, *verbose
	return c, nil
}

// familyFlag is -4 or -6. Both write one setting, so the last one on the
// command line wins, as with the twin's getopt loop.
type familyFlag struct {
	dst     *string
	network string
}

func (f familyFlag) String() string { return strconv.FormatBool(*f.dst == f.network) }
func (f familyFlag) Type() string   { return "bool" }
func (f familyFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	switch {
	case on:
		*f.dst = f.network
	case *f.dst == f.network:
		*f.dst = "ip"
	}
	return nil
}

// Timeout is the -t option; Run keeps to it as well.
func (c *ntpTimeCheck) Timeout() time.Duration { return c.timeout.d }

func (c *ntpTimeCheck) Run(ctx context.Context) nagios.Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout.d)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, c.network, c.host)
	if err != nil {
		if ctx.Err() != nil {
			return c.timedOut(ctx, start)
		}
		return nagios.Resultf(nagios.Unknown, "error getting address for %s: %v", c.host, err)
	}
	peers := make([]*ntpPeer, len(ips))
	for i, ip := range ips {
		peers[i] = &ntpPeer{addr: netip.AddrPortFrom(ip.Unmap(), uint16(c.port))}
	}

	// Like the twin, stop asking at half the timeout, leaving the rest for
	// answers to be judged within it.
	window, stop := context.WithTimeout(ctx, c.timeout.d/2)
	defer stop()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() { p.query(window) })
	}
	wg.Wait()
	if ctx.Err() != nil && !anyAnswer(peers) {
		return c.timedOut(ctx, start)
	}
	return c.judge(peers)
}

// judge turns what the addresses of the server answered into the result,
// worded as the twin words it.
func (c *ntpTimeCheck) judge(peers []*ntpPeer) nagios.Result {
	if !anyAnswer(peers) {
		// CRITICAL even with -q, as in the twin: -q covers only a server
		// that answers without a usable offset.
		r := nagios.Resultf(nagios.Critical, "NTP CRITICAL: No response from NTP server")
		r.Long = describePeers(peers, max(c.verbose, 1))
		return r
	}
	best := bestNTPPeer(peers)
	if best == nil {
		state := nagios.Critical
		if c.quiet {
			state = nagios.Unknown
		}
		r := nagios.Resultf(state, "NTP %s: Offset unknown", state)
		r.Long = describePeers(peers, max(c.verbose, 1))
		return r
	}
	offset := best.samples[best.bestSample()].offset + float64(c.timeOffset)
	state := c.thresholds.State(math.Abs(offset))
	r := nagios.Resultf(state, "NTP %s: Offset %s secs", state, strconv.FormatFloat(offset, 'g', 10, 64))
	r.Perf = []nagios.Perf{{
		Label: "offset", Value: offset, UOM: "s", Precision: 6,
		Warn: rangeEnd(c.thresholds.Warn), Crit: rangeEnd(c.thresholds.Crit),
	}}
	r.Long = describePeers(peers, c.verbose)
	return r
}

func anyAnswer(peers []*ntpPeer) bool {
	for _, p := range peers {
		if p.answers > 0 {
			return true
		}
	}
	return false
}

// timedOut is what the twin's alarm handler prints when its timeout passes
// before any server answers, typically in a slow name lookup. ctx's
// deadline may be the caller's, sooner than -t, so that is the time given.
func (c *ntpTimeCheck) timedOut(ctx context.Context, start time.Time) nagios.Result {
	deadline, _ := ctx.Deadline()
	secs := deadline.Sub(start).Round(time.Millisecond).Seconds()
	return nagios.Resultf(c.timeout.state, "%s - Socket timeout after %s seconds",
		c.timeout.state, strconv.FormatFloat(secs, 'f', -1, 64))
}

// rangeEnd is the threshold as the twin's perfdata gives it: only its upper
// end, and nothing when that end is infinite (the twin prints "inf", which
// no perfdata reader takes).
func rangeEnd(r *nagios.Range) *nagios.Range {
	if r == nil || math.IsInf(r.End, 0) {
		return nil
	}
	return &nagios.Range{End: r.End}
}

// ntpPeer is one address of the server and what it answered.
type ntpPeer struct {
	addr    netip.AddrPort
	answers int // kiss-o'-death included
	samples []ntpSample
	// From the last usable answer, as the twin keeps them.
	stratum, leap       uint8
	rootDelay, rootDisp float64
	kiss                string // the code of a kiss-o'-death answer
	err                 error
}

// query asks p for ntpSamples answers until ctx ends, resending a request
// that goes unanswered for ntpResendAfter. It gives up on an address that
// refuses (ICMP port unreachable) or sends a kiss-o'-death.
func (p *ntpPeer) query(ctx context.Context) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", p.addr.String())
	if err != nil {
		p.err = fmt.Errorf("connect: %w", err)
		return
	}
	defer conn.Close()
	// Closing the socket is what wakes a Read blocked past ctx's end.
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	// Answers must echo one of our transmit timestamps (RFC 5905's bogus
	// check); a late answer to a resent request still counts.
	sent := map[ntpTimestamp]bool{}
	buf := make([]byte, 1024) // room for extension fields, which are ignored
	needSend := true
	var resendAt time.Time
	for len(p.samples) < ntpSamples {
		if needSend {
			now := time.Now()
			t1 := toNTPTimestamp(now)
			if _, err := conn.Write(ntpRequest(t1).marshal()); err != nil {
				p.setErr(ctx, fmt.Errorf("send request: %w", err))
				return
			}
			sent[t1] = true
			resendAt, needSend = now.Add(ntpResendAfter), false
		}
		if err := conn.SetReadDeadline(resendAt); err != nil {
			p.setErr(ctx, fmt.Errorf("set read deadline: %w", err))
			return
		}
		n, err := conn.Read(buf)
		t4 := toNTPTimestamp(time.Now())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				needSend = true
				continue
			}
			p.setErr(ctx, fmt.Errorf("await answer: %w", err))
			return
		}
		answered, kissed := p.take(buf[:n], sent, t4)
		if kissed {
			return
		}
		needSend = answered
	}
}

// take reads one datagram received at t4 as an answer to the requests
// whose transmit timestamps are in sent, and records it in p. answered is
// false for anything else (not a server's packet, or not an answer to
// ours), kissed true for a kiss-o'-death, after which p is done.
func (p *ntpPeer) take(b []byte, sent map[ntpTimestamp]bool, t4 ntpTimestamp) (answered, kissed bool) {
	resp, err := parseNTPPacket(b)
	if err != nil || resp.mode != ntpModeServer || resp.transmit == 0 || !sent[resp.origin] {
		return false, false
	}
	delete(sent, resp.origin)
	p.answers++
	if resp.stratum == 0 {
		// An all-NUL code is kept as sent: an empty one would read as no
		// kiss at all, an answer without a sample.
		p.kiss = cmp.Or(strings.TrimRight(string(resp.refID[:]), "\x00"), string(resp.refID[:]))
		return true, true
	}
	offset, delay := clockOffset(resp.origin, resp.receive, resp.transmit, t4)
	p.samples = append(p.samples, ntpSample{offset, delay})
	p.stratum, p.leap = resp.stratum, resp.leap
	p.rootDelay, p.rootDisp = shortSeconds(resp.rootDelay), shortSeconds(resp.rootDisp)
	return true, false
}

// setErr records why p stopped, unless it stopped because its time was up.
func (p *ntpPeer) setErr(ctx context.Context, err error) {
	if ctx.Err() == nil {
		p.err = err
	}
}

// ntpSample is one answer's offset and round-trip delay, in seconds.
type ntpSample struct{ offset, delay float64 }

// bestSample is the index of the answer with the shortest round trip. The
// twin averages all four instead, but an answer's offset can be wrong by up
// to half its round trip, so the quickest one is the one to trust: the
// choice of RFC 5905's clock filter.
func (p *ntpPeer) bestSample() int {
	best := 0
	for i, s := range p.samples {
		if s.delay < p.samples[best].delay {
			best = i
		}
	}
	return best
}

// bestNTPPeer picks the address whose offset to trust, as the twin's
// best_offset_server does: drop those with no usable answer or with the
// alarm leap indicator (unsynchronised), then prefer a lower or equal
// stratum and root dispersion with a strictly lower root delay.
func bestNTPPeer(peers []*ntpPeer) *ntpPeer {
	var best *ntpPeer
	for _, p := range peers {
		if len(p.samples) == 0 || p.leap == ntpLeapAlarm {
			continue
		}
		if best == nil || p.stratum <= best.stratum && p.rootDisp <= best.rootDisp && p.rootDelay < best.rootDelay {
			best = p
		}
	}
	return best
}

// describePeers is the long output: at verbosity 1 one line per address,
// saying why it was not used, at 2 also every answer.
func describePeers(peers []*ntpPeer, verbosity int) string {
	if verbosity < 1 {
		return ""
	}
	var b strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&b, "%s: ", p.addr)
		switch {
		case p.err != nil:
			fmt.Fprintf(&b, "%v", p.err)
		case p.kiss != "":
			fmt.Fprintf(&b, "kiss-o'-death %q after %d answers", p.kiss, len(p.samples))
		case p.answers == 0:
			b.WriteString("no answer")
		default:
			s := p.samples[p.bestSample()]
			fmt.Fprintf(&b, "%d answers, measured offset %.10g s with round trip %.6f s", len(p.samples), s.offset, s.delay)
		}
		if len(p.samples) > 0 {
			fmt.Fprintf(&b, ", stratum %d, leap indicator %d, root delay %g s, root dispersion %g s",
				p.stratum, p.leap, p.rootDelay, p.rootDisp)
			if p.leap == ntpLeapAlarm {
				b.WriteString(" (unsynchronised)")
			}
		}
		b.WriteByte('\n')
		if verbosity >= 2 {
			for i, s := range p.samples {
				fmt.Fprintf(&b, "  answer %d: offset %.10g s, round trip %.6f s\n", i+1, s.offset, s.delay)
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// The NTP packet header of RFC 5905 section 7.3, the part SNTP needs.
const (
	ntpHeaderLen  = 48
	ntpModeClient = 3
	ntpModeServer = 4
	ntpLeapAlarm  = 3
	// ntpEraOffset is the number of seconds from 1900-01-01, NTP's era 0,
	// to the Unix epoch.
	ntpEraOffset = 2208988800
)

// ntpTimestamp is RFC 5905's 64-bit timestamp: seconds since 1900 in the
// high half, the fraction of a second in units of 2^-32 in the low half.
type ntpTimestamp uint64

func toNTPTimestamp(t time.Time) ntpTimestamp {
	secs := uint64(t.Unix() + ntpEraOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return ntpTimestamp(secs<<32 | frac)
}

// sub returns a-b in seconds. Taken in two's complement, the difference
// stays right across an era rollover (2036) while the two are within 68
// years of each other, as RFC 5905 section 6 intends.
func (a ntpTimestamp) sub(b ntpTimestamp) float64 {
	return float64(int64(a-b)) / (1 << 32)
}

// shortSeconds reads RFC 5905's 32-bit short format, 16.16 fixed point.
func shortSeconds(v uint32) float64 { return float64(v) / (1 << 16) }

// clockOffset is RFC 5905's on-wire calculation from the client's send
// time t1, the server's receive and send times t2 and t3, and the client's
// receive time t4: the offset θ of the server's clock from ours and the
// round-trip delay δ, both in seconds.
func clockOffset(t1, t2, t3, t4 ntpTimestamp) (offset, delay float64) {
	return (t2.sub(t1) + t3.sub(t4)) / 2, t4.sub(t1) - t3.sub(t2)
}

type ntpPacket struct {
	leap, version, mode uint8
	stratum             uint8
	poll, precision     int8
	rootDelay, rootDisp uint32
	refID               [4]byte
	reference, origin   ntpTimestamp
	receive, transmit   ntpTimestamp
}

// ntpRequest is the client request the twin sends: leap indicator 3 (the
// client's clock is not known to be synchronised), version 4, poll 2^4 s,
// precision 2^-6 s, root delay and dispersion of one second.
func ntpRequest(t1 ntpTimestamp) ntpPacket {
	return ntpPacket{
		leap: ntpLeapAlarm, version: 4, mode: ntpModeClient, poll: 4, precision: -6,
		rootDelay: 1 << 16, rootDisp: 1 << 16, transmit: t1,
	}
}

func (p ntpPacket) marshal() []byte {
	b := make([]byte, ntpHeaderLen)
	b[0] = p.leap<<6 | p.version&7<<3 | p.mode&7
	b[1] = p.stratum
	b[2] = byte(p.poll)
	b[3] = byte(p.precision)
	binary.BigEndian.PutUint32(b[4:], p.rootDelay)
	binary.BigEndian.PutUint32(b[8:], p.rootDisp)
	copy(b[12:16], p.refID[:])
	binary.BigEndian.PutUint64(b[16:], uint64(p.reference))
	binary.BigEndian.PutUint64(b[24:], uint64(p.origin))
	binary.BigEndian.PutUint64(b[32:], uint64(p.receive))
	binary.BigEndian.PutUint64(b[40:], uint64(p.transmit))
	return b
}

var errShortNTPPacket = errors.New("shorter than the 48-byte NTP header")

// parseNTPPacket reads the header; extension fields and a MAC after it are
// ignored, as an unauthenticated SNTP client may.
func parseNTPPacket(b []byte) (ntpPacket, error) {
	if len(b) < ntpHeaderLen {
		return ntpPacket{}, fmt.Errorf("parse NTP packet of %d bytes: %w", len(b), errShortNTPPacket)
	}
	p := ntpPacket{
		leap: b[0] >> 6, version: b[0] >> 3 & 7, mode: b[0] & 7,
		stratum: b[1], poll: int8(b[2]), precision: int8(b[3]),
		rootDelay: binary.BigEndian.Uint32(b[4:]), rootDisp: binary.BigEndian.Uint32(b[8:]),
		reference: ntpTimestamp(binary.BigEndian.Uint64(b[16:])),
		origin:    ntpTimestamp(binary.BigEndian.Uint64(b[24:])),
		receive:   ntpTimestamp(binary.BigEndian.Uint64(b[32:])),
		transmit:  ntpTimestamp(binary.BigEndian.Uint64(b[40:])),
	}
	copy(p.refID[:], b[12:16])
	return p, nil
}
