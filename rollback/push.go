package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback/gitrepo"
	"github.com/immune-ops/immune/rollback/notify"
)

// State is where a push is.
type State string

// The states of a push. A push moves forward through them; every step is
// recorded before it is acted on, so a restarted coordinator resumes it.
const (
	StateBaseline    State = "baseline"     // sampling the gauges before the push
	StateDeploying   State = "deploying"    // putting the revision on a phase's hosts
	StateObserving   State = "observing"    // judging the gauges after the phase
	StateWatching    State = "watching"     // live everywhere, still judged for windows.watch
	StateRollingBack State = "rolling_back" // switching every touched host back
	StateReverting   State = "reverting"    // reverting the commit
	StateLive        State = "live"         // done: live on every host
	StateRolledBack  State = "rolled_back"  // done: rolled back, reverted, locked
	StateFailed      State = "failed"       // done: never went live anywhere; nothing to roll back or revert
)

// Done reports whether a push in state s has ended.
func (s State) Done() bool { return s == StateLive || s == StateRolledBack || s == StateFailed }

// Push is one push of a revision to the fleet, as recorded.
type Push struct {
	ID       string `json:"id"`
	Revision string `json:"revision"`
	SHA256   string `json:"sha256"`
	Who      string `json:"who"`
	// Base is the revision live before the push; Range the commits the
	// push brings over it, newest first (what a rollback reverts).
	Base  string           `json:"base,omitempty"`
	Range []gitrepo.Commit `json:"range,omitempty"`
	// Forced says who pushed a revision that does not descend from the
	// live one, and why.
	Forced   string    `json:"forced,omitempty"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	State    State     `json:"state"`
	// Phase is the index of the phase being deployed or observed.
	Phase  int         `json:"phase"`
	Phases []PushPhase `json:"phases"`
	// Looks counts the judge's looks since the first deploy.
	Looks int `json:"looks,omitempty"`
	// Held says who stopped the push advancing: an operator, or the judge
	// when the evidence stayed thin past max_wait and judge.inconclusive
	// is hold. Verdicts still roll back while held.
	Held string `json:"held,omitempty"`
	// Promoted says who took the next phase before the verdict, and why
	// (cleared at each phase); Aborted who rolled the push back, and why.
	Promoted string `json:"promoted,omitempty"`
	Aborted  string `json:"aborted,omitempty"`
	// Forgotten are hosts an operator gave up on, with who and why: they
	// are neither deployed to nor rolled back any more.
	Forgotten map[string]string `json:"forgotten,omitempty"`
	// Previous is the release each touched host ran before the push.
	Previous map[string]string `json:"previous,omitempty"`
	// Touched are the hosts the revision was sent to, in order: every one
	// of them is switched back on a rollback.
	Touched []string `json:"touched,omitempty"`
	// Reason says in one sentence why the push was rolled back.
	Reason     string            `json:"reason,omitempty"`
	RolledBack map[string]string `json:"rolled_back,omitempty"` // host -> "" or the error
	Revert     *RevertRecord     `json:"revert,omitempty"`
	Bisect     *BisectRecord     `json:"bisect,omitempty"`
	Events     []Event           `json:"events"`
}

// PushPhase is one phase of a push.
type PushPhase struct {
	Percent float64  `json:"percent"`
	Hosts   []string `json:"hosts"`
	// Holdback: the last phase, which puts the release on the hosts held
	// back as the control, then watches.
	Holdback bool `json:"holdback,omitempty"`
	// Deployed is each host's deploy result: "" for done, else the error.
	Deployed map[string]string `json:"deployed,omitempty"`
	// Switched is when each host began running the release.
	Switched map[string]time.Time `json:"switched,omitempty"`
	// Pre is every host's gauges over the baseline window before the
	// phase: what the phase's changes are measured from.
	Pre     map[string]map[string]Summary `json:"pre,omitempty"`
	Started time.Time                     `json:"started,omitzero"`
	// Closed: the phase's window has closed and its closing look, which
	// most of the judge's error is kept for, is taken.
	Closed   bool      `json:"closed,omitempty"`
	Observed time.Time `json:"observed,omitzero"`
	Verdict  *Verdict  `json:"verdict,omitempty"`
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
	case StateWatching:
		return "live, watching"
	case StateRolledBack:
		return "rolled back"
	case StateFailed:
		return "failed"
	}
	return "in progress"
}

// Reverted is what a rollback reverts: the culprit when bisect found one,
// else every commit the push brought.
func (p *Push) Reverted() []gitrepo.Commit {
	if p.Bisect != nil && p.Bisect.Culprit != nil {
		return []gitrepo.Commit{*p.Bisect.Culprit}
	}
	return p.Range
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

// Reverter reverts what a rolled-back push brought and says what it did.
type Reverter func(ctx context.Context, p *Push) (output string, err error)

// Coordinator drives pushes through their phases.
type Coordinator struct {
	Fleet  *conf.Fleet
	Store  Store
	Agents Agents
	Revert Reverter
	// ArtifactURL is where agents fetch an artifact by its sha256 for a
	// push: a link with its own credential (ArtifactLinks.URL).
	ArtifactURL func(push, sha256 string) string
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

	// Metrics, when set, counts pushes, verdicts and agent calls.
	Metrics *Metrics
	// Artifacts keeps artifacts the coordinator builds (bisect's).
	Artifacts ArtifactStore
	// Notify, when set, tells on-call engineers what pushes do; PageBase
	// is the coordinator's address for links to push pages.
	Notify   *notify.Notifier
	PageBase string
	// Repo, when set, is the application's working copy: a push must
	// resolve in it and descend from the live revision, and records the
	// commits it brings.
	Repo *gitrepo.Repo

	wg     sync.WaitGroup
	orders orders

	// cfgMu guards Fleet and Agents, which a reload replaces once no push
	// is being driven (driving counts them), keeping it pending till then.
	cfgMu   sync.RWMutex
	driving int
	pending *pendingConfig
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
	return c.StartWith(context.Background(), revision, sha256, who, "")
}

// ErrRefused is a push refused before anything changed: a revision that
// is not in the repository, or that does not descend from the live one.
var ErrRefused = errors.New("refused")

// StartWith is Start, first checking the revision against the working
// copy when there is one: it must resolve after a fetch and descend from
// the live revision, unless force says who overrides that and why.
func (c *Coordinator) StartWith(ctx context.Context, revision, sha256, who, force string) (*Push, error) {
	base, commits, err := c.preflight(ctx, revision, force)
	if err != nil {
		return nil, err
	}
	if c.Leading != nil && !c.Leading() {
		return nil, fmt.Errorf("%w: this coordinator is a standby; push through the one holding the leader lock", ErrLocked)
	}
	now := time.Now().UTC()
	p := &Push{
		ID:       now.Format("20060102-150405.000") + "-" + shortRev(revision),
		Revision: revision, SHA256: sha256, Who: who, Created: now, State: StateBaseline,
		Previous: map[string]string{}, Base: base, Range: commits, Forced: force,
	}
	p.ID = strings.ReplaceAll(p.ID, ".", "-")
	p.Phases = planPhases(c.fleet())
	err = c.Store.UpdateLocks(func(l *Locks) error {
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
	c.event(p, "push of %s by %s: phases %s%s", revision, who, phaseText(p.Phases), rangeText(p))
	c.tell(notify.PushStarted, p, "")
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
	c.driveStarted()
	go func() {
		defer c.wg.Done()
		defer c.driveEnded()
		// A failed step (the store unreachable, a full disk) is retried
		// from the state last recorded: a push, and above all a rollback,
		// must not stop half done while the coordinator runs.
		h := NewHistory(historyKeep(c.fleet()))
		for attempt := 1; ; attempt++ {
			err := c.run(ctx, p, h)
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

func (c *Coordinator) host(name string) conf.Host {
	for _, h := range c.fleet().Hosts {
		if h.Name == name {
			return h
		}
	}
	return conf.Host{Name: name}
}

// event records a line of progress in the push and the log.
func (c *Coordinator) event(p *Push, format string, args ...any) {
	c.eventAt(slog.LevelInfo, p, format, args...)
}

// eventAt is event logged at a level other than INFO.
func (c *Coordinator) eventAt(level slog.Level, p *Push, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.Events = append(p.Events, Event{At: time.Now().UTC(), Msg: msg})
	c.Log.Log(context.Background(), level, msg, "push", p.ID, "state", string(p.State))
}

// stepLevel is how loud a push's step is in the log: a rollback is a
// WARN, a host left on the bad release or a failed revert an ERROR, as
// someone must act on those.
func stepLevel(p *Push, s State) slog.Level {
	switch s {
	case StateFailed:
		return slog.LevelError
	case StateRollingBack:
		return slog.LevelWarn
	case StateReverting, StateBisecting:
		if strings.Contains(p.Reason, "FAILED") || strings.Contains(p.Reason, "still runs") {
			return slog.LevelError
		}
		return slog.LevelWarn
	case StateRolledBack:
		if p.Revert != nil && p.Revert.Error != "" {
			return slog.LevelError
		}
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// step records the push's new state before it is acted on.
func (c *Coordinator) step(p *Push, s State, format string, args ...any) error {
	from := p.State
	p.State = s
	c.eventAt(stepLevel(p, s), p, format, args...)
	if err := c.Store.SavePush(p); err != nil {
		return err
	}
	if s.Done() {
		c.Metrics.pushEnded(c, s)
	}
	if s != from {
		c.tellState(p, s)
	}
	return nil
}

// run moves a push on from its recorded state until it is done.
func (c *Coordinator) run(ctx context.Context, p *Push, h *History) error {
	for !p.State.Done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.takeOrders(p)
		if p.Aborted != "" && (p.State == StateBaseline || p.State == StateDeploying) {
			if err := c.abort(p); err != nil {
				return err
			}
			continue
		}
		var err error
		switch p.State {
		case StateBaseline:
			err = c.baseline(ctx, p, h)
		case StateDeploying:
			err = c.deploy(ctx, p, h)
		case StateObserving, StateWatching:
			err = c.observe(ctx, p, h)
		case StateRollingBack:
			err = c.rollBack(ctx, p)
		case StateBisecting:
			err = c.bisect(ctx, p, h)
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

// deploy puts the revision on the hosts of the current phase that do not
// run it yet. Each host is recorded as touched before it is asked.
func (c *Coordinator) deploy(ctx context.Context, p *Push, h *History) error {
	ph := &p.Phases[p.Phase]
	if err := c.anchor(ctx, p, h); err != nil {
		return err
	}
	if ph.Started.IsZero() {
		ph.Started = time.Now().UTC()
	}
	if ph.Switched == nil {
		ph.Switched = map[string]time.Time{}
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
		if why, gone := p.Forgotten[name]; gone {
			ph.Deployed[name] = "forgotten by " + why
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
		r, err := c.agents().Release(ctx, h)
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
			// A host that does not answer before the deploy is left on
			// its release, untouched: one dead host must not roll a good
			// push back, and it could not be put back if it came to.
			ph.Deployed[h.Name] = skippedPrefix + err.Error()
			c.event(p, "%s skipped: not answering before the deploy (%v); it stays on its release", h.Name, err)
			continue
		}
		ready = append(ready, h)
		if !touched[h.Name] {
			p.Touched = append(p.Touched, h.Name)
		}
	}
	todo = ready
	if err := c.step(p, StateDeploying, "%s: deploying to %d hosts", phaseName(*ph, p.Phase), len(todo)); err != nil {
		return err
	}
	url := c.ArtifactURL(p.ID, p.SHA256)
	errs := forEach(ctx, todo, c.parallel(), func(ctx context.Context, h conf.Host) error {
		err := c.deployHost(ctx, h, p.Revision, url, p.SHA256)
		if err == nil {
			mu.Lock()
			ph.Switched[h.Name] = time.Now().UTC()
			mu.Unlock()
		}
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
	if len(errs) == 0 && p.HostsDone() == 0 {
		p.Reason = fmt.Sprintf("phase %d: no host answered to take the release (%d not answering)", p.Phase+1, len(unreadable))
		return c.fail(p, "%s: nothing to roll back, no revert, no lock", p.Reason)
	}
	if len(errs) > 0 {
		names := make([]string, 0, len(errs))
		for n := range errs {
			names = append(names, n)
		}
		sort.Strings(names)
		p.Reason = fmt.Sprintf("phase %d: deploy failed on %d of %d hosts (%s: %s)", p.Phase+1, len(errs), len(todo), names[0], errs[names[0]])
		if p.HostsDone() == 0 {
			// No host switched: the release never went live, so there is
			// nothing to roll back, no regression to revert, no lock.
			return c.fail(p, "%s; no host runs it: nothing to roll back, no revert, no lock", p.Reason)
		}
		return c.step(p, StateRollingBack, "%s; rolling back", p.Reason)
	}
	ph.Observed = time.Time{}
	if ph.Holdback {
		if c.window(*ph) <= 0 {
			p.Finished = time.Now().UTC()
			if err := c.step(p, StateLive, "live on all %d hosts", p.HostsDone()); err != nil {
				return err
			}
			return c.releasePushLock(p.ID)
		}
		return c.step(p, StateWatching, "live on all %d hosts; watching for %s", p.HostsDone(), c.fleet().Windows.Watch)
	}
	return c.step(p, StateObserving, "phase %d: live on %d hosts; observing for %s", p.Phase+1, p.HostsDone(), c.fleet().Windows.Observe)
}

// deployPatience is how long a host that answers "not now" (409: another
// deploy still runs there, as after a coordinator restart mid-deploy;
// 408, 425, 429) is asked again before its deploy counts as failed.
const deployPatience = 5 * time.Minute

// deployHost deploys to one host, waiting out "not now": the deploy is
// idempotent on the agent (the same revision again is a no-op), so asking
// again once the running one ends is safe, and rolling back a good
// release because the agent was busy is not.
func (c *Coordinator) deployHost(ctx context.Context, h conf.Host, revision, url, sum string) error {
	deadline := time.Now().Add(deployPatience)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		_, err := c.agents().Deploy(ctx, h, revision, url, sum)
		c.Metrics.observeCall("deploy", start, err)
		var se *StatusError
		if err == nil || !errors.As(err, &se) || se.Code/100 != 4 || se.Refused() || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

// skippedPrefix marks a host a phase skipped in its Deployed result.
const skippedPrefix = "skipped: "

// already reports whether an earlier phase deployed to the host.
func already(p *Push, host string) bool {
	for i := 0; i < p.Phase; i++ {
		if e, ok := p.Phases[i].Deployed[host]; ok && e == "" {
			return true
		}
	}
	return false
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
	began := time.Now()
	lastLeft := -1
	for attempt := 1; ; attempt++ {
		c.takeOrders(p)
		var todo []conf.Host
		for _, name := range p.Touched {
			if e, ok := p.RolledBack[name]; ok && e == "" || slices.Contains(nothing, name) || slices.Contains(failed, name) {
				continue
			}
			if why, gone := p.Forgotten[name]; gone {
				failed = append(failed, name)
				p.RolledBack[name] = "forgotten by " + why
				c.event(p, "rollback FAILED on %s: forgotten by %s; left on %s", name, why, p.Revision)
				continue
			}
			todo = append(todo, c.host(name))
		}
		if len(todo) == 0 {
			break
		}
		if limit := c.fleet().Rollback.Timeout.D(); attempt > 1 && time.Since(began) > limit {
			// A host that answers 5xx or nothing for this long will not be
			// put back by asking: the revert and the lock must not wait.
			for _, h := range todo {
				failed = append(failed, h.Name)
				c.eventAt(slog.LevelError, p, "rollback FAILED on %s after %d attempts over %s (%s); host left on %s", h.Name, attempt-1, limit, p.RolledBack[h.Name], p.Revision)
			}
			break
		}
		errs := forEach(ctx, todo, c.parallel(), func(ctx context.Context, h conf.Host) error {
			start := time.Now()
			_, err := c.agents().Rollback(ctx, h, p.Previous[h.Name])
			c.Metrics.observeCall("rollback", start, err)
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
			c.eventAt(slog.LevelError, p, "rollback FAILED on %s: refused %d times (%v); host left on %s", h.Name, refusals[h.Name], err, p.Revision)
		}
		if retry == 0 {
			continue // those left were given up on: the loop ends
		}
		// One event when the count of hosts left changes, not one a retry:
		// a host down for an hour must not grow the push by thousands.
		if retry != lastLeft {
			lastLeft = retry
			c.event(p, "rollback attempt %d: %d hosts not rolled back yet; retrying until %s", attempt, retry, c.fleet().Rollback.Timeout)
		}
		if err := c.Store.SavePush(p); err != nil {
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
	if c.wantsBisect(p) {
		return c.step(p, StateBisecting, "rolled back on %d hosts; bisecting the %d commits to find the culprit", len(p.Touched), len(p.Range))
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
		out, err := c.Revert(ctx, p)
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
		l.Commit = &CommitLock{Push: p.ID, Revision: p.Revision, Reason: p.Reason, Since: time.Now().UTC(),
			Range: p.Reverted(), Page: "/pushes/" + p.ID, RevertError: p.Revert.Error}
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
		c.Notify.Send(notify.Event{Kind: notify.Unlocked, Push: cl.Push, Revision: cl.Revision, Who: who, Reason: reason})
		l.Cleared = append(l.Cleared, cl)
		l.Commit = nil
		return nil
	})
}
