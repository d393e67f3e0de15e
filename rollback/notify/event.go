// Package notify tells on-call engineers of a push as it goes: each event
// (started, verdict, rolled back, reverted, locked, live...) is sent as JSON
// to every configured webhook and command. It never holds a push back:
// Send only queues, each webhook and command has its own bounded queue and
// goroutine, a full queue drops its oldest event, and every delivery is
// counted as sent, failed or dropped.
package notify

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// Kind is what happened to a push.
type Kind string

// The kinds of event, as conf.NotifyEvents names them.
const (
	PushStarted  Kind = "push_started"
	Verdict      Kind = "verdict"
	RolledBack   Kind = "rolled_back"
	Reverted     Kind = "reverted"
	RevertFailed Kind = "revert_failed"
	Locked       Kind = "locked"
	Unlocked     Kind = "unlocked"
	Failed       Kind = "failed"
	Live         Kind = "live"
)

// Kinds are every kind of event.
var Kinds = []Kind{PushStarted, Verdict, RolledBack, Reverted, RevertFailed, Locked, Unlocked, Failed, Live}

// Event is one thing that happened to a push, as its JSON is sent.
type Event struct {
	// ID is the same on every attempt to send the event, so that a
	// receiver can drop a repeat (default: made by Send).
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Push is the push's id; Revision what it pushes.
	Push     string `json:"push,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Range is the revisions the push brings, "from..to", and Commits
	// are its commits, newest first.
	Range   string   `json:"range,omitempty"`
	Commits []Commit `json:"commits,omitempty"`
	// Culprit is the commit blamed, when one is.
	Culprit string `json:"culprit,omitempty"`
	// Reason says why: the verdict, the error, the unlock's reason.
	Reason string `json:"reason,omitempty"`
	// Who pushed, or unlocked.
	Who string `json:"who,omitempty"`
	// URL is the push's page.
	URL string `json:"url,omitempty"`
	// Time is when it happened (default: when Send was called).
	Time time.Time `json:"time"`
	// Text is the event in one line for people, as a chat shows it
	// (default: made by Send from the fields above).
	Text string `json:"text"`
}

// Commit is one commit of a push's range.
type Commit struct {
	SHA     string `json:"sha"`
	Author  string `json:"author"`
	Email   string `json:"email"`
	Subject string `json:"subject"`
}

// what says each kind of event in words; %s is the short revision.
var what = map[Kind]string{
	PushStarted:  "push of %s started",
	Verdict:      "push of %s judged",
	RolledBack:   "push of %s rolled back",
	Reverted:     "push of %s reverted",
	RevertFailed: "revert of %s failed",
	Locked:       "pushes locked after %s",
	Unlocked:     "pushes unlocked",
	Failed:       "push of %s failed",
	Live:         "push of %s is live",
}

// summary is the event's Text when none is given.
func (e *Event) summary() string {
	var b strings.Builder
	b.WriteString("[immune] ")
	format, ok := what[e.Kind]
	if !ok {
		format = string(e.Kind) + " %s"
	}
	b.WriteString(strings.Replace(format, "%s", short(e.Revision), 1))
	if e.Who != "" {
		b.WriteString(" (" + e.Who + ")")
	}
	if e.Culprit != "" {
		b.WriteString(", culprit " + short(e.Culprit))
	}
	if reason, _, _ := strings.Cut(strings.TrimSpace(e.Reason), "\n"); reason != "" {
		b.WriteString(": " + reason)
	}
	if e.URL != "" {
		b.WriteString(" " + e.URL)
	}
	return b.String()
}

func short(rev string) string {
	if len(rev) > 10 {
		return rev[:10]
	}
	return rev
}

// newID is a random event id.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
