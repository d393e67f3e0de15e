package rollback

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// --- one push: a phase's verdict, gauge by gauge ---

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
	// OrderMessage says what became of an order from the page's form.
	OrderMessage string `json:"-"`
	OrderRefused bool   `json:"-"`
	// CulpritSHA and BisectOutcome mark the commits bisect judged.
	CulpritSHA    string            `json:"-"`
	BisectOutcome map[string]string `json:"-"`
}

// GaugeView is one gauge's tab: the release's effect on each host type
// (canaries against the control) first, then every host.
type GaugeView struct {
	Name     string       `json:"name"`
	Breached bool         `json:"breached"`
	Default  bool         `json:"-"`
	Effects  []ReadingRow `json:"effects"`
	Hosts    []ReadingRow `json:"hosts"`
}

// ReadingRow is a reading with its numbers written for the page.
type ReadingRow struct {
	Reading
	PreText      string `json:"-"`
	PostText     string `json:"-"`
	ControlText  string `json:"-"`
	DeltaText    string `json:"-"`
	DeltaPctText string `json:"-"`
	// IntervalText is the effect's interval, "(-0.3 to +1.2)".
	IntervalText   string `json:"-"`
	ConfidenceText string `json:"-"`
	EvidencePct    int    `json:"-"`
	// Word is the verdict in one word: breach, within, inconclusive, waiting, dry run.
	Word      string `json:"-"`
	Spark     string `json:"-"`
	SparkBase string `json:"-"`
	Link      string `json:"-"`
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
	v := PushView{Push: p, Running: !p.State.Done(), HostsDone: p.HostsDone(), HostsTotal: len(s.C.fleet().Hosts)}
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
	if b := p.Bisect; b != nil {
		v.BisectOutcome = map[string]string{}
		for _, st := range b.Steps {
			v.BisectOutcome[st.Revision] = st.Outcome
		}
		if b.Culprit != nil {
			v.CulpritSHA = b.Culprit.SHA
			v.BisectOutcome[b.Culprit.SHA] = "the culprit"
		}
	}
	if kind := r.URL.Query().Get("ordered"); kind != "" {
		v.OrderMessage = fmt.Sprintf("%s taken: the push acts on it at its next step.", kind)
	}
	v.Stamp = fmt.Sprintf("%s/%d/%d/%d", p.State, p.Phase, len(v.Judged), p.Looks)
	title := fmt.Sprintf("Push of revision %s", p.Revision)
	switch {
	case v.Phase > 0 && p.Phases[v.Phase-1].Holdback:
		title = fmt.Sprintf("Metrics of the watch of revision %s (every host, the held-back ones last)", p.Revision)
	case v.Phase > 0:
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
			g.Effects = append(g.Effects, row)
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
	row := ReadingRow{Reading: rd, PreText: optNum(rd.Pre), PostText: optNum(rd.Post), ControlText: optNum(rd.Control),
		DeltaText: "–", DeltaPctText: "", EvidencePct: int(math.Round(100 * rd.Evidence))}
	if rd.Delta != nil {
		row.DeltaText = signed(*rd.Delta)
	}
	if rd.DeltaPct != nil {
		row.DeltaPctText = signed(*rd.DeltaPct) + "%"
	}
	if rd.Low != nil || rd.High != nil {
		row.IntervalText = "(" + optSigned(rd.Low) + " to " + optSigned(rd.High) + ")"
	}
	if rd.Confidence != nil {
		row.ConfidenceText = pct(*rd.Confidence)
	}
	row.Word = readingWord(rd)
	row.Spark, row.SparkBase = sparkline(rd.Samples, rd.Pre)
	if rd.Host != "" {
		row.Link = "/fleet?host=" + url.QueryEscape(rd.Host)
	} else {
		row.Link = "/fleet?type=" + url.QueryEscape(rd.HostType)
	}
	return row
}

// The sparkline's box, in SVG user units.
const (
	sparkW = 90.0
	sparkH = 18.0
)

// sparkline draws the samples as an SVG path, broken where one is missing,
// and the baseline as a path of its own, in one scale.
func sparkline(samples Series, pre *float64) (line, base string) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range samples {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	if pre != nil {
		lo, hi = min(lo, *pre), max(hi, *pre)
	}
	if math.IsInf(lo, 0) {
		return "", ""
	}
	// A gauge that barely moves is drawn flat, not blown up to the box:
	// the scale spans at least a fifth of the values' size.
	if least := max(math.Abs(hi), math.Abs(lo)) / 5; hi-lo < least || hi == lo {
		mid, half := (hi+lo)/2, max(least, 1)/2
		lo, hi = mid-half, mid+half
	}
	y := func(x float64) string {
		return strconv.FormatFloat(1+(sparkH-2)*(hi-x)/(hi-lo), 'f', 1, 64)
	}
	step := sparkW
	if len(samples) > 1 {
		step = sparkW / float64(len(samples)-1)
	}
	var b strings.Builder
	pen := "M"
	for i, x := range samples {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			pen = "M"
			continue
		}
		fmt.Fprintf(&b, "%s%s %s ", pen, strconv.FormatFloat(float64(i)*step, 'f', 1, 64), y(x))
		pen = "L"
	}
	if pre != nil {
		base = fmt.Sprintf("M0 %s L%v %s", y(*pre), sparkW, y(*pre))
	}
	return strings.TrimSpace(b.String()), base
}

func optSigned(x *float64) string {
	if x == nil {
		return "∞"
	}
	return signed(*x)
}

// readingWord is a reading's verdict in one word, for the page.
func readingWord(rd Reading) string {
	switch {
	case rd.Breached && rd.DryRun:
		return "breach (dry run)"
	case rd.Breached:
		return "breach"
	case rd.Waiting:
		return "waiting"
	case rd.Inconclusive:
		return "inconclusive"
	case rd.Why != "":
		return "noted"
	case rd.Host == "" && rd.Delta == nil:
		return "no evidence yet"
	}
	return "within"
}
