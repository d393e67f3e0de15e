// Package agent is the daemon that runs on every host: it schedules the
// checks and keeps their soft/hard state, answers Nagios over NRPE, submits
// passive results, and serves its readings over HTTP to the coordinator.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/netlimit"
)

// saveInterval is how often changed check state is written to disk.
const saveInterval = 5 * time.Second

// drainTimeout bounds how long a stopping agent waits for the API requests
// in flight, a deploy among them, before it exits (systemd's stop timeout
// is 90 s).
const drainTimeout = 60 * time.Second

// Agent is a configured agent, ready to Run.
type Agent struct {
	cfg   *conf.Agent
	log   *slog.Logger
	store *Store

	// mu guards jobs, sched and their runner, which a reload replaces
	// while NRPE queries may be using the old ones.
	mu     sync.RWMutex
	jobs   []*job
	sched  *Scheduler
	run    *schedRun
	runCtx context.Context

	// Listeners are opened in New, so their addresses are known (and taken)
	// before Run; tests ask for port 0 and read them back.
	nrpeLn, httpLn net.Listener
	nrpe           *NRPEServer
	http           *http.Server
	gauges         *Gauges
	deployer       *Deployer
	passive        *Passive

	// nrpeQueueTimeout is how long an NRPE query waits for one of
	// max_concurrent's slots.
	nrpeQueueTimeout time.Duration
}

// New prepares an agent: it creates the data dir, loads the saved state,
// builds the checks and opens the listeners. Run starts it.
func New(cfg *conf.Agent, log *slog.Logger) (_ *Agent, err error) {
	// Not the named result: the error returns set that to nil before the
	// deferred close runs.
	a := &Agent{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if a.store, err = OpenStore(filepath.Join(cfg.DataDir, "state.json")); err != nil {
		return nil, err
	}
	if a.passive, err = NewPassive(cfg.Passive, cfg.Host, filepath.Join(cfg.DataDir, "spool"), log); err != nil {
		return nil, err
	}
	var names map[string]bool
	if a.jobs, names, err = a.buildAllJobs(cfg.Checks); err != nil {
		return nil, err
	}
	a.store.Keep(names)
	a.sched = NewScheduler(a.jobs, a.store, cfg.MaxConcurrent, log)
	// Submit only appends to the local spool; delivery runs in Run.
	a.store.Watch(func(st Status) {
		if err := a.passive.Submit(st); err != nil {
			a.log.Error("spool passive result", "check", st.Name, "err", err)
		}
	})
	if cfg.NRPE.Listen != "" {
		if err := a.setupNRPE(); err != nil {
			return nil, err
		}
	}
	if cfg.Deploy != nil {
		if a.deployer, err = NewDeployer(*cfg.Deploy, log); err != nil {
			return nil, err
		}
	}
	if cfg.HTTP.Listen != "" {
		if err := a.setupHTTP(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// buildAllJobs builds the configured checks and the agent's own, and
// names them all.
func (a *Agent) buildAllJobs(checks []conf.Check) ([]*job, map[string]bool, error) {
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
	}
	if a.passive.Enabled() && names[passiveCheckName] {
		return nil, nil, fmt.Errorf("check %s: the name is taken by the agent's own check of passive submission", passiveCheckName)
	}
	jobs, err := buildJobs(checks, slogWriter{a.log})
	if err != nil {
		return nil, nil, err
	}
	if a.passive.Enabled() {
		names[passiveCheckName] = true
		jobs = append(jobs, passiveJob(a.passive))
	}
	return jobs, names, nil
}

// NRPEAddr is where the NRPE listener listens, or nil when it is off.
func (a *Agent) NRPEAddr() net.Addr { return addrOf(a.nrpeLn) }

// HTTPAddr is where the HTTP API listens, or nil when it is off.
func (a *Agent) HTTPAddr() net.Addr { return addrOf(a.httpLn) }

func addrOf(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

func (a *Agent) setupNRPE() error {
	n := a.cfg.NRPE
	var hosts []netip.Prefix
	for _, h := range n.AllowedHosts {
		p, err := conf.ParsePrefix(h)
		if err != nil {
			return fmt.Errorf("nrpe.allowed_hosts: %w", err)
		}
		hosts = append(hosts, p)
	}
	s := &NRPEServer{
		PlainText:        n.Plaintext,
		AllowedHosts:     hosts,
		AllowArgs:        n.AllowArguments,
		Handler:          a.answerNRPE,
		Timeout:          n.Timeout.D(),
		HandshakeTimeout: n.HandshakeTimeout.D(),
		MaxConns:         n.MaxConnections,
		Logger:           a.log,
	}
	var err error
	switch {
	case n.Plaintext:
	case n.CertFile != "":
		s.TLSConfig, err = LoadTLS(n.CertFile, n.KeyFile, n.ClientCAFile)
	default:
		s.TLSConfig, err = SelfSignedTLS(filepath.Join(a.cfg.DataDir, "tls"))
		if err == nil && n.ClientCAFile != "" {
			err = errors.New("nrpe.client_ca_file needs cert_file and key_file")
		}
	}
	if err != nil {
		return fmt.Errorf("nrpe tls: %w", err)
	}
	if a.nrpeLn, err = net.Listen("tcp", n.Listen); err != nil {
		return fmt.Errorf("nrpe: %w", err)
	}
	a.nrpe = s
	a.nrpeQueueTimeout = n.QueueTimeout.D()
	return nil
}

// answerNRPE answers a query from the last result when it is fresh enough,
// otherwise by running the check.
func (a *Agent) answerNRPE(ctx context.Context, command string, args []string) (nagios.Result, error) {
	sched, release := a.useScheduler()
	defer release()
	cfg, ok := sched.Config(command)
	if !ok {
		return nagios.Result{}, &NRPEUndefinedCommandError{Command: command}
	}
	if len(args) > 0 && !cfg.NRPEArgs {
		return nagios.Result{}, fmt.Errorf("check %s takes no arguments", command)
	}
	if cfg.Fresh > 0 && len(args) == 0 {
		if st, ok := a.store.Get(command); ok && st.Checked() && time.Since(st.LastCheck) <= cfg.Fresh.D() {
			return st.Result, nil
		}
	}
	st, err := sched.RunNow(ctx, command, args, a.nrpeQueueTimeout)
	if err != nil {
		return nagios.Result{}, err
	}
	return st.Result, nil
}

func (a *Agent) setupHTTP() error {
	h := a.cfg.HTTP
	token, err := a.apiToken()
	if err != nil {
		return err
	}
	if a.deployer != nil && a.deployer.token == token {
		return errors.New("deploy.token_file holds the HTTP API's token: the read credential must not be able to deploy")
	}
	a.gauges = NewGauges(a.cfg.Host, a.cfg.HostType, a.cfg.Gauges, a.store)
	api := &API{Host: a.cfg.Host, HostType: a.cfg.HostType, Store: a.store, Gauges: a.gauges, Token: token, Log: a.log, Deployer: a.deployer, Passive: a.passive}
	a.http = &http.Server{Handler: api.Handler(), ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	if h.CertFile != "" {
		cfg, err := LoadTLS(h.CertFile, h.KeyFile, h.ClientCAFile)
		if err != nil {
			return fmt.Errorf("http tls: %w", err)
		}
		if h.ClientCAFile != "" {
			// A client certificate is one credential; the token is the other.
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
		a.http.TLSConfig = cfg
	}
	if a.httpLn, err = net.Listen("tcp", h.Listen); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	// Bounded before TLS, so that a handshake flood holds no more than the cap.
	a.httpLn = netlimit.Default.Apply(a.http, a.httpLn)
	if a.http.TLSConfig != nil {
		a.httpLn = tls.NewListener(a.httpLn, a.http.TLSConfig)
	}
	return nil
}

// apiToken reads the API's bearer token, making a random one at first start
// when the config names no file.
func (a *Agent) apiToken() (string, error) {
	path := a.cfg.HTTP.TokenFile
	if path == "" {
		path = filepath.Join(a.cfg.DataDir, "api.token")
		if _, err := os.Stat(path); os.IsNotExist(err) {
			b := make([]byte, 32)
			rand.Read(b)
			if err := renameio.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
				return "", fmt.Errorf("make api token: %w", err)
			}
			a.log.Info("made an API token", "file", path)
		}
	}
	return conf.ReadToken("http.token_file", path)
}

// Run runs the agent until ctx ends, then stops its parts in order and
// saves its state.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	goRun := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	a.mu.Lock()
	a.runCtx = ctx
	a.run = startScheduler(ctx, a.sched)
	a.mu.Unlock()
	defer a.stopScheduler()
	goRun(func() { a.saveLoop(ctx) })
	goRun(func() { a.passive.Run(ctx) })
	if a.nrpe != nil {
		goRun(func() {
			if err := a.nrpe.Serve(ctx, a.nrpeLn); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("nrpe: %w", err)
				cancel()
			}
		})
	}
	if a.http != nil {
		goRun(func() {
			<-ctx.Done()
			shut, done := context.WithTimeout(context.Background(), drainTimeout)
			defer done()
			a.http.Shutdown(shut)
		})
		goRun(func() {
			if err := a.http.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http: %w", err)
				cancel()
			}
		})
		goRun(func() { a.gauges.Run(ctx) })
	}
	a.log.Info("agent running", "host", a.cfg.Host, "host_type", a.cfg.HostType, "checks", len(a.jobs),
		"nrpe", fmt.Sprint(a.NRPEAddr()), "http", fmt.Sprint(a.HTTPAddr()))
	wg.Wait()
	// Checks in flight finish before the state is saved.
	a.stopScheduler()
	if err := a.store.Save(); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (a *Agent) saveLoop(ctx context.Context) {
	t := time.NewTicker(saveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.store.Save(); err != nil {
				a.log.Error("save state", "err", err)
			}
		}
	}
}

// close stops what New opened.
func (a *Agent) close() {
	a.mu.Lock()
	jobs := a.jobs
	a.mu.Unlock()
	closeJobs(jobs)
	if err := a.passive.Close(); err != nil {
		a.log.Error("close passive spool", "err", err)
	}
	for _, ln := range []net.Listener{a.nrpeLn, a.httpLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// slogWriter turns lines written to it (Go plugins' logs) into warnings.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimRight(string(p), "\n"), "from", "go-plugin")
	return len(p), nil
}
