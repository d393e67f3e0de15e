package agent

import (
	"strconv"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// StateType is Nagios's soft/hard distinction: a problem is soft until it
// has been seen max_check_attempts times in a row.
type StateType string

// The two state types.
const (
	Soft StateType = "SOFT"
	Hard StateType = "HARD"
)

// Status is what the agent knows of one check: its latest result and the
// state Nagios would keep for it.
type Status struct {
	Name string `json:"name"`
	nagios.Result
	StateType   StateType `json:"state_type"`
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	// LastHardState is the state the service was last hard in.
	LastHardState       nagios.State  `json:"last_hard_state"`
	LastCheck           time.Time     `json:"last_check"`
	Duration            time.Duration `json:"duration_ns"`
	LastStateChange     time.Time     `json:"last_state_change"`
	LastHardStateChange time.Time     `json:"last_hard_state_change"`
	NextCheck           time.Time     `json:"next_check"`
}

// Checked reports whether the check has run at least once.
func (s Status) Checked() bool { return !s.LastCheck.IsZero() }

// AttemptText is the attempt as Nagios shows it: "1/5".
func (s Status) AttemptText() string {
	return strconv.Itoa(s.Attempt) + "/" + strconv.Itoa(s.MaxAttempts)
}

// next is the status after result r arrives at now, following Nagios's
// rules for service state types:
//   - OK after hard OK stays hard OK, attempt 1;
//   - a problem after hard OK is soft, attempt 1 (hard at once when max is 1);
//   - a problem while soft counts up, and turns hard at max attempts;
//   - OK after a soft problem is a soft recovery, and is hard OK at once;
//   - while hard in a problem, results stay hard at max attempts.
func (s Status) next(r nagios.Result, maxAttempts int, started, now time.Time) Status {
	n := s
	n.Result = r
	n.MaxAttempts = maxAttempts
	n.LastCheck = started
	n.Duration = now.Sub(started)
	first := !s.Checked()
	if first {
		// Nagios starts a service in hard OK, as if it had been fine.
		s.State, s.StateType, s.LastHardState = nagios.OK, Hard, nagios.OK
	}
	switch {
	case r.State == nagios.OK:
		n.StateType, n.Attempt = Hard, 1
	case s.StateType == Hard && s.State == nagios.OK:
		n.StateType, n.Attempt = Soft, 1
	case s.StateType == Soft:
		n.Attempt = s.Attempt + 1
	default: // hard problem goes on
		n.StateType, n.Attempt = Hard, maxAttempts
	}
	if n.StateType == Soft && n.Attempt >= maxAttempts {
		n.StateType, n.Attempt = Hard, maxAttempts
	}
	if n.State != s.State || first {
		n.LastStateChange = started
	}
	if first {
		n.LastHardStateChange = started
	}
	if n.StateType == Hard {
		if n.State != s.LastHardState {
			n.LastHardStateChange = started
		}
		n.LastHardState = n.State
	}
	return n
}
