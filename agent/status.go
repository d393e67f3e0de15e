package agent

import (
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/nagios"
)

// Status is what the agent knows of one check: its latest result and the
// state Nagios would keep for it. It is kept in the state file and served
// as it is, so it is the API's type.
type Status = agentapi.CheckStatus

// nextStatus is the status after s when result r arrives at now, following Nagios's
// rules for service state types:
//   - OK after hard OK stays hard OK, attempt 1;
//   - a problem after hard OK is soft, attempt 1 (hard at once when max is 1);
//   - a problem while soft counts up, and turns hard at max attempts;
//   - OK after a soft problem is a soft recovery, and is hard OK at once;
//   - while hard in a problem, results stay hard at max attempts.
func nextStatus(s Status, r nagios.Result, maxAttempts int, started, now time.Time) Status {
	n := s
	n.Result = r
	n.MaxAttempts = maxAttempts
	n.LastCheck = started
	n.Duration = now.Sub(started)
	first := !s.Checked()
	if first {
		// Nagios starts a service in hard OK, as if it had been fine.
		s.State, s.StateType, s.LastHardState = nagios.OK, agentapi.Hard, nagios.OK
	}
	switch {
	case r.State == nagios.OK:
		n.StateType, n.Attempt = agentapi.Hard, 1
	case s.StateType == agentapi.Hard && s.State == nagios.OK:
		n.StateType, n.Attempt = agentapi.Soft, 1
	case s.StateType == agentapi.Soft:
		n.Attempt = s.Attempt + 1
	default: // hard problem goes on
		n.StateType, n.Attempt = agentapi.Hard, maxAttempts
	}
	if n.StateType == agentapi.Soft && n.Attempt >= maxAttempts {
		n.StateType, n.Attempt = agentapi.Hard, maxAttempts
	}
	if n.State != s.State || first {
		n.LastStateChange = started
	}
	if first {
		n.LastHardStateChange = started
	}
	if n.StateType == agentapi.Hard {
		if n.State != s.LastHardState {
			n.LastHardStateChange = started
		}
		n.LastHardState = n.State
	}
	return n
}
