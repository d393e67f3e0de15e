package checks

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

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
	var o httpFlags
	o.declare(f)
	return parseBuild(f, sslArgs(f, args), o.build)
}

// httpFlags are check_http's options as the command line gives them.
type httpFlags struct {
	hostName, address, port  string
	network                  string
	ssl                      *string
	sni                      bool
	cert                     string
	continueAfterCert        bool
	clientCert, clientKey    string
	expect                   string
	headerExpect, bodyExpect string
	url, post, method        string
	noBody                   bool
	maxAge                   string
	contentType              string
	// As in the twin, -l and -R change how the regular expressions after
	// them compile, so they compile as the flags are read, in command-line
	// order; the first error waits for build.
	lineSpan, foldCase bool
	re                 *regexp.Regexp
	reErr              error
	invertRegex        bool
	auth, proxyAuth    string
	userAgent          string
	headers            []string
	extendedPerf       bool
	showBody           bool
	onRedirect         string
	maxRedirs          int
	pageSize           string
	warn, crit         string
	timeout            *timeoutFlag
}

func (o *httpFlags) declare(f *flagSet) {
	o.network = "tcp"
	f.StringVarP(&o.hostName, "hostname", "H", "", "Host name argument for servers using host headers (virtual host); append a port to include it in the header (eg: example.com:5000)")
	f.StringVarP(&o.address, "IP-address", "I", "", "IP address or name (use numeric address if possible to bypass DNS lookup).")
	f.StringVarP(&o.port, "port", "p", "", "Port number (default: 80)")
	f.BoolFuncP("use-ipv4", "4", "Use IPv4 connection", func(string) error { o.network = "tcp4"; return nil })
	f.BoolFuncP("use-ipv6", "6", "Use IPv6 connection", func(string) error { o.network = "tcp6"; return nil })
	o.ssl = sslFlag(f, "Connect via SSL. Port defaults to 443. VERSION is optional, and prevents auto-negotiation (1 = TLSv1, 1.1 = TLSv1.1, 1.2 = TLSv1.2, 1.3 = TLSv1.3). With a '+' suffix, newer versions are also accepted.")
	f.BoolVar(&o.sni, "sni", false, "Enable SSL/TLS hostname extension support (SNI)")
	f.StringVarP(&o.cert, "certificate", "C", "", "Minimum number of days a certificate has to be valid: WARN[,CRIT]. Port defaults to 443; the URL is not checked unless --continue-after-certificate")
	f.BoolVar(&o.continueAfterCert, "continue-after-certificate", false, "Allows the HTTP check to continue after performing the certificate check.")
	f.StringVarP(&o.clientCert, "client-cert", "J", "", "Name of file that contains the client certificate (PEM format)")
	f.StringVarP(&o.clientKey, "private-key", "K", "", "Name of file containing the private key (PEM format) matching the client certificate")
	f.StringVarP(&o.expect, "expect", "e", "", "Comma-delimited list of strings, at least one of them is expected in the first (status) line of the server response (default: HTTP/1.); skips all other status line logic")
	f.StringVarP(&o.headerExpect, "header-string", "d", "", "String to expect in the response headers")
	f.StringVarP(&o.bodyExpect, "string", "s", "", "String to expect in the content")
	f.StringVarP(&o.url, "url", "u", "/", "URL to GET or POST")
	f.StringVarP(&o.post, "post", "P", "", "URL encoded http POST data")
	f.StringVarP(&o.method, "method", "j", "", "Set HTTP method (for example: HEAD, OPTIONS, TRACE, PUT, DELETE)")
	f.BoolVarP(&o.noBody, "no-body", "N", false, "Don't wait for document body: stop reading after headers.")
	f.StringVarP(&o.maxAge, "max-age", "M", "", `Warn if document is more than SECONDS old. the number can also be of the form "10m" for minutes, "10h" for hours, or "10d" for days.`)
	f.StringVarP(&o.contentType, "content-type", "T", "", "specify Content-Type header media type when POSTing")
	setRegex := func(flag string) func(string) error {
		return func(expr string) error {
			if flag == "-R" {
				o.foldCase = true
			}
			re, err := compileHTTPRegex(expr, o.lineSpan, o.foldCase)
			if err != nil && o.reErr == nil {
				o.reErr = fmt.Errorf("%s %q: could not compile regular expression: %w", flag, expr, err)
			}
			o.re = re
			return nil
		}
	}
	f.BoolFuncP("linespan", "l", "Allow regex to span newlines (must precede -r or -R)", func(string) error { o.lineSpan = true; return nil })
	f.FuncP("regex", "r", "Search page for regex STRING", setRegex("-r"))
	f.Func("ereg", "Search page for regex STRING", setRegex("--ereg"))
	f.FuncP("eregi", "R", "Search page for case-insensitive regex STRING", setRegex("-R"))
	f.BoolVar(&o.invertRegex, "invert-regex", false, "Return CRITICAL if found, OK if not")
	f.StringVarP(&o.auth, "authorization", "a", "", "Username:password on sites with basic authentication")
	f.StringVarP(&o.proxyAuth, "proxy-authorization", "b", "", "Username:password on proxy-servers with basic authentication")
	f.StringVarP(&o.userAgent, "useragent", "A", "", "String to be sent in http header as \"User Agent\"")
	f.StringArrayVarP(&o.headers, "header", "k", nil, "Any other tags to be sent in http header. Use multiple times for additional headers")
	f.BoolVarP(&o.extendedPerf, "extended-perfdata", "E", false, "Print additional performance data")
	f.BoolVarP(&o.showBody, "show-body", "B", false, "Print body content below status line")
	f.StringVarP(&o.onRedirect, "onredirect", "f", "ok", "How to handle redirected pages: ok, warning, critical, unknown, follow, sticky (follow, but stick to the specified IP address) or stickyport (also keep the port)")
	f.IntVar(&o.maxRedirs, "max-redirs", 15, "Maximal number of redirects")
	f.StringVarP(&o.pageSize, "pagesize", "m", "", "Minimum page size required (bytes) : Maximum page size required (bytes)")
	f.StringVarP(&o.warn, "warning", "w", "", "Response time to result in warning status (seconds)")
	f.StringVarP(&o.crit, "critical", "c", "", "Response time to result in critical status (seconds)")
	o.timeout = f.timeout(10, nagios.Critical)
}

// build checks the options f parsed and makes the check.
func (o *httpFlags) build(f *flagSet) (*httpCheck, error) {
	if o.reErr != nil {
		return nil, f.fail(o.reErr)
	}
	c := &httpCheck{
		network:           o.network,
		sni:               o.sni,
		continueAfterCert: o.continueAfterCert,
		expect:            "HTTP/1.",
		headerExpect:      o.headerExpect,
		bodyExpect:        o.bodyExpect,
		re:                o.re,
		invertRegex:       o.invertRegex,
		timeout:           o.timeout,
		onRedirect:        nagios.OK,
		maxRedirs:         o.maxRedirs,
		auth:              o.auth,
		proxyAuth:         o.proxyAuth,
		userAgent:         fmt.Sprintf("check_http/v%s (immune)", Version),
		headers:           o.headers,
		contentType:       o.contentType,
		noBody:            o.noBody,
		maxAge:            -1,
		extendedPerf:      o.extendedPerf,
		showBody:          o.showBody,
	}

	t := &c.target
	t.scheme, t.url = "http", o.url
	t.address = o.address
	portGiven := f.Changed("port")
	if portGiven {
		n, err := strconv.Atoi(o.port)
		if err != nil || n < 0 || n > 65535 {
			return nil, f.failf("-p %q: invalid port number", o.port)
		}
		t.port = n
	}
	if f.Changed("hostname") {
		var err error
		if t.hostName, t.virtualPort, err = splitVirtualHost(o.hostName); err != nil {
			return nil, f.failf("-H %q: %v", o.hostName, err)
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
		if c.ssl, err = parseTLSVersions(*o.ssl); err != nil {
			return nil, f.failf("-S %q: %v", *o.ssl, err)
		}
	}
	if f.Changed("certificate") {
		var err error
		if c.certDays, err = parseCertDays(o.cert); err != nil {
			return nil, f.failf("-C %q: %v", o.cert, err)
		}
		c.checkCert, t.tls = true, true
	}
	if f.Changed("client-cert") || f.Changed("private-key") {
		if o.clientCert == "" || o.clientKey == "" {
			return nil, f.failf("-J and -K: if you use a client certificate you must also specify a private key file")
		}
		pair, err := tls.LoadX509KeyPair(o.clientCert, o.clientKey)
		if err != nil {
			return nil, f.failf("-J %q, -K %q: %v", o.clientCert, o.clientKey, err)
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
		c.expect, c.expectSet = o.expect, true
	}
	c.hasPost, c.post = f.Changed("post"), o.post
	switch {
	case o.method != "":
		c.method = o.method
	case c.hasPost:
		c.method = "POST"
	default:
		c.method = "GET"
	}
	if f.Changed("useragent") {
		c.userAgent = o.userAgent
	}
	if err := c.setOnRedirect(o.onRedirect); err != nil {
		return nil, f.failf("-f %q: %v", o.onRedirect, err)
	}
	if c.maxRedirs < 0 {
		return nil, f.failf("--max-redirs %d: must not be negative", c.maxRedirs)
	}
	if f.Changed("pagesize") {
		var err error
		if c.minPage, c.maxPage, err = parsePageSize(o.pageSize); err != nil {
			return nil, f.failf("-m %q: %v", o.pageSize, err)
		}
	}
	if f.Changed("max-age") {
		var err error
		if c.maxAge, err = parseMaxAge(o.maxAge); err != nil {
			return nil, f.failf("-M %q: %v", o.maxAge, err)
		}
	}
	var err error
	if c.thresholds, err = f.thresholds(o.warn, o.crit); err != nil {
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
