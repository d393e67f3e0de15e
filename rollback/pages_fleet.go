package rollback

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/immune-ops/immune/conf"
)

// The fleet page: every host's checks, as Nagios shows services.

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
}

func (s *Server) fleetView(r *http.Request) (string, any, error) {
	q := r.URL.Query()
	v := FleetView{State: strings.ToUpper(q.Get("state")), Type: q.Get("type"), Host: q.Get("host")}
	if _, ok := stateRank[v.State]; !ok && v.State != "" && v.State != "PROBLEMS" {
		return "", nil, &pageError{http.StatusBadRequest, fmt.Sprintf("state %q: want ok, warning, critical, unknown, no answer or problems", q.Get("state"))}
	}
	var hosts []conf.Host
	for _, h := range s.C.Fleet.Hosts {
		if (v.Type == "" || h.HostType == v.Type) && (v.Host == "" || h.Name == v.Host) {
			hosts = append(hosts, h)
		}
	}
	v.Hosts = len(hosts)
	all := s.C.Agents.FleetGrid(r.Context(), hosts)
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
	for _, h := range s.C.Fleet.Hosts {
		typeCount[h.HostType]++
	}
	v.Types = append(v.Types, FilterLink{Name: "all", Count: len(s.C.Fleet.Hosts), Link: link(v.State, ""), Active: v.Type == ""})
	for _, t := range hostTypes(s.C.Fleet) {
		v.Types = append(v.Types, FilterLink{Name: t, Count: typeCount[t], Link: link(v.State, t), Active: v.Type == t})
	}
	title := "Fleet"
	if v.Host != "" {
		title = "Checks of " + v.Host
		v.Clear = "/fleet"
	}
	return title, v, nil
}
