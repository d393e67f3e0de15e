package checks

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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
