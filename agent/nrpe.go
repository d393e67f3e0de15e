package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/nagios/nrpe"
)

// The NRPE listener answers Nagios's stock check_nrpe, so a host moves to
// immune without touching its Nagios server's command definitions.
//
// check_nrpe's default offers anonymous Diffie-Hellman (ADH), which Go's TLS
// does not do, alongside ordinary certificate suites; OpenSSL 3 then settles
// on TLS 1.3 with our certificate, so the stock command line works unchanged:
//
//	check_nrpe -H host -c check_load              # TLS, v4 packets
//	check_nrpe -H host -2 -c check_load           # TLS, v2 packets
//	check_nrpe -H host -d 0 -c check_load         # TLS, ADH not offered
//	check_nrpe -H host -n -c check_load           # plain text (PlainText: true)
//	check_nrpe -H host -C client.pem -K client.key -A ca.pem -c check_load
//	                                              # mutual TLS (LoadTLS with a client CA)
//
// Even -d 2 (ADH only) connects, as TLS 1.3 ignores the cipher list; only
// ADH forced onto TLS 1.2 (-d 2 -S TLSv1.2) and TLS below 1.2 (-S TLSv1,
// -S TLSv1.1) fail the handshake.

// NRPEHandler runs the check a query names and reports its result. It
// returns an *NRPEUndefinedCommandError for a name it does not know; any
// other error is reported to the client as UNKNOWN.
type NRPEHandler func(ctx context.Context, command string, args []string) (nagios.Result, error)

// NRPEUndefinedCommandError is what an NRPEHandler returns for a command it
// does not define.
type NRPEUndefinedCommandError struct{ Command string }

func (e *NRPEUndefinedCommandError) Error() string {
	return fmt.Sprintf("NRPE command %q not defined", e.Command)
}

// NRPEServer answers NRPE queries (protocol versions 2, 3 and 4) by running
// its Handler on the connections of a listener the caller opens (NRPE's
// port is 5666). Its zero value with a Handler and a TLSConfig is usable and
// answers only loopback clients.
type NRPEServer struct {
	// TLSConfig secures connections; see SelfSignedTLS and LoadTLS.
	TLSConfig *tls.Config
	// PlainText must be set to serve without TLS (check_nrpe -n): a nil
	// TLSConfig alone is refused, so a config mistake cannot turn TLS off.
	PlainText bool
	// AllowedHosts are the client addresses answered; others are reset
	// without a TLS handshake or a word. Empty means loopback only
	// (127.0.0.0/8 and ::1), so a bare config exposes nothing.
	AllowedHosts []netip.Prefix
	// AllowArgs lets queries carry '!'-separated arguments (NRPE's
	// dont_blame_nrpe); without it such queries are refused.
	AllowArgs bool
	Handler   NRPEHandler
	// HandshakeTimeout bounds the TLS handshake and reading the query, so
	// that a client that connects and sends nothing soon lets go of its
	// connection slot. Zero means 5 s.
	HandshakeTimeout time.Duration
	// Timeout bounds running the command a query names: NRPE's
	// command_timeout. Zero means 60 s.
	Timeout time.Duration
	// MaxConns caps connections served at once; past it, clients wait in
	// the listen backlog. Zero means 16.
	MaxConns int
	// Version is answered to _NRPE_CHECK as "NRPE v<Version>"; empty means
	// the NRPE release whose protocol this follows, since tools read the
	// reply to learn what the daemon speaks.
	Version string
	// Logger receives refusals and connection errors; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults and limits from NRPE 4.
const (
	nrpeDefaultTimeout = 60 * time.Second
	// nrpeDefaultHandshakeTimeout is not NRPE's: NRPE gives the handshake
	// all of command_timeout.
	nrpeDefaultHandshakeTimeout = 5 * time.Second
	nrpeDefaultMaxConns         = 16
	nrpeDefaultVersion          = "4.1.0"
	nrpeHelloCommand            = "_NRPE_CHECK"
	// nrpeMaxArgs is NRPE's MAX_COMMAND_ARGUMENTS ($ARG1$ to $ARG16$).
	nrpeMaxArgs = 16
	// nrpeNastyMetachars are the characters NRPE refuses anywhere in a
	// query: shell syntax. We run no shell, but refusing them keeps a
	// query valid here exactly when it is valid for NRPE.
	nrpeNastyMetachars = "|`&><'\\[]{};\r\n"
	// nrpeWriteGrace lets the answer to a command that used all of Timeout
	// still reach the client.
	nrpeWriteGrace = 5 * time.Second
	// nrpeLogEvery is how often a flood of refused or evicted connections
	// is logged.
	nrpeLogEvery = 10 * time.Second
)

// Serve answers connections on ln until ctx ends, then closes ln, cuts open
// connections short and returns nil once every connection's goroutine has
// finished. It returns an error if the server is misconfigured or ln fails
// for good; ln is closed either way.
//
// A client not in AllowedHosts is hung up on as soon as it is accepted,
// before it can take a connection slot, and its refusal is logged at most
// once per nrpeLogEvery. Slots are handed out by nrpeConns, which closes a
// connection that sits idle when a newcomer needs its slot.
func (s *NRPEServer) Serve(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	if err := s.validate(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	refused := newLogLimiter(s.logger(), "nrpe: connection from host not in allowed hosts refused", nrpeLogEvery)
	defer refused.stop()
	evictions := newLogLimiter(s.logger(), "nrpe: closed a connection that sent no query, to make room for a new one", nrpeLogEvery)
	defer evictions.stop()
	var wg sync.WaitGroup
	// Connections end before the limiters stop, so that their last lines
	// are written before Serve returns.
	defer wg.Wait()
	conns := newNRPEConns(s.maxConns(), evictions)
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("nrpe: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like pass; retry slower
			// each time rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("nrpe: accept failed; retrying", "addr", ln.Addr().String(), "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		remote, err := netip.ParseAddrPort(conn.RemoteAddr().String())
		if err != nil || !s.allowed(remote.Addr()) {
			refused.note(conn.RemoteAddr().String())
			nrpeRefuse(conn)
			continue
		}
		slot, err := conns.acquire(ctx, conn)
		if err != nil {
			conn.Close()
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer slot.release()
			s.serveConn(ctx, conn, slot)
		}()
	}
}

func (s *NRPEServer) validate() error {
	if s.Handler == nil {
		return errors.New("nrpe: server has no Handler")
	}
	if s.TLSConfig == nil && !s.PlainText {
		return errors.New("nrpe: no TLSConfig; set PlainText to serve NRPE without TLS")
	}
	if s.Timeout < 0 {
		return fmt.Errorf("nrpe: negative Timeout %s", s.Timeout)
	}
	if s.HandshakeTimeout < 0 {
		return fmt.Errorf("nrpe: negative HandshakeTimeout %s", s.HandshakeTimeout)
	}
	if s.MaxConns < 0 {
		return fmt.Errorf("nrpe: negative MaxConns %d", s.MaxConns)
	}
	return nil
}

func (s *NRPEServer) timeout() time.Duration {
	if s.Timeout == 0 {
		return nrpeDefaultTimeout
	}
	return s.Timeout
}

func (s *NRPEServer) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout == 0 {
		return nrpeDefaultHandshakeTimeout
	}
	return s.HandshakeTimeout
}

func (s *NRPEServer) maxConns() int {
	if s.MaxConns == 0 {
		return nrpeDefaultMaxConns
	}
	return s.MaxConns
}

func (s *NRPEServer) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

var nrpeLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// allowed reports whether the client at addr may be answered.
func (s *NRPEServer) allowed(addr netip.Addr) bool {
	// An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d, and a
	// zoned address never matches a prefix: compare the plain address.
	addr = addr.Unmap().WithZone("")
	hosts := s.AllowedHosts
	if len(hosts) == 0 {
		hosts = nrpeLoopback
	}
	for _, p := range hosts {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (s *NRPEServer) serveConn(ctx context.Context, conn net.Conn, slot *nrpeConn) {
	defer conn.Close()
	log := s.logger().With("remote", conn.RemoteAddr().String())
	// Shutting down cuts every blocked read and write at once. The raw
	// connection is captured: conn is replaced by the TLS one later, and
	// the TLS connection's deadline is the raw one's anyway.
	raw := conn
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A failure after an eviction is the eviction, logged already.
	logFailure := func(msg string, args ...any) {
		if !slot.wasEvicted() {
			log.Info(msg, args...)
		}
	}

	if err := conn.SetDeadline(time.Now().Add(s.handshakeTimeout())); err != nil {
		logFailure("nrpe: set connection deadline", "err", err)
		return
	}
	if s.TLSConfig != nil {
		tc := tls.Server(conn, s.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			logFailure("nrpe: TLS handshake failed", "err", err)
			return
		}
		conn = tc
	}
	req, err := nrpe.ReadPacket(conn, nrpe.MaxBuffer)
	if err != nil {
		// NRPE answers nothing to a packet it cannot trust; check_nrpe
		// takes the silence as "try v2".
		logFailure("nrpe: read query", "err", err)
		return
	}
	if req.Type != nrpe.Query {
		log.Info("nrpe: packet is not a query", "type", req.Type.String())
		return
	}
	if !slot.start() {
		return
	}

	runCtx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	deadline, _ := runCtx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		log.Info("nrpe: set connection deadline", "err", err)
		return
	}
	state, text := s.answer(runCtx, log, req.Buffer)
	resp := nrpe.Packet{Version: req.Version, Type: nrpe.Response, ResultCode: int16(state.ExitCode()), Buffer: text}
	if err := conn.SetWriteDeadline(time.Now().Add(nrpeWriteGrace)); err != nil {
		log.Info("nrpe: set write deadline", "err", err)
		return
	}
	if _, err := resp.WriteTo(conn); err != nil {
		log.Info("nrpe: answer query", "err", err)
		return
	}
	if tc, ok := conn.(*tls.Conn); ok {
		// close_notify tells OpenSSL the answer is whole.
		tc.CloseWrite()
	}
}

// nrpeRefuse hangs up on a client at once, with a reset: no TLS handshake,
// no read, no waiting on it. check_nrpe reports "Connection reset by peer"
// whether the reset comes before or after it sends its first bytes. (A
// plain close would not do: the client writes into the half-closed
// connection, and the reset that answers that kills check_nrpe by SIGPIPE.)
func nrpeRefuse(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// answer checks a query as NRPE does and runs it. Refusals carry NRPE's
// own log wording, logged and sent to the client as UNKNOWN so the operator
// sees why instead of NRPE's silent disconnect.
func (s *NRPEServer) answer(ctx context.Context, log *slog.Logger, query string) (nagios.State, string) {
	refuse := func(why string) (nagios.State, string) {
		log.Warn("nrpe: query refused", "query", query, "reason", why)
		return nagios.Unknown, "NRPE: Request contained " + why
	}
	if query == "" {
		return refuse("no query")
	}
	if strings.ContainsAny(query, nrpeNastyMetachars) {
		return refuse("illegal metachars")
	}
	command, argText, hasArgs := strings.Cut(query, "!")
	if command == "" {
		return refuse("no command")
	}
	var args []string
	if hasArgs {
		if !s.AllowArgs {
			return refuse("command arguments, but argument option is not enabled")
		}
		args = strings.Split(argText, "!")
		if len(args) > nrpeMaxArgs {
			return refuse(fmt.Sprintf("more than %d command arguments", nrpeMaxArgs))
		}
		for _, a := range args {
			if a == "" {
				return refuse("an empty command argument")
			}
			if strings.Contains(a, "$(") {
				return refuse("a bash command substitution")
			}
		}
	}
	if command == nrpeHelloCommand {
		v := s.Version
		if v == "" {
			v = nrpeDefaultVersion
		}
		return nagios.OK, "NRPE v" + v
	}

	res, err := s.Handler(ctx, command, args)
	var undefined *NRPEUndefinedCommandError
	var queueFull *CheckQueueFullError
	switch {
	case errors.As(err, &undefined):
		return nagios.Unknown, fmt.Sprintf("NRPE: Command '%s' not defined", command)
	case errors.As(err, &queueFull):
		log.Warn("nrpe: query not run", "query", query, "reason", err)
		return nagios.Unknown, "NRPE: " + queueFull.Error()
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nagios.Unknown, fmt.Sprintf("NRPE: Command timed out after %d seconds", int(s.timeout().Seconds()))
	case err != nil:
		return nagios.Unknown, fmt.Sprintf("NRPE: Command '%s' failed: %v", command, err)
	}
	// NRPE strips the one newline a plugin ends its output with.
	text := strings.TrimSuffix(res.String(), "\n")
	if strings.TrimSpace(text) == "" {
		return nagios.Unknown, "NRPE: Unable to read output"
	}
	return nagios.StateFromExit(res.State.ExitCode()), text
}

// nrpeTLSBase is what every NRPE TLS config starts from: TLS 1.2 and up,
// which check_nrpe's OpenSSL 3 negotiates (as 1.3) by default.
func nrpeTLSBase(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// The self-signed pair's file names in SelfSignedTLS's dir.
const (
	SelfSignedCertFile = "nrpe-cert.pem"
	SelfSignedKeyFile  = "nrpe-key.pem"
)

// SelfSignedTLS returns a TLS config with the certificate in dir, creating
// dir and an ECDSA P-256 self-signed pair on first start (or when the pair
// is incomplete or expired), the key readable by its owner only. check_nrpe
// without -A checks no certificate, so this is what a stock Nagios server
// expects, as NRPE's own packaged certificates are.
func SelfSignedTLS(dir string) (*tls.Config, error) {
	certPath := filepath.Join(dir, SelfSignedCertFile)
	keyPath := filepath.Join(dir, SelfSignedKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil && time.Now().Before(cert.Leaf.NotAfter):
		return nrpeTLSBase(cert), nil
	case err == nil, errors.Is(err, fs.ErrNotExist):
		// Expired, or not made yet (or half made: a pair is written as two
		// renames, and a crash between them leaves one file).
	default:
		return nil, fmt.Errorf("load NRPE certificate %s: %w", certPath, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create NRPE certificate dir: %w", err)
	}
	certPEM, keyPEM, err := nrpeNewSelfSigned(time.Now())
	if err != nil {
		return nil, fmt.Errorf("create NRPE certificate: %w", err)
	}
	if err := renameio.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := renameio.WriteFile(certPath, certPEM, 0o600); err != nil {
		return nil, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load new NRPE certificate: %w", err)
	}
	return nrpeTLSBase(cert), nil
}

func nrpeNewSelfSigned(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"immune agent NRPE"}},
		DNSNames:     []string{host, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// An hour's slack for clocks behind ours; ten years because nothing
		// renews it and check_nrpe does not check it without -A.
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// LoadTLS returns a TLS config with a configured certificate and key. With
// a clientCAFile, clients must present a certificate signed by one of its
// CAs (check_nrpe -C/-K/-A).
func LoadTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := nrpeTLSBase(cert)
	if clientCAFile == "" {
		return cfg, nil
	}
	pemCAs, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCAs) {
		return nil, fmt.Errorf("load TLS client CA %s: no PEM certificate in it", clientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}
