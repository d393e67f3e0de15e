package rollback

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/conf"
)

// The fleet grid reads every agent at once up to fleetParallel, and one
// that has not answered in fleetTimeout is shown as not answering, so a
// dead host never holds the page up.
const (
	fleetParallel = 32
	fleetTimeout  = 3 * time.Second
)

// FleetRow is one check of one host, or a host that did not answer.
type FleetRow struct {
	Host      string `json:"host"`
	HostType  string `json:"host_type"`
	Service   string `json:"service"`
	State     string `json:"state"`
	StateType string `json:"state_type,omitempty"`
	// LastCheck is zero for a host that did not answer.
	LastCheck time.Time `json:"last_check,omitzero"`
	// InState is how long the check has been in its state.
	InState string `json:"in_state,omitempty"`
	Attempt string `json:"attempt,omitempty"`
	Output  string `json:"output"`
	// NoAnswer marks a host whose agent did not answer; Output says why.
	NoAnswer bool   `json:"no_answer,omitempty"`
	Class    string `json:"-"`
}

// noAnswer is the state shown for a host whose agent did not answer.
const noAnswer = "NO ANSWER"

// stateRank puts what needs someone first, as on-call staff read a grid.
var stateRank = map[string]int{"CRITICAL": 0, noAnswer: 1, "UNKNOWN": 2, "WARNING": 3, "OK": 4}

// FleetGrid asks every host for its checks, at most fleetParallel at once
// and for fleetTimeout at most, and returns a row per check and per host
// that did not answer, the problems first.
func (c *AgentClient) FleetGrid(ctx context.Context, hosts []conf.Host) []FleetRow {
	ctx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	now := time.Now()
	var mu sync.Mutex
	var rows []FleetRow
	errs := forEach(ctx, hosts, fleetParallel, func(ctx context.Context, h conf.Host) error {
		hc, err := c.Checks(ctx, h)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range hc.Checks {
			row := FleetRow{Host: h.Name, HostType: h.HostType, Service: ch.Name, State: ch.State.String(),
				StateType: ch.StateType, LastCheck: ch.LastCheck, Output: ch.Output,
				Attempt: fmt.Sprintf("%d/%d", ch.Attempt, ch.MaxAttempts)}
			if !ch.LastStateChange.IsZero() {
				row.InState = span(now.Sub(ch.LastStateChange))
			}
			if ch.LastCheck.IsZero() {
				row.State, row.Output = "UNKNOWN", "(not checked yet)"
			}
			rows = append(rows, row)
		}
		return nil
	})
	for _, h := range hosts {
		if err, ok := errs[h.Name]; ok {
			rows = append(rows, FleetRow{Host: h.Name, HostType: h.HostType, Service: "(agent)", State: noAnswer,
				NoAnswer: true, Output: "the agent did not answer: " + err.Error()})
		}
	}
	for i := range rows {
		rows[i].Class = strings.ToLower(strings.ReplaceAll(rows[i].State, " ", ""))
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if stateRank[a.State] != stateRank[b.State] {
			return stateRank[a.State] < stateRank[b.State]
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Service < b.Service
	})
	return rows
}
