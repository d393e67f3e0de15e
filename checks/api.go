package checks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_api",
		Summary: "partner HTTP(S) JSON API: status, assertions on fields of the answer, response time",
		New:     newAPI,
	})
}

const (
	// apiBodyLimit bounds the answer held for the assertions; bytes past
	// it are still read and counted in the size.
	apiBodyLimit = 16 << 20
	// apiExcerptLen is how much of an unexpected answer the long output shows.
	apiExcerptLen = 200
	// apiMask replaces every secret in what the check prints.
	apiMask = "****"
	// minSecretLen is the shortest text masked: masking "1" would mangle
	// every number in the output.
	minSecretLen = 4
)

const apiAbout = `This plugin calls a partner's HTTP(S) API once and judges the answer: its
status (-e, default 2xx), its response time (-w/-c, seconds) and, with
--assert, fields of its JSON body. It sends -P or --body-file as the body
(the method then defaults to POST, the Content-Type to application/json),
does not follow redirects, and verifies the partner's certificate unless
--insecure (--ca-file replaces the system's CAs). Values of secret headers
(Authorization, Cookie, or any name with key, token, secret, auth, pass,
signature, session or credential in it), of such URL query parameters and
the URL's password are masked wherever they would appear in the output.

Assertions: PATH OP VALUE, PATH exists, PATH absent, PATH matches "RE2 REGEX".
  PATH   fields separated by dots: components.db.status. A number indexes an
         array (items.0, items.-1 is the last); "quoted" is a key with dots
         or spaces in it ("a.b".c); # is the length of an array, object or
         string (items.# >= 1); $ alone is the whole answer.
  OP     == and != compare JSON values (numbers by value: 1 == 1.0);
         <, <=, >, >= compare numbers, and read a string holding a decimal
         number ("12.50") as that number.
  VALUE  a JSON value: "AUTHORIZED", 0, 12.5, true, null, ["a"].
  Any test but absent fails when the field is missing.
Examples: 'status == "AUTHORIZED"'  'components.db.status != "DOWN"'
          'items.0.price > 0'  'count >= 1'  'id exists'  'error absent'`

type apiCheck struct {
	label string
	// shown names the request in the output: method and path, without the
	// query string, which may carry credentials.
	shown      string
	method     string
	url        *url.URL
	host       string // a Host header given with -k
	headers    http.Header
	body       []byte
	hasBody    bool
	expect     statusSet
	expectText string
	asserts    []assertion
	thresholds nagios.Thresholds
	timeout    *timeoutFlag
	tls        *tls.Config
	// resolver looks names up; nil is the system's. Tests answer from loopback.
	resolver *net.Resolver
	secrets  []string
}

func newAPI(args []string) (Check, error) {
	f := newFlags("check_api", "-U <url> [-j <method>] [-k 'Name: value']... [-P <body> or --body-file <file>]\n"+
		"       [-e <statuses>] [--assert '<path> <op> <value>']... [-w <warn time>] [-c <critical time>]\n"+
		"       [-t <timeout>] [--ca-file <file>] [--insecure] [--label <name>]", apiAbout)
	var o apiFlags
	o.declare(f)
	return parseBuild(f, args, o.build)
}

// apiFlags are check_api's options as the command line gives them.
type apiFlags struct {
	rawURL, method, body, bodyFile string
	headers, asserts               []string
	expect, warn, crit             string
	caFile                         string
	insecure                       bool
	label                          string
	timeout                        *timeoutFlag
}

func (o *apiFlags) declare(f *flagSet) {
	f.StringVarP(&o.rawURL, "url", "U", "", "Full URL to call: https://api.partner.example/v1/health")
	f.StringVarP(&o.method, "method", "j", "", "HTTP method (default: GET, or POST with a body)")
	f.StringArrayVarP(&o.headers, "header", "k", nil, "Header to send, 'Name: value'; repeat for more")
	f.StringVarP(&o.body, "body", "P", "", "Body to send")
	f.StringVar(&o.bodyFile, "body-file", "", "File whose content is the body to send")
	f.StringVarP(&o.expect, "expect-status", "e", "2xx", "Statuses that are OK: codes, classes and ranges, comma-separated (200,201 or 2xx or 200-204)")
	f.StringArrayVar(&o.asserts, "assert", nil, "Test on the JSON answer, such as 'status == \"UP\"'; repeat for more (see above)")
	f.StringVarP(&o.warn, "warning", "w", "", "Response time to result in warning status (seconds)")
	f.StringVarP(&o.crit, "critical", "c", "", "Response time to result in critical status (seconds)")
	f.StringVar(&o.caFile, "ca-file", "", "PEM file of the CAs to trust instead of the system's")
	f.BoolVar(&o.insecure, "insecure", false, "Do not verify the partner's certificate")
	f.StringVar(&o.label, "label", "", "Name of the partner in the output (default: the URL's host)")
	o.timeout = f.timeout(10, nagios.Critical)
}

// build checks the options f parsed and makes the check.
func (o *apiFlags) build(f *flagSet) (*apiCheck, error) {
	c := &apiCheck{timeout: o.timeout, headers: http.Header{}}
	if rest := f.Args(); len(rest) > 0 {
		return nil, f.failf("unexpected argument %q", rest[0])
	}

	u, err := parseAPIURL(o.rawURL)
	if err != nil {
		return nil, f.fail(err)
	}
	c.url = u
	c.addURLSecrets(u)

	for i, h := range o.headers {
		name, value, err := parseHeader(h)
		if err != nil {
			return nil, f.failf("-k: header %d: %v", i+1, err)
		}
		if secretName(name) {
			c.addSecret(value)
			// The server may echo only the credentials after the scheme.
			if _, cred, ok := strings.Cut(value, " "); ok {
				c.addSecret(strings.TrimSpace(cred))
			}
		}
		if name == "Host" {
			c.host = value
			continue
		}
		c.headers.Add(name, value)
	}

	switch {
	case f.Changed("body") && f.Changed("body-file"):
		return nil, f.failf("-P and --body-file: give the body one way, not both")
	case f.Changed("body"):
		c.body, c.hasBody = []byte(o.body), true
	case f.Changed("body-file"):
		b, err := os.ReadFile(o.bodyFile)
		if err != nil {
			return nil, f.failf("--body-file %q: %v", o.bodyFile, err)
		}
		c.body, c.hasBody = b, true
	}
	c.method = strings.ToUpper(o.method)
	switch {
	case c.method == "" && c.hasBody:
		c.method = http.MethodPost
	case c.method == "":
		c.method = http.MethodGet
	case !httpToken(c.method):
		return nil, f.failf("-j %q: not an HTTP method", o.method)
	}
	if c.hasBody && c.headers.Get("Content-Type") == "" {
		c.headers.Set("Content-Type", "application/json")
	}
	if c.headers.Get("Accept") == "" {
		c.headers.Set("Accept", "application/json")
	}
	if c.headers.Get("User-Agent") == "" {
		c.headers.Set("User-Agent", fmt.Sprintf("check_api/v%s (immune)", Version))
	}

	if c.expect, err = parseStatusSet(o.expect); err != nil {
		return nil, f.failf("-e %q: %v", o.expect, err)
	}
	c.expectText = o.expect
	for _, text := range o.asserts {
		a, err := parseAssertion(text)
		if err != nil {
			return nil, f.failf("--assert %q: %v", text, err)
		}
		c.asserts = append(c.asserts, a)
	}
	if c.thresholds, err = f.thresholds(o.warn, o.crit); err != nil {
		return nil, err
	}

	c.tls = &tls.Config{InsecureSkipVerify: o.insecure}
	if o.caFile != "" {
		pemBytes, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, f.failf("--ca-file %q: %v", o.caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, f.failf("--ca-file %q: no PEM certificate in it", o.caFile)
		}
		c.tls.RootCAs = pool
	}

	c.label = u.Host
	if o.label != "" {
		c.label = oneLine(o.label)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	c.shown = c.method + " " + path
	// Longer secrets first, so one that contains another is masked whole.
	slices.SortFunc(c.secrets, func(a, b string) int { return len(b) - len(a) })
	return c, nil
}

// parseAPIURL reads -U. Its errors never repeat the URL, which may hold a
// password.
func parseAPIURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("-U: the URL to call is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("-U: not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-U: scheme %q: want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("-U: the URL names no host")
	}
	return u, nil
}

// parseHeader reads "Name: value". Its errors name no value: a header
// with a typo may still hold a secret.
func parseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", errors.New("want 'Name: value', found no ':'")
	}
	name = strings.TrimSpace(name)
	if !httpToken(name) {
		return "", "", fmt.Errorf("%q is not a header name", name)
	}
	value = strings.TrimSpace(value)
	if strings.ContainsAny(value, "\r\n\x00") {
		return "", "", fmt.Errorf("the value of %s has a line break or NUL in it", name)
	}
	return textproto.CanonicalMIMEHeaderKey(name), value, nil
}

// httpToken reports whether s is an RFC 9110 token, as header names and
// methods must be.
func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, b) >= 0 {
			return false
		}
	}
	return true
}

// secretWords mark header and query parameter names whose values are
// credentials.
var secretWords = []string{"key", "token", "secret", "auth", "pass", "signature", "session", "credential", "cookie"}

func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func (c *apiCheck) addSecret(s string) {
	if len(s) >= minSecretLen && !slices.Contains(c.secrets, s) {
		c.secrets = append(c.secrets, s)
	}
}

func (c *apiCheck) addURLSecrets(u *url.URL) {
	if pw, ok := u.User.Password(); ok {
		c.addSecret(pw)
		c.addSecret(url.QueryEscape(pw))
	}
	for name, values := range u.Query() {
		if secretName(name) {
			for _, v := range values {
				c.addSecret(v)
				c.addSecret(url.QueryEscape(v))
			}
		}
	}
}

// redact masks every secret in s.
func (c *apiCheck) redact(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, apiMask)
	}
	return s
}

// Timeout is the -t option.
func (c *apiCheck) Timeout() time.Duration { return c.timeout.d }

func (c *apiCheck) Run(ctx context.Context) nagios.Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout.d)
	defer cancel()
	r := c.call(ctx)
	r.Output = c.redact(fmt.Sprintf("API %s - %s: %s", r.State, c.label, r.Output))
	r.Long = c.redact(r.Long)
	return r
}

// call makes the request and judges the answer; Run adds the prefix and masks secrets.
func (c *apiCheck) call(ctx context.Context) nagios.Result {
	var body io.Reader
	if c.hasBody {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url.String(), body)
	if err != nil {
		return nagios.Resultf(nagios.Unknown, "%s: build the request: %v", c.shown, unwrapURLError(err))
	}
	req.Header = c.headers.Clone()
	if c.host != "" {
		req.Host = c.host
	}
	transport := &http.Transport{
		DialContext: (&net.Dialer{Resolver: c.resolver}).DialContext,
		// Every run measures a fresh connection, as a new client would make.
		DisableKeepAlives:      true,
		TLSClientConfig:        c.tls,
		MaxResponseHeaderBytes: httpHeadLimit,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		// An API that redirects has changed: report the redirect itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return c.failure(ctx, c.shown, err, "connection closed without an answer")
	}
	defer resp.Body.Close()
	head := c.shown + " " + statusText(resp)
	kept, size, err := readAnswer(resp.Body)
	elapsed := time.Since(start).Seconds()
	if err != nil {
		return c.failure(ctx, head, err, "connection closed in the middle of the answer")
	}

	r := nagios.Result{State: c.thresholds.State(elapsed), Perf: c.perf(elapsed, size)}
	if !c.expect.has(resp.StatusCode) {
		r.State = nagios.Critical
		r.Output = fmt.Sprintf("%s, want %s", head, c.expectText)
		r.Long = "answer: " + excerpt(kept, size)
		return r
	}
	summary := fmt.Sprintf("%s in %.3f s", head, elapsed)
	if len(c.asserts) == 0 {
		r.Output = summary
		return r
	}
	doc, problem := decodeAnswer(resp.Header.Get("Content-Type"), kept, size)
	if problem != "" {
		r.State = nagios.Critical
		r.Output = head + " answered " + problem
		r.Long = "answer: " + excerpt(kept, size)
		return r
	}
	lines := []string{summary}
	var firstFailure string
	for _, a := range c.asserts {
		ok, text := a.check(doc)
		state := nagios.OK
		if !ok {
			state = nagios.Critical
			if firstFailure == "" {
				firstFailure = text
			}
		}
		lines = append(lines, state.String()+": "+text)
	}
	r.Long = strings.Join(lines, "\n")
	if firstFailure != "" {
		r.State = nagios.Critical
		r.Output = firstFailure
		return r
	}
	r.Output = fmt.Sprintf("%s, %d %s passed", summary, len(c.asserts), plural(len(c.asserts), "assertion", "assertions"))
	return r
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (c *apiCheck) perf(elapsed float64, size int64) []nagios.Perf {
	return []nagios.Perf{
		{Label: "time", Value: math.Round(elapsed*1000) / 1000, UOM: "s",
			Warn: c.thresholds.Warn, Crit: c.thresholds.Crit, Min: nagios.Float(0)},
		{Label: "size", Value: float64(size), UOM: "B", Min: nagios.Float(0)},
	}
}

// failure words an error of the transport: a timeout, a name that does not
// resolve, a refused, closed or reset connection, an untrusted certificate.
// closed is what an early EOF means at this stage.
func (c *apiCheck) failure(ctx context.Context, what string, err error, closed string) nagios.Result {
	if timedOut(ctx) {
		return nagios.Resultf(c.timeout.state, "%s timed out after %s s", what,
			strconv.FormatFloat(c.timeout.d.Seconds(), 'f', -1, 64))
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	var text string
	switch {
	case errors.As(err, &dnsErr):
		return nagios.Resultf(nagios.Critical, "cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &certErr):
		text = "TLS: the partner's certificate is not trusted: " + unwrapURLError(certErr.Err).Error()
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &opErr) && opErr.Addr != nil:
		text = fmt.Sprintf("cannot connect to %s: connection refused", opErr.Addr)
	case errors.Is(err, syscall.ECONNRESET):
		text = "connection reset by peer"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		text = closed
	default:
		text = unwrapURLError(err).Error()
	}
	return nagios.Resultf(nagios.Critical, "%s: %s", what, text)
}

// unwrapURLError drops net/http's `Post "URL": ` wrapping: the URL may hold
// credentials, and the output names the request already.
func unwrapURLError(err error) error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}

// statusText is "200 OK": the partner's own reason phrase, or the
// standard one when it sends none.
func statusText(resp *http.Response) string {
	code := strconv.Itoa(resp.StatusCode)
	reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, code))
	if reason == "" {
		reason = http.StatusText(resp.StatusCode)
	}
	return strings.TrimSpace(code + " " + oneLine(reason))
}

// readAnswer reads the whole body, keeping at most apiBodyLimit bytes of
// it, and returns how many bytes there were in all.
func readAnswer(r io.Reader) ([]byte, int64, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, apiBodyLimit))
	if err != nil {
		return buf.Bytes(), n, fmt.Errorf("read the answer: %w", err)
	}
	more, err := io.Copy(io.Discard, r)
	if err != nil {
		return buf.Bytes(), n + more, fmt.Errorf("read the answer: %w", err)
	}
	return buf.Bytes(), n + more, nil
}

// decodeAnswer reads the body as JSON, or says what the partner answered
// instead. A body that parses is JSON whatever its Content-Type says: many
// APIs label JSON text/plain.
func decodeAnswer(contentType string, body []byte, size int64) (any, string) {
	if size > int64(len(body)) {
		return nil, fmt.Sprintf("%d bytes, more than the %d MiB read as JSON", size, apiBodyLimit>>20)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "an empty body, not JSON"
	}
	doc, err := parseJSON(body)
	if err == nil {
		return doc, ""
	}
	media, _, mediaErr := mime.ParseMediaType(contentType)
	switch {
	case mediaErr != nil && contentType != "":
		return nil, fmt.Sprintf("%q, not JSON", oneLine(contentType))
	case media != "" && media != "application/json" && media != "text/json" && !strings.HasSuffix(media, "+json"):
		return nil, media + ", not JSON"
	}
	return nil, "malformed JSON: " + err.Error()
}

// parseJSON decodes one JSON value, keeping numbers as their text so
// large integers compare exactly.
func parseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%v at byte %d", syn, syn.Offset)
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more after the JSON value at byte %d", dec.InputOffset())
	}
	return v, nil
}

// excerpt is the start of a body on one line, for the long output.
func excerpt(body []byte, size int64) string {
	if size == 0 {
		return "(empty)"
	}
	s := body[:min(len(body), apiExcerptLen)]
	text := oneLine(strings.Join(strings.Fields(strings.ToValidUTF8(string(s), "?")), " "))
	if int64(len(s)) < size {
		text += " ..."
	}
	return text
}

// oneLine keeps text on the status line: control characters become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// statusSet is -e: the HTTP statuses that are OK.
type statusSet []struct{ lo, hi int }

// parseStatusSet reads comma-separated codes (200), classes (2xx) and
// ranges (200-204).
func parseStatusSet(s string) (statusSet, error) {
	var set statusSet
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, err := parseStatusItem(item)
		if err != nil {
			return nil, err
		}
		set = append(set, struct{ lo, hi int }{lo, hi})
	}
	return set, nil
}

func parseStatusItem(item string) (lo, hi int, err error) {
	bad := fmt.Errorf("%q is not a status (200), a class (2xx) or a range (200-204)", item)
	if len(item) == 3 && item[0] >= '1' && item[0] <= '5' && strings.EqualFold(item[1:], "xx") {
		lo = int(item[0]-'0') * 100
		return lo, lo + 99, nil
	}
	loText, hiText, isRange := strings.Cut(item, "-")
	if lo, err = statusCode(loText); err != nil {
		return 0, 0, bad
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = statusCode(hiText); err != nil || hi < lo {
		return 0, 0, bad
	}
	return lo, hi, nil
}

func statusCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("%q is not an HTTP status", s)
	}
	return n, nil
}

func (set statusSet) has(code int) bool {
	for _, r := range set {
		if r.lo <= code && code <= r.hi {
			return true
		}
	}
	return false
}
