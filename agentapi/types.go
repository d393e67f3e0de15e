package agentapi

import (
	"strconv"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// The state types of a check: Nagios's soft/hard distinction, where a
// problem is soft until it has been seen max_check_attempts times in a row.
const (
	Soft = "SOFT"
	Hard = "HARD"
)

// CheckStatus is what an agent knows of one check: its latest result and
// the state Nagios would keep for it.
type CheckStatus struct {
	Name string `json:"name"`
	nagios.Result
	// StateType is Soft or Hard.
	StateType   string `json:"state_type"`
	Attempt     int    `json:"attempt"`
	MaxAttempts int    `json:"max_attempts"`
	// LastHardState is the state the service was last hard in.
	LastHardState       nagios.State  `json:"last_hard_state"`
	LastCheck           time.Time     `json:"last_check"`
	Duration            time.Duration `json:"duration_ns"`
	LastStateChange     time.Time     `json:"last_state_change"`
	LastHardStateChange time.Time     `json:"last_hard_state_change"`
	NextCheck           time.Time     `json:"next_check"`
}

// Checked reports whether the check has run at least once.
func (s CheckStatus) Checked() bool { return !s.LastCheck.IsZero() }

// AttemptText is the attempt as Nagios shows it: "1/5".
func (s CheckStatus) AttemptText() string {
	return strconv.Itoa(s.Attempt) + "/" + strconv.Itoa(s.MaxAttempts)
}

// Checks is the answer of GET /api/v1/checks: every check of a host.
type Checks struct {
	Host     string        `json:"host"`
	HostType string        `json:"host_type"`
	Checks   []CheckStatus `json:"checks"`
}

// Gauge is one reading the coordinator compares before and after a push.
type Gauge struct {
	Value float64   `json:"value"`
	At    time.Time `json:"at"`
	// Source says where the value came from: "system" or "check NAME".
	Source string `json:"source"`
}

// Snapshot is the answer of GET /api/v1/snapshot: every gauge of a host at
// one moment.
type Snapshot struct {
	Host     string           `json:"host"`
	HostType string           `json:"host_type"`
	TakenAt  time.Time        `json:"taken_at"`
	Gauges   map[string]Gauge `json:"gauges"`
	// Missing names configured gauges that have no value yet, and why.
	Missing map[string]string `json:"missing,omitempty"`
}

// Release is the state of a host's releases, as the release, deploy and
// rollback routes answer it.
type Release struct {
	Current  string   `json:"current"`
	Previous string   `json:"previous"`
	Releases []string `json:"releases"`
}

// DeployRequest is the body of POST /api/v1/deploy.
type DeployRequest struct {
	Revision    string `json:"revision"`
	ArtifactURL string `json:"artifact_url"`
	SHA256      string `json:"sha256"`
}

// RollbackRequest is the body of POST /api/v1/rollback; an empty To is the
// previous release.
type RollbackRequest struct {
	To string `json:"to"`
}
