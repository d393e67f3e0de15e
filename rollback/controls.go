package rollback

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/conf"
)

// Order is an operator's control of a running push.
type Order struct {
	// Kind is abort (roll back now), hold (stop advancing; verdicts still
	// roll back), resume, promote (skip the rest of the observation, take
	// the next phase now) or forget-host (stop retrying a host that will
	// not come back).
	Kind   string `json:"kind"`
	Who    string `json:"who"`
	Reason string `json:"reason"`
	// Host is the host forget-host gives up on.
	Host string `json:"host,omitempty"`
}

// The kinds of order.
const (
	OrderAbort      = "abort"
	OrderHold       = "hold"
	OrderResume     = "resume"
	OrderPromote    = "promote"
	OrderForgetHost = "forget-host"
)

// ErrNoPush is the error for an order to a push that is not running.
var ErrNoPush = errors.New("no such push in progress")

// orders are the orders given to running pushes, taken by the goroutine
// that drives each, which records them in the push's events.
type orders struct {
	mu     sync.Mutex
	byPush map[string][]Order
}

// Command gives an order to the push id, checked at once; the push takes
// it at its next step (a sample interval at most while observing).
func (c *Coordinator) Command(id string, o Order) error {
	o.Reason = strings.TrimSpace(o.Reason)
	switch o.Kind {
	case OrderAbort, OrderPromote, OrderForgetHost:
		if o.Reason == "" {
			return fmt.Errorf("%s needs a reason", o.Kind)
		}
	case OrderHold, OrderResume:
	default:
		return fmt.Errorf("unknown order %q: want abort, hold, resume, promote or forget-host", o.Kind)
	}
	if strings.TrimSpace(o.Who) == "" {
		return errors.New("an order needs to say who gives it")
	}
	p, err := c.Store.Push(id)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNoPush, id)
	}
	if err != nil {
		return fmt.Errorf("read push %s: %w", id, err)
	}
	if p.State.Done() {
		return fmt.Errorf("%w: push %s has ended (%s)", ErrNoPush, id, p.Outcome())
	}
	if o.Kind == OrderForgetHost && !slices.ContainsFunc(c.fleet().Hosts, func(h conf.Host) bool { return h.Name == o.Host }) {
		return fmt.Errorf("no host %q in the fleet", o.Host)
	}
	c.orders.mu.Lock()
	defer c.orders.mu.Unlock()
	if c.orders.byPush == nil {
		c.orders.byPush = map[string][]Order{}
	}
	c.orders.byPush[id] = append(c.orders.byPush[id], o)
	return nil
}

// takeOrders applies the orders given to p since the last call, recording
// each in its events.
func (c *Coordinator) takeOrders(p *Push) {
	c.orders.mu.Lock()
	given := c.orders.byPush[p.ID]
	delete(c.orders.byPush, p.ID)
	c.orders.mu.Unlock()
	for _, o := range given {
		who := o.Who
		if o.Reason != "" {
			who += ": " + o.Reason
		}
		switch o.Kind {
		case OrderAbort:
			p.Aborted = who
		case OrderHold:
			p.Held = who
		case OrderResume:
			p.Held = ""
		case OrderPromote:
			p.Promoted = who
		case OrderForgetHost:
			if p.Forgotten == nil {
				p.Forgotten = map[string]string{}
			}
			p.Forgotten[o.Host] = who
		}
		c.event(p, "%s by %s%s", o.Kind, who, map[bool]string{true: " (" + o.Host + ")", false: ""}[o.Host != ""])
	}
}

// abort ends a push an operator aborted before it observed anything: with
// hosts touched it rolls back (then reverts and locks, as any rollback);
// with none, it fails, with nothing to undo.
func (c *Coordinator) abort(p *Push) error {
	p.Reason = fmt.Sprintf("aborted by %s", p.Aborted)
	if len(p.Touched) == 0 {
		return c.fail(p, "%s before any host ran %s", p.Reason, p.Revision)
	}
	return c.step(p, StateRollingBack, "%s; rolling back %d hosts", p.Reason, len(p.Touched))
}

// fail ends a push that never went live: the push lock is freed, the
// commit lock left alone.
func (c *Coordinator) fail(p *Push, format string, args ...any) error {
	p.Finished = time.Now().UTC()
	if err := c.step(p, StateFailed, format, args...); err != nil {
		return err
	}
	return c.releasePushLock(p.ID)
}
