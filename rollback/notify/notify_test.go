package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/fixtures/poll"
)

// request is what a receiver got.
type request struct {
	header http.Header
	body   []byte
	event  Event
}

// receiver is a webhook endpoint on loopback that answers each request
// with the next of its statuses (then 200), after hold returns.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []request
	statuses []int
	hold     func(r *http.Request)
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{header: r.Header.Clone(), body: body}
		if err := json.Unmarshal(body, &req.event); err != nil {
			t.Errorf("the body is not an event: %v\n%s", err, body)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, req)
		status := http.StatusOK
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		hold := rc.hold
		rc.mu.Unlock()
		if hold != nil {
			hold(r)
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "status %d\nsecond line\n", status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// holdWith makes the receiver call hold before it answers.
func (rc *receiver) holdWith(hold func(r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hold = hold
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// waitFor polls until the receiver has n requests.
func (rc *receiver) waitFor(t *testing.T, n int) []request {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d requests", n), func() (bool, string) {
		got := rc.requests()
		return len(got) >= n, fmt.Sprintf("%d so far", len(got))
	})
	return rc.requests()
}

// fast is a retry policy for tests: short waits, a few attempts.
func fast(attempts int) conf.NotifyRetry {
	return conf.NotifyRetry{Timeout: conf.Duration(5 * time.Second), Attempts: attempts,
		Backoff: conf.Duration(10 * time.Millisecond), MaxBackoff: conf.Duration(40 * time.Millisecond)}
}

// lockedBuffer is a log the notifier's goroutines write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newNotifier(t *testing.T, cfg conf.Notify) (*Notifier, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	n, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		n.Close(ctx)
	})
	return n, logs
}

func closeWithin(t *testing.T, n *Notifier, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Close(ctx)
}

var rollback = Event{
	Kind: RolledBack, Push: "20250101-120000-000-9f8e7d6c5b", Revision: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
	Range: "1a2b3c4d5e..9f8e7d6c5b", Culprit: "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a98765432",
	Commits: []Commit{
		{SHA: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", Author: "Alice", Email: "alice@example.com", Subject: "cart: bigger buttons"},
		{SHA: "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a98765432", Author: "Bob", Email: "bob@example.com", Subject: "checkout: new payment flow"},
	},
	Reason: "php_errors rose by 40 on www (limit: rise 10)\nsecond line", Who: "alice",
	URL:  "http://127.0.0.1:5680/pushes/20250101-120000-000-9f8e7d6c5b",
	Time: time.Date(2025, 1, 1, 12, 5, 0, 0, time.UTC),
}

// TestWebhookGetsJSON: the receiver gets the event as JSON, with its
// content type, the bearer token and an idempotency key.
func TestWebhookGetsJSON(t *testing.T) {
	rc := newReceiver(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, _ := newNotifier(t, conf.Notify{Webhooks: []conf.Webhook{{URL: rc.URL + "/hooks/deploys", TokenFile: token, NotifyRetry: fast(1)}}})
	n.Send(rollback)
	got := rc.waitFor(t, 1)[0]
	for name, want := range map[string]string{"Content-Type": "application/json", "Authorization": "Bearer s3cret", "User-Agent": "immune-coordinator"} {
		if v := got.header.Get(name); v != want {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
	if key := got.header.Get("Idempotency-Key"); key == "" || key != got.event.ID {
		t.Errorf("Idempotency-Key %q, event id %q", key, got.event.ID)
	}
	want := rollback
	want.ID = got.event.ID
	want.Text = "[immune] push of 9f8e7d6c5b rolled back (alice), culprit 5d4c3b2a1f: php_errors rose by 40 on www (limit: rise 10) " + rollback.URL
	if !equalEvents(got.event, want) {
		t.Errorf("received:\n%+v\nwant:\n%+v", got.event, want)
	}
	var fields map[string]any
	json.Unmarshal(got.body, &fields)
	for _, key := range []string{"id", "kind", "push", "revision", "range", "commits", "culprit", "reason", "who", "url", "time", "text"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("the JSON has no %q: %s", key, got.body)
		}
	}
	if s := n.Stats(); s != (Stats{Sent: 1}) {
		t.Errorf("stats %+v", s)
	}
}

func equalEvents(a, b Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestWebhookRetries: what trying again may mend is tried again, the same
// event each time; what it cannot is not.
func TestWebhookRetries(t *testing.T) {
	for _, c := range []struct {
		name             string
		statuses         []int
		attempts         int
		requests         int
		sent, failed     int64
		logged, notInLog string
	}{
		{"fails twice then succeeds", []int{500, 503}, 4, 3, 1, 0, "trying again", ""},
		{"timeout and too many requests", []int{408, 429}, 4, 3, 1, 0, "429 Too Many Requests: status 429", ""},
		{"fails every time", []int{502, 502, 502, 502, 502}, 3, 3, 0, 1, "not sent", ""},
		{"refused", []int{400}, 4, 1, 0, 1, "400 Bad Request", "trying again"},
		{"unauthorized", []int{401}, 4, 1, 0, 1, "401 Unauthorized", "trying again"},
		{"redirected", []int{302}, 4, 1, 0, 1, "give the URL it redirects to", "trying again"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, c.statuses...)
			n, logs := newNotifier(t, conf.Notify{Webhooks: []conf.Webhook{{URL: rc.URL + "/secret-path", NotifyRetry: fast(c.attempts)}}})
			n.Send(rollback)
			if err := closeWithin(t, n, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			got := rc.requests()
			if len(got) != c.requests {
				t.Errorf("%d requests, want %d", len(got), c.requests)
			}
			for _, r := range got[1:] {
				if !bytes.Equal(r.body, got[0].body) {
					t.Errorf("a retry sent another body:\n%s\n%s", r.body, got[0].body)
				}
			}
			if s := n.Stats(); s.Sent != c.sent || s.Failed != c.failed {
				t.Errorf("stats %+v, want sent %d, failed %d", s, c.sent, c.failed)
			}
			if !strings.Contains(logs.String(), c.logged) || (c.notInLog != "" && strings.Contains(logs.String(), c.notInLog)) {
				t.Errorf("log should say %q, not %q:\n%s", c.logged, c.notInLog, logs)
			}
			if strings.Contains(logs.String(), "secret-path") {
				t.Errorf("the log shows the URL's path:\n%s", logs)
			}
		})
	}
}

// TestHangingWebhook: a receiver that never answers holds back neither
// Send nor the other sinks, and Close gives up on it at its deadline.
func TestHangingWebhook(t *testing.T) {
	rc := newReceiver(t)
	rc.holdWith(func(r *http.Request) { <-r.Context().Done() })
	out := filepath.Join(t.TempDir(), "paged")
	n, _ := newNotifier(t, conf.Notify{
		Webhooks: []conf.Webhook{{URL: rc.URL, NotifyRetry: fast(3)}},
		Commands: []conf.NotifyCommand{{Command: []string{"/bin/sh", "-c", `cat >> "$0"; echo >> "$0"`, out}, NotifyRetry: fast(1)}},
	})
	begun := time.Now()
	for i := range 20 {
		ev := rollback
		ev.Push = fmt.Sprint("push-", i)
		n.Send(ev)
	}
	if took := time.Since(begun); took > time.Second {
		t.Errorf("Send took %s with a hanging receiver", took)
	}
	poll.Until(t, "the command to get every event", func() (bool, string) {
		data, _ := os.ReadFile(out)
		lines := strings.Count(string(data), "\n")
		return lines == 20, fmt.Sprint(lines, " events")
	})
	if len(rc.requests()) != 1 {
		t.Errorf("%d requests reached the hanging receiver, want the first alone", len(rc.requests()))
	}
	begun = time.Now()
	err := closeWithin(t, n, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "closed with 20 notifications unsent") {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(begun); took > 3*time.Second {
		t.Errorf("Close took %s past its deadline", took)
	}
	if s := n.Sinks(); s[0].Failed != 1 || s[0].Dropped != 19 || s[1].Sent != 20 || !strings.HasPrefix(s[0].Name, "webhooks[0] http://127.0.0.1:") {
		t.Errorf("sinks %+v", s)
	}
}

// TestFullQueueDropsOldest: with a receiver stuck on the first event, the
// queue keeps the newest and counts and logs what it drops.
func TestFullQueueDropsOldest(t *testing.T) {
	rc := newReceiver(t)
	release := make(chan struct{})
	rc.holdWith(func(*http.Request) { <-release })
	n, logs := newNotifier(t, conf.Notify{QueueSize: 2, Webhooks: []conf.Webhook{{URL: rc.URL, NotifyRetry: fast(1)}}})
	send := func(push string) { ev := rollback; ev.Push = push; n.Send(ev) }
	send("p1")
	rc.waitFor(t, 1)
	for _, p := range []string{"p2", "p3", "p4", "p5"} {
		send(p)
	}
	if s := n.Stats(); s.Dropped != 2 {
		t.Errorf("stats %+v, want 2 dropped", s)
	}
	if !strings.Contains(logs.String(), "queue full, oldest event dropped") || !strings.Contains(logs.String(), "push=p3") {
		t.Errorf("the drops are not logged:\n%s", logs)
	}
	close(release)
	if err := closeWithin(t, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var pushes []string
	for _, r := range rc.requests() {
		pushes = append(pushes, r.event.Push)
	}
	if !slices.Equal(pushes, []string{"p1", "p4", "p5"}) {
		t.Errorf("received %v, want p1 p4 p5", pushes)
	}
	if s := n.Stats(); s != (Stats{Sent: 3, Dropped: 2}) {
		t.Errorf("stats %+v", s)
	}
}

// TestCloseDrains: Close sends everything queued before it returns, and
// counts what comes after as dropped.
func TestCloseDrains(t *testing.T) {
	rc := newReceiver(t)
	rc.holdWith(func(*http.Request) { time.Sleep(10 * time.Millisecond) })
	n, _ := newNotifier(t, conf.Notify{Webhooks: []conf.Webhook{{URL: rc.URL, NotifyRetry: fast(1)}}})
	for i := range 10 {
		ev := rollback
		ev.Push = fmt.Sprint(i)
		n.Send(ev)
	}
	if err := closeWithin(t, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := len(rc.requests()); got != 10 {
		t.Errorf("%d received after Close, want 10", got)
	}
	n.Send(rollback)
	if s := n.Stats(); s != (Stats{Sent: 10, Dropped: 1}) {
		t.Errorf("stats %+v", s)
	}
	if err := closeWithin(t, n, time.Second); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestCancelStops: cancelling New's context stops the workers; what is
// sent afterwards is dropped, not queued for ever.
func TestCancelStops(t *testing.T) {
	rc := newReceiver(t)
	ctx, cancel := context.WithCancel(context.Background())
	n, err := New(ctx, conf.Notify{Webhooks: []conf.Webhook{{URL: rc.URL, NotifyRetry: fast(1)}}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	n.Send(rollback)
	if err := closeWithin(t, n, 5*time.Second); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	if s := n.Stats(); s.Dropped != 1 || len(rc.requests()) != 0 {
		t.Errorf("stats %+v, %d requests", s, len(rc.requests()))
	}
}

// TestEventsFilter: a sink gets only the kinds it asks for.
func TestEventsFilter(t *testing.T) {
	all, some := newReceiver(t), newReceiver(t)
	n, _ := newNotifier(t, conf.Notify{Webhooks: []conf.Webhook{
		{URL: all.URL, NotifyRetry: fast(1)},
		{URL: some.URL, Events: []string{"rolled_back", "revert_failed"}, NotifyRetry: fast(1)},
	}})
	for _, k := range Kinds {
		n.Send(Event{Kind: k, Push: "p", Revision: "abc"})
	}
	if err := closeWithin(t, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(all.requests()) != len(Kinds) {
		t.Errorf("the unfiltered webhook got %d events, want %d", len(all.requests()), len(Kinds))
	}
	var kinds []Kind
	for _, r := range some.requests() {
		kinds = append(kinds, r.event.Kind)
	}
	if !slices.Equal(kinds, []Kind{RolledBack, RevertFailed}) {
		t.Errorf("the filtered webhook got %v", kinds)
	}
}

// TestKindsAreConfs: the kinds a config may name are the kinds sent.
func TestKindsAreConfs(t *testing.T) {
	var kinds []string
	for _, k := range Kinds {
		kinds = append(kinds, string(k))
		if _, ok := what[k]; !ok {
			t.Errorf("kind %s has no words in what", k)
		}
	}
	if !slices.Equal(kinds, conf.NotifyEvents) {
		t.Errorf("Kinds %v, conf.NotifyEvents %v", kinds, conf.NotifyEvents)
	}
}

func TestNewRefuses(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.token")
	_, err := New(context.Background(), conf.Notify{Webhooks: []conf.Webhook{{URL: "https://x/", TokenFile: missing}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "notify.webhooks[0].token_file") {
		t.Errorf("a missing token file: %v", err)
	}
	_, err = New(context.Background(), conf.Notify{Commands: []conf.NotifyCommand{{}}}, nil)
	if err == nil {
		t.Error("a command without a program was accepted")
	}
}
