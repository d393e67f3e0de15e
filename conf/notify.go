package conf

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Notify is who hears of a push as it goes: webhooks (a chat, an incident
// tool) and commands (a pager script) get each event as JSON. Sending
// never holds a push back: each webhook and command has its own queue.
type Notify struct {
	// QueueSize bounds the events waiting for each webhook or command
	// (default 100); when it is full the oldest is dropped, and counted.
	QueueSize int `yaml:"queue_size"`
	// DrainTimeout is how long a stopping coordinator goes on sending
	// what is queued (default 10s).
	DrainTimeout Duration        `yaml:"drain_timeout"`
	Webhooks     []Webhook       `yaml:"webhooks"`
	Commands     []NotifyCommand `yaml:"commands"`
}

// NotifyEvents are the events a push notifies, in the order they come.
var NotifyEvents = []string{
	"push_started", // a push began
	"verdict",      // a phase was judged
	"rolled_back",  // every touched host is back on the previous release
	"reverted",     // the range is reverted and the revert pushed
	"revert_failed",
	"locked", // pushes are blocked until someone unlocks
	"unlocked",
	"failed", // the push stopped on an error
	"live",   // the revision runs on every host
}

// Webhook is a URL each event is POSTed to as JSON.
type Webhook struct {
	// URL is http or https; plain http only to a loopback address when a
	// token is sent.
	URL string `yaml:"url"`
	// TokenFile holds a bearer token for the Authorization header.
	TokenFile string `yaml:"token_file"`
	// Events it is sent (default: all of NotifyEvents).
	Events      []string `yaml:"events"`
	NotifyRetry `yaml:",inline"`
}

// NotifyCommand is a program run for each event, with the event's JSON on
// its standard input and IMMUNE_* variables in its environment.
type NotifyCommand struct {
	// Command is the program and its arguments, run without a shell.
	Command []string `yaml:"command"`
	// Events it is run for (default: all of NotifyEvents).
	Events      []string `yaml:"events"`
	NotifyRetry `yaml:",inline"`
}

// NotifyRetry bounds each attempt to notify and says how a failed one is
// tried again: after Backoff, then twice as long each time up to MaxBackoff.
type NotifyRetry struct {
	// Timeout bounds each attempt (default 10s for a webhook, 30s for a command).
	Timeout Duration `yaml:"timeout"`
	// Attempts is how many times an event is tried (default 4 for a
	// webhook; 1 for a command, which may have paged before it failed).
	Attempts   int      `yaml:"attempts"`
	Backoff    Duration `yaml:"backoff"`     // default 1s
	MaxBackoff Duration `yaml:"max_backoff"` // default 1m
}

// Defaults of the notify settings.
const (
	DefaultNotifyQueue          = 100
	DefaultNotifyDrain          = 10 * time.Second
	DefaultWebhookTimeout       = 10 * time.Second
	DefaultWebhookAttempts      = 4
	DefaultNotifyCommandTimeout = 30 * time.Second
	DefaultNotifyBackoff        = time.Second
	DefaultNotifyMaxBackoff     = time.Minute
)

// wants reports whether events lists event, an empty list meaning all.
func wants(events []string, event string) bool {
	return len(events) == 0 || slices.Contains(events, event)
}

// Wants reports whether the webhook is sent event.
func (w *Webhook) Wants(event string) bool { return wants(w.Events, event) }

// Wants reports whether the command is run for event.
func (n *NotifyCommand) Wants(event string) bool { return wants(n.Events, event) }

// validate checks the notify section at path ("notify") and fills in its
// defaults.
func (n *Notify) validate(c *checker, path string) {
	if n.QueueSize == 0 {
		n.QueueSize = DefaultNotifyQueue
	} else if n.QueueSize < 0 {
		c.errorf(path+".queue_size", "%d: must be positive", n.QueueSize)
	}
	if n.DrainTimeout < 0 {
		c.errorf(path+".drain_timeout", "%s: must be positive", n.DrainTimeout)
	}
	setDefault(&n.DrainTimeout, DefaultNotifyDrain)
	for i := range n.Webhooks {
		w := &n.Webhooks[i]
		wpath := fmt.Sprintf("%s.webhooks.%d", path, i)
		w.validateURL(c, wpath)
		validateEvents(c, wpath, w.Events)
		w.NotifyRetry.validate(c, wpath, DefaultWebhookTimeout, DefaultWebhookAttempts)
	}
	for i := range n.Commands {
		cmd := &n.Commands[i]
		cpath := fmt.Sprintf("%s.commands.%d", path, i)
		switch {
		case len(cmd.Command) == 0:
			c.errorf(cpath+".command", "required: the program and its arguments, as a list")
		case cmd.Command[0] == "":
			c.errorf(cpath+".command.0", "the command is empty")
		}
		validateEvents(c, cpath, cmd.Events)
		cmd.NotifyRetry.validate(c, cpath, DefaultNotifyCommandTimeout, 1)
	}
}

func (w *Webhook) validateURL(c *checker, path string) {
	if w.URL == "" {
		c.errorf(path+".url", "required: where the events are POSTed")
		return
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errorf(path+".url", "%q is not an http:// or https:// URL", w.URL)
		return
	}
	if w.TokenFile != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		c.errorf(path+".url", "the token would cross the network in clear text: use https")
	}
}

// isLoopback reports whether host is a loopback name or address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateEvents(c *checker, path string, events []string) {
	for i, e := range events {
		if !slices.Contains(NotifyEvents, e) {
			c.errorf(fmt.Sprintf("%s.events.%d", path, i), "%q is not one of %s", e, strings.Join(NotifyEvents, ", "))
		}
	}
}

func (r *NotifyRetry) validate(c *checker, path string, timeout time.Duration, attempts int) {
	for _, d := range []struct {
		field string
		d     Duration
	}{{"timeout", r.Timeout}, {"backoff", r.Backoff}, {"max_backoff", r.MaxBackoff}} {
		if d.d < 0 {
			c.errorf(path+"."+d.field, "%s: must be positive", d.d)
		}
	}
	setDefault(&r.Timeout, timeout)
	setDefault(&r.Backoff, DefaultNotifyBackoff)
	setDefault(&r.MaxBackoff, max(DefaultNotifyMaxBackoff, r.Backoff.D()))
	if r.MaxBackoff < r.Backoff {
		c.errorf(path+".max_backoff", "%s is shorter than backoff (%s)", r.MaxBackoff, r.Backoff)
	}
	if r.Attempts == 0 {
		r.Attempts = attempts
	} else if r.Attempts < 0 {
		c.errorf(path+".attempts", "%d: must be positive", r.Attempts)
	}
}
