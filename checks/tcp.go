package checks

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_tcp",
		Summary: "TCP connection: response time, optional send/expect/quit strings and TLS",
		New:     newTCP,
	})
}

// tcpReadIdle is how long check_tcp waits for more of a response that has
// not matched yet, as the twin's READ_TIMEOUT does.
const tcpReadIdle = 2 * time.Second

// tcpReadChunk is the twin's receive buffer: -m counts in reads of this size.
const tcpReadChunk = 1024

// tcpResponseLimit bounds what we hold of a response that never matches:
// past it the response is judged as it stands.
const tcpResponseLimit = 1 << 20

type tcpCheck struct {
	host      string
	hostGiven bool // -H was used; a positional host is not named in the output
	port      int
	network   string
	send      string
	quit      string
	expect    []string
	expectAll bool
	refuse    nagios.State
	mismatch  nagios.State
	hide      bool
	maxBytes  int
	delay     time.Duration
	warn      float64
	crit      float64
	warnSet   bool
	critSet   bool
	useTLS    bool
	sni       string
	checkCert bool
	certDays  certDays
	timeout   *timeoutFlag
}

func newTCP(args []string) (Check, error) {
	f := newFlags("check_tcp", "-H host -p port [-w <warning time>] [-c <critical time>] [-s <send string>]\n"+
		"[-e <expect string>] [-q <quit string>][-m <maximum bytes>] [-d <delay>]\n"+
		"[-t <timeout seconds>] [-r <refuse state>] [-M <mismatch state>] [-4] [-6] [-j]\n"+
		"[-D <warn days cert expire>[,<crit days cert expire>]] [-S <use SSL>] [-E]",
		"This plugin tests TCP connections with the specified host (or unix socket).")
	var o tcpFlags
	o.declare(f)
	return parseBuild(f, args, o.build)
}

// tcpFlags are check_tcp's options as the command line gives them.
type tcpFlags struct {
	host, port string
	network    string
	// escape is -E, which changes only the -s and -q options after it, as
	// in the twin: they are unescaped as they are read.
	escape                bool
	send, quit            string
	expect                []string
	expectAll             bool
	refuse, mismatch      string
	hide                  bool
	maxBytes, delay, cert string
	useTLS                bool
	sni                   string
	warn, crit            string
	timeout               *timeoutFlag
}

func (o *tcpFlags) declare(f *flagSet) {
	o.network = "tcp"
	f.StringVarP(&o.host, "hostname", "H", "", "Host name, IP Address, or unix socket (must be an absolute path)")
	f.StringVarP(&o.port, "port", "p", "", "Port number (default: none)")
	f.BoolFuncP("use-ipv4", "4", "Use IPv4 connection", func(string) error { o.network = "tcp4"; return nil })
	f.BoolFuncP("use-ipv6", "6", "Use IPv6 connection", func(string) error { o.network = "tcp6"; return nil })
	f.BoolFuncP("escape", "E", `Can use \n, \r, \t or \\ in send or quit string. Must come before send or quit option`,
		func(string) error { o.escape = true; return nil })
	f.FuncP("send", "s", "String to send to the server", func(s string) error {
		if o.escape {
			s = tcpUnescape(s)
		}
		o.send = s
		return nil
	})
	f.StringArrayVarP(&o.expect, "expect", "e", nil, "String to expect in server response (may be repeated)")
	f.BoolVarP(&o.expectAll, "all", "A", false, "All expect strings need to occur in server response. Default is any")
	f.FuncP("quit", "q", "String to send server to initiate a clean close of the connection", func(s string) error {
		if o.escape {
			o.quit = tcpUnescape(s)
		} else {
			o.quit = s + "\r\n"
		}
		return nil
	})
	f.StringVarP(&o.refuse, "refuse", "r", "crit", "Accept TCP refusals with states ok, warn, crit")
	f.StringVarP(&o.mismatch, "mismatch", "M", "warn", "Accept expected string mismatches with states ok, warn, crit")
	f.BoolVarP(&o.hide, "jail", "j", false, "Hide output from TCP socket")
	f.StringVarP(&o.maxBytes, "maxbytes", "m", "", "Close connection once more than this number of bytes are received")
	f.StringVarP(&o.delay, "delay", "d", "", "Seconds to wait between sending string and polling for response")
	f.StringVarP(&o.cert, "certificate", "D", "", "Minimum number of days a certificate has to be valid: WARN[,CRIT] (CRIT default 0)")
	f.BoolVarP(&o.useTLS, "ssl", "S", false, "Use SSL for the connection.")
	f.StringVar(&o.sni, "sni", "", "SSL server_name")
	f.StringVarP(&o.warn, "warning", "w", "", "Response time to result in warning status (seconds)")
	f.StringVarP(&o.crit, "critical", "c", "", "Response time to result in critical status (seconds)")
	o.timeout = f.timeout(10, nagios.Critical)
}

// build checks the options f parsed and makes the check.
func (o *tcpFlags) build(f *flagSet) (*tcpCheck, error) {
	c := &tcpCheck{
		host: "127.0.0.1", network: o.network, send: o.send, quit: o.quit,
		expect: o.expect, expectAll: o.expectAll, hide: o.hide, useTLS: o.useTLS, sni: o.sni,
		timeout: o.timeout,
	}
	if f.Changed("hostname") {
		c.host, c.hostGiven = o.host, true
	}
	switch rest := f.Args(); {
	case len(rest) > 1 || (len(rest) == 1 && c.hostGiven):
		return nil, f.failf("unexpected argument %q", rest[len(rest)-1])
	case len(rest) == 1:
		c.host = rest[0]
	}
	if c.host == "" {
		return nil, f.failf("-H: you must provide a server address")
	}
	var err error
	if f.Changed("port") {
		if c.port, err = tcpPositiveInt(o.port); err != nil || c.port > 65535 {
			return nil, f.failf("-p %q: port must be an integer from 1 to 65535", o.port)
		}
	}
	if c.refuse, err = parseTCPState(o.refuse); err != nil {
		return nil, f.failf("-r %q: refuse must be one of ok, warn, crit", o.refuse)
	}
	if c.mismatch, err = parseTCPState(o.mismatch); err != nil {
		return nil, f.failf("-M %q: mismatch must be one of ok, warn, crit", o.mismatch)
	}
	if f.Changed("maxbytes") {
		if c.maxBytes, err = tcpPositiveInt(o.maxBytes); err != nil {
			return nil, f.failf("-m %q: maxbytes must be a positive integer", o.maxBytes)
		}
	}
	if f.Changed("delay") {
		n, err := tcpPositiveInt(o.delay)
		if err != nil {
			return nil, f.failf("-d %q: delay must be a positive integer", o.delay)
		}
		c.delay = time.Duration(n) * time.Second
	}
	if f.Changed("certificate") {
		if c.certDays, err = parseCertDays(o.cert); err != nil {
			return nil, f.failf("-D %q: %v", o.cert, err)
		}
		c.checkCert, c.useTLS = true, true
	}
	if f.Changed("sni") {
		c.useTLS = true
	}
	if f.Changed("warning") {
		if c.warn, err = tcpSeconds(o.warn); err != nil {
			return nil, f.failf("-w %q: warning time must be a number of seconds", o.warn)
		}
		c.warnSet = true
	}
	if f.Changed("critical") {
		if c.crit, err = tcpSeconds(o.crit); err != nil {
			return nil, f.failf("-c %q: critical time must be a number of seconds", o.crit)
		}
		c.critSet = true
	}
	return c, nil
}

// tcpPositiveInt reads an integer above zero.
func tcpPositiveInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive integer", s)
	}
	return n, nil
}

// tcpSeconds reads a finite number of seconds.
func tcpSeconds(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// parseTCPState reads the -r and -M values. Like the twin it looks only at
// the start of the word, so "warning" and "critical" work too.
func parseTCPState(s string) (nagios.State, error) {
	switch {
	case strings.HasPrefix(s, "ok"):
		return nagios.OK, nil
	case strings.HasPrefix(s, "warn"):
		return nagios.Warning, nil
	case strings.HasPrefix(s, "crit"):
		return nagios.Critical, nil
	}
	return nagios.Unknown, fmt.Errorf("%q is not ok, warn or crit", s)
}

// tcpUnescape turns \n, \r, \t and \\ into the characters they name; any
// other escaped character stands for itself, as np_escaped_string does.
func tcpUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// Timeout is the -t option; Run keeps to it as well.
func (c *tcpCheck) Timeout() time.Duration { return c.timeout.d }

func (c *tcpCheck) Run(ctx context.Context) nagios.Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout.d)
	defer cancel()
	start := time.Now()
	conn, err := dialHost(ctx, c.network, c.host, c.port)
	if err != nil {
		switch {
		case timedOut(ctx):
			return socketTimeout(c.timeout)
		case unresolvable(err):
			return nagios.Resultf(nagios.Critical, "TCP CRITICAL - Invalid hostname, address or socket: %s", c.host)
		}
		// Any failure to connect, not only a refusal, takes the -r state in the twin.
		return nagios.Resultf(c.refuse, "%s", connectFailure(c.host, c.port, err))
	}
	defer conn.Close()
	// Closing the socket when ctx ends unblocks any read or write at once,
	// whatever deadline the read loop has set since.
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	var rw io.ReadWriter = conn
	var certLine string
	if c.useTLS {
		tc, err := tlsHandshake(ctx, conn, &tls.Config{InsecureSkipVerify: true, ServerName: c.sni})
		if err != nil {
			if timedOut(ctx) {
				return socketTimeout(c.timeout)
			}
			return tlsFailure(err)
		}
		if c.checkCert {
			r := certExpiry(tc.ConnectionState().PeerCertificates, c.certDays, time.Now())
			if r.State != nagios.OK {
				return r
			}
			certLine = r.Output + "\n"
		}
		rw = tc
	}

	// Write errors show up as a failed read, as in the twin, which does not
	// check its sends.
	if c.send != "" {
		_, _ = io.WriteString(rw, c.send)
	}
	if c.delay > 0 {
		select {
		case <-ctx.Done():
			return socketTimeout(c.timeout)
		case <-time.After(c.delay):
		}
		start = start.Add(c.delay)
	}

	match := tcpExpectNone
	var got []byte
	if len(c.expect) > 0 {
		deadline, _ := ctx.Deadline()
		buf := make([]byte, tcpReadChunk)
		for {
			n, err := rw.Read(buf)
			got = append(got, buf[:n]...)
			if n > 0 {
				// Like the twin, stop before judging: a first read that
				// fills -m leaves the response unjudged, and so accepted.
				if c.maxBytes > 0 && len(got) >= c.maxBytes {
					break
				}
				if match = tcpExpectMatch(tcpCString(got), c.expect, c.expectAll); match != tcpExpectRetry || len(got) >= tcpResponseLimit {
					break
				}
			}
			if err != nil {
				if timedOut(ctx) {
					return socketTimeout(c.timeout)
				}
				// The end of the stream, or no more data within tcpReadIdle.
				break
			}
			if err := conn.SetReadDeadline(tcpEarliest(deadline, time.Now().Add(tcpReadIdle))); err != nil {
				break
			}
		}
		if match == tcpExpectRetry {
			match = tcpExpectFailed
		}
		if len(got) == 0 {
			return nagios.Resultf(nagios.Critical, "No data received from host")
		}
	}
	if c.quit != "" {
		_, _ = io.WriteString(rw, c.quit)
	}
	conn.Close()
	elapsed := time.Since(start).Seconds()
	return c.judge(elapsed, match, got, certLine)
}

// judge builds the twin's result from what one connection gave.
func (c *tcpCheck) judge(elapsed float64, match tcpExpectResult, got []byte, certLine string) nagios.Result {
	state := nagios.OK
	switch {
	case c.critSet && elapsed > c.crit:
		state = nagios.Critical
	case c.warnSet && elapsed > c.warn:
		state = nagios.Warning
	}
	failed := match == tcpExpectFailed
	if failed && state != nagios.Critical {
		state = c.mismatch
	}
	text, shown := tcpTrimResponse(got)

	var b strings.Builder
	fmt.Fprintf(&b, "%sTCP %s - ", certLine, state)
	if failed && shown && !c.hide {
		b.WriteString("Unexpected response from host/socket: " + text)
	} else {
		if failed {
			b.WriteString("Unexpected response from host/socket on ")
		} else {
			fmt.Fprintf(&b, "%.3f second response time on ", elapsed)
		}
		switch {
		case isSocket(c.host):
			b.WriteString("socket " + c.host)
		case c.hostGiven:
			fmt.Fprintf(&b, "%s port %d", c.host, c.port)
		default:
			fmt.Fprintf(&b, "port %d", c.port)
		}
	}
	if !failed && !c.hide && shown {
		b.WriteString(" [" + text + "]")
	}

	p := nagios.Perf{Label: "time", Value: elapsed, UOM: "s", Precision: 6,
		Min: nagios.Float(0), Max: nagios.Float(c.timeout.d.Seconds())}
	// A mismatch zeroes the thresholds in the twin's perfdata.
	if c.warnSet {
		p.Warn = &nagios.Range{End: c.warn}
		if failed {
			p.Warn = &nagios.Range{}
		}
	}
	if c.critSet {
		p.Crit = &nagios.Range{End: c.crit}
		if failed {
			p.Crit = &nagios.Range{}
		}
	}
	return nagios.Result{State: state, Output: b.String(), Perf: []nagios.Perf{p}}
}

// tcpExpectResult is how a response compares with the -e strings.
type tcpExpectResult int

const (
	tcpExpectNone   tcpExpectResult = iota // nothing judged: no -e, or -m stopped the first read
	tcpExpectRetry                         // no match yet: read on
	tcpExpectFailed                        // the response ended without a match
	tcpExpectMatched
)

// tcpExpectMatch looks for the expected strings anywhere in the response:
// one is enough, or all of them with -A.
func tcpExpectMatch(got string, expect []string, all bool) tcpExpectResult {
	found := 0
	for _, e := range expect {
		if strings.Contains(got, e) {
			found++
		}
	}
	if (all && found == len(expect)) || (!all && found > 0) {
		return tcpExpectMatched
	}
	return tcpExpectRetry
}

// tcpCString is b as the twin's C string functions see it: up to the first NUL.
func tcpCString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// tcpTrimResponse strips trailing white space from the response as the twin
// does, quirks included: the first byte is never looked at, and a
// response left with a single byte counts as empty (shown is false).
func tcpTrimResponse(got []byte) (text string, shown bool) {
	n := len(got) - 1
	for n > 0 && tcpIsSpace(got[n]) {
		n--
	}
	if n <= 0 {
		return "", false
	}
	return tcpCString(got[:n+1]), true
}

func tcpIsSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// tcpEarliest is the earlier of two times, where a zero a is no deadline.
func tcpEarliest(a, b time.Time) time.Time {
	if !a.IsZero() && a.Before(b) {
		return a
	}
	return b
}
