package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/immune-ops/immune/conf"
)

// sink delivers an event to one webhook or command.
type sink interface {
	// name says which sink it is in logs and counters, with no secret.
	name() string
	// send delivers body, the event's JSON, once. An error that trying
	// again cannot mend is permanent.
	send(ctx context.Context, ev *Event, body []byte) error
}

// permanentError is a failure that trying again would repeat: a 4xx
// answer, a command that does not exist.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// laterError is a failure whose receiver said when to try again.
type laterError struct {
	error
	after time.Duration
}

func (e laterError) Unwrap() error { return e.error }

// Stats count deliveries: one event to one webhook or command.
type Stats struct {
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Dropped int64 `json:"dropped"`
}

// SinkStats are one webhook's or command's counts.
type SinkStats struct {
	Name string `json:"name"`
	Stats
}

// Notifier sends events to every webhook and command that wants them.
type Notifier struct {
	log     *slog.Logger
	queue   int
	workers []*worker
	// ctx stops the workers at once: New's context, or Close's deadline.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu orders Send against Close: once closed, nothing is queued.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
}

// worker is one sink with its queue and goroutine, so that a webhook that
// hangs delays no one else.
type worker struct {
	sink  sink
	wants func(Kind) bool
	retry conf.NotifyRetry

	mu    sync.Mutex
	queue []queued
	wake  chan struct{}

	sent, failed, dropped atomic.Int64
}

type queued struct {
	ev   Event
	body []byte
}

// New starts a notifier for cfg, which validation has filled with
// defaults. Cancelling ctx stops it at once; Close stops it after sending
// what is queued.
func New(ctx context.Context, cfg conf.Notify, log *slog.Logger) (*Notifier, error) {
	var sinks []*worker
	for i, w := range cfg.Webhooks {
		s, err := newWebhook(w, i)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, &worker{sink: s, wants: func(k Kind) bool { return w.Wants(string(k)) }, retry: w.NotifyRetry})
	}
	for i, c := range cfg.Commands {
		if len(c.Command) == 0 || c.Command[0] == "" {
			return nil, fmt.Errorf("notify.commands[%d]: no command", i)
		}
		sinks = append(sinks, &worker{sink: newCommand(c, i), wants: func(k Kind) bool { return c.Wants(string(k)) }, retry: c.NotifyRetry})
	}
	return start(ctx, cfg.QueueSize, log, sinks), nil
}

func start(ctx context.Context, queue int, log *slog.Logger, workers []*worker) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	if queue <= 0 {
		queue = conf.DefaultNotifyQueue
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Notifier{log: log, queue: queue, workers: workers, ctx: ctx, cancel: cancel, closing: make(chan struct{})}
	for _, w := range workers {
		w.wake = make(chan struct{}, 1)
		if w.retry.Attempts < 1 {
			w.retry.Attempts = 1
		}
		n.wg.Add(1)
		go n.work(w)
	}
	return n
}

// Send queues ev for every webhook and command that wants its kind, and
// returns at once.
func (n *Notifier) Send(ev Event) {
	if ev.ID == "" {
		ev.ID = newID()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Text == "" {
		ev.Text = ev.summary()
	}
	body, err := json.Marshal(ev)
	if err != nil {
		n.log.Error("notify: encode event", "kind", ev.Kind, "push", ev.Push, "err", err)
		return
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, w := range n.workers {
		if !w.wants(ev.Kind) {
			continue
		}
		if n.closed || n.ctx.Err() != nil {
			w.dropped.Add(1)
			n.log.Warn("notify: event dropped, the notifier is stopped", "sink", w.sink.name(), "kind", ev.Kind, "push", ev.Push)
			continue
		}
		n.enqueue(w, queued{ev: ev, body: body})
	}
}

// enqueue adds q to w's queue, dropping the oldest event when it is full:
// the newest says most about where the push is now.
func (n *Notifier) enqueue(w *worker, q queued) {
	w.mu.Lock()
	if len(w.queue) >= n.queue {
		old := w.queue[0]
		w.queue = w.queue[1:]
		w.dropped.Add(1)
		n.log.Warn("notify: queue full, oldest event dropped", "sink", w.sink.name(), "kind", old.ev.Kind, "push", old.ev.Push,
			"queue", n.queue, "dropped", w.dropped.Load())
	}
	w.queue = append(w.queue, q)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest queued event.
func (w *worker) next() (queued, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return queued{}, false
	}
	q := w.queue[0]
	w.queue[0] = queued{}
	w.queue = w.queue[1:]
	return q, true
}

// work delivers w's queue until the notifier stops, or closes and the
// queue is empty.
func (n *Notifier) work(w *worker) {
	defer n.wg.Done()
	for {
		if n.ctx.Err() != nil {
			w.mu.Lock()
			if left := len(w.queue); left > 0 {
				w.dropped.Add(int64(left))
				n.log.Warn("notify: stopped with events unsent", "sink", w.sink.name(), "dropped", left)
			}
			w.queue = nil
			w.mu.Unlock()
			return
		}
		q, ok := w.next()
		if ok {
			n.deliver(w, q)
			continue
		}
		select {
		case <-w.wake:
		case <-n.closing:
			if w.empty() {
				return
			}
		case <-n.ctx.Done():
		}
	}
}

// empty reports whether w has nothing queued.
func (w *worker) empty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) == 0
}

// deliver sends q, trying again with backoff while that may help.
func (n *Notifier) deliver(w *worker, q queued) {
	log := n.log.With("sink", w.sink.name(), "kind", q.ev.Kind, "push", q.ev.Push, "event", q.ev.ID)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(n.ctx, w.retry.Timeout.D())
		err := w.sink.send(ctx, &q.ev, q.body)
		if err != nil && n.ctx.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", w.retry.Timeout, err)
		}
		cancel()
		if err == nil {
			w.sent.Add(1)
			log.Debug("notify: sent", "attempt", attempt)
			return
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= w.retry.Attempts || n.ctx.Err() != nil {
			w.failed.Add(1)
			log.Warn("notify: not sent", "attempts", attempt, "err", err)
			return
		}
		wait := backoff(w.retry, attempt, err)
		log.Info("notify: failed, trying again", "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			w.failed.Add(1)
			log.Warn("notify: not sent, stopped while waiting to try again", "attempts", attempt, "err", err)
			return
		}
	}
}

// backoff is the wait after the attempt'th failure: Backoff doubled each
// time, or what the receiver asked for, never over MaxBackoff.
func backoff(r conf.NotifyRetry, attempt int, err error) time.Duration {
	wait := r.Backoff.D()
	for i := 1; i < attempt && wait < r.MaxBackoff.D(); i++ {
		wait *= 2
	}
	var later laterError
	if errors.As(err, &later) && later.after > wait {
		wait = later.after
	}
	return min(wait, r.MaxBackoff.D())
}

// Close stops taking events and sends what is queued, until ctx ends:
// then it stops at once, counting what was left as dropped, and says so.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.closing)
	}
	n.mu.Unlock()
	before := n.Stats()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		after := n.Stats()
		unsent := after.Dropped - before.Dropped + after.Failed - before.Failed
		return fmt.Errorf("notify: closed with %d notifications unsent: %w", unsent, ctx.Err())
	}
}

// Stats are the counts over every webhook and command.
func (n *Notifier) Stats() Stats {
	var s Stats
	for _, ss := range n.Sinks() {
		s.Sent += ss.Sent
		s.Failed += ss.Failed
		s.Dropped += ss.Dropped
	}
	return s
}

// Sinks are each webhook's and command's counts, in config order.
func (n *Notifier) Sinks() []SinkStats {
	out := make([]SinkStats, len(n.workers))
	for i, w := range n.workers {
		out[i] = SinkStats{Name: w.sink.name(), Stats: Stats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load()}}
	}
	return out
}
