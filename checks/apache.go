package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_apache",
		Summary: "Apache busy and idle workers, connections and scoreboard from mod_status ?auto",
		New:     newApache,
	})
}

// apacheMaxBody bounds what is read of the status page. A ?auto page is a few
// kilobytes, its scoreboard one byte per slot; anything bigger is some other page.
const apacheMaxBody = 1 << 20

// apacheMetrics are the values -m can judge, in the order -h lists them.
// Each is also the label of its perfdata item.
var apacheMetrics = []string{"busy", "idle", "busy_pct", "conns"}

// apacheScoreboard are mod_status's worker states, in the order it documents
// them, with the name each gets in the long output and perfdata.
var apacheScoreboard = [...]struct {
	char        byte
	label, text string
}{
	{'_', "sb_waiting", "waiting"},
	{'S', "sb_starting", "starting"},
	{'R', "sb_reading", "reading"},
	{'W', "sb_sending", "sending"},
	{'K', "sb_keepalive", "keepalive"},
	{'D', "sb_dns", "dns lookup"},
	{'C', "sb_closing", "closing"},
	{'L', "sb_logging", "logging"},
	{'G', "sb_graceful", "graceful"},
	{'I', "sb_idle_cleanup", "idle cleanup"},
	{'.', "sb_open", "open"},
}

// apacheCheck is check_apache with its flags read: one GET of the status page a run.
type apacheCheck struct {
	url string
	// dialAddr is the host:port connected to, whatever host the URL names:
	// -I, or the host of -H. network is "tcp", or "tcp4"/"tcp6" for -4/-6.
	dialAddr, network string
	auth              *url.Userinfo
	ssl               tlsVersions
	client            *http.Client
	timeout           *timeoutFlag
	// thresholds holds, per metric, the ranges that judge it: -w/-c on the
	// metric of -m, and --idle-warning/--idle-critical on idle.
	thresholds map[string]nagios.Thresholds
}

func newApache(args []string) (Check, error) {
	f := newFlags("check_apache",
		"-H <vhost> | -I <IP-address> [-p <port>] [-u <url>] [-S[<version>]] [-a <user:password>] [-4|-6]\n"+
			"       [-t <timeout>] [-m busy|idle|busy_pct|conns] [-w <range>] [-c <range>]\n"+
			"       [--idle-warning <count>] [--idle-critical <count>]",
		"This plugin reads Apache's mod_status page in its machine-readable form\n"+
			"(server-status?auto) and reports busy and idle workers, connections and\n"+
			"requests per second (Apache's average since it started; ExtendedStatus On).\n"+
			"-w and -c are ranges on the metric chosen with -m; --idle-warning and\n"+
			"--idle-critical alert when too few workers are left idle. The perfdata also\n"+
			"counts the scoreboard's worker states (sb_waiting, sb_reading, ...).\n"+
			"A status other than 200, or no answer, is CRITICAL; a page that is not\n"+
			"mod_status ?auto output is UNKNOWN.")
	var o apacheFlags
	o.declare(f)
	return parseBuild(f, sslArgs(f, args), o.build)
}

// apacheFlags are check_apache's options as the command line gives them.
type apacheFlags struct {
	host, ip           string
	port               int
	path               string
	ssl                *string
	auth               string
	ipv4, ipv6         bool
	timeout            *timeoutFlag
	metric, warn, crit string
	idleWarn, idleCrit int
}

func (o *apacheFlags) declare(f *flagSet) {
	f.StringVarP(&o.host, "hostname", "H", "", "Host name for the Host header (virtual host); `ADDRESS`:PORT also connects to PORT")
	f.StringVarP(&o.ip, "IP-address", "I", "", "`ADDRESS` (IP or name) to connect to (default: the host of -H)")
	f.IntVarP(&o.port, "port", "p", 0, "`PORT` to connect to (default: 80, or 443 with -S)")
	f.StringVarP(&o.path, "url", "u", "/server-status?auto", "`PATH` of the mod_status page, with ?auto")
	o.ssl = sslFlag(f, "Connect with TLS, without verifying the certificate, as check_http does.\n`VERSION` (1, 1.1, 1.2 or 1.3; with a '+' suffix, that or newer) pins the protocol")
	f.StringVarP(&o.auth, "authorization", "a", "", "`AUTH_PAIR` is username:password for basic authentication")
	f.BoolVarP(&o.ipv4, "use-ipv4", "4", false, "Use IPv4 connection")
	f.BoolVarP(&o.ipv6, "use-ipv6", "6", false, "Use IPv6 connection")
	o.timeout = f.timeout(10, nagios.Critical)
	f.StringVarP(&o.metric, "metric", "m", "busy", "`METRIC` that -w and -c judge: busy (busy workers), idle (idle workers), busy_pct (busy workers\nin percent of scoreboard slots) or conns (ConnsTotal, or busy workers where the MPM does not report it)")
	f.StringVarP(&o.warn, "warning", "w", "", "`RANGE` of the metric that gives WARNING")
	f.StringVarP(&o.crit, "critical", "c", "", "`RANGE` of the metric that gives CRITICAL")
	f.IntVar(&o.idleWarn, "idle-warning", 0, "WARNING when fewer than `COUNT` workers are idle")
	f.IntVar(&o.idleCrit, "idle-critical", 0, "CRITICAL when fewer than `COUNT` workers are idle")
}

// build checks the options f parsed and makes the check.
func (o *apacheFlags) build(f *flagSet) (*apacheCheck, error) {
	if f.NArg() > 0 {
		return nil, f.failf("unexpected argument %q", f.Arg(0))
	}

	if !f.Changed("hostname") && !f.Changed("IP-address") {
		return nil, f.failf("-H or -I is required: the server to ask for its status")
	}
	vhost, vport, err := splitVirtualHost(o.host)
	if err != nil {
		return nil, f.failf("-H %q: %v", o.host, err)
	}
	vhost = unbracket(vhost)
	addr := strings.TrimSuffix(strings.TrimPrefix(o.ip, "["), "]")
	if f.Changed("IP-address") && addr == "" {
		return nil, f.failf("-I %q: empty address", o.ip)
	}
	if f.Changed("hostname") && vhost == "" {
		return nil, f.failf("-H %q: empty host name", o.host)
	}
	switch {
	case vhost == "":
		vhost = addr
	case addr == "":
		addr = vhost
	}

	useTLS := f.Changed("ssl")
	scheme, defaultPort := "http", 80
	if useTLS {
		scheme, defaultPort = "https", 443
	}
	port := o.port
	switch {
	case f.Changed("port"):
		if port < 1 || port > 65535 {
			return nil, f.failf("-p %d: want a port from 1 to 65535", port)
		}
	case vport != 0:
		port = vport
	default:
		port = defaultPort
	}
	if !strings.HasPrefix(o.path, "/") {
		return nil, f.failf("-u %q: want a path starting with /", o.path)
	}
	// The URL gives the Host header, which names -H's own port if it has one
	// (-p may still connect elsewhere) and, as in check_http, leaves out the
	// scheme's default port.
	hostPort := port
	if vport != 0 {
		hostPort = vport
	}
	urlHost := net.JoinHostPort(vhost, strconv.Itoa(hostPort))
	if hostPort == defaultPort {
		urlHost = strings.TrimSuffix(urlHost, ":"+strconv.Itoa(hostPort))
	}
	u, err := url.Parse(scheme + "://" + urlHost + o.path)
	if err != nil {
		return nil, f.failf("-H %q with -u %q: not a URL: %v", vhost, o.path, err)
	}

	c := &apacheCheck{
		url:        u.String(),
		dialAddr:   net.JoinHostPort(addr, strconv.Itoa(port)),
		network:    "tcp",
		timeout:    o.timeout,
		thresholds: map[string]nagios.Thresholds{},
	}
	switch {
	case o.ipv4 && o.ipv6:
		return nil, f.failf("-4 and -6 exclude each other")
	case o.ipv4:
		c.network = "tcp4"
	case o.ipv6:
		c.network = "tcp6"
	}
	if useTLS {
		if c.ssl, err = parseTLSVersions(*o.ssl); err != nil {
			return nil, f.failf("-S %q: %v", *o.ssl, err)
		}
	}

	if f.Changed("authorization") {
		user, password, ok := strings.Cut(o.auth, ":")
		if !ok {
			// The text is a secret: the message must not echo it.
			return nil, f.failf("-a: want USERNAME:PASSWORD, found no ':'")
		}
		c.auth = url.UserPassword(user, password)
	}

	if !slices.Contains(apacheMetrics, o.metric) {
		return nil, f.failf("-m %q: want one of %s", o.metric, strings.Join(apacheMetrics, ", "))
	}
	t, err := f.thresholds(o.warn, o.crit)
	if err != nil {
		return nil, err
	}
	c.thresholds[o.metric] = t
	if f.Changed("idle-warning") || f.Changed("idle-critical") {
		if o.metric == "idle" {
			return nil, f.failf("--idle-warning and --idle-critical judge idle workers: with -m idle use -w and -c")
		}
		if c.thresholds["idle"], err = apacheIdleThresholds(f, o.idleWarn, o.idleCrit); err != nil {
			return nil, err
		}
	}

	dialer := &net.Dialer{}
	c.client = &http.Client{
		Transport: &http.Transport{
			// A check measures this server, so it goes straight to -I (or -H),
			// never through a proxy from the environment.
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, c.network, c.dialAddr)
			},
			TLSClientConfig: c.ssl.config(),
			// One request per run: idle connections would only linger between runs.
			DisableKeepAlives: true,
		},
		// A redirect is reported, not followed: the status page has moved or
		// wants https, and either way the check is misconfigured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// apacheIdleThresholds reads --idle-warning and --idle-critical: a count n
// alerts below n, which is the range "n:".
func apacheIdleThresholds(f *flagSet, warn, crit int) (nagios.Thresholds, error) {
	var t nagios.Thresholds
	for _, o := range []struct {
		name string
		n    int
		dst  **nagios.Range
	}{{"idle-warning", warn, &t.Warn}, {"idle-critical", crit, &t.Crit}} {
		if !f.Changed(o.name) {
			continue
		}
		if o.n < 0 {
			return t, f.failf("--%s %d: want a count of workers, 0 or more", o.name, o.n)
		}
		*o.dst = &nagios.Range{Start: float64(o.n), End: math.Inf(1)}
	}
	if t.Warn != nil && t.Crit != nil && t.Crit.Start > t.Warn.Start {
		return t, f.failf("--idle-critical %d is above --idle-warning %d: fewer idle workers must be the worse state", crit, warn)
	}
	return t, nil
}

// Timeout is -t: the whole request, connecting included, must finish in it.
func (c *apacheCheck) Timeout() time.Duration { return c.timeout.d }

func (c *apacheCheck) Run(ctx context.Context) nagios.Result {
	body, failed := c.fetch(ctx)
	if failed != nil {
		return *failed
	}
	st, err := parseApacheStatus(body)
	if err != nil {
		return nagios.Resultf(nagios.Unknown, "APACHE UNKNOWN - %s: %v", c.url, err)
	}
	return c.judge(st)
}

// fetch gets the status page, or the result that reports why it could not.
func (c *apacheCheck) fetch(ctx context.Context) (string, *nagios.Result) {
	if c.ssl.unsupported != "" {
		return "", apacheFailure(nagios.Critical, "%s", c.ssl.unsupportedText())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return "", apacheFailure(nagios.Unknown, "build the request for %s: %v", c.url, err)
	}
	req.Header.Set("User-Agent", fmt.Sprintf("check_apache/v%s (immune)", Version))
	if c.auth != nil {
		password, _ := c.auth.Password()
		req.SetBasicAuth(c.auth.Username(), password)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", c.transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", apacheFailure(nagios.Critical, "%s %s from %s", resp.Proto, resp.Status, c.url)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, apacheMaxBody+1))
	if err != nil {
		return "", c.transportFailure(ctx, fmt.Errorf("read the response: %w", err))
	}
	if len(b) > apacheMaxBody {
		return "", apacheFailure(nagios.Unknown, "%s: the page is over %d bytes: not mod_status ?auto output", c.url, apacheMaxBody)
	}
	return string(b), nil
}

// transportFailure reports a request that got no answer: a timeout is -t's
// state, as check_http's socket timeout, and anything else CRITICAL.
func (c *apacheCheck) transportFailure(ctx context.Context, err error) *nagios.Result {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return apacheFailure(c.timeout.state, "Socket timeout after %g seconds", c.timeout.d.Seconds())
	case timedOut(ctx):
		return apacheFailure(nagios.Unknown, "check cancelled: %v", ctx.Err())
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return apacheFailure(nagios.Critical, "Unable to open TCP socket: %v", opErr)
	}
	return apacheFailure(nagios.Critical, "GET %s: %v", c.url, err)
}

func apacheFailure(state nagios.State, format string, args ...any) *nagios.Result {
	r := nagios.Resultf(state, "APACHE %s - %s", state, fmt.Sprintf(format, args...))
	return &r
}

// judge turns a status page into the check's result.
func (c *apacheCheck) judge(st apacheStatus) nagios.Result {
	conns := st.Busy
	if st.Conns != nil {
		conns = *st.Conns
	}
	values := map[string]float64{"busy": float64(st.Busy), "idle": float64(st.Idle), "conns": float64(conns)}
	var slotsMax *float64
	if st.Slots > 0 {
		slotsMax = nagios.Float(float64(st.Slots))
		// Rounded as printed, so the state agrees with the number shown.
		values["busy_pct"] = math.Round(10000*float64(st.Busy)/float64(st.Slots)) / 100
	}

	state := nagios.OK
	for metric, t := range c.thresholds {
		v, ok := values[metric]
		if !ok {
			return nagios.Resultf(nagios.Unknown, "APACHE UNKNOWN - %s has no Scoreboard line to compute %s from", c.url, metric)
		}
		state = nagios.Worst(state, t.State(v))
	}

	gauge := func(label, uom string, max *float64) nagios.Perf {
		t := c.thresholds[label]
		return nagios.Perf{Label: label, Value: values[label], UOM: uom, Warn: t.Warn, Crit: t.Crit, Min: nagios.Float(0), Max: max}
	}
	r := nagios.Result{State: state}
	r.Perf = append(r.Perf, gauge("busy", "", slotsMax), gauge("idle", "", slotsMax))
	var line strings.Builder
	fmt.Fprintf(&line, "APACHE %s - %d busy workers", state, st.Busy)
	if slotsMax != nil {
		fmt.Fprintf(&line, " (%s%%)", nagios.FormatNumber(values["busy_pct"], -1))
		r.Perf = append(r.Perf, gauge("busy_pct", "%", nagios.Float(100)))
	}
	fmt.Fprintf(&line, ", %d idle, %d connections", st.Idle, conns)
	r.Perf = append(r.Perf, gauge("conns", "", nil))
	if st.ReqPerSec != nil {
		fmt.Fprintf(&line, ", %s requests/s", nagios.FormatNumber(math.Round(*st.ReqPerSec*1000)/1000, -1))
		r.Perf = append(r.Perf, nagios.Perf{Label: "req_per_sec", Value: *st.ReqPerSec, Min: nagios.Float(0)})
	}
	r.Output = line.String()

	var long []string
	var server []string
	if st.Version != "" {
		server = append(server, st.Version)
	}
	if st.MPM != "" {
		server = append(server, st.MPM+" MPM")
	}
	if st.Uptime != nil {
		up := fmt.Sprintf("%ds", *st.Uptime)
		// time.Duration spells it out ("36h30m38s") up to its 292 years.
		if *st.Uptime <= math.MaxInt64/int64(time.Second) {
			up = (time.Duration(*st.Uptime) * time.Second).String()
		}
		server = append(server, "up "+up)
	}
	if len(server) > 0 {
		long = append(long, strings.Join(server, ", "))
	}
	if st.Accesses != nil || st.KBytes != nil {
		var parts []string
		for _, counter := range []struct {
			label, text string
			n           *int64
		}{{"accesses", "%d requests", st.Accesses}, {"kbytes", "%d kB sent", st.KBytes}} {
			if counter.n != nil {
				parts = append(parts, fmt.Sprintf(counter.text, *counter.n))
				r.Perf = append(r.Perf, nagios.Perf{Label: counter.label, Value: float64(*counter.n), UOM: "c"})
			}
		}
		long = append(long, "Since start: "+strings.Join(parts, ", "))
	}
	var async []string
	for _, a := range []struct {
		label, text string
		n           *int64
	}{{"async_writing", "writing", st.AsyncWriting}, {"async_keepalive", "keepalive", st.AsyncKeepAlive}, {"async_closing", "closing", st.AsyncClosing}} {
		if a.n != nil {
			async = append(async, fmt.Sprintf("%d %s", *a.n, a.text))
			r.Perf = append(r.Perf, nagios.Perf{Label: a.label, Value: float64(*a.n), Min: nagios.Float(0)})
		}
	}
	if len(async) > 0 {
		long = append(long, "Async connections: "+strings.Join(async, ", "))
	}
	if st.Slots > 0 {
		parts := make([]string, len(apacheScoreboard))
		for i, s := range apacheScoreboard {
			n := st.Scoreboard[s.char]
			parts[i] = fmt.Sprintf("%d %s", n, s.text)
			r.Perf = append(r.Perf, nagios.Perf{Label: s.label, Value: float64(n), Min: nagios.Float(0), Max: slotsMax})
		}
		long = append(long, fmt.Sprintf("Scoreboard, %d slots: %s", st.Slots, strings.Join(parts, ", ")))
	}
	r.Long = strings.Join(long, "\n")
	return r
}

// apacheStatus is what one mod_status ?auto page reports. Which lines a page
// has depends on the Apache version, the MPM and ExtendedStatus, so all but
// the worker counts are optional: nil, empty or zero when absent.
type apacheStatus struct {
	Version, MPM                               string // ServerVersion and ServerMPM, printed by later 2.4 releases
	Uptime                                     *int64 // seconds: ServerUptimeSeconds, or Uptime with ExtendedStatus On
	Busy, Idle                                 int64  // BusyWorkers and IdleWorkers
	Conns                                      *int64 // ConnsTotal: event MPM
	AsyncWriting, AsyncKeepAlive, AsyncClosing *int64
	// Total Accesses, Total kBytes and ReqPerSec come with ExtendedStatus On.
	Accesses, KBytes *int64
	ReqPerSec        *float64
	Slots            int // scoreboard slots, 0 without a Scoreboard line
	Scoreboard       map[byte]int
}

// parseApacheStatus reads the text of a mod_status ?auto page: "Key: value"
// lines, among others it skips (the server name that 2.4 prints first, the
// TLS session cache status mod_ssl adds after the scoreboard).
func parseApacheStatus(text string) (apacheStatus, error) {
	var st apacheStatus
	trimmed := strings.TrimSpace(text)
	switch {
	case trimmed == "":
		return st, errors.New("empty page: not mod_status ?auto output")
	case strings.HasPrefix(trimmed, "<"):
		return st, errors.New("got an HTML page, not mod_status ?auto output (does -u end in ?auto?)")
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		key, value, ok := strings.Cut(strings.TrimRight(line, "\r"), ": ")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		var err error
		switch key {
		case "ServerVersion":
			st.Version = value
		case "ServerMPM":
			st.MPM = value
		case "ServerUptimeSeconds", "Uptime":
			st.Uptime, err = apacheOptional(apacheCount(value))
		case "BusyWorkers":
			st.Busy, err = apacheCount(value)
		case "IdleWorkers":
			st.Idle, err = apacheCount(value)
		case "ConnsTotal":
			st.Conns, err = apacheOptional(apacheCount(value))
		case "ConnsAsyncWriting":
			st.AsyncWriting, err = apacheOptional(apacheCount(value))
		case "ConnsAsyncKeepAlive":
			st.AsyncKeepAlive, err = apacheOptional(apacheCount(value))
		case "ConnsAsyncClosing":
			st.AsyncClosing, err = apacheOptional(apacheCount(value))
		case "Total Accesses":
			st.Accesses, err = apacheOptional(apacheCount(value))
		case "Total kBytes":
			st.KBytes, err = apacheOptional(apacheCount(value))
		case "ReqPerSec":
			st.ReqPerSec, err = apacheOptional(apacheRate(value))
		case "Scoreboard":
			st.Slots = len(value)
			st.Scoreboard = map[byte]int{}
			for i := 0; i < len(value); i++ {
				st.Scoreboard[value[i]]++
			}
		default:
			continue
		}
		if err != nil {
			return apacheStatus{}, fmt.Errorf("%s: %w", key, err)
		}
		seen[key] = true
	}
	for _, key := range []string{"BusyWorkers", "IdleWorkers"} {
		if !seen[key] {
			return apacheStatus{}, fmt.Errorf("no %s line: not mod_status ?auto output", key)
		}
	}
	return st, nil
}

func apacheCount(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count", s)
	}
	return n, nil
}

// apacheRate reads a number as Apache prints it with %g: ".00308789", "2.5", "7.89602e-06".
func apacheRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a rate", s)
	}
	return v, nil
}

// apacheOptional makes a parsed value an optional field.
func apacheOptional[T any](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}
