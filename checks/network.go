package checks

// What the network checks (check_tcp, check_http, check_apache) share:
// connecting and failing as monitoring-plugins' netutils do, in its words,
// TLS and certificate expiry, and check_http's syntax for -H and -S.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// isSocket reports whether a host is a unix socket path, which the twins
// take any host starting with '/' to be.
func isSocket(host string) bool { return strings.HasPrefix(host, "/") }

// unbracket takes the brackets off an IPv6 address written "[v6]". A host
// with only one of them is left as it is, and will not resolve.
func unbracket(host string) string {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}

// dialHost connects as the twins' np_net_connect does: to a unix socket for
// a path, else to host:port, with an IPv6 address optionally in brackets.
func dialHost(ctx context.Context, network, host string, port int) (net.Conn, error) {
	var d net.Dialer
	if isSocket(host) {
		return d.DialContext(ctx, "unix", host)
	}
	return d.DialContext(ctx, network, net.JoinHostPort(unbracket(host), strconv.Itoa(port)))
}

// unresolvable reports whether a dial failed on the host's name or
// address itself, before any connection was tried.
func unresolvable(err error) bool {
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	return errors.As(err, &dnsErr) || errors.As(err, &addrErr)
}

// connectFailure is the line the twins print when they cannot connect.
func connectFailure(host string, port int, err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && (dnsErr.IsTimeout || dnsErr.IsTemporary):
		return "Temporary failure in name resolution"
	case unresolvable(err):
		// The twins print getaddrinfo's own words.
		return "Name or service not known"
	case isSocket(host):
		return fmt.Sprintf("connect to file socket %s: %s", host, strerror(err))
	}
	return fmt.Sprintf("connect to address %s and port %d: %s", host, port, strerror(err))
}

// strerror words a system error as the C library does ("Connection
// refused"); Go's texts are the same, lowercased.
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// socketTimeout is what the twins' alarm handler prints when -t runs out.
func socketTimeout(t *timeoutFlag) nagios.Result {
	return nagios.Resultf(t.state, "%s - Socket timeout after %s seconds",
		t.state, strconv.FormatFloat(t.d.Seconds(), 'f', -1, 64))
}

// tlsHandshake starts TLS over conn within ctx.
func tlsHandshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// tlsFailure is the twins' result for a failed handshake; the library's
// reason goes in the long output, as OpenSSL's error lines do in theirs.
func tlsFailure(err error) nagios.Result {
	r := nagios.Resultf(nagios.Critical, "CRITICAL - Cannot make SSL connection.")
	r.Long = err.Error()
	return r
}

// certDays are the -C/-D thresholds: days a certificate must still be valid.
type certDays struct{ warn, crit int }

// parseCertDays reads "WARN" or "WARN,CRIT"; CRIT defaults to 0.
func parseCertDays(s string) (certDays, error) {
	warn, crit, hasCrit := strings.Cut(s, ",")
	var d certDays
	var err error
	if d.warn, err = strconv.Atoi(strings.TrimSpace(warn)); err != nil || d.warn < 0 {
		return d, fmt.Errorf("invalid certificate expiration period %q", warn)
	}
	if hasCrit {
		if d.crit, err = strconv.Atoi(strings.TrimSpace(crit)); err != nil || d.crit < 0 {
			return d, fmt.Errorf("invalid certificate expiration period %q", crit)
		}
	}
	return d, nil
}

// certExpiry judges the server certificate's expiry as the twins'
// np_net_ssl_check_certificate does, in its words.
func certExpiry(chain []*x509.Certificate, days certDays, now time.Time) nagios.Result {
	if len(chain) == 0 {
		return nagios.Resultf(nagios.Critical, "CRITICAL - Cannot retrieve server certificate.")
	}
	cert := chain[0]
	cn := cert.Subject.CommonName
	if cn == "" {
		cn = "Unknown CN"
	}
	// The twin keeps the time left in a C float, and truncates days toward zero.
	left := float64(float32(cert.NotAfter.Sub(now).Seconds()))
	daysLeft := int(left / 86400)
	stamp := cert.NotAfter.UTC().Format("Mon Jan _2 15:04:05 2006 -0700")
	closeState := nagios.Critical
	if daysLeft > days.crit {
		closeState = nagios.Warning
	}
	switch {
	case daysLeft > 0 && daysLeft <= days.warn:
		return nagios.Resultf(closeState, "%s - Certificate '%s' expires in %d day(s) (%s).", closeState, cn, daysLeft, stamp)
	case daysLeft == 0 && left > 0:
		n, unit := int(left)/60, "minutes"
		if left >= 3600 {
			n, unit = int(left)/3600, "hours"
		}
		return nagios.Resultf(closeState, "%s - Certificate '%s' expires in %d %s (%s)", closeState, cn, n, unit, stamp)
	case left < 0:
		return nagios.Resultf(nagios.Critical, "CRITICAL - Certificate '%s' expired on %s.", cn, stamp)
	case daysLeft == 0:
		return nagios.Resultf(closeState, "%s - Certificate '%s' just expired (%s).", closeState, cn, stamp)
	}
	return nagios.Resultf(nagios.OK, "OK - Certificate '%s' will expire on %s.", cn, stamp)
}

// splitVirtualHost takes the port off check_http's -H "host:port" or
// "[v6]:port", as the twin does; the brackets stay on the host. An address
// with more colons, or with a '[' and no "]:", is left whole.
func splitVirtualHost(s string) (host string, port int, err error) {
	var p string
	switch {
	case strings.HasPrefix(s, "["):
		i := strings.Index(s, "]:")
		if i < 0 {
			return s, 0, nil
		}
		host, p = s[:i+1], s[i+2:]
	case strings.Count(s, ":") == 1:
		host, p, _ = strings.Cut(s, ":")
	default:
		return s, 0, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	return host, n, nil
}

// anyTLSVersion is the value of a -S given without a version.
const anyTLSVersion = "any"

// sslFlag adds check_http's -S[VERSION] to f: TLS, optionally pinned to a
// version. Read it with parseTLSVersions once f.Changed("ssl").
func sslFlag(f *flagSet, usage string) *string {
	s := f.StringP("ssl", "S", "", usage)
	f.Lookup("ssl").NoOptDefVal = anyTLSVersion
	return s
}

// sslArgs rewrites "-S1.2" as "--ssl=1.2" before f parses args: getopt
// gives an optional argument only when it is attached, and pflag would
// read "-S1.2" as the flags -S, -1, -. and -2. An argument that is the
// value of the option before it ("-a -S1pass") is left alone, as getopt
// leaves it.
func sslArgs(f *flagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case len(a) > 2 && strings.HasPrefix(a, "-S") && a[2] != '=':
			a = "--ssl=" + a[2:]
		case valueFollows(f, a) && i+1 < len(args):
			out = append(out, a)
			i++
			a = args[i]
		}
		out = append(out, a)
	}
	return out
}

// valueFollows reports whether the argument after a is a's value: a is an
// option, or a cluster of short ones, whose last option needs a value and
// has none attached.
func valueFollows(f *flagSet, a string) bool {
	if name, ok := strings.CutPrefix(a, "--"); ok {
		// "--name=value" names no flag, and so has its value.
		fl := f.Lookup(name)
		return fl != nil && fl.NoOptDefVal == ""
	}
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	for i := 1; i < len(a); i++ {
		fl := f.ShorthandLookup(a[i : i+1])
		if fl == nil {
			return false
		}
		if fl.NoOptDefVal == "" {
			// The rest of the cluster, if any, is this option's value.
			return i == len(a)-1
		}
	}
	return false
}

// tlsVersions are the protocol versions -S allows; zero is any version Go
// speaks.
type tlsVersions struct {
	min, max uint16
	// unsupported is "2" or "3": SSL versions the twin accepts, and only on
	// connecting finds its library cannot speak.
	unsupported string
}

// parseTLSVersions reads the value of -S as the twin does: it starts with
// 1, 1.1, 1.2 or 1.3 ("1.2x" is 1.2), and a '+' suffix allows newer
// versions too.
func parseTLSVersions(v string) (tlsVersions, error) {
	var r tlsVersions
	if v == anyTLSVersion {
		return r, nil
	}
	versions := []struct {
		prefix string
		id     uint16
	}{{"1.3", tls.VersionTLS13}, {"1.2", tls.VersionTLS12}, {"1.1", tls.VersionTLS11}, {"1", tls.VersionTLS10}}
	for _, ver := range versions {
		if strings.HasPrefix(v, ver.prefix) {
			r.min, r.max = ver.id, ver.id
			if strings.HasSuffix(v, "+") {
				r.max = 0
			}
			return r, nil
		}
	}
	if v != "" && (v[0] == '2' || v[0] == '3') {
		r.unsupported = v[:1]
		return r, nil
	}
	return r, errors.New("valid SSL/TLS versions: 1, 1.1, 1.2, 1.3 (with optional '+' suffix)")
}

// unsupportedText is the twin's words for a -S version it cannot connect with.
func (v tlsVersions) unsupportedText() string {
	return "SSL protocol version " + v.unsupported + " is not supported by your SSL library."
}

// config is a client configuration for these versions. Like their twins
// the checks do not verify the server's certificate: they watch the
// service, and -C or -D judges the certificate's expiry.
func (v tlsVersions) config() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: v.min, MaxVersion: v.max}
}
