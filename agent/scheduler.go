package agent

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
)

// job is one configured check and what it takes to run it.
type job struct {
	cfg conf.Check
	// check is built once and reused; nil for checks that take NRPE
	// arguments, which are built per query and not scheduled.
	check checks.Check
	// build makes the check with the given arguments.
	build func(args []string) (checks.Check, error)

	// running is held for the length of a run: never two runs at once.
	running sync.Mutex
}

// Scheduler runs each check on its interval, keeps its soft/hard state in
// the store, and runs checks on demand for NRPE.
type Scheduler struct {
	jobs  map[string]*job
	order []string
	store *Store
	sem   chan struct{}
	log   *slog.Logger
	now   func() time.Time
}

// NewScheduler prepares the jobs; Run starts them.
func NewScheduler(jobs []*job, store *Store, maxConcurrent int, log *slog.Logger) *Scheduler {
	s := &Scheduler{jobs: map[string]*job{}, store: store, sem: make(chan struct{}, max(maxConcurrent, 1)), log: log, now: time.Now}
	for _, j := range jobs {
		s.jobs[j.cfg.Name] = j
		s.order = append(s.order, j.cfg.Name)
	}
	return s
}

// splay is where in its interval a check runs, derived from its name: the
// checks spread over the interval, and each keeps its place across restarts.
func splay(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// firstRunWindow is how soon after start a check that has never run (or is
// overdue, the agent having been down) runs: spread by its splay, but
// without waiting a whole interval for its first reading.
const firstRunWindow = 10 * time.Second

// nextRun is when a check runs next after its status st (ok: there is one), at now.
func nextRun(cfg conf.Check, st Status, ok bool, now time.Time) time.Time {
	interval := cfg.Interval.D()
	offset := splay(cfg.Name, interval)
	if !ok || !st.Checked() || now.Sub(st.LastCheck) > interval+cfg.Timeout.D() {
		return now.Add(offset % min(interval, firstRunWindow))
	}
	if st.State != nagios.OK && st.StateType == agentapi.Soft {
		// A soft problem is re-checked on the retry interval until it is hard.
		return maxTime(st.LastCheck.Add(cfg.RetryInterval.D()), now)
	}
	// The next instant at offset past a multiple of the interval since the epoch.
	t := now.Truncate(interval).Add(offset)
	if !t.After(now) {
		t = t.Add(interval)
	}
	return t
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Run runs every scheduled check until ctx ends, then waits for runs in flight.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range s.order {
		j := s.jobs[name]
		if j.check == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, j)
		}()
	}
	wg.Wait()
}

func (s *Scheduler) loop(ctx context.Context, j *job) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		st, ok := s.store.Get(j.cfg.Name)
		next := nextRun(j.cfg, st, ok, s.now())
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		s.runScheduled(ctx, j)
	}
}

// runScheduled runs j once when a slot is free, and records the result.
func (s *Scheduler) runScheduled(ctx context.Context, j *job) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.sem }()
	s.execute(ctx, j, j.check)
}

// execute runs c (j's check, or one built for a query) under j's timeout and
// records the result as j's status.
func (s *Scheduler) execute(ctx context.Context, j *job, c checks.Check) Status {
	j.running.Lock()
	defer j.running.Unlock()
	started := s.now()
	r := s.runOnce(ctx, j, c)
	if ctx.Err() != nil {
		// Cut short by the caller (the agent stopping, an NRPE client gone):
		// not a reading of the service, so it neither counts as an
		// attempt nor goes to Nagios.
		return Status{Name: j.cfg.Name, Result: r}
	}
	prev, _ := s.store.Get(j.cfg.Name)
	st := nextStatus(prev, r, j.cfg.MaxCheckAttempts, started, s.now())
	st.Name = j.cfg.Name
	st.NextCheck = nextRun(j.cfg, st, true, s.now())
	s.store.Put(st)
	if st.State != prev.State || st.StateType != prev.StateType {
		s.log.Info("check state", "check", st.Name, "state", st.State.String(), "type", st.StateType, "attempt", st.AttemptText(), "output", st.Output)
	}
	return st
}

// runOnce runs c with the check's timeout; a run cut short by that timeout
// gives the configured state and says so.
func (s *Scheduler) runOnce(ctx context.Context, j *job, c checks.Check) nagios.Result {
	runCtx, cancel := context.WithTimeout(ctx, j.cfg.Timeout.D())
	defer cancel()
	r := checks.Run(runCtx, j.cfg.Name, c)
	if ctx.Err() == nil && runCtx.Err() == context.DeadlineExceeded {
		state := j.cfg.TimeoutState.S()
		r = nagios.Result{
			State:  state,
			Output: fmt.Sprintf("%s - check %s timed out after %s", state, j.cfg.Name, j.cfg.Timeout),
			Long:   r.Output,
		}
	}
	return r
}

// RunNow runs the named check now, with NRPE arguments when it takes
// them, and returns its status. A query while the check runs on schedule
// waits for that run rather than starting a second one. Otherwise the run
// takes one of max_concurrent's slots as a scheduled run does, waiting for
// one at most queueTimeout (and no later than ctx's deadline); past that it
// returns a *CheckQueueFullError.
func (s *Scheduler) RunNow(ctx context.Context, name string, args []string, queueTimeout time.Duration) (Status, error) {
	j, ok := s.jobs[name]
	if !ok {
		return Status{}, &UndefinedCheckError{Name: name}
	}
	c := j.check
	if j.cfg.ArgCount() == 0 && !j.running.TryLock() {
		// A scheduled run is under way: its result answers the query.
		j.running.Lock()
		st, ok := s.store.Get(name)
		j.running.Unlock()
		if ok {
			return st, nil
		}
	} else if j.cfg.ArgCount() == 0 {
		j.running.Unlock()
	}
	if j.cfg.ArgCount() > 0 {
		var err error
		if c, err = j.build(j.cfg.ExpandArgs(args)); err != nil {
			return Status{}, fmt.Errorf("check %s with arguments %q: %w", name, args, err)
		}
		if cl, ok := c.(closer); ok {
			defer cl.Close()
		}
	}
	release, err := s.queue(ctx, name, queueTimeout)
	if err != nil {
		return Status{}, err
	}
	defer release()
	return s.execute(ctx, j, c), nil
}

// queue takes a slot for a run on demand, waiting at most queueTimeout and
// no later than ctx's deadline.
func (s *Scheduler) queue(ctx context.Context, name string, queueTimeout time.Duration) (release func(), err error) {
	release = func() { <-s.sem }
	select {
	case s.sem <- struct{}{}:
		return release, nil
	default:
	}
	wait := queueTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, &CheckQueueFullError{Check: name, Running: len(s.sem), Max: cap(s.sem), Waited: wait}
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a check slot: %w", ctx.Err())
	}
}

// CheckQueueFullError is a run on demand that found every one of
// max_concurrent's slots taken for as long as it could wait.
type CheckQueueFullError struct {
	Check        string
	Running, Max int
	Waited       time.Duration
}

func (e *CheckQueueFullError) Error() string {
	return fmt.Sprintf("check queue full (max_concurrent %d, %d running): %s waited %s for a slot",
		e.Max, e.Running, e.Check, e.Waited.Round(time.Millisecond))
}

// UndefinedCheckError is a query for a check the config does not define.
type UndefinedCheckError struct{ Name string }

func (e *UndefinedCheckError) Error() string { return fmt.Sprintf("check %q not defined", e.Name) }

// Config returns the configuration of the named check.
func (s *Scheduler) Config(name string) (conf.Check, bool) {
	j, ok := s.jobs[name]
	if !ok {
		return conf.Check{}, false
	}
	return j.cfg, true
}
