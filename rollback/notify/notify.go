// Package notify tells on-call engineers what pushes do (started, verdict,
// rolled back, reverted, locked, unlocked, failed, live) through webhooks
// (a JSON POST) and commands (the JSON on stdin), with retries, and never
// holds a push up: events queue in memory, bounded, and a full queue drops
// its oldest event and counts it.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/immune-ops/immune/conf"
)

// The kinds of event.
const (
	PushStarted  = "push_started"
	Verdict      = "verdict"
	RolledBack   = "rolled_back"
	Reverted     = "reverted"
	RevertFailed = "revert_failed"
	Locked       = "locked"
	Unlocked     = "unlocked"
	Failed       = "failed"
	Live         = "live"
)

// Commit is one commit a push brought.
type Commit struct {
	SHA     string `json:"sha"`
	Author  string `json:"author"`
	Subject string `json:"subject"`
}

// Event is what a notification says, as the JSON a webhook receives.
type Event struct {
	Kind     string    `json:"kind"`
	Push     string    `json:"push"`
	Revision string    `json:"revision"`
	Who      string    `json:"who,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Commits  []Commit  `json:"commits,omitempty"`
	URL      string    `json:"url,omitempty"`
	Time     time.Time `json:"time"`
}

// Notifier sends events to every configured sink in the background.
type Notifier struct {
	cfg   conf.Notify
	log   *slog.Logger
	queue chan Event
	wg    sync.WaitGroup
	stop  context.CancelFunc
	ctx   context.Context
	// contacts are the Nagios contacts notified with their own command.
	contacts []conf.Contact

	Sent, Failed, Dropped atomic.Int64
}

// New starts a notifier for the fleet's notify section, its contacts
// looked up in the fleet's contacts; nil when nothing is configured.
func New(f *conf.Fleet, log *slog.Logger) *Notifier {
	cfg := f.Notify
	if len(cfg.Webhooks)+len(cfg.Commands)+len(cfg.Contacts) == 0 {
		return nil
	}
	n := &Notifier{cfg: cfg, log: log, queue: make(chan Event, max(cfg.Queue, 1))}
	for _, name := range cfg.Contacts {
		for _, c := range f.Contacts {
			if c.Name == name {
				n.contacts = append(n.contacts, c)
			}
		}
	}
	n.ctx, n.stop = context.WithCancel(context.Background())
	n.wg.Add(1)
	go n.run()
	return n
}

// Send queues e; it never blocks. A nil notifier sends nothing.
func (n *Notifier) Send(e Event) {
	if n == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for {
		select {
		case n.queue <- e:
			return
		default:
		}
		select {
		case old := <-n.queue:
			n.Dropped.Add(1)
			n.log.Warn("notification queue full: dropped the oldest", "kind", old.Kind, "push", old.Push)
		default:
		}
	}
}

// Close sends what is queued, for at most wait, then stops.
func (n *Notifier) Close(wait time.Duration) {
	if n == nil {
		return
	}
	close(n.queue)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		n.stop()
		<-done
	}
}

func (n *Notifier) run() {
	defer n.wg.Done()
	for e := range n.queue {
		body, err := json.Marshal(e)
		if err != nil {
			continue
		}
		for _, w := range n.cfg.Webhooks {
			n.deliver(fmt.Sprintf("webhook %s", w.URL), func(ctx context.Context) (bool, error) { return n.post(ctx, w, body) })
		}
		for _, c := range n.cfg.Commands {
			n.deliver(fmt.Sprintf("command %s", c.Argv[0]), func(ctx context.Context) (bool, error) { return true, n.command(ctx, c.Argv, e, body) })
		}
		for _, c := range n.contacts {
			argv := []string{"/bin/sh", "-c", contactCommand(c, e)}
			n.deliver("contact "+c.Name, func(ctx context.Context) (bool, error) { return true, n.command(ctx, argv, e, body) })
		}
	}
}

// deliver tries send with exponential backoff; send says whether a
// failure is worth retrying.
func (n *Notifier) deliver(what string, send func(ctx context.Context) (retry bool, err error)) {
	backoff := n.cfg.Backoff.D()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeout.D())
		retry, err := send(ctx)
		cancel()
		if err == nil {
			n.Sent.Add(1)
			return
		}
		if !retry || attempt >= n.cfg.Attempts || n.ctx.Err() != nil {
			n.Failed.Add(1)
			n.log.Error("notification not delivered", "to", what, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-n.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Minute)
	}
}

// post sends the JSON to a webhook: 2xx is done; 4xx other than 408 and
// 429 will not change by asking again.
func (n *Notifier) post(ctx context.Context, w conf.Webhook, body []byte) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", w.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if w.TokenFile != "" {
		token, err := conf.ReadToken("notify.webhooks.token_file", w.TokenFile)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return false, fmt.Errorf("%s answered %s", w.URL, resp.Status)
	}
	return true, fmt.Errorf("%s answered %s", w.URL, resp.Status)
}

// command runs a notify command with the event's JSON on stdin and its
// main fields in IMMUNE_* variables; its process group dies on timeout.
func (n *Notifier) command(ctx context.Context, argv []string, e Event, body []byte) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), "IMMUNE_EVENT="+e.Kind, "IMMUNE_PUSH="+e.Push, "IMMUNE_REVISION="+e.Revision,
		"IMMUNE_REASON="+e.Reason, "IMMUNE_URL="+e.URL)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// contactCommand is a Nagios contact's notify command with its macros
// filled in for the event, as Nagios would: the push is the service of a
// host named immune. Characters a shell would act on are left out of
// the values, as Nagios's illegal_macro_output_chars does.
func contactCommand(c conf.Contact, e Event) string {
	clean := strings.NewReplacer("`", "", "~", "", "$", "", "&", "", "|", "", "'", "", "\"", "", "<", "", ">", "")
	kind := "CUSTOM"
	switch e.Kind {
	case RolledBack, RevertFailed, Locked, Failed:
		kind = "PROBLEM"
	case Live, Unlocked:
		kind = "RECOVERY"
	}
	return strings.NewReplacer(
		"$NOTIFICATIONTYPE$", kind,
		"$HOSTNAME$", "immune",
		"$HOSTADDRESS$", "",
		"$SERVICEDESC$", clean.Replace("push "+e.Revision),
		"$SERVICESTATE$", e.Kind,
		"$SERVICEOUTPUT$", clean.Replace(e.Reason),
		"$SERVICENOTES$", "",
		"$SERVICENOTESURL$", clean.Replace(e.URL),
		"$CONTACTNAME$", c.Name,
		"$CONTACTEMAIL$", clean.Replace(c.Email),
		"$CONTACTPAGER$", clean.Replace(c.Pager),
	).Replace(c.Notify)
}
