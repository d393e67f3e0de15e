package rollback

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// One push's page: a phase's verdict, gauge by gauge.

// PushView is a push's page: one phase's readings, gauge by gauge.
type PushView struct {
	Push *Push `json:"push"`
	// Phase is the phase shown, from 1; 0 when no phase has a verdict yet.
	Phase int `json:"phase"`
	// Judged are the phases with a verdict, for the selector.
	Judged     []int       `json:"judged"`
	Running    bool        `json:"running"`
	Progress   string      `json:"progress"`
	HostsDone  int         `json:"hosts_done"`
	HostsTotal int         `json:"hosts_total"`
	Verdict    *Verdict    `json:"verdict,omitempty"`
	Gauges     []GaugeView `json:"gauges"`
	// Stamp changes whenever the page would show something new, so the
	// live script knows when to reload.
	Stamp string `json:"stamp"`
}

// GaugeView is one gauge's tab: host-type aggregates first, then hosts.
type GaugeView struct {
	Name       string       `json:"name"`
	Breached   bool         `json:"breached"`
	Default    bool         `json:"-"`
	Aggregates []ReadingRow `json:"aggregates"`
	Hosts      []ReadingRow `json:"hosts"`
}

// ReadingRow is a reading with its numbers written for the page.
type ReadingRow struct {
	Reading
	PreText      string `json:"-"`
	PostText     string `json:"-"`
	DeltaText    string `json:"-"`
	DeltaPctText string `json:"-"`
	Spark        string `json:"-"`
	SparkBase    string `json:"-"`
	Link         string `json:"-"`
}

func (s *Server) pushView(r *http.Request) (string, any, error) {
	id := r.PathValue("id")
	p, err := s.C.Store.Push(id)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, &pageError{http.StatusNotFound, fmt.Sprintf("no push %q", id)}
	}
	if err != nil {
		return "", nil, fmt.Errorf("read push %s: %w", id, err)
	}
	v := PushView{Push: p, Running: !p.State.Done(), HostsDone: p.HostsDone(), HostsTotal: len(s.C.Fleet.Hosts)}
	for i, ph := range p.Phases {
		if ph.Verdict != nil {
			v.Judged = append(v.Judged, i+1)
		}
	}
	if len(v.Judged) > 0 {
		v.Phase = v.Judged[len(v.Judged)-1]
	}
	if q := r.URL.Query().Get("phase"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > len(p.Phases) || p.Phases[n-1].Verdict == nil {
			return "", nil, &pageError{http.StatusNotFound, fmt.Sprintf("phase %q of push %s has no verdict", q, id)}
		}
		v.Phase = n
	}
	if v.Phase > 0 {
		v.Verdict = p.Phases[v.Phase-1].Verdict
		v.Gauges = gaugeViews(v.Verdict)
	}
	v.Progress = progress(p, v.HostsTotal)
	v.Stamp = fmt.Sprintf("%s/%d/%d", p.State, p.Phase, len(v.Judged))
	title := fmt.Sprintf("Push of revision %s", p.Revision)
	if v.Phase > 0 {
		title = fmt.Sprintf("Metrics of phase %d of revision %s", v.Phase, p.Revision)
	}
	return title, v, nil
}

func progress(p *Push, total int) string {
	if p.State.Done() {
		return fmt.Sprintf("%s: %d of %d hosts ran the revision", p.Outcome(), len(p.Touched), total)
	}
	return fmt.Sprintf("phase %d of %d: %s, %d of %d hosts on the revision",
		p.Phase+1, len(p.Phases), strings.ReplaceAll(string(p.State), "_", " "), p.HostsDone(), total)
}

// gaugeViews groups a verdict's readings by gauge, in the verdict's order,
// and opens the first breaching gauge's tab (or the first).
func gaugeViews(v *Verdict) []GaugeView {
	var out []GaugeView
	index := map[string]int{}
	for _, rd := range v.Readings {
		i, ok := index[rd.Gauge]
		if !ok {
			i = len(out)
			index[rd.Gauge] = i
			out = append(out, GaugeView{Name: rd.Gauge})
		}
		g := &out[i]
		row := readingRow(rd)
		if rd.Breached {
			g.Breached = true
		}
		if rd.Host == "" {
			g.Aggregates = append(g.Aggregates, row)
		} else {
			g.Hosts = append(g.Hosts, row)
		}
	}
	open := 0
	for i, g := range out {
		if g.Breached {
			open = i
			break
		}
	}
	if len(out) > 0 {
		out[open].Default = true
	}
	return out
}

func readingRow(rd Reading) ReadingRow {
	row := ReadingRow{Reading: rd, PreText: optNum(rd.Pre), PostText: optNum(rd.Post), DeltaText: "–", DeltaPctText: ""}
	if rd.Delta != nil {
		row.DeltaText = signed(*rd.Delta)
	}
	if rd.DeltaPct != nil {
		row.DeltaPctText = signed(*rd.DeltaPct) + "%"
	}
	row.Spark, row.SparkBase = sparkline(rd.Samples, rd.Pre)
	if rd.Host != "" {
		row.Link = "/fleet?host=" + url.QueryEscape(rd.Host)
	} else {
		row.Link = "/fleet?type=" + url.QueryEscape(rd.HostType)
	}
	return row
}
