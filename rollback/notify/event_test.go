package notify

import (
	"errors"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
)

func TestSummary(t *testing.T) {
	rev := "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{Event{Kind: PushStarted, Revision: rev, Who: "alice"}, "[immune] push of 9f8e7d6c5b started (alice)"},
		{Event{Kind: Verdict, Revision: rev, Reason: "phase 1 of 2: every limit held"}, "[immune] push of 9f8e7d6c5b judged: phase 1 of 2: every limit held"},
		{Event{Kind: Locked, Revision: rev, Reason: "rolled back", URL: "http://c/p/1"}, "[immune] pushes locked after 9f8e7d6c5b: rolled back http://c/p/1"},
		{Event{Kind: Unlocked, Who: "carol", Reason: "fixed in 1234\nmore"}, "[immune] pushes unlocked (carol): fixed in 1234"},
		{Event{Kind: Live, Revision: "abc"}, "[immune] push of abc is live"},
		{Event{Kind: "rebooted", Revision: "abc"}, "[immune] rebooted abc"},
	} {
		if got := c.ev.summary(); got != c.want {
			t.Errorf("%s: %q, want %q", c.ev.Kind, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	r := conf.NotifyRetry{Backoff: conf.Duration(time.Second), MaxBackoff: conf.Duration(5 * time.Second)}
	plain := errors.New("503")
	for _, c := range []struct {
		attempt int
		err     error
		want    time.Duration
	}{
		{1, plain, time.Second},
		{2, plain, 2 * time.Second},
		{3, plain, 4 * time.Second},
		{4, plain, 5 * time.Second},
		{60, plain, 5 * time.Second},
		{1, laterError{plain, 3 * time.Second}, 3 * time.Second},
		{1, laterError{plain, time.Hour}, 5 * time.Second},
		{3, laterError{plain, time.Millisecond}, 4 * time.Second},
	} {
		if got := backoff(r, c.attempt, c.err); got != c.want {
			t.Errorf("backoff after attempt %d (%v) = %s, want %s", c.attempt, c.err, got, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"0": 0, "30": 30 * time.Second,
		"Wed, 01 Jan 2025 12:00:20 GMT": 20 * time.Second,
		"Wed, 01 Jan 2025 11:00:00 GMT": 0,
	} {
		if got, ok := retryAfter(v, now); !ok || got != want {
			t.Errorf("retryAfter(%q) = %s, %v; want %s", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(v, now); ok {
			t.Errorf("retryAfter(%q) is read", v)
		}
	}
}
