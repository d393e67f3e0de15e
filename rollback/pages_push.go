package rollback

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
)

// One push's page: a phase's verdict, gauge by gauge, host type by host
// type: the release's effect on the type, then its hosts.

// holdbackName names the last phase, which puts the release on the hosts
// held back as the control and then watches them.
const holdbackName = "watch (held-back hosts)"

// PushView is a push's page: one phase's readings, gauge by gauge.
type PushView struct {
	Push *Push `json:"push"`
	// Phase is the phase shown, from 1; 0 when no phase has a verdict yet.
	Phase int `json:"phase"`
	// Judged are the phases with a verdict, for the selector; the phase
	// being observed has one from its first look on.
	Judged []int       `json:"judged"`
	Links  []PhaseLink `json:"-"`
	// Observing: the phase shown is still judged, at every sample; its
	// verdict is the latest look's.
	Observing  bool        `json:"observing"`
	Running    bool        `json:"running"`
	Progress   string      `json:"progress"`
	HostsDone  int         `json:"hosts_done"`
	HostsTotal int         `json:"hosts_total"`
	Verdict    *Verdict    `json:"verdict,omitempty"`
	Headline   *Headline   `json:"-"`
	Gauges     []GaugeView `json:"gauges"`
	// Stamp changes whenever the page would show something new (a look,
	// a phase judged, a state), so the live script knows when to reload.
	Stamp string `json:"stamp"`
}

// PhaseLink is one judged phase in the selector.
type PhaseLink struct {
	Name string
	Link string
	On   bool
}

// Headline is the shown phase's verdict in one line.
type Headline struct {
	Word   string
	Class  string
	Reason string
	Detail string
}

// GaugeView is one gauge's tab: per host type, the release's effect on
// it, then its hosts, those running the release first.
type GaugeView struct {
	Name     string `json:"name"`
	Breached bool   `json:"breached"`
	// Unsure: a reading is inconclusive or waits for data.
	Unsure  bool `json:"unsure,omitempty"`
	Default bool `json:"-"`
	// Aggregates are the effects on each host type, Hosts every host's
	// reading, in the order the page shows them.
	Aggregates []ReadingRow `json:"aggregates"`
	Hosts      []ReadingRow `json:"hosts"`
	Types      []TypeView   `json:"-"`
}

// TypeView is one host type in a gauge's tab.
type TypeView struct {
	HostType  string
	Threshold string
	// Canaries and Controls count the type's hosts on and off the release.
	Canaries int
	Controls int
	Effects  []ReadingRow
	Hosts    []ReadingRow
}

// ReadingRow is a reading with its numbers written for the page.
type ReadingRow struct {
	Reading
	// Status is the reading's verdict in a word: breach, within,
	// inconclusive, waiting, observing, dry run; empty for a control host.
	Status       string `json:"status,omitempty"`
	Class        string `json:"-"`
	Label        string `json:"-"`
	Hosts        string `json:"-"`
	PreText      string `json:"-"`
	PostText     string `json:"-"`
	ControlText  string `json:"-"`
	DeltaText    string `json:"-"`
	IntervalText string `json:"-"`
	DeltaPctText string `json:"-"`
	ConfText     string `json:"-"`
	EvidencePct  int    `json:"-"`
	EvidenceText string `json:"-"`
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
	for _, n := range v.Judged {
		name := strconv.Itoa(n)
		if p.Phases[n-1].Holdback {
			name = holdbackName
		}
		v.Links = append(v.Links, PhaseLink{Name: name, Link: fmt.Sprintf("/pushes/%s?phase=%d", url.PathEscape(p.ID), n), On: n == v.Phase})
	}
	title := fmt.Sprintf("Push of revision %s", p.Revision)
	if v.Phase > 0 {
		v.Verdict = p.Phases[v.Phase-1].Verdict
		v.Observing = v.Running && v.Phase-1 == p.Phase && (p.State == StateObserving || p.State == StateWatching)
		v.Headline = headline(v.Verdict, v.Observing, p.Held)
		if p.State == StateRolledBack && p.Reason == v.Verdict.Reason {
			v.Headline.Reason = "" // the banner says it
		}
		v.Gauges = gaugeViews(v.Verdict, v.Observing)
		title = fmt.Sprintf("Metrics of phase %d of revision %s", v.Phase, p.Revision)
		if p.Phases[v.Phase-1].Holdback {
			title = fmt.Sprintf("Metrics of the %s of revision %s", holdbackName, p.Revision)
		}
	}
	v.Progress = progress(p, v.HostsTotal)
	v.Stamp = fmt.Sprintf("%s/%d/%d/%d", p.State, p.Phase, len(v.Judged), p.Looks)
	return title, v, nil
}

// phaseLabel names phase i as the page does: "phase 1 of 2" (the watch of
// the held-back hosts not counted), or the watch.
func phaseLabel(p *Push, i int) string {
	if i < len(p.Phases) && p.Phases[i].Holdback {
		return holdbackName
	}
	n := 0
	for _, ph := range p.Phases {
		if !ph.Holdback {
			n++
		}
	}
	return fmt.Sprintf("phase %d of %d", i+1, n)
}

func progress(p *Push, total int) string {
	if p.State.Done() {
		return fmt.Sprintf("%s: %d of %d hosts ran the revision", p.Outcome(), len(p.Touched), total)
	}
	seen := ""
	if p.Phase < len(p.Phases) && (p.State == StateObserving || p.State == StateWatching) {
		if v := p.Phases[p.Phase].Verdict; v != nil {
			seen = fmt.Sprintf(" (%.0f%% of the window seen)", 100*v.Evidence)
		}
	}
	return fmt.Sprintf("%s: %s%s, %d of %d hosts on the revision",
		phaseLabel(p, p.Phase), strings.ReplaceAll(string(p.State), "_", " "), seen, p.HostsDone(), total)
}

// headline words the verdict: what it decided, or that the phase is
// still observed (held: past max_wait, for an operator to promote or abort).
func headline(v *Verdict, observing, held bool) *Headline {
	h := &Headline{Reason: v.Reason, Detail: fmt.Sprintf("look %d of %d · %s UTC", v.Look, v.Looks, when(v.At))}
	switch {
	case v.Outcome == Fail:
		h.Word, h.Class = "Breach", "breach"
	case observing && held:
		h.Word, h.Class = "Held: promote or abort", "wait"
	case observing && v.Outcome == Wait:
		h.Word, h.Class = "Waiting for evidence", "wait"
	case observing:
		h.Word, h.Class = "Observing", "observing"
	case v.Outcome == Pass:
		h.Word, h.Class = "Passed", "within"
	case v.Outcome == Wait:
		h.Word, h.Class = "Inconclusive", "wait"
	default:
		// Promoted, or the push stopped, before the window was over.
		h.Word, h.Class = "Cut short", "observing"
	}
	return h
}

// gaugeViews groups a verdict's readings by gauge and host type, in the
// verdict's order, and opens the first breaching gauge's tab (or the
// first).
func gaugeViews(v *Verdict, observing bool) []GaugeView {
	var out []GaugeView
	index := map[string]int{}
	types := map[string]map[string]int{}
	for _, rd := range v.Readings {
		i, ok := index[rd.Gauge]
		if !ok {
			i = len(out)
			index[rd.Gauge] = i
			types[rd.Gauge] = map[string]int{}
			out = append(out, GaugeView{Name: rd.Gauge})
		}
		g := &out[i]
		j, ok := types[rd.Gauge][rd.HostType]
		if !ok {
			j = len(g.Types)
			types[rd.Gauge][rd.HostType] = j
			g.Types = append(g.Types, TypeView{HostType: rd.HostType, Threshold: rd.Threshold})
		}
		t := &g.Types[j]
		row := readingRow(rd, observing)
		g.Breached = g.Breached || rd.Breached && !rd.DryRun
		g.Unsure = g.Unsure || (rd.Inconclusive || rd.Waiting) && !rd.DryRun
		switch {
		case rd.Host == "":
			t.Effects = append(t.Effects, row)
		case rd.Role == RoleCanary:
			t.Canaries++
			t.Hosts = append(t.Hosts, row)
		default:
			t.Controls++
			t.Hosts = append(t.Hosts, row)
		}
	}
	for i := range out {
		g := &out[i]
		g.Aggregates, g.Hosts = []ReadingRow{}, []ReadingRow{}
		for k := range g.Types {
			t := &g.Types[k]
			// The hosts running the release first, each group in the
			// fleet's order.
			sort.SliceStable(t.Hosts, func(a, b int) bool {
				return t.Hosts[a].Role == RoleCanary && t.Hosts[b].Role != RoleCanary
			})
			g.Aggregates = append(g.Aggregates, t.Effects...)
			g.Hosts = append(g.Hosts, t.Hosts...)
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

func readingRow(rd Reading, observing bool) ReadingRow {
	row := ReadingRow{Reading: rd, PreText: optNum(rd.Pre), PostText: optNum(rd.Post), DeltaText: "–"}
	if rd.Delta != nil {
		row.DeltaText = signed(*rd.Delta)
	}
	if rd.DeltaPct != nil {
		row.DeltaPctText = signed(*rd.DeltaPct) + "%"
	}
	row.Status, row.Class = status(rd, observing)
	if rd.Host != "" {
		row.Spark, row.SparkBase = sparkline(rd.Samples, rd.Pre)
		row.Link = "/fleet?host=" + url.QueryEscape(rd.Host)
		return row
	}
	row.Link = "/fleet?type=" + url.QueryEscape(rd.HostType)
	row.ControlText = optNum(rd.Control)
	row.IntervalText = interval(rd.Low, rd.High)
	if rd.Confidence != nil {
		row.ConfText = pct(*rd.Confidence)
	}
	row.EvidencePct = int(math.Round(100 * min(max(rd.Evidence, 0), 1)))
	row.EvidenceText = fmt.Sprintf("%d%% of the window", row.EvidencePct)
	if rd.Test == "before/after at scale" {
		row.Label = "whole type, before/after"
		row.Hosts = fmt.Sprintf("all %d hosts, each against its own before", rd.Canaries)
	} else {
		row.Label = "release's effect"
		row.Hosts = fmt.Sprintf("%d on the release vs %d control", rd.Canaries, rd.Controls)
	}
	return row
}

// status words a reading's verdict, with the class its word and row are
// drawn in. A host has one only when its own guard speaks (a breach, a
// reading awaited): the type's effect carries the verdict on the change.
func status(rd Reading, observing bool) (word, class string) {
	switch {
	case rd.DryRun && rd.Breached:
		return "dry run: breach", "dryrun-hit"
	case rd.DryRun && rd.Waiting:
		return "dry run: waiting", "dryrun"
	case rd.Breached:
		return "breach", "breach"
	case rd.Waiting:
		return "waiting", "wait"
	case rd.Host != "":
		return "", ""
	case rd.DryRun:
		return "dry run", "dryrun"
	case rd.Inconclusive:
		return "inconclusive", "wait"
	case observing:
		return "observing", "observing"
	}
	return "within", "within"
}

// interval writes an effect's interval, "(+0.6 to +1.2)", an open end as
// ∞; nothing when it has none, or no width (the hosts agree exactly).
func interval(lo, hi *float64) string {
	if lo == nil && hi == nil || lo != nil && hi != nil && round3(*lo) == round3(*hi) {
		return ""
	}
	end := func(x *float64, inf string) string {
		if x == nil {
			return inf
		}
		return signed(round3(*x))
	}
	return fmt.Sprintf("(%s to %s)", end(lo, "-∞"), end(hi, "+∞"))
}
