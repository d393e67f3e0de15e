package rollback

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/conf"
)

// --- fleet: every host's checks, as Nagios shows services ---

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

// FilterLink is one choice of a filter, with how many rows it gives.
type FilterLink struct {
	Name   string `json:"name"`
	Count  int    `json:"count"`
	Link   string `json:"-"`
	Active bool   `json:"-"`
}

// FleetView is the fleet page.
type FleetView struct {
	State  string       `json:"state,omitempty"`
	Type   string       `json:"type,omitempty"`
	Host   string       `json:"host,omitempty"`
	Hosts  int          `json:"hosts"`
	Rows   []FleetRow   `json:"rows"`
	States []FilterLink `json:"states"`
	Types  []FilterLink `json:"types"`
	Clear  string       `json:"-"`
	// AsOf is when the agents were asked: views are served from that
	// answer until it is fleet_refresh old.
	AsOf time.Time `json:"as_of"`
}

// noAnswer is the state shown for a host whose agent did not answer.
const noAnswer = "NO ANSWER"

// stateRank puts what needs someone first, as on-call staff read a grid.
var stateRank = map[string]int{"CRITICAL": 0, noAnswer: 1, "UNKNOWN": 2, "WARNING": 3, "OK": 4}

func (s *Server) fleetView(r *http.Request) (string, any, error) {
	q := r.URL.Query()
	v := FleetView{State: strings.ToUpper(q.Get("state")), Type: q.Get("type"), Host: q.Get("host")}
	if _, ok := stateRank[v.State]; !ok && v.State != "" && v.State != "PROBLEMS" {
		return "", nil, &pageError{http.StatusBadRequest, fmt.Sprintf("state %q: want ok, warning, critical, unknown, no answer or problems", q.Get("state"))}
	}
	shown := func(name, hostType string) bool {
		return (v.Type == "" || hostType == v.Type) && (v.Host == "" || name == v.Host)
	}
	for _, h := range s.C.fleet().Hosts {
		if shown(h.Name, h.HostType) {
			v.Hosts++
		}
	}
	var all []FleetRow
	var asOf time.Time
	if err := s.fleet.read(r.Context(), s.C.fleet().FleetRefresh.D(), func(ctx context.Context) []FleetRow {
		return s.fleetRows(ctx, s.C.fleet().Hosts)
	}, func(rows []FleetRow, at time.Time) {
		asOf = at
		for _, row := range rows {
			if shown(row.Host, row.HostType) {
				all = append(all, row)
			}
		}
	}); err != nil {
		return "", nil, &pageError{http.StatusServiceUnavailable, "the agents' checks are being read: " + err.Error()}
	}
	v.AsOf = asOf
	counts := map[string]int{}
	for _, row := range all {
		counts[row.State]++
	}
	v.Rows = []FleetRow{}
	for _, row := range all {
		if v.State == "" || row.State == v.State || (v.State == "PROBLEMS" && row.State != "OK") {
			v.Rows = append(v.Rows, row)
		}
	}
	link := func(state, typ string) string {
		u := url.Values{}
		for k, val := range map[string]string{"state": strings.ToLower(state), "type": typ, "host": v.Host} {
			if val != "" {
				u.Set(k, val)
			}
		}
		if len(u) == 0 {
			return "/fleet"
		}
		return "/fleet?" + u.Encode()
	}
	v.States = append(v.States, FilterLink{Name: "all", Count: len(all), Link: link("", v.Type), Active: v.State == ""},
		FilterLink{Name: "problems", Count: len(all) - counts["OK"], Link: link("problems", v.Type), Active: v.State == "PROBLEMS"})
	for _, st := range []string{"CRITICAL", noAnswer, "UNKNOWN", "WARNING", "OK"} {
		v.States = append(v.States, FilterLink{Name: st, Count: counts[st], Link: link(st, v.Type), Active: v.State == st})
	}
	typeCount := map[string]int{}
	for _, h := range s.C.fleet().Hosts {
		typeCount[h.HostType]++
	}
	v.Types = append(v.Types, FilterLink{Name: "all", Count: len(s.C.fleet().Hosts), Link: link(v.State, ""), Active: v.Type == ""})
	for _, t := range hostTypes(s.C.fleet()) {
		v.Types = append(v.Types, FilterLink{Name: t, Count: typeCount[t], Link: link(v.State, t), Active: v.Type == t})
	}
	title := "Fleet"
	if v.Host != "" {
		title = "Checks of " + v.Host
		v.Clear = "/fleet"
	}
	return title, v, nil
}

// fleetRows asks every host for its checks, at most fleetParallel at once,
// and sorts the answers with the problems first.
func (s *Server) fleetRows(ctx context.Context, hosts []conf.Host) []FleetRow {
	ctx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	now := time.Now()
	var mu sync.Mutex
	var rows []FleetRow
	errs := forEach(ctx, hosts, fleetParallel, func(ctx context.Context, h conf.Host) error {
		hc, err := s.C.agents().Checks(ctx, h)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range hc.Checks {
			row := FleetRow{Host: h.Name, HostType: h.HostType, Service: c.Name, State: c.State.String(),
				StateType: c.StateType, LastCheck: c.LastCheck, Output: c.Output,
				Attempt: fmt.Sprintf("%d/%d", c.Attempt, c.MaxAttempts)}
			if !c.LastStateChange.IsZero() {
				row.InState = span(now.Sub(c.LastStateChange))
			}
			if c.LastCheck.IsZero() {
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

// fleetCache is the agents' last answers for the fleet page, so that page
// views, however many, ask the agents at most once per refresh interval.
type fleetCache struct {
	mu   sync.Mutex
	rows []FleetRow
	at   time.Time
	// refreshing is closed when the read of the agents in flight ends.
	refreshing chan struct{}
}

// read calls use with the rows, read again by fetch when they are older
// than refresh. Stale rows are served while a new read runs; only the
// first view ever waits for one (or for its ctx to end).
func (c *fleetCache) read(ctx context.Context, refresh time.Duration, fetch func(context.Context) []FleetRow, use func([]FleetRow, time.Time)) error {
	c.mu.Lock()
	if c.rows != nil && time.Since(c.at) < refresh {
		defer c.mu.Unlock()
		use(c.rows, c.at)
		return nil
	}
	wait := c.refreshing
	if wait == nil {
		wait = make(chan struct{})
		c.refreshing = wait
		go func() {
			// Not the viewer's context: a view that goes away must not
			// cut short the read every other view waits for.
			rows := fetch(context.Background())
			if rows == nil {
				rows = []FleetRow{}
			}
			c.mu.Lock()
			c.rows, c.at, c.refreshing = rows, time.Now(), nil
			c.mu.Unlock()
			close(wait)
		}()
	}
	if c.rows != nil {
		defer c.mu.Unlock()
		use(c.rows, c.at)
		return nil
	}
	c.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	use(c.rows, c.at)
	return nil
}
