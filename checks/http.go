package checks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_http",
		Summary: "HTTP(S) request: status, content, response time, redirects, certificate expiry",
		New:     newHTTP,
	})
}

const (
	// httpHeadLimit bounds the status line and headers we hold: a server
	// that never ends its headers cannot fill our memory.
	httpHeadLimit = 1 << 20
	// httpBodyLimit bounds the body kept for -s, -r and -B. Bytes past it
	// are still read and counted in the size.
	httpBodyLimit = 16 << 20
)

// httpTarget is where one request goes. A followed redirect replaces it.
type httpTarget struct {
	scheme      string // as the twin keeps it: "http" until a redirect names another
	hostName    string // the virtual host; empty sends HTTP/1.0 without a Host header
	address     string // where to connect
	port        int
	virtualPort int // the port the Host header names
	url         string
	tls         bool
}

// Redirect stickiness for -f sticky and stickyport.
const (
	stickyHost = 1 << iota
	stickyPort
)

type httpCheck struct {
	target            httpTarget
	network           string
	method            string
	ssl               tlsVersions
	sni               bool
	clientCert        []tls.Certificate
	checkCert         bool
	continueAfterCert bool
	certDays          certDays
	expect            string
	expectSet         bool
	headerExpect      string
	bodyExpect        string
	re                *regexp.Regexp
	invertRegex       bool
	thresholds        nagios.Thresholds
	timeout           *timeoutFlag
	onRedirect        nagios.State
	follow            bool
	sticky            int
	maxRedirs         int
	auth, proxyAuth   string
	userAgent         string
	headers           []string
	post              string
	hasPost           bool
	contentType       string
	minPage, maxPage  int
	noBody            bool
	maxAge            int // seconds; negative when -M is not given
	extendedPerf      bool
	showBody          bool
}

func newHTTP(args []string) (Check, error) {
	// No '|' in the usage: Nagios would read what follows it as perfdata.
	f := newFlags("check_http", "{-H <vhost> or -I <IP-address>} [-u <uri>] [-p <port>]\n"+
		"       [-J <client certificate file>] [-K <private key>]\n"+
		"       [-w <warn time>] [-c <critical time>] [-t <timeout>] [-E] [-a auth]\n"+
		"       [-b proxy_auth] [-f {ok, warning, critical, unknown, follow, sticky or stickyport}]\n"+
		"       [-e <expect>] [-d string] [-s string] [-l] [-r <regex>] [-R <case-insensitive regex>]\n"+
		"       [-P string] [-m <min_pg_size>:<max_pg_size>] [-4] [-6] [-N] [-M <age>]\n"+
		"       [-A string] [-k string] [-S <version>] [--sni]\n"+
		"       [-T <content-type>] [-j method]\n"+
		"check_http {-H <vhost> or -I <IP-address>} -C <warn_age>[,<crit_age>]\n"+
		"       [-p <port>] [-t <timeout>] [-4] [-6] [--sni]",
		"This plugin tests the HTTP service on the specified host. It can test\n"+
			"normal (http) and secure (https) servers, follow redirects, search for\n"+
			"strings and regular expressions, check connection times, and report on\n"+
			"certificate expiration times. Like its twin it does not verify the\n"+
			"server certificate's name or chain.")
	c := &httpCheck{
		network:    "tcp",
		userAgent:  fmt.Sprintf("check_http/v%s (immune)", Version),
		expect:     "HTTP/1.",
		onRedirect: nagios.OK,
		maxRedirs:  15,
		maxAge:     -1,
	}
	hostName := f.StringP("hostname", "H", "", "Host name argument for servers using host headers (virtual host); append a port to include it in the header (eg: example.com:5000)")
	address := f.StringP("IP-address", "I", "", "IP address or name (use numeric address if possible to bypass DNS lookup).")
	port := f.StringP("port", "p", "", "Port number (default: 80)")
	f.BoolFuncP("use-ipv4", "4", "Use IPv4 connection", func(string) error { c.network = "tcp4"; return nil })
	f.BoolFuncP("use-ipv6", "6", "Use IPv6 connection", func(string) error { c.network = "tcp6"; return nil })
	ssl := sslFlag(f, "Connect via SSL. Port defaults to 443. VERSION is optional, and prevents auto-negotiation (1 = TLSv1, 1.1 = TLSv1.1, 1.2 = TLSv1.2, 1.3 = TLSv1.3). With a '+' suffix, newer versions are also accepted.")
	f.BoolVar(&c.sni, "sni", false, "Enable SSL/TLS hostname extension support (SNI)")
	cert := f.StringP("certificate", "C", "", "Minimum number of days a certificate has to be valid: WARN[,CRIT]. Port defaults to 443; the URL is not checked unless --continue-after-certificate")
	f.BoolVar(&c.continueAfterCert, "continue-after-certificate", false, "Allows the HTTP check to continue after performing the certificate check.")
	clientCert := f.StringP("client-cert", "J", "", "Name of file that contains the client certificate (PEM format)")
	clientKey := f.StringP("private-key", "K", "", "Name of file containing the private key (PEM format) matching the client certificate")
	expect := f.StringP("expect", "e", "", "Comma-delimited list of strings, at least one of them is expected in the first (status) line of the server response (default: HTTP/1.); skips all other status line logic")
	f.StringVarP(&c.headerExpect, "header-string", "d", "", "String to expect in the response headers")
	f.StringVarP(&c.bodyExpect, "string", "s", "", "String to expect in the content")
	url := f.StringP("url", "u", "/", "URL to GET or POST")
	post := f.StringP("post", "P", "", "URL encoded http POST data")
	method := f.StringP("method", "j", "", "Set HTTP method (for example: HEAD, OPTIONS, TRACE, PUT, DELETE)")
	f.BoolVarP(&c.noBody, "no-body", "N", false, "Don't wait for document body: stop reading after headers.")
	maxAge := f.StringP("max-age", "M", "", `Warn if document is more than SECONDS old. the number can also be of the form "10m" for minutes, "10h" for hours, or "10d" for days.`)
	f.StringVarP(&c.contentType, "content-type", "T", "", "specify Content-Type header media type when POSTing")
	// As in the twin, -l and -R change how the regular expressions after
	// them compile, so the flags are read in command-line order.
	lineSpan, foldCase := false, false
	var reErr error
	setRegex := func(flag string) func(string) error {
		return func(expr string) error {
			if flag == "-R" {
				foldCase = true
			}
			re, err := compileHTTPRegex(expr, lineSpan, foldCase)
			if err != nil && reErr == nil {
				reErr = fmt.Errorf("%s %q: could not compile regular expression: %w", flag, expr, err)
			}
			c.re = re
			return nil
		}
	}
	f.BoolFuncP("linespan", "l", "Allow regex to span newlines (must precede -r or -R)", func(string) error { lineSpan = true; return nil })
	f.FuncP("regex", "r", "Search page for regex STRING", setRegex("-r"))
	f.Func("ereg", "Search page for regex STRING", setRegex("--ereg"))
	f.FuncP("eregi", "R", "Search page for case-insensitive regex STRING", setRegex("-R"))
	f.BoolVar(&c.invertRegex, "invert-regex", false, "Return CRITICAL if found, OK if not")
	f.StringVarP(&c.auth, "authorization", "a", "", "Username:password on sites with basic authentication")
	f.StringVarP(&c.proxyAuth, "proxy-authorization", "b", "", "Username:password on proxy-servers with basic authentication")
	userAgent := f.StringP("useragent", "A", "", "String to be sent in http header as \"User Agent\"")
	f.StringArrayVarP(&c.headers, "header", "k", nil, "Any other tags to be sent in http header. Use multiple times for additional headers")
	f.BoolVarP(&c.extendedPerf, "extended-perfdata", "E", false, "Print additional performance data")
	f.BoolVarP(&c.showBody, "show-body", "B", false, "Print body content below status line")
	onRedirect := f.StringP("onredirect", "f", "ok", "How to handle redirected pages: ok, warning, critical, unknown, follow, sticky (follow, but stick to the specified IP address) or stickyport (also keep the port)")
	f.IntVar(&c.maxRedirs, "max-redirs", 15, "Maximal number of redirects")
	pageSize := f.StringP("pagesize", "m", "", "Minimum page size required (bytes) : Maximum page size required (bytes)")
	warn := f.StringP("warning", "w", "", "Response time to result in warning status (seconds)")
	crit := f.StringP("critical", "c", "", "Response time to result in critical status (seconds)")
	c.timeout = f.timeout(10, nagios.Critical)
	if err := f.parse(sslArgs(f, args)); err != nil {
		return nil, err
	}
	if reErr != nil {
		return nil, f.fail(reErr)
	}

	t := &c.target
	t.scheme, t.url = "http", *url
	t.address = *address
	portGiven := f.Changed("port")
	if portGiven {
		n, err := strconv.Atoi(*port)
		if err != nil || n < 0 || n > 65535 {
			return nil, f.failf("-p %q: invalid port number", *port)
		}
		t.port = n
	}
	if f.Changed("hostname") {
		var err error
		if t.hostName, t.virtualPort, err = splitVirtualHost(*hostName); err != nil {
			return nil, f.failf("-H %q: %v", *hostName, err)
		}
	}
	rest := f.Args()
	if t.address == "" && len(rest) > 0 {
		t.address, rest = rest[0], rest[1:]
	}
	if t.hostName == "" && len(rest) > 0 {
		t.hostName, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return nil, f.failf("unexpected argument %q", rest[0])
	}
	if t.address == "" {
		if t.hostName == "" {
			return nil, f.failf("-H or -I: you must specify a server address or host name")
		}
		t.address = t.hostName
	}

	if f.Changed("ssl") {
		t.tls = true
		var err error
		if c.ssl, err = parseTLSVersions(*ssl); err != nil {
			return nil, f.failf("-S %q: %v", *ssl, err)
		}
	}
	if f.Changed("certificate") {
		var err error
		if c.certDays, err = parseCertDays(*cert); err != nil {
			return nil, f.failf("-C %q: %v", *cert, err)
		}
		c.checkCert, t.tls = true, true
	}
	if f.Changed("client-cert") || f.Changed("private-key") {
		if *clientCert == "" || *clientKey == "" {
			return nil, f.failf("-J and -K: if you use a client certificate you must also specify a private key file")
		}
		pair, err := tls.LoadX509KeyPair(*clientCert, *clientKey)
		if err != nil {
			return nil, f.failf("-J %q, -K %q: %v", *clientCert, *clientKey, err)
		}
		c.clientCert, t.tls = []tls.Certificate{pair}, true
	}
	switch {
	case portGiven:
	case t.virtualPort != 0:
		t.port = t.virtualPort
	case t.tls:
		t.port = 443
	default:
		t.port = 80
	}
	if t.virtualPort == 0 {
		t.virtualPort = t.port
	}

	if f.Changed("expect") {
		c.expect, c.expectSet = *expect, true
	}
	c.hasPost, c.post = f.Changed("post"), *post
	switch {
	case *method != "":
		c.method = *method
	case c.hasPost:
		c.method = "POST"
	default:
		c.method = "GET"
	}
	if f.Changed("useragent") {
		c.userAgent = *userAgent
	}
	if err := c.setOnRedirect(*onRedirect); err != nil {
		return nil, f.failf("-f %q: %v", *onRedirect, err)
	}
	if c.maxRedirs < 0 {
		return nil, f.failf("--max-redirs %d: must not be negative", c.maxRedirs)
	}
	if f.Changed("pagesize") {
		var err error
		if c.minPage, c.maxPage, err = parsePageSize(*pageSize); err != nil {
			return nil, f.failf("-m %q: %v", *pageSize, err)
		}
	}
	if f.Changed("max-age") {
		var err error
		if c.maxAge, err = parseMaxAge(*maxAge); err != nil {
			return nil, f.failf("-M %q: %v", *maxAge, err)
		}
	}
	var err error
	if c.thresholds, err = f.thresholds(*warn, *crit); err != nil {
		return nil, err
	}
	// A critical response time past the timeout would never be seen, so
	// the twin waits a second longer than it (up to its int's limit).
	if ct := c.thresholds.Crit; ct != nil && ct.End > c.timeout.d.Seconds() {
		c.timeout.d = time.Duration(math.Min(math.Floor(ct.End), math.MaxInt32-1)+1) * time.Second
	}
	return c, nil
}

func (c *httpCheck) setOnRedirect(s string) error {
	switch s {
	case "ok":
		c.onRedirect = nagios.OK
	case "warning":
		c.onRedirect = nagios.Warning
	case "critical":
		c.onRedirect = nagios.Critical
	case "unknown":
		c.onRedirect = nagios.Unknown
	case "follow":
		c.follow = true
	case "sticky":
		c.follow, c.sticky = true, stickyHost
	case "stickyport":
		c.follow, c.sticky = true, stickyHost|stickyPort
	default:
		return errors.New("invalid onredirect option: want ok, warning, critical, unknown, follow, sticky or stickyport")
	}
	return nil
}

// parsePageSize reads -m: "MIN" or "MIN:MAX" bytes.
func parsePageSize(s string) (lo, hi int, err error) {
	minText, maxText, hasMax := strings.Cut(s, ":")
	if lo, err = strconv.Atoi(minText); err != nil || lo < 0 {
		return 0, 0, fmt.Errorf("minimum page size %q is not a non-negative integer", minText)
	}
	if hasMax {
		if hi, err = strconv.Atoi(maxText); err != nil || hi < 0 {
			return 0, 0, fmt.Errorf("maximum page size %q is not a non-negative integer (try \"-m min:max\")", maxText)
		}
	}
	return lo, hi, nil
}

// parseMaxAge reads -M: seconds, or a number of minutes, hours or days
// with an m, h or d after it.
func parseMaxAge(s string) (int, error) {
	n, unit := s, 1
	if s != "" {
		switch s[len(s)-1] {
		case 'm':
			n, unit = s[:len(s)-1], 60
		case 'h':
			n, unit = s[:len(s)-1], 3600
		case 'd':
			n, unit = s[:len(s)-1], 86400
		case 's':
			n = s[:len(s)-1]
		}
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 0 {
		return 0, errors.New("unparsable max-age: want seconds, or a number followed by m, h or d")
	}
	return v * unit, nil
}

// compileHTTPRegex turns the twin's POSIX extended expression into Go's.
// Without -l the twin compiles with REG_NEWLINE: '.' stops at newlines and
// ^ and $ match at each line.
func compileHTTPRegex(expr string, lineSpan, foldCase bool) (*regexp.Regexp, error) {
	flags := "m"
	if lineSpan {
		flags = "s"
	}
	if foldCase {
		flags += "i"
	}
	return regexp.Compile("(?" + flags + ")" + expr)
}

// Timeout is the -t option, stretched past -c as the twin does; Run keeps to it as well.
func (c *httpCheck) Timeout() time.Duration { return c.timeout.d }

// httpTimes are the durations -E reports, in seconds.
type httpTimes struct {
	connect, tls, headers, firstByte, transfer float64
}

// httpPage is what one request brought back.
type httpPage struct {
	size       int64
	statusLine string
	header     string // the raw header lines, for -d
	resp       *http.Response
	body       []byte
	times      httpTimes
	// cert is the certificate verdict with --continue-after-certificate:
	// its line comes first and its state counts.
	cert nagios.Result
}

func (c *httpCheck) Run(ctx context.Context) nagios.Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout.d)
	defer cancel()
	start := time.Now()
	t := c.target
	for depth := 0; ; depth++ {
		page, early := c.fetch(ctx, t)
		if early != nil {
			return *early
		}
		elapsed := time.Since(start).Seconds()
		next, r := c.judge(t, page, elapsed, depth)
		if next == nil {
			if page.cert.Output != "" {
				r.Output = page.cert.Output + "\n" + r.Output
			}
			return r
		}
		t = *next
	}
}

// fetch makes one request. It returns a result instead of a page when the
// check ends before a response can be judged: no connection, TLS failure,
// a certificate check alone, a timeout.
func (c *httpCheck) fetch(ctx context.Context, t httpTarget) (*httpPage, *nagios.Result) {
	fail := func(r nagios.Result) (*httpPage, *nagios.Result) {
		if timedOut(ctx) {
			r = socketTimeout(c.timeout)
		}
		return nil, &r
	}
	page := &httpPage{}
	began := time.Now()
	conn, err := dialHost(ctx, c.network, t.address, t.port)
	if err != nil {
		return fail(nagios.Resultf(nagios.Critical, "%s\nHTTP CRITICAL - Unable to open TCP socket",
			connectFailure(t.address, t.port, err)))
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	page.times.connect = time.Since(began).Seconds()

	var rw io.ReadWriter = conn
	if t.tls {
		if c.ssl.unsupported != "" {
			// The twin words this UNKNOWN, and exits CRITICAL.
			return fail(nagios.Resultf(nagios.Critical, "UNKNOWN - %s", c.ssl.unsupportedText()))
		}
		cfg := c.ssl.config()
		cfg.Certificates = c.clientCert
		if c.sni {
			cfg.ServerName = t.hostName
		}
		began = time.Now()
		tc, err := tlsHandshake(ctx, conn, cfg)
		if err != nil {
			return fail(tlsFailure(err))
		}
		page.times.tls = time.Since(began).Seconds()
		if c.checkCert {
			r := certExpiry(tc.ConnectionState().PeerCertificates, c.certDays, time.Now())
			if !c.continueAfterCert {
				return nil, &r
			}
			page.cert = r
		}
		rw = tc
	}

	// A failed send shows as a failed read, as in the twin, which does not
	// check its sends.
	began = time.Now()
	_, _ = rw.Write(c.request(t))
	sent := time.Now()
	page.times.headers = sent.Sub(began).Seconds()

	in := &httpWire{r: rw, sent: sent}
	br := bufio.NewReader(in)
	resp, err := http.ReadResponse(br, &http.Request{Method: c.method})
	if err == nil {
		in.headDone = true
		page.resp = resp
		page.body, err = c.readBody(br, resp)
		resp.Body.Close()
	}
	if err != nil && timedOut(ctx) {
		r := socketTimeout(c.timeout)
		return nil, &r
	}
	if err != nil && page.resp != nil {
		return fail(bodyFailure(page.resp, err))
	}
	page.times.firstByte = in.firstByte
	page.times.transfer = time.Since(sent).Seconds()
	page.size = in.n
	if in.n == 0 {
		if err != nil && !benignReadError(err) {
			r := nagios.Resultf(nagios.Critical, "HTTP CRITICAL - Error on receive")
			r.Long = fmt.Sprintf("reading the response: %v", err)
			return fail(r)
		}
		return fail(nagios.Resultf(nagios.Critical, "HTTP CRITICAL - No data received from host"))
	}
	page.statusLine, page.header = splitHead(in.head.Bytes())
	if page.resp == nil {
		return nil, c.badResponse(t, page, err)
	}
	return page, nil
}

// readBody reads the whole body, keeping at most httpBodyLimit bytes of it.
// With -N it keeps only what came with the headers, as the twin does.
func (c *httpCheck) readBody(br *bufio.Reader, resp *http.Response) ([]byte, error) {
	if c.noBody {
		b, _ := br.Peek(br.Buffered())
		return bytes.Clone(b), nil
	}
	var body bytes.Buffer
	_, err := io.Copy(&body, io.LimitReader(resp.Body, httpBodyLimit))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	// A body cut short is judged as it came, as the twin reads until the
	// server stops.
	if err != nil && benignReadError(err) {
		err = nil
	}
	return body.Bytes(), err
}

// bodyFailure is the twin's verdict on a body that could not be read: an
// error of the connection, or chunks that do not decode.
func bodyFailure(resp *http.Response, err error) nagios.Result {
	var opErr *net.OpError
	if errors.As(err, &opErr) || len(resp.TransferEncoding) == 0 {
		r := nagios.Resultf(nagios.Critical, "HTTP CRITICAL - Error on receive")
		r.Long = fmt.Sprintf("reading the body: %v", err)
		return r
	}
	r := nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN: Failed to unchunk message body")
	r.Long = fmt.Sprintf("reading the body: %v", err)
	return r
}

// benignReadError is an error the twin treats as the end of the response.
func benignReadError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// badResponse judges a response net/http could not read, from its status
// line as the twin sees it.
func (c *httpCheck) badResponse(t httpTarget, page *httpPage, err error) *nagios.Result {
	if !expectedStatus(page.statusLine, c.expect) {
		r := c.invalidResponse(t, page)
		return &r
	}
	code := ""
	if _, after, ok := strings.Cut(page.statusLine, " "); ok {
		code = after
	}
	if !c.expectSet && !hasStatusCode(code) {
		r := nagios.Resultf(nagios.Critical, "HTTP CRITICAL: Invalid Status Line (%s)", page.statusLine)
		return &r
	}
	// The twin would read on; net/http cannot, so the response is invalid.
	r := c.invalidResponse(t, page)
	r.Long = fmt.Sprintf("reading the response: %v", err)
	return &r
}

// invalidResponse is the twin's answer to a status line that holds none of
// the expected strings; it names the port unless it is 80.
func (c *httpCheck) invalidResponse(t httpTarget, page *httpPage) nagios.Result {
	r := nagios.Result{State: nagios.Critical}
	if t.port == 80 {
		r.Output = "HTTP CRITICAL - Invalid HTTP response received from host: " + page.statusLine
	} else {
		r.Output = fmt.Sprintf("HTTP CRITICAL - Invalid HTTP response received from host on port %d: %s", t.port, page.statusLine)
	}
	if c.showBody {
		r.Long = string(page.body)
	}
	return r
}

// hasStatusCode reports whether s starts with exactly three digits.
func hasStatusCode(s string) bool {
	return len(s) >= 3 && strings.Trim(s[:3], "0123456789") == "" && (len(s) == 3 || s[3] < '0' || s[3] > '9')
}

// request is the twin's request, byte for byte, so that servers answer
// both the same and the sizes agree.
func (c *httpCheck) request(t httpTarget) []byte {
	var b bytes.Buffer
	proto := "HTTP/1.0"
	if t.hostName != "" {
		proto = "HTTP/1.1"
	}
	fmt.Fprintf(&b, "%s %s %s\r\nUser-Agent: %s\r\nConnection: close\r\n", c.method, t.url, proto, c.userAgent)
	// The last -k "Host:" header replaces the one the twin would make.
	forced := -1
	for i, h := range c.headers {
		if strings.HasPrefix(h, "Host:") {
			forced = i
		}
	}
	if t.hostName != "" {
		switch {
		case forced >= 0:
			b.WriteString(c.headers[forced] + "\r\n")
		case (!t.tls && t.virtualPort == 80) || (t.tls && t.virtualPort == 443):
			b.WriteString("Host: " + t.hostName + "\r\n")
		default:
			fmt.Fprintf(&b, "Host: %s:%d\r\n", t.hostName, t.virtualPort)
		}
	}
	for i, h := range c.headers {
		if i != forced {
			b.WriteString(h + "\r\n")
		}
	}
	if c.auth != "" {
		b.WriteString("Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.auth)) + "\r\n")
	}
	if c.proxyAuth != "" {
		b.WriteString("Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.proxyAuth)) + "\r\n")
	}
	if !c.hasPost {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	contentType := c.contentType
	if contentType == "" {
		contentType = "application/x-www-form-urlencoded"
	}
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n\r\n%s", contentType, len(c.post), c.post)
	return b.Bytes()
}

// httpWire counts the bytes of the response as they come off the wire,
// headers and chunk framing included, as the twin's size does, and keeps
// the head for the status line and -d.
type httpWire struct {
	r         io.Reader
	sent      time.Time
	n         int64
	firstByte float64
	head      bytes.Buffer
	headDone  bool
}

func (w *httpWire) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 && w.n == 0 {
		w.firstByte = time.Since(w.sent).Seconds()
	}
	w.n += int64(n)
	if !w.headDone {
		if w.head.Len()+n > httpHeadLimit {
			return n, fmt.Errorf("response headers longer than %d bytes", httpHeadLimit)
		}
		w.head.Write(p[:n])
	}
	return n, err
}

// splitHead cuts the status line and the header lines out of the start of
// a response.
func splitHead(head []byte) (statusLine, header string) {
	s := string(head)
	end := strings.IndexAny(s, "\r\n")
	if end < 0 {
		return strings.TrimRight(s, " \t"), ""
	}
	statusLine = strings.TrimRight(s[:end], " \t\r\n")
	rest := strings.TrimLeft(s[end:], "\r\n")
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := strings.Index(rest, sep); i >= 0 {
			rest = rest[:i]
		}
	}
	return statusLine, rest
}

// expectedStatus reports whether the status line holds one of the
// comma-separated expected strings.
func expectedStatus(statusLine, expect string) bool {
	for _, e := range strings.Split(expect, ",") {
		if e != "" && strings.Contains(statusLine, e) {
			return true
		}
	}
	return false
}

// judge turns one page into the twin's verdict, or into the next target
// when a redirect is to be followed.
func (c *httpCheck) judge(t httpTarget, page *httpPage, elapsed float64, depth int) (*httpTarget, nagios.Result) {
	if !expectedStatus(page.statusLine, c.expect) {
		return nil, c.invalidResponse(t, page)
	}
	state := page.cert.State
	var msg strings.Builder
	if c.expectSet {
		fmt.Fprintf(&msg, "Status line output matched \"%s\" - ", c.expect)
	} else {
		code := page.resp.StatusCode
		switch {
		case code >= 600 || code < 100:
			return nil, nagios.Resultf(nagios.Critical, "HTTP CRITICAL: Invalid Status (%s)", page.statusLine)
		case code >= 500:
			state = nagios.Critical
		case code >= 400:
			state = nagios.Worst(nagios.Warning, state)
		case code >= 300 && c.follow:
			next, r := c.redirect(t, page, depth)
			return next, r
		case code >= 300:
			state = nagios.Worst(c.onRedirect, state)
		}
		msg.WriteString(page.statusLine + " - ")
	}

	scheme := "http"
	if t.tls {
		scheme = "https"
	}
	host := t.hostName
	if host == "" {
		host = t.address
	}
	if c.maxAge >= 0 {
		ageState, ageMsg := documentAge(page.resp.Header, c.maxAge)
		msg.WriteString(ageMsg)
		state = nagios.Worst(ageState, state)
	}
	if c.headerExpect != "" && !strings.Contains(page.header, c.headerExpect) {
		fmt.Fprintf(&msg, "header '%s' not found on '%s://%s:%d%s', ", shortSearch(c.headerExpect), scheme, host, t.port, t.url)
		state = nagios.Critical
	}
	body := bytes.ReplaceAll(page.body, []byte{0}, []byte{' '})
	if c.bodyExpect != "" && !bytes.Contains(body, []byte(c.bodyExpect)) {
		fmt.Fprintf(&msg, "string '%s' not found on '%s://%s:%d%s', ", shortSearch(c.bodyExpect), scheme, host, t.port, t.url)
		state = nagios.Critical
	}
	if c.re != nil {
		if found := c.re.Match(body); found == c.invertRegex {
			if found {
				msg.WriteString("pattern found, ")
			} else {
				msg.WriteString("pattern not found, ")
			}
			state = nagios.Critical
		}
	}
	switch {
	case c.maxPage > 0 && page.size > int64(c.maxPage):
		fmt.Fprintf(&msg, "page size %d too large, ", page.size)
		state = nagios.Worst(nagios.Warning, state)
	case c.minPage > 0 && page.size < int64(c.minPage):
		fmt.Fprintf(&msg, "page size %d too small, ", page.size)
		state = nagios.Worst(nagios.Warning, state)
	}
	// Every part of msg ends in ", " or " - ": the twin cuts the last one off.
	text := msg.String()
	if strings.HasSuffix(text, ", ") {
		text = text[:len(text)-2]
	} else {
		text = strings.TrimSuffix(text, " - ")
	}

	state = nagios.Worst(c.thresholds.State(elapsed), state)
	r := nagios.Result{State: state}
	// The twin leaves a space before the perfdata's '|'.
	r.Output = fmt.Sprintf("HTTP %s: %s - %d bytes in %.3f second response time ", state, text, page.size, elapsed)
	r.Perf = c.perf(page, elapsed, t.tls)
	if c.showBody {
		r.Long = string(body)
	}
	return nil, r
}

// documentAge judges -M from the Date and Last-Modified headers as the
// twin's check_document_dates does, with its messages.
func documentAge(h http.Header, maxAge int) (nagios.State, string) {
	last := func(key string) string {
		v := h.Values(key)
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	server, document := last("Date"), last("Last-Modified")
	switch {
	case server == "":
		return nagios.Unknown, "Server date unknown, "
	case document == "":
		return nagios.Critical, "Document modification date unknown, "
	}
	srv, doc := parseHTTPDate(server), parseHTTPDate(document)
	switch {
	case srv <= 0:
		return nagios.Critical, fmt.Sprintf("Server date \"%100s\" unparsable, ", server)
	case doc <= 0:
		return nagios.Critical, fmt.Sprintf("Document date \"%100s\" unparsable, ", document)
	case doc > srv+30:
		return nagios.Critical, fmt.Sprintf("Document is %d seconds in the future, ", doc-srv)
	case doc < srv-int64(maxAge):
		n := srv - doc
		if n > 2*86400 {
			return nagios.Critical, fmt.Sprintf("Last modified %.1f days ago, ", float32(n)/86400)
		}
		return nagios.Critical, fmt.Sprintf("Last modified %d:%02d:%02d ago, ", n/3600, (n/60)%60, n%60)
	}
	return nagios.OK, ""
}

// parseHTTPDate reads only the form the twin reads, "Tue, 25 Dec 2001
// 02:59:03 GMT" (the day may start with a space), and gives 0 for any other.
func parseHTTPDate(s string) int64 {
	const shape = "Aaa, #9 Aaa 9999 99:99:99 GMT"
	if len(s) < len(shape) {
		return 0
	}
	for i := range len(shape) {
		c := s[i]
		var ok bool
		switch shape[i] {
		case 'A':
			ok = 'A' <= c && c <= 'Z'
		case 'a':
			ok = 'a' <= c && c <= 'z'
		case '9':
			ok = '0' <= c && c <= '9'
		case '#':
			ok = c == ' ' || ('0' <= c && c <= '9')
		default:
			ok = c == shape[i]
		}
		if !ok {
			return 0
		}
	}
	num := func(from, to int) int {
		n, _ := strconv.Atoi(strings.TrimSpace(s[from:to]))
		return n
	}
	month := strings.Index("JanFebMarAprMayJunJulAugSepOctNovDec", s[8:11])
	day := num(5, 7)
	if month < 0 || month%3 != 0 || day < 1 || day > 31 {
		return 0
	}
	t := time.Date(num(12, 16), time.Month(month/3+1), day, num(17, 19), num(20, 22), num(23, 25), 0, time.UTC)
	return t.Unix()
}

// shortSearch is a searched-for string as the twin's messages show it: cut
// to 26 characters and "..." when it is 30 or longer.
func shortSearch(s string) string {
	if len(s) >= 30 {
		return s[:26] + "..."
	}
	return s
}

func (c *httpCheck) perf(page *httpPage, elapsed float64, useTLS bool) []nagios.Perf {
	timeout := c.timeout.d.Seconds()
	seconds := func(label string, v float64) nagios.Perf {
		return nagios.Perf{Label: label, Value: v, UOM: "s", Precision: 6, Max: nagios.Float(timeout)}
	}
	total := seconds("time", elapsed)
	total.Min = nagios.Float(0)
	total.Warn, total.Crit = httpPerfEnd(c.thresholds.Warn), httpPerfEnd(c.thresholds.Crit)
	size := nagios.Perf{Label: "size", Value: float64(page.size), UOM: "B", Min: nagios.Float(0)}
	if c.minPage > 0 {
		size.Warn, size.Crit = &nagios.Range{End: float64(c.minPage)}, &nagios.Range{}
	}
	perf := []nagios.Perf{total, size}
	if !c.extendedPerf {
		return perf
	}
	perf = append(perf, seconds("time_connect", page.times.connect))
	if useTLS {
		perf = append(perf, seconds("time_ssl", page.times.tls))
	}
	return append(perf,
		seconds("time_headers", page.times.headers),
		seconds("time_firstbyte", page.times.firstByte),
		seconds("time_transfer", page.times.transfer))
}

// httpPerfEnd is a threshold as the twin's perfdata gives it: only its upper
// end, and nothing when that end is infinite (the twin prints "inf", which
// no perfdata reader takes).
func httpPerfEnd(r *nagios.Range) *nagios.Range {
	if r == nil || math.IsInf(r.End, 0) {
		return nil
	}
	return &nagios.Range{End: r.End}
}

// redirForms are the Location forms the twin understands, tried in its
// order (RFC 2396 characters; a port of up to 6 digits so that overflow
// shows). They are compiled on the first redirect: the {1,255} repetitions
// make large programs, and compiling them at start-up would slow every
// plugin run of every check.
var redirForms = sync.OnceValue(func() (f struct{ absPortPath, absPath, absPort, abs, netPath, path *regexp.Regexp }) {
	f.absPortPath = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255}):([0-9]{1,6})/([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	f.absPath = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255})/([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	f.absPort = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255}):([0-9]{1,6})`)
	f.abs = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255})`)
	f.netPath = regexp.MustCompile(`^//([-.a-zA-Z0-9]{1,255})/([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	f.path = regexp.MustCompile(`^([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	return f
})

func defaultHTTPPort(tls bool) int {
	if tls {
		return 443
	}
	return 80
}

func slashed(path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	return "/" + path
}

// redirect works out where a 3xx response sends the check, as the twin's
// redir() does, with its loop and depth limits.
func (c *httpCheck) redirect(t httpTarget, page *httpPage, depth int) (*httpTarget, nagios.Result) {
	values, ok := page.resp.Header["Location"]
	if !ok {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Could not find redirect location - %s", page.statusLine)
	}
	loc := strings.TrimLeft(values[0], " \t")
	if loc == "" {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Empty redirect location")
	}
	useTLS := t.tls
	var scheme, addr, url string
	var port int
	forms := redirForms()
	if m := forms.absPortPath.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], slashed(m[4])
		port, _ = strconv.Atoi(m[3])
		useTLS = scheme == "https"
	} else if m := forms.absPath.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], slashed(m[3])
		useTLS = scheme == "https"
		port = defaultHTTPPort(useTLS)
	} else if m := forms.absPort.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], "/"
		port, _ = strconv.Atoi(m[3])
		useTLS = scheme == "https"
	} else if m := forms.abs.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], "/"
		useTLS = scheme == "https"
		port = defaultHTTPPort(useTLS)
	} else if m := forms.netPath.FindStringSubmatch(loc); m != nil {
		scheme = t.scheme
		if useTLS {
			scheme = "https"
		}
		addr, url = m[1], "/"+m[2]
		useTLS = scheme == "https"
		port = defaultHTTPPort(useTLS)
	} else if m := forms.path.FindStringSubmatch(loc); m != nil {
		url = m[1]
		if !strings.HasPrefix(url, "/") {
			// The twin cuts its current URL at the last '/' in place, so the
			// loop test below compares against the cut URL.
			if i := strings.LastIndexByte(t.url, '/'); i >= 0 {
				t.url = t.url[:i]
			}
			url = t.url + "/" + url
		}
		scheme, port = t.scheme, t.port
		addr = t.hostName
		if addr == "" {
			addr = t.address
		}
	} else {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Could not parse redirect location - %s", loc)
	}

	if depth+1 > c.maxRedirs {
		return nil, nagios.Resultf(nagios.Warning, "HTTP WARNING - maximum redirection depth %d exceeded - %s://%s:%d%s",
			c.maxRedirs, scheme, addr, port, url)
	}
	if t.port == port && t.address == addr && t.hostName == addr && t.url == url {
		return nil, nagios.Resultf(nagios.Critical, "HTTP CRITICAL - redirection creates an infinite loop - %s://%s:%d%s",
			scheme, addr, port, url)
	}
	next := t
	next.scheme, next.hostName, next.url, next.tls = scheme, addr, url, useTLS
	if c.sticky&stickyHost == 0 {
		next.address = addr
	}
	if c.sticky&stickyPort == 0 {
		next.port = port
	}
	if next.port > 65535 {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Redirection to port above 65535 - %s://%s:%d%s",
			next.scheme, next.address, next.port, next.url)
	}
	next.virtualPort = next.port
	return &next, nagios.Result{}
}
