package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/conf"
)

// State is where a push is.
type State string

// The states of a push. A push moves forward through them; every step is
// recorded before it is acted on, so a restarted coordinator resumes it.
const (
	StateBaseline    State = "baseline"     // sampling the gauges before the push
	StateDeploying   State = "deploying"    // putting the revision on a phase's hosts
	StateObserving   State = "observing"    // sampling the gauges after the phase
	StateRollingBack State = "rolling_back" // switching every touched host back
	StateReverting   State = "reverting"    // reverting the commit
	StateLive        State = "live"         // done: live on every host
	StateRolledBack  State = "rolled_back"  // done: rolled back, reverted, locked
)

// Done reports whether a push in state s has ended.
func (s State) Done() bool { return s == StateLive || s == StateRolledBack }

// Push is one push of a revision to the fleet, as recorded.
type Push struct {
	ID       string    `json:"id"`
	Revision string    `json:"revision"`
	SHA256   string    `json:"sha256"`
	Who      string    `json:"who"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	State    State     `json:"state"`
	// Phase is the index of the phase being deployed or observed.
	Phase  int         `json:"phase"`
	Phases []PushPhase `json:"phases"`
	// Baseline is each host's mean of each gauge before the push.
	Baseline map[string]map[string]float64 `json:"baseline,omitempty"`
	// Previous is the release each touched host ran before the push.
	Previous map[string]string `json:"previous,omitempty"`
	// Touched are the hosts the revision was sent to, in order: every one
	// of them is switched back on a rollback.
	Touched []string `json:"touched,omitempty"`
	// Reason says in one sentence why the push was rolled back.
	Reason     string            `json:"reason,omitempty"`
	RolledBack map[string]string `json:"rolled_back,omitempty"` // host -> "" or the error
	Revert     *RevertRecord     `json:"revert,omitempty"`
	Events     []Event           `json:"events"`
}

// PushPhase is one phase of a push.
type PushPhase struct {
	Percent float64  `json:"percent"`
	Hosts   []string `json:"hosts"`
	// Deployed is each host's deploy result: "" for done, else the error.
	Deployed map[string]string `json:"deployed,omitempty"`
	Started  time.Time         `json:"started,omitzero"`
	Observed time.Time         `json:"observed,omitzero"`
	Verdict  *Verdict          `json:"verdict,omitempty"`
}

// RevertRecord is the revert of the offending commit.
type RevertRecord struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Output   string    `json:"output"`
	Error    string    `json:"error,omitempty"`
}

// Event is one line of a push's progress.
type Event struct {
	At  time.Time `json:"at"`
	Msg string    `json:"msg"`
}

// Outcome says how a push ended, or that it has not.
func (p *Push) Outcome() string {
	switch p.State {
	case StateLive:
		return "live"
	case StateRolledBack:
		return "rolled back"
	}
	return "in progress"
}

// HostsDone counts the hosts that run the revision now.
func (p *Push) HostsDone() int {
	done := map[string]bool{}
	for _, ph := range p.Phases {
		for host, e := range ph.Deployed {
			if e == "" {
				done[host] = true
			}
		}
	}
	return len(done)
}

// Reverter reverts a revision in the repository and says what it did.
type Reverter func(ctx context.Context, revision string) (output string, err error)

// Coordinator drives pushes through their phases.
type Coordinator struct {
	Fleet  *conf.Fleet
	Store  Store
	Agents Agents
	Revert Reverter
	// ArtifactURL is where agents fetch an artifact by its sha256.
	ArtifactURL func(sha256 string) string
	Log         *slog.Logger
	// Parallel bounds the calls to agents in flight (default 256).
	Parallel int
	// Context bounds the pushes the coordinator drives: they stop (to be
	// resumed at the next start) when it ends. Default: never. Change it
	// with SetContext once the coordinator serves requests.
	Context context.Context
	ctxMu   sync.Mutex
	// Leading reports whether this coordinator drives pushes: with a
	// shared store only the one holding the leader lock does. Nil: always.
	Leading func() bool

	wg sync.WaitGroup
}

func (c *Coordinator) parallel() int {
	if c.Parallel > 0 {
		return c.Parallel
	}
	return 256
}

// Start records a new push of revision and drives it in the background,
// under c.Context rather than the caller's. It is refused while another
// push runs or the commit lock is on.
func (c *Coordinator) Start(revision, sha256, who string) (*Push, error) {
	if c.Leading != nil && !c.Leading() {
		return nil, fmt.Errorf("%w: this coordinator is a standby; push through the one holding the leader lock", ErrLocked)
	}
	now := time.Now().UTC()
	p := &Push{
		ID:       now.Format("20060102-150405.000") + "-" + shortRev(revision),
		Revision: revision, SHA256: sha256, Who: who, Created: now, State: StateBaseline,
		Previous: map[string]string{},
	}
	p.ID = strings.ReplaceAll(p.ID, ".", "-")
	for i, share := range c.Fleet.Phases {
		p.Phases = append(p.Phases, PushPhase{Percent: float64(share), Hosts: c.phaseHosts(i)})
	}
	err := c.Store.UpdateLocks(func(l *Locks) error {
		if l.Commit != nil {
			return fmt.Errorf("%w: pushes are blocked since %s after push %s of %s: %s (immune unlock --reason \"...\" clears it)",
				ErrLocked, l.Commit.Since.Format(time.RFC3339), l.Commit.Push, l.Commit.Revision, l.Commit.Reason)
		}
		if l.Push != "" {
			return fmt.Errorf("%w: push %s is in progress", ErrLocked, l.Push)
		}
		l.Push = p.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.event(p, "push of %s by %s: phases %s", revision, who, phaseText(p.Phases))
	if err := c.Store.SavePush(p); err != nil {
		c.releasePushLock(p.ID)
		return nil, err
	}
	// The caller gets a copy: the push itself changes as it is driven.
	snapshot, err := clonePush(p)
	if err != nil {
		return nil, err
	}
	c.drive(p)
	return snapshot, nil
}

func clonePush(p *Push) (*Push, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var cp Push
	return &cp, json.Unmarshal(data, &cp)
}

// releasePushLock frees the push lock if push id holds it.
func (c *Coordinator) releasePushLock(id string) error {
	return c.Store.UpdateLocks(func(l *Locks) error {
		if l.Push == id {
			l.Push = ""
		}
		return nil
	})
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

func phaseText(phases []PushPhase) string {
	parts := make([]string, len(phases))
	for i, ph := range phases {
		parts[i] = fmt.Sprintf("%v%% (%d hosts)", ph.Percent, len(ph.Hosts))
	}
	return strings.Join(parts, ", ")
}

// Resume drives the push that was in progress when the coordinator stopped.
func (c *Coordinator) Resume() error {
	l, err := c.Store.Locks()
	if err != nil || l.Push == "" {
		return err
	}
	p, err := c.Store.Push(l.Push)
	if errors.Is(err, os.ErrNotExist) {
		// The coordinator stopped between taking the lock and recording the push.
		c.Log.Warn("push lock held by a push never recorded; freeing it", "push", l.Push)
		return c.releasePushLock(l.Push)
	}
	if err != nil {
		return fmt.Errorf("resume push %s: %w", l.Push, err)
	}
	if p.State.Done() {
		// It ended, but the lock was not freed before the coordinator stopped.
		return c.releasePushLock(p.ID)
	}
	c.event(p, "coordinator restarted: resuming in state %s", p.State)
	c.drive(p)
	return nil
}

// Wait waits for the pushes being driven to stop.
func (c *Coordinator) Wait() { c.wg.Wait() }

// SetContext sets the context pushes started from now on are driven under,
// as when a standby coordinator takes the lead.
func (c *Coordinator) SetContext(ctx context.Context) {
	c.ctxMu.Lock()
	c.Context = ctx
	c.ctxMu.Unlock()
}

func (c *Coordinator) drive(p *Push) {
	c.ctxMu.Lock()
	ctx := c.Context
	c.ctxMu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// A failed step (the store unreachable, a full disk) is retried
		// from the state last recorded: a push, and above all a rollback,
		// must not stop half done while the coordinator runs.
		for attempt := 1; ; attempt++ {
			err := c.run(ctx, p)
			if err == nil || ctx.Err() != nil {
				return
			}
			c.Log.Error("push step failed; retrying", "push", p.ID, "state", string(p.State), "attempt", attempt, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt)*time.Second, 30*time.Second)):
			}
		}
	}()
}

// phaseHosts picks the hosts that run the revision once phase i is done:
// the first phase takes at least one host of every type; each phase takes
// a growing share of every type, in a stable order.
func (c *Coordinator) phaseHosts(i int) []string {
	share := float64(c.Fleet.Phases[i]) / 100
	byType := map[string][]string{}
	for _, h := range c.Fleet.Hosts {
		byType[h.HostType] = append(byType[h.HostType], h.Name)
	}
	var hosts []string
	for _, names := range byType {
		sort.Strings(names)
		n := int(math.Ceil(share * float64(len(names))))
		hosts = append(hosts, names[:max(n, 1)]...)
	}
	sort.Strings(hosts)
	return hosts
}

func (c *Coordinator) host(name string) conf.Host {
	for _, h := range c.Fleet.Hosts {
		if h.Name == name {
			return h
		}
	}
	return conf.Host{Name: name}
}

func (c *Coordinator) hosts(names []string) []conf.Host {
	out := make([]conf.Host, 0, len(names))
	for _, n := range names {
		out = append(out, c.host(n))
	}
	return out
}

// event records a line of progress in the push and the log.
func (c *Coordinator) event(p *Push, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.Events = append(p.Events, Event{At: time.Now().UTC(), Msg: msg})
	c.Log.Info(msg, "push", p.ID)
}

// step records the push's new state before it is acted on.
func (c *Coordinator) step(p *Push, s State, format string, args ...any) error {
	p.State = s
	c.event(p, format, args...)
	return c.Store.SavePush(p)
}

// run moves a push on from its recorded state until it is done.
func (c *Coordinator) run(ctx context.Context, p *Push) error {
	for !p.State.Done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch p.State {
		case StateBaseline:
			err = c.baseline(ctx, p)
		case StateDeploying:
			err = c.deploy(ctx, p)
		case StateObserving:
			err = c.observe(ctx, p)
		case StateRollingBack:
			err = c.rollBack(ctx, p)
		case StateReverting:
			err = c.revert(ctx, p)
		default:
			err = fmt.Errorf("push %s in unknown state %q", p.ID, p.State)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// baseline samples every host for the baseline window and keeps the means.
func (c *Coordinator) baseline(ctx context.Context, p *Push) error {
	samples, err := c.sample(ctx, c.Fleet.Hosts, c.Fleet.Windows.Baseline.D())
	if err != nil {
		return err
	}
	p.Baseline = map[string]map[string]float64{}
	for host, ss := range samples {
		means := map[string]float64{}
		for gauge := range gaugeNames(ss) {
			if m, ok := mean(series(gauge, ss)); ok {
				means[gauge] = m
			}
		}
		p.Baseline[host] = means
	}
	p.Phase = 0
	return c.step(p, StateDeploying, "baseline taken on %d hosts; deploying phase 1", len(samples))
}

func gaugeNames(ss []Sample) map[string]bool {
	names := map[string]bool{}
	for _, s := range ss {
		for g := range s.Gauges {
			names[g] = true
		}
	}
	return names
}

// Snapshot reads every host's gauges once, as each sample of a push does.
func (c *Coordinator) Snapshot(ctx context.Context) (map[string][]Sample, error) {
	return c.sample(ctx, c.Fleet.Hosts, 0)
}

// sample reads every host's gauges each sample interval for d; a host that
// does not answer gives no sample that round (its gauges are missing).
func (c *Coordinator) sample(ctx context.Context, hosts []conf.Host, d time.Duration) (map[string][]Sample, error) {
	out := map[string][]Sample{}
	var mu sync.Mutex
	interval := c.Fleet.Windows.SampleInterval.D()
	end := time.Now().Add(d)
	for round := 0; ; round++ {
		began := time.Now()
		forEach(ctx, hosts, c.parallel(), func(ctx context.Context, h conf.Host) error {
			rctx, cancel := context.WithTimeout(ctx, interval)
			defer cancel()
			s, err := c.Agents.Snapshot(rctx, h)
			if err != nil {
				s = Sample{At: time.Now(), Gauges: map[string]float64{}}
			}
			mu.Lock()
			out[h.Name] = append(out[h.Name], s)
			mu.Unlock()
			return err
		})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next := began.Add(interval)
		if !next.Before(end) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
}

// deploy puts the revision on the hosts of the current phase that do not
// run it yet. Each host is recorded as touched before it is asked.
func (c *Coordinator) deploy(ctx context.Context, p *Push) error {
	ph := &p.Phases[p.Phase]
	if ph.Started.IsZero() {
		ph.Started = time.Now().UTC()
	}
	if ph.Deployed == nil {
		ph.Deployed = map[string]string{}
	}
	if p.Previous == nil {
		p.Previous = map[string]string{}
	}
	var todo []conf.Host
	for _, name := range ph.Hosts {
		if already(p, name) {
			ph.Deployed[name] = ""
			continue
		}
		todo = append(todo, c.host(name))
	}
	// What each host runs is asked before anything changes: a host whose
	// release cannot be read is not deployed to, as it could not be put back.
	var mu sync.Mutex
	unreadable := forEach(ctx, todo, c.parallel(), func(ctx context.Context, h conf.Host) error {
		mu.Lock()
		_, known := p.Previous[h.Name]
		mu.Unlock()
		if known {
			return nil
		}
		r, err := c.Agents.Release(ctx, h)
		if err != nil {
			return fmt.Errorf("read its release before deploying: %w", err)
		}
		mu.Lock()
		p.Previous[h.Name] = r.Current
		mu.Unlock()
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	touched := map[string]bool{}
	for _, t := range p.Touched {
		touched[t] = true
	}
	ready := todo[:0:0]
	for _, h := range todo {
		if err, failed := unreadable[h.Name]; failed {
			ph.Deployed[h.Name] = err.Error()
			continue
		}
		ready = append(ready, h)
		if !touched[h.Name] {
			p.Touched = append(p.Touched, h.Name)
		}
	}
	todo = ready
	if err := c.step(p, StateDeploying, "phase %d: deploying to %d hosts", p.Phase+1, len(todo)); err != nil {
		return err
	}
	url := c.ArtifactURL(p.SHA256)
	errs := forEach(ctx, todo, c.parallel(), func(ctx context.Context, h conf.Host) error {
		_, err := c.Agents.Deploy(ctx, h, p.Revision, url, p.SHA256)
		return err
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, h := range todo {
		if err, failed := errs[h.Name]; failed {
			ph.Deployed[h.Name] = err.Error()
		} else {
			ph.Deployed[h.Name] = ""
		}
	}
	for name, err := range unreadable {
		errs[name] = err
	}
	if len(errs) > 0 {
		names := make([]string, 0, len(errs))
		for n := range errs {
			names = append(names, n)
		}
		sort.Strings(names)
		p.Reason = fmt.Sprintf("phase %d: deploy failed on %d of %d hosts (%s: %s)", p.Phase+1, len(errs), len(todo)+len(unreadable), names[0], errs[names[0]])
		return c.step(p, StateRollingBack, "%s; rolling back", p.Reason)
	}
	ph.Observed = time.Time{}
	return c.step(p, StateObserving, "phase %d: live on %d hosts; observing for %s", p.Phase+1, p.HostsDone(), c.Fleet.Windows.Observe)
}

// already reports whether an earlier phase deployed to the host.
func already(p *Push, host string) bool {
	for i := 0; i < p.Phase; i++ {
		if e, ok := p.Phases[i].Deployed[host]; ok && e == "" {
			return true
		}
	}
	return false
}

// observe samples the hosts so far for the observation window and judges.
func (c *Coordinator) observe(ctx context.Context, p *Push) error {
	ph := &p.Phases[p.Phase]
	hosts := c.hosts(ph.Hosts)
	// waited is the time past the observe window spent waiting for a
	// reading that a gauge with missing: wait holds the verdict for.
	waited := time.Duration(0)
	first := true
	var all map[string][]Sample
	for {
		d := c.Fleet.Windows.Observe.D()
		if !first {
			// Waiting for a reading: one more round, a sample interval on.
			// sample takes its first round at once, so the interval is
			// waited here, or the wait would spin through max_wait at once.
			d = c.Fleet.Windows.SampleInterval.D()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		more, err := c.sample(ctx, hosts, d)
		if err != nil {
			return err
		}
		if all == nil {
			all = more
		} else {
			for h, ss := range more {
				all[h] = append(all[h], ss...)
			}
		}
		v := Judge(fmt.Sprintf("phase %d", p.Phase+1), c.Fleet.Limits, c.Fleet.BreachSamples, c.hostSamples(p, hosts, all))
		if v.Outcome == Wait && waited < c.Fleet.Windows.MaxWait.D() {
			if !first {
				waited += d
			}
			first = false
			continue
		}
		ph.Verdict = &v
		ph.Observed = time.Now().UTC()
		if v.Outcome != Pass {
			p.Reason = v.Reason
			if v.Outcome == Wait {
				p.Reason += fmt.Sprintf(" (no reading after waiting %s)", waited)
			}
			return c.step(p, StateRollingBack, "%s; rolling back %d hosts", p.Reason, len(p.Touched))
		}
		if p.Phase+1 < len(p.Phases) {
			p.Phase++
			return c.step(p, StateDeploying, "%s; deploying phase %d", v.Reason, p.Phase+1)
		}
		p.Finished = time.Now().UTC()
		if err := c.step(p, StateLive, "%s; live on all %d hosts", v.Reason, p.HostsDone()); err != nil {
			return err
		}
		return c.releasePushLock(p.ID)
	}
}

// hostSamples pairs each host's baseline means with its observed samples.
func (c *Coordinator) hostSamples(p *Push, hosts []conf.Host, observed map[string][]Sample) []HostSamples {
	out := make([]HostSamples, 0, len(hosts))
	for _, h := range hosts {
		hs := HostSamples{Host: h.Name, HostType: h.HostType, Observed: observed[h.Name]}
		if base, ok := p.Baseline[h.Name]; ok {
			hs.Baseline = []Sample{{Gauges: base}}
		}
		out = append(out, hs)
	}
	return out
}

// rollbackRefusals is how many times a host may refuse a rollback (a 4xx
// such as 404 "not unpacked here") before it is given up on: the refusal
// will not change by asking, and the push must end so a person sees it.
const rollbackRefusals = 3

// noEarlierRelease is recorded for a host that ran no release before the push.
const noEarlierRelease = "ran no release before this push: there is nothing to switch it back to"

// rollBack switches every touched host back to the release it ran before.
// A host that does not answer is retried until it does, as a host left on
// the bad release is what the immune system exists to prevent; a host that
// refuses rollbackRefusals times, or has nothing to go back to, is recorded
// as a failure in RolledBack and in the reason, and the push goes on to the
// revert and the commit lock.
func (c *Coordinator) rollBack(ctx context.Context, p *Push) error {
	if p.RolledBack == nil {
		p.RolledBack = map[string]string{}
	}
	var nothing []string
	for _, name := range p.Touched {
		if prev, known := p.Previous[name]; known && prev == "" {
			nothing = append(nothing, name)
			if p.RolledBack[name] != noEarlierRelease {
				p.RolledBack[name] = noEarlierRelease
				c.event(p, "%s %s", name, noEarlierRelease)
			}
		}
	}
	refusals := map[string]int{}
	var failed []string
	for attempt := 1; ; attempt++ {
		var todo []conf.Host
		for _, name := range p.Touched {
			if e, ok := p.RolledBack[name]; ok && e == "" || slices.Contains(nothing, name) || slices.Contains(failed, name) {
				continue
			}
			todo = append(todo, c.host(name))
		}
		if len(todo) == 0 {
			break
		}
		errs := forEach(ctx, todo, c.parallel(), func(ctx context.Context, h conf.Host) error {
			_, err := c.Agents.Rollback(ctx, h, p.Previous[h.Name])
			return err
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		retry := 0
		for _, h := range todo {
			err, bad := errs[h.Name]
			if !bad {
				p.RolledBack[h.Name] = ""
				continue
			}
			p.RolledBack[h.Name] = err.Error()
			var se *StatusError
			if !errors.As(err, &se) || !se.Refused() {
				retry++
				continue
			}
			if refusals[h.Name]++; refusals[h.Name] < rollbackRefusals {
				retry++
				continue
			}
			failed = append(failed, h.Name)
			c.event(p, "rollback FAILED on %s: refused %d times (%v); giving up on it", h.Name, refusals[h.Name], err)
		}
		if retry == 0 {
			continue // those left were given up on: the loop ends
		}
		if err := c.step(p, StateRollingBack, "rollback attempt %d: %d hosts not rolled back yet; retrying", attempt, retry); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt)*time.Second, 30*time.Second)):
		}
	}
	sort.Strings(failed)
	for _, name := range failed {
		p.Reason += fmt.Sprintf("; rollback FAILED on %s: %s", name, p.RolledBack[name])
	}
	if len(nothing) > 0 {
		p.Reason += fmt.Sprintf("; still runs %s on hosts that had no earlier release: %s", p.Revision, strings.Join(nothing, ", "))
	}
	if bad := len(failed) + len(nothing); bad > 0 {
		return c.step(p, StateReverting, "rolled back on %d of %d hosts, FAILED on %d; reverting %s", len(p.Touched)-bad, len(p.Touched), bad, p.Revision)
	}
	return c.step(p, StateReverting, "rolled back on %d hosts; reverting %s", len(p.Touched), p.Revision)
}

// revert reverts the commit and sets the commit lock. A revert that was
// started but not recorded as finished is not run again: running it twice
// would revert twice, so the push says so and a person looks.
func (c *Coordinator) revert(ctx context.Context, p *Push) error {
	switch {
	case p.Revert == nil:
		p.Revert = &RevertRecord{Started: time.Now().UTC()}
		if err := c.Store.SavePush(p); err != nil {
			return err
		}
		out, err := c.Revert(ctx, p.Revision)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.Revert.Output = out
		if err != nil {
			p.Revert.Error = err.Error()
		}
		p.Revert.Finished = time.Now().UTC()
	case p.Revert.Finished.IsZero():
		p.Revert.Error = "the coordinator stopped while the revert ran: check the repository by hand"
		p.Revert.Finished = time.Now().UTC()
	}
	err := c.Store.UpdateLocks(func(l *Locks) error {
		l.Commit = &CommitLock{Push: p.ID, Revision: p.Revision, Reason: p.Reason, Since: time.Now().UTC()}
		if l.Push == p.ID {
			l.Push = ""
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.Finished = time.Now().UTC()
	what := "reverted"
	if p.Revert.Error != "" {
		what = "revert FAILED (" + p.Revert.Error + ")"
	}
	return c.step(p, StateRolledBack, "%s %s; pushes locked until someone runs immune unlock", p.Revision, what)
}

// Unlock clears the commit lock, recording who and why.
func (c *Coordinator) Unlock(who, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("unlock needs a reason")
	}
	return c.Store.UpdateLocks(func(l *Locks) error {
		if l.Commit == nil {
			return errors.New("there is no commit lock to clear")
		}
		cl := *l.Commit
		cl.ClearedBy, cl.ClearedAt, cl.ClearReason = who, time.Now().UTC(), reason
		l.Cleared = append(l.Cleared, cl)
		l.Commit = nil
		return nil
	})
}
