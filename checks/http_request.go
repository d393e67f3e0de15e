package checks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/nagios"
)

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
