package agent

import (
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/nagios"
)

func TestStatusNext(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	type step struct {
		in        nagios.State
		state     nagios.State
		stateType string
		attempt   int
		changed   bool // last state change is this step
		hardMoved bool // last hard state change is this step
	}
	ok, warn, crit := nagios.OK, nagios.Warning, nagios.Critical
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"stays OK", 3, []step{
			{ok, ok, agentapi.Hard, 1, true, true},
			{ok, ok, agentapi.Hard, 1, false, false},
		}},
		{"problem turns hard at max attempts, then recovers", 3, []step{
			{ok, ok, agentapi.Hard, 1, true, true},
			{crit, crit, agentapi.Soft, 1, true, false},
			{crit, crit, agentapi.Soft, 2, false, false},
			{crit, crit, agentapi.Hard, 3, false, true},
			{crit, crit, agentapi.Hard, 3, false, false},
			{warn, warn, agentapi.Hard, 3, true, true},
			{ok, ok, agentapi.Hard, 1, true, true},
		}},
		{"soft recovery never goes hard in the problem", 5, []step{
			{ok, ok, agentapi.Hard, 1, true, true},
			{warn, warn, agentapi.Soft, 1, true, false},
			{crit, crit, agentapi.Soft, 2, true, false},
			{ok, ok, agentapi.Hard, 1, true, false},
		}},
		{"max 1 is hard at once", 1, []step{
			{crit, crit, agentapi.Hard, 1, true, true},
			{ok, ok, agentapi.Hard, 1, true, true},
		}},
		{"first result a problem starts soft", 2, []step{
			{warn, warn, agentapi.Soft, 1, true, true},
			{warn, warn, agentapi.Hard, 2, false, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Status
			for i, st := range tt.steps {
				now := t0.Add(time.Duration(i) * time.Minute)
				s = nextStatus(s, nagios.Result{State: st.in}, tt.max, now, now.Add(time.Second))
				if s.State != st.state || s.StateType != st.stateType || s.Attempt != st.attempt {
					t.Fatalf("step %d (%s): got %s %s %s, want %s %s %d/%d", i, st.in, s.State, s.StateType, s.AttemptText(), st.state, st.stateType, st.attempt, tt.max)
				}
				if (s.LastStateChange == now) != st.changed {
					t.Errorf("step %d: last state change %v, changed now: want %v", i, s.LastStateChange, st.changed)
				}
				if (s.LastHardStateChange == now) != st.hardMoved {
					t.Errorf("step %d: last hard state change %v, changed now: want %v", i, s.LastHardStateChange, st.hardMoved)
				}
				if s.Duration != time.Second || s.LastCheck != now {
					t.Errorf("step %d: last check %v, duration %v", i, s.LastCheck, s.Duration)
				}
			}
		})
	}
}

func TestAttemptText(t *testing.T) {
	if got := (Status{Attempt: 1, MaxAttempts: 15}).AttemptText(); got != "1/15" {
		t.Errorf("got %q", got)
	}
}
