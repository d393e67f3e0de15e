package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/dirlock"
)

// The targets' names in the spool and in PassiveTarget.
const (
	targetNagios = "nagios"
	targetIcinga = "icinga"
)

const (
	// pipeBuf is the most a write to a FIFO carries atomically (PIPE_BUF on
	// Linux): a longer line could be interleaved with another writer's.
	pipeBuf = 4096
	// sendTimeout bounds one delivery: a write to the command file, or one
	// request to Icinga.
	sendTimeout = 10 * time.Second
	// batchSize is how many results are sent between cursor saves; a crash
	// sends up to this many again.
	batchSize = 64
	// backoffMin and backoffMax bound the wait before retrying a target
	// that is down; it doubles from one to the other.
	backoffMin = time.Second
	backoffMax = time.Minute
)

// Passive submits results to Nagios's external command file and to the
// Icinga 2 API. Results go through a Spool, so none is lost while a target
// is down or while the agent restarts, and each target has its own queue;
// while the spool's disk takes no writes they wait in memory.
//
// Each result is one line in the command file, of at most PIPE_BUF (4096)
// bytes so that the write is atomic: a longer result is cut, its long
// output first, and the cut is logged. Icinga takes results whole.
type Passive struct {
	host    string
	spool   *Spool
	targets []*deliverer
	log     *slog.Logger
}

// PassiveTarget is what the HTTP API shows of one passive target.
type PassiveTarget struct {
	Name string `json:"name"`
	// Queued results wait in the spool for this target.
	Queued uint64 `json:"queued"`
	// Delivered, Rejected (refused for good by the target) and Dropped (to
	// the spool's bound) count results since the agent started.
	Delivered     uint64    `json:"delivered"`
	Rejected      uint64    `json:"rejected"`
	Dropped       uint64    `json:"dropped"`
	LastDelivery  time.Time `json:"last_delivery,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// Down is set while the last attempt failed and delivery waits to retry.
	Down bool `json:"down"`
}

// sender delivers results to one target.
type sender interface {
	// send delivers one result. A *rejectedError means the target will
	// never accept it; any other error means "try again later".
	send(ctx context.Context, host string, e Entry) error
	// idle releases what send holds open, when the queue is empty or the
	// target is down.
	idle()
}

// rejectedError is a target refusing a result for good (an unknown
// service): retrying would block the queue behind it forever.
type rejectedError struct{ reason string }

func (e *rejectedError) Error() string { return "rejected: " + e.reason }

// deliverer is one target's delivery loop and its counters.
type deliverer struct {
	name                   string
	sender                 sender
	backoffMin, backoffMax time.Duration

	mu     sync.Mutex
	status PassiveTarget
}

// NewPassive prepares passive submission for host to the targets cfg
// configures, spooling results in dir. With no target configured it
// returns a Passive that does nothing.
//
// A spool dir that cannot be used (not creatable, read-only, unreadable)
// does not stop the agent, with its NRPE, API and deploys: results are
// then kept in memory only, and the immune_passive check reports it. A
// spool another agent holds does: that agent submits this data dir's
// results already, and two would submit each twice.
func NewPassive(cfg conf.Passive, host string, dir string, log *slog.Logger) (*Passive, error) {
	p := &Passive{host: host, log: log}
	if cfg.CommandFile == "" && cfg.Icinga == nil {
		return p, nil
	}
	if host == "" || strings.ContainsAny(host, ";!\n\r") {
		return nil, fmt.Errorf("passive: host name %q: must be set, without ';', '!' or line breaks", host)
	}
	var names []string
	if cfg.CommandFile != "" {
		p.add(targetNagios, &commandFile{path: cfg.CommandFile, log: log})
		names = append(names, targetNagios)
	}
	if cfg.Icinga != nil {
		ic, err := newIcinga(*cfg.Icinga)
		if err != nil {
			return nil, err
		}
		p.add(targetIcinga, ic)
		names = append(names, targetIcinga)
	}
	bound := cfg.SpoolMaxBytes
	if bound == 0 {
		bound = conf.DefaultSpoolMaxBytes
	}
	var err error
	if p.spool, err = OpenSpool(dir, bound, names, log); err != nil {
		if errors.Is(err, dirlock.ErrHeld) {
			return nil, fmt.Errorf("passive: %w", err)
		}
		log.Error("passive: the spool cannot be used: results are kept in memory only, and lost if the agent stops",
			"dir", dir, "error", err)
		if p.spool, err = OpenMemorySpool(dir, bound, names, err, log); err != nil {
			return nil, fmt.Errorf("passive: %w", err)
		}
	}
	return p, nil
}

// Enabled reports whether results are submitted to any target.
func (p *Passive) Enabled() bool { return p != nil && len(p.targets) > 0 }

func (p *Passive) add(name string, s sender) {
	p.targets = append(p.targets, &deliverer{
		name: name, sender: s,
		backoffMin: backoffMin, backoffMax: backoffMax,
		status: PassiveTarget{Name: name},
	})
}

// Submit queues a result for every target. It returns once the result is
// on disk, or in memory while the disk takes no writes, and never waits
// for a target.
func (p *Passive) Submit(st Status) error {
	if p == nil || p.spool == nil {
		return nil
	}
	out, more, _ := strings.Cut(strings.TrimRight(st.Output, "\n"), "\n")
	long := strings.Trim(more+"\n"+st.Long, "\n")
	e := Entry{
		Service: st.Name,
		State:   st.State,
		Output:  out,
		Long:    long,
		Start:   st.LastCheck,
		End:     st.LastCheck.Add(st.Duration),
	}
	if e.Start.IsZero() {
		e.Start = time.Now()
		e.End = e.Start
	}
	for _, pf := range st.Perf {
		e.Perf = append(e.Perf, pf.String())
	}
	if err := p.spool.Append(e); err != nil {
		return fmt.Errorf("submit result of %s: %w", st.Name, err)
	}
	return nil
}

// Run delivers results to each target until ctx ends, and returns once
// every delivery loop has stopped.
func (p *Passive) Run(ctx context.Context) {
	if p == nil {
		return
	}
	var wg sync.WaitGroup
	for _, d := range p.targets {
		wg.Go(func() { p.deliver(ctx, d) })
	}
	wg.Wait()
}

// Targets reports each target's queue and last error.
func (p *Passive) Targets() []PassiveTarget {
	if p == nil {
		return nil
	}
	out := make([]PassiveTarget, 0, len(p.targets))
	for _, d := range p.targets {
		d.mu.Lock()
		t := d.status
		d.mu.Unlock()
		t.Queued = p.spool.Pending(d.name)
		t.Dropped = p.spool.Dropped(d.name)
		out = append(out, t)
	}
	return out
}

// Close closes the spool; call it after Run has returned.
func (p *Passive) Close() error {
	if p == nil || p.spool == nil {
		return nil
	}
	return p.spool.Close()
}

// deliver is one target's loop: send what is queued, then wait for more;
// on failure wait, longer each time, and try again.
func (p *Passive) deliver(ctx context.Context, d *deliverer) {
	defer d.sender.idle()
	wake := p.spool.Wake(d.name)
	backoff := d.backoffMin
	for {
		err := p.flush(ctx, d)
		d.sender.idle()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			d.recovered(p.log)
			backoff = d.backoffMin
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			continue
		}
		d.failed(p.log, err, backoff)
		timer := time.NewTimer(backoff)
		backoff = min(2*backoff, d.backoffMax)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// flush sends everything queued for d, saving its cursor after each batch.
func (p *Passive) flush(ctx context.Context, d *deliverer) error {
	for {
		batch, err := p.spool.Peek(d.name, batchSize)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		var done uint64
		var sendErr error
		for _, e := range batch {
			if sendErr = d.sender.send(ctx, p.host, e); sendErr != nil {
				if rej, ok := errors.AsType[*rejectedError](sendErr); ok {
					p.log.Warn("passive: target refused a result for good; dropped it", "target", d.name,
						"service", e.Service, "state", e.State.String(), "check_time", e.Start, "reason", rej.reason)
					d.count(false)
					done, sendErr = e.Seq, nil
					continue
				}
				break
			}
			d.count(true)
			done = e.Seq
		}
		if done > 0 {
			if err := p.spool.Ack(d.name, done); err != nil {
				return err
			}
		}
		if sendErr != nil {
			return sendErr
		}
	}
}

func (d *deliverer) count(delivered bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if delivered {
		d.status.Delivered++
		d.status.LastDelivery = time.Now()
	} else {
		d.status.Rejected++
	}
}

// recovered notes that everything queued went out.
func (d *deliverer) recovered(log *slog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.status.Down {
		log.Info("passive: target back, spooled results delivered", "target", d.name)
		d.status.Down = false
	}
}

// failed records a failed attempt; it logs only a new error, so a target
// that stays down does not fill the log.
func (d *deliverer) failed(log *slog.Logger, err error, retry time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.status.Down || d.status.LastError != err.Error() {
		log.Warn("passive: target down, results wait in the spool", "target", d.name, "error", err, "retry_in", retry)
	}
	d.status.Down = true
	d.status.LastError = err.Error()
	d.status.LastErrorTime = time.Now()
}

// commandFile writes results to Nagios's external command file.
type commandFile struct {
	path string
	log  *slog.Logger
	f    *os.File
}

func (c *commandFile) send(ctx context.Context, host string, e Entry) error {
	if c.f == nil {
		// Without O_NONBLOCK, opening a FIFO no one reads waits for a
		// reader; with it, a Nagios that is down is ENXIO at once. No
		// O_CREATE: a plain file where Nagios is not would be read by no one.
		f, err := os.OpenFile(c.path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if errors.Is(err, syscall.ENXIO) {
			return fmt.Errorf("open command file %s: nagios is not reading it (not running?)", c.path)
		}
		if err != nil {
			return fmt.Errorf("open command file: %w", err)
		}
		c.f = f
	}
	f := c.f
	deadline := time.Now().Add(sendTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// A full pipe (Nagios busy) waits in the poller, up to the deadline;
	// a regular file has no deadline and needs none.
	if err := f.SetWriteDeadline(deadline); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		c.idle()
		return fmt.Errorf("write command file: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Now()) })
	defer stop()
	line, cut := commandLine(host, e)
	if _, err := io.WriteString(f, line); err != nil {
		c.idle()
		return fmt.Errorf("write command file %s: %w", c.path, err)
	}
	if cut {
		c.log.Info("passive: result cut to fit one atomic write to the command file",
			"service", e.Service, "check_time", e.Start, "max_bytes", pipeBuf)
	}
	return nil
}

func (c *commandFile) idle() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// commandLine formats e as a PROCESS_SERVICE_CHECK_RESULT external command.
// Nagios reads "\n" in it as a line break and "\\" as a backslash, and '|'
// as the start of perfdata, so those are escaped or replaced. The line is at
// most pipeBuf bytes: cut reports that the long output, then the perfdata,
// then the status line, were cut to make it so.
func commandLine(host string, e Entry) (line string, cut bool) {
	head := fmt.Sprintf("[%d] PROCESS_SERVICE_CHECK_RESULT;%s;%s;%d;", e.Start.Unix(), host, oneLine(e.Service), e.State.ExitCode())
	room := pipeBuf - len(head) - 1
	status := escapeCommand(e.Output)
	perf := strings.Join(e.Perf, " ")
	if strings.ContainsAny(perf, "\n\r") {
		perf = oneLine(perf)
	}
	long := ""
	if e.Long != "" {
		long = `\n` + escapeCommand(e.Long)
	}
	withPerf := func(status, perf string) string {
		if perf == "" {
			return status
		}
		return status + "|" + perf
	}
	out := withPerf(status, perf) + long
	if len(out) > room {
		cut = true
		out = withPerf(status, perf)
		if len(out) < room {
			out += cutEscaped(long, room-len(out))
		}
		for len(out) > room && perf != "" {
			i := strings.LastIndexByte(perf, ' ')
			perf = perf[:max(i, 0)]
			out = withPerf(status, perf)
		}
		if len(out) > room {
			out = cutEscaped(status, room)
		}
	}
	return head + out + "\n", cut
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", ";", ":").Replace(s)
}

var commandEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", "", "|", "/")

func escapeCommand(s string) string { return commandEscaper.Replace(s) }

// cutEscaped cuts escaped text to at most n bytes, neither in the middle of
// a UTF-8 character nor of a backslash escape.
func cutEscaped(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for range utf8.UTFMax - 1 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	// An odd run of trailing backslashes ends in half an escape.
	run := len(s) - len(strings.TrimRight(s, `\`))
	if run%2 == 1 {
		s = s[:len(s)-1]
	}
	return s
}

// icinga posts results to the Icinga 2 API's process-check-result action.
type icinga struct {
	endpoint     string
	user         string
	passwordFile string
	client       *http.Client
}

func newIcinga(cfg conf.Icinga) (*icinga, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("passive.icinga.url %q: want https://host:port", cfg.URL)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("passive.icinga.ca_file: %w", err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("passive.icinga.ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	if cfg.PasswordFile != "" {
		if _, err := conf.ReadToken("passive.icinga.password_file", cfg.PasswordFile); err != nil {
			return nil, err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	// The API is a fixed endpoint: a proxy meant for the web has no business here.
	tr.Proxy = nil
	return &icinga{
		endpoint:     strings.TrimRight(u.String(), "/") + "/v1/actions/process-check-result",
		user:         cfg.User,
		passwordFile: cfg.PasswordFile,
		client:       &http.Client{Transport: tr},
	}, nil
}

// icingaResult is the body of a process-check-result request. The object
// is named in "service" rather than matched by a "filter": for a filter
// that matches nothing Icinga 2.13 answers 500 with no results, which would
// be retried forever, while an unknown name is a 404 "No objects found."
type icingaResult struct {
	Type            string   `json:"type"`
	Service         string   `json:"service"`
	ExitStatus      int      `json:"exit_status"`
	PluginOutput    string   `json:"plugin_output"`
	PerformanceData []string `json:"performance_data,omitempty"`
	CheckSource     string   `json:"check_source"`
	ExecutionStart  float64  `json:"execution_start"`
	ExecutionEnd    float64  `json:"execution_end"`
}

// icingaResponse covers both of Icinga's answers (lib/remote/actionshandler.cpp):
// per-object results, {"results":[{"code":200,"status":"..."}]}, or one
// error for the request as a whole, {"error":404,"status":"..."}.
type icingaResponse struct {
	Results []struct {
		Code   float64 `json:"code"`
		Status string  `json:"status"`
	} `json:"results"`
	Error  float64 `json:"error"`
	Status string  `json:"status"`
}

// icingaNoObject is the status of Icinga's answer when the object a request
// names does not exist: the one whole-request error that is about the result.
const icingaNoObject = "No objects found"

func (ic *icinga) send(ctx context.Context, host string, e Entry) error {
	output := e.Output
	if e.Long != "" {
		output += "\n" + e.Long
	}
	body, err := json.Marshal(icingaResult{
		Type:            "Service",
		Service:         host + "!" + e.Service,
		ExitStatus:      e.State.ExitCode(),
		PluginOutput:    output,
		PerformanceData: e.Perf,
		CheckSource:     host,
		ExecutionStart:  unixSeconds(e.Start),
		ExecutionEnd:    unixSeconds(e.End),
	})
	if err != nil {
		return fmt.Errorf("encode icinga check result: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ic.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("icinga request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if ic.passwordFile != "" || ic.user != "" {
		pw := ""
		if ic.passwordFile != "" {
			// Read at each request, so a new password needs no restart.
			if pw, err = conf.ReadToken("passive.icinga.password_file", ic.passwordFile); err != nil {
				return fmt.Errorf("icinga password: %w", err)
			}
		}
		req.SetBasicAuth(ic.user, pw)
	}
	resp, err := ic.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to icinga: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("read icinga answer: %w", err)
	}
	return icingaVerdict(resp.StatusCode, data)
}

// icingaVerdict reads Icinga's answer: nil when it took the result, a
// *rejectedError when it never will, any other error to try again later.
//
// Only Icinga itself can refuse a result for good, and it says so in JSON:
// a 4xx in the per-object results (passive checks disabled on the object,
// a bad parameter), or a 404 "No objects found." for the request when the
// service it names does not exist. Every other failure is the request's
// and is retried, the result kept: a 404 or 5xx page from a proxy, a wrong
// path (Icinga's own 404 "The requested path ... could not be found"), 401
// and 403 over the agent's credentials, a 2xx that is not Icinga's answer.
// Dropping on those would lose every result until someone noticed.
func icingaVerdict(code int, body []byte) error {
	var r icingaResponse
	icingaJSON := json.Unmarshal(body, &r) == nil && (len(r.Results) > 0 || r.Error != 0)
	reason := r.Status
	perObject := false
	for _, res := range r.Results {
		if res.Code < 200 || res.Code >= 300 {
			code, reason, perObject = int(res.Code), res.Status, true
			break
		}
	}
	if reason == "" {
		reason = strings.TrimSpace(string(body))
		if len(reason) > 200 {
			reason = reason[:200]
		}
	}
	text := fmt.Sprintf("icinga answered %d: %s", code, reason)
	switch {
	case !icingaJSON:
		return fmt.Errorf("%s (not an answer of the Icinga 2 API: a proxy, or the wrong URL?)", text)
	case perObject && code >= 400 && code < 500:
		return &rejectedError{reason: text}
	case perObject:
		return errors.New(text)
	case code >= 200 && code < 300 && len(r.Results) > 0:
		return nil
	case code == http.StatusNotFound && int(r.Error) == http.StatusNotFound && strings.HasPrefix(r.Status, icingaNoObject):
		return &rejectedError{reason: text}
	default:
		return errors.New(text)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// idle closes kept-alive connections: results come a minute apart, and a
// connection left open outlives Run.
func (ic *icinga) idle() { ic.client.CloseIdleConnections() }
