package rollback

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/conf"
)

// The pages are rendered on the server from embedded templates, so the
// coordinator's one binary serves them with no build step and they read
// without JavaScript; static/live.js only refreshes a running push.
//
//go:embed templates/*.html static/*
var pageFiles embed.FS

var pageTemplates = func() map[string]*template.Template {
	funcs := template.FuncMap{"when": when, "ago": ago}
	m := map[string]*template.Template{}
	for _, name := range []string{"pushes", "push", "limits", "locks", "fleet", "error"} {
		m[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(pageFiles, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

// Fleet page reads: every agent is asked at once up to fleetParallel, and
// one that has not answered in fleetTimeout is shown as not answering, so a
// dead host never holds the page up.
const (
	fleetParallel = 32
	fleetTimeout  = 3 * time.Second
)

// pageRoutes adds the status pages, their JSON under /api/, and the files
// they use.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(pageFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.page("pushes", s.pushesView))
	mux.HandleFunc("GET /pushes", s.page("pushes", s.pushesView))
	mux.HandleFunc("GET /api/pushes", s.api(s.pushesView))
	mux.HandleFunc("GET /pushes/{id}", s.page("push", s.pushView))
	mux.HandleFunc("GET /api/pushes/{id}", s.api(s.pushView))
	mux.HandleFunc("GET /limits", s.page("limits", s.limitsView))
	mux.HandleFunc("GET /api/limits", s.api(s.limitsView))
	mux.HandleFunc("GET /locks", s.page("locks", s.locksView))
	mux.HandleFunc("GET /api/locks", s.api(s.locksView))
	mux.HandleFunc("GET /fleet", s.page("fleet", s.fleetView))
	mux.HandleFunc("GET /api/fleet", s.api(s.fleetView))
	// The form carries the operator credential itself, which another site
	// cannot know; refusing cross-origin posts outright is a second guard.
	mux.Handle("POST /locks/unlock", http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.unlockPage)))
	mux.Handle("POST /pushes/{id}/orders", http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.orderPage)))
}

// view builds what a page shows; its error carries the HTTP status.
type view func(r *http.Request) (title string, body any, err error)

// pageError is a request a page cannot answer, with the status to say so.
type pageError struct {
	code int
	msg  string
}

func (e *pageError) Error() string { return e.msg }

func statusOf(err error) (int, string) {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.code, pe.msg
	}
	return http.StatusInternalServerError, err.Error()
}

// pageData is what the layout renders: the page's own view in Body, and
// the lock state every page shows in its header.
type pageData struct {
	Title string
	Nav   string
	Locks Locks
	// LocksErr says the locks could not be read, so the header claims nothing.
	LocksErr string
	Body     any
}

func (s *Server) page(name string, v view) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		title, body, err := v(r)
		if err != nil {
			code, msg := statusOf(err)
			s.render(w, code, "error", pageData{Title: http.StatusText(code), Nav: name, Body: msg})
			return
		}
		s.render(w, http.StatusOK, name, pageData{Title: title, Nav: name, Body: body})
	}
}

func (s *Server) api(v view) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, body, err := v(r)
		if err != nil {
			code, msg := statusOf(err)
			fail(w, code, "%s", msg)
			return
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, code int, name string, d pageData) {
	l, err := s.C.Store.Locks()
	if err != nil {
		d.LocksErr = "locks unreadable: " + err.Error()
	}
	d.Locks = l
	var b bytes.Buffer
	if err := pageTemplates[name].Execute(&b, d); err != nil {
		http.Error(w, "render "+name+" page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	b.WriteTo(w)
}

// --- pushes: the history and the 30-day graph ---

// PushRow is one push in the history.
type PushRow struct {
	ID        string    `json:"id"`
	Revision  string    `json:"revision"`
	Who       string    `json:"who"`
	Created   time.Time `json:"created"`
	Finished  time.Time `json:"finished,omitzero"`
	Duration  string    `json:"duration"`
	Outcome   string    `json:"outcome"`
	State     State     `json:"state"`
	Phase     int       `json:"phase"`
	Phases    int       `json:"phases"`
	HostsDone int       `json:"hosts_done"`
	Reason    string    `json:"reason,omitempty"`
}

// DayBar is one day of the graph: pushes started and rollbacks finished
// that day, and where the bars are drawn.
type DayBar struct {
	Day       string  `json:"day"`
	Pushes    int     `json:"pushes"`
	Rollbacks int     `json:"rollbacks"`
	Today     bool    `json:"-"`
	Label     string  `json:"-"`
	X         float64 `json:"-"`
	RollX     float64 `json:"-"`
	CountY    float64 `json:"-"`
	PushY     float64 `json:"-"`
	PushH     float64 `json:"-"`
	RollY     float64 `json:"-"`
	RollH     float64 `json:"-"`
}

// PushesView is the history page.
type PushesView struct {
	Pushes    []PushRow `json:"pushes"`
	Days      []DayBar  `json:"days"`
	MaxPerDay int       `json:"-"`
}

// The graph's geometry, in SVG user units.
const (
	graphDays   = 30
	barStep     = 24.0
	barWidth    = 18.0
	graphTop    = 14.0
	graphBottom = 104.0
)

func (s *Server) pushesView(*http.Request) (string, any, error) {
	ps, err := s.C.Store.Pushes(0)
	if err != nil {
		return "", nil, fmt.Errorf("read pushes: %w", err)
	}
	v := PushesView{Pushes: make([]PushRow, 0, len(ps))}
	for _, p := range ps {
		v.Pushes = append(v.Pushes, pushRow(p))
	}
	v.Days, v.MaxPerDay = dayBars(ps, time.Now().UTC())
	return "Pushes", v, nil
}

func pushRow(p *Push) PushRow {
	end := p.Finished
	if end.IsZero() {
		end = time.Now().UTC()
	}
	return PushRow{
		ID: p.ID, Revision: p.Revision, Who: p.Who, Created: p.Created, Finished: p.Finished,
		Duration: span(end.Sub(p.Created)), Outcome: p.Outcome(), State: p.State,
		Phase: p.Phase + 1, Phases: len(p.Phases), HostsDone: p.HostsDone(), Reason: p.Reason,
	}
}

// dayBars counts the last 30 days: a push on the day it started, a
// rollback on the day it ended, when it was seen.
func dayBars(ps []*Push, now time.Time) ([]DayBar, int) {
	today := now.Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(graphDays - 1))
	bars := make([]DayBar, graphDays)
	index := map[string]int{}
	for i := range bars {
		d := first.AddDate(0, 0, i)
		bars[i] = DayBar{Day: d.Format(time.DateOnly), Today: i == graphDays-1}
		if i%7 == 1 || bars[i].Today {
			bars[i].Label = d.Format("Jan 2")
		}
		index[bars[i].Day] = i
	}
	for _, p := range ps {
		if i, ok := index[p.Created.UTC().Format(time.DateOnly)]; ok {
			bars[i].Pushes++
		}
		if p.State == StateRolledBack {
			at := p.Finished
			if at.IsZero() {
				at = p.Created
			}
			if i, ok := index[at.UTC().Format(time.DateOnly)]; ok {
				bars[i].Rollbacks++
			}
		}
	}
	top := 1
	for _, b := range bars {
		top = max(top, b.Pushes, b.Rollbacks)
	}
	scale := (graphBottom - graphTop) / float64(top)
	for i := range bars {
		b := &bars[i]
		b.X = float64(i)*barStep + 30
		b.PushH = float64(b.Pushes) * scale
		b.PushY = graphBottom - b.PushH
		b.RollH = float64(b.Rollbacks) * scale
		b.RollY = graphBottom - b.RollH
		b.RollX = b.X + 10
		b.CountY = b.PushY - 3
	}
	return bars, top
}

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

// --- limits: the config in force ---

// LimitRow is one configured limit as the config says it.
type LimitRow struct {
	Gauge     string   `json:"gauge"`
	HostTypes []string `json:"host_types"`
	Max       string   `json:"max,omitempty"`
	Min       string   `json:"min,omitempty"`
	Rise      string   `json:"rise,omitempty"`
	Fall      string   `json:"fall,omitempty"`
	Aggregate string   `json:"aggregate,omitempty"`
	Kind      string   `json:"kind"`
	Warmup    string   `json:"warmup"`
	DryRun    bool     `json:"dry_run,omitempty"`
	Missing   string   `json:"missing"`
	Samples   int      `json:"samples"`
	// OwnSamples is set when the limit overrides the fleet's breach_samples.
	OwnSamples bool `json:"own_samples"`
}

// LimitsView is the limits page.
type LimitsView struct {
	Phases         []string   `json:"phases"`
	Baseline       string     `json:"baseline"`
	Observe        string     `json:"observe"`
	SampleInterval string     `json:"sample_interval"`
	MaxWait        string     `json:"max_wait"`
	Warmup         string     `json:"warmup"`
	Watch          string     `json:"watch"`
	Confidence     string     `json:"confidence"`
	Inconclusive   string     `json:"inconclusive"`
	Holdback       string     `json:"holdback"`
	Traffic        string     `json:"traffic,omitempty"`
	BreachSamples  int        `json:"breach_samples"`
	HostTypes      []string   `json:"host_types"`
	Limits         []LimitRow `json:"limits"`
}

func (s *Server) limitsView(*http.Request) (string, any, error) {
	f := s.C.Fleet
	v := LimitsView{
		Baseline: f.Windows.Baseline.String(), Observe: f.Windows.Observe.String(),
		SampleInterval: f.Windows.SampleInterval.String(), MaxWait: f.Windows.MaxWait.String(),
		Warmup: f.Windows.Warmup.String(), Watch: f.Windows.Watch.String(),
		Confidence: strconv.FormatFloat(float64(f.Judge.Confidence), 'f', -1, 64) + "%", Inconclusive: f.Judge.Inconclusive,
		Holdback: holdbackText(f.Judge.Holdback), Traffic: f.Judge.Traffic,
		BreachSamples: f.BreachSamples, HostTypes: hostTypes(f), Limits: []LimitRow{},
	}
	for _, p := range f.Phases {
		v.Phases = append(v.Phases, strconv.FormatFloat(float64(p), 'f', -1, 64)+"%")
	}
	for _, l := range f.Limits {
		row := LimitRow{Gauge: l.Gauge, HostTypes: l.HostTypes, Missing: string(l.Missing), Samples: f.BreachSamples,
			Kind: string(l.Kind), Warmup: f.Windows.Warmup.String(), DryRun: l.DryRun}
		if l.Warmup != nil {
			row.Warmup = l.Warmup.String()
		}
		if len(row.HostTypes) == 0 {
			row.HostTypes = v.HostTypes
		}
		if l.Samples > 0 {
			row.Samples, row.OwnSamples = l.Samples, true
		}
		if l.Max != nil {
			row.Max = num(*l.Max)
		}
		if l.Min != nil {
			row.Min = num(*l.Min)
		}
		if l.Rise != nil {
			row.Rise = "+" + l.Rise.String()
		}
		if l.Fall != nil {
			row.Fall = "-" + l.Fall.String()
		}
		if l.Aggregate != nil {
			row.Aggregate = "mean: " + thresholdText(conf.Limit{Max: l.Aggregate.Max, Min: l.Aggregate.Min, Rise: l.Aggregate.Rise, Fall: l.Aggregate.Fall})
		}
		v.Limits = append(v.Limits, row)
	}
	return "Push limits", v, nil
}

func holdbackText(h conf.HostShare) string {
	if h.Percent {
		return strconv.FormatFloat(h.Value, 'f', -1, 64) + "% of each type"
	}
	return strconv.FormatFloat(h.Value, 'f', -1, 64) + " host(s) of each type"
}

func hostTypes(f *conf.Fleet) []string {
	seen := map[string]bool{}
	var types []string
	for _, h := range f.Hosts {
		if !seen[h.HostType] {
			seen[h.HostType] = true
			types = append(types, h.HostType)
		}
	}
	sort.Strings(types)
	return types
}

// --- locks: who holds them, and the unlock form ---

// LocksView is the locks page.
type LocksView struct {
	// Push is the push in progress holding the push lock, or empty.
	Push   string      `json:"push,omitempty"`
	Commit *CommitLock `json:"commit,omitempty"`
	// Cleared are the commit locks cleared so far, newest first.
	Cleared []CommitLock `json:"cleared"`
	// Error is why the last unlock was refused; Done that it cleared the lock.
	Error string `json:"-"`
	Done  bool   `json:"-"`
	// Who and Reason refill the form after a refusal; the credential never.
	Who    string `json:"-"`
	Reason string `json:"-"`
}

func (s *Server) locksView(r *http.Request) (string, any, error) {
	l, err := s.C.Store.Locks()
	if err != nil {
		return "", nil, fmt.Errorf("read locks: %w", err)
	}
	v := LocksView{Push: l.Push, Commit: l.Commit, Cleared: make([]CommitLock, 0, len(l.Cleared))}
	for i := len(l.Cleared) - 1; i >= 0; i-- {
		v.Cleared = append(v.Cleared, l.Cleared[i])
	}
	v.Done = r.URL.Query().Get("cleared") == "1"
	return "Locks", v, nil
}

// unlockPage clears the commit lock from the form, which must carry the
// operator credential and a reason; a refusal shows the form again and says
// why, and success redirects so a reload does not post twice.
func (s *Server) unlockPage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	refuse := func(code int, msg string) {
		_, body, err := s.locksView(r)
		if err != nil {
			code, msg = statusOf(err)
			s.render(w, code, "error", pageData{Title: http.StatusText(code), Nav: "locks", Body: msg})
			return
		}
		v := body.(LocksView)
		v.Error, v.Who, v.Reason = msg, strings.TrimSpace(r.PostFormValue("who")), strings.TrimSpace(r.PostFormValue("reason"))
		s.render(w, code, "locks", pageData{Title: "Locks", Nav: "locks", Body: v})
	}
	if err := r.ParseForm(); err != nil {
		refuse(http.StatusBadRequest, "read the unlock form: "+err.Error())
		return
	}
	token := r.PostFormValue("token")
	if s.OperatorToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.OperatorToken)) != 1 {
		refuse(http.StatusUnauthorized, "Refused: that is not the operator credential. The commit lock is still on.")
		return
	}
	who, reason := strings.TrimSpace(r.PostFormValue("who")), strings.TrimSpace(r.PostFormValue("reason"))
	if who == "" {
		refuse(http.StatusBadRequest, "Refused: say who you are in “who”. The commit lock is still on.")
		return
	}
	if reason == "" {
		refuse(http.StatusBadRequest, "Refused: a reason is required (what was fixed, or why pushing is safe again). The commit lock is still on.")
		return
	}
	if err := s.C.Unlock(who, reason); err != nil {
		refuse(http.StatusConflict, "Refused: "+err.Error()+".")
		return
	}
	http.Redirect(w, r, "/locks?cleared=1", http.StatusSeeOther)
}

// orderPage takes an operator's order from the push page's form, which
// must carry the operator credential; it answers with the push page,
// saying what was taken or why not.
func (s *Server) orderPage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	id := r.PathValue("id")
	back := func(code int, msg string) {
		title, body, err := s.pushView(r)
		if err != nil {
			code, msg := statusOf(err)
			s.render(w, code, "error", pageData{Title: http.StatusText(code), Nav: "pushes", Body: msg})
			return
		}
		v := body.(PushView)
		v.OrderMessage, v.OrderRefused = msg, code != http.StatusSeeOther
		s.render(w, code, "push", pageData{Title: title, Nav: "pushes", Body: v})
	}
	if err := r.ParseForm(); err != nil {
		back(http.StatusBadRequest, "read the form: "+err.Error())
		return
	}
	if token := r.PostFormValue("token"); s.OperatorToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.OperatorToken)) != 1 {
		back(http.StatusUnauthorized, "Refused: that is not the operator credential. Nothing was done.")
		return
	}
	o := Order{Kind: r.PostFormValue("kind"), Who: strings.TrimSpace(r.PostFormValue("who")),
		Reason: r.PostFormValue("reason"), Host: strings.TrimSpace(r.PostFormValue("host"))}
	if err := s.C.Command(id, o); err != nil {
		back(http.StatusBadRequest, "Refused: "+err.Error()+". Nothing was done.")
		return
	}
	http.Redirect(w, r, "/pushes/"+url.PathEscape(id)+"?ordered="+url.QueryEscape(o.Kind), http.StatusSeeOther)
}

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
	var hosts []conf.Host
	for _, h := range s.C.Fleet.Hosts {
		if (v.Type == "" || h.HostType == v.Type) && (v.Host == "" || h.Name == v.Host) {
			hosts = append(hosts, h)
		}
	}
	v.Hosts = len(hosts)
	all := s.fleetRows(r.Context(), hosts)
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

// fleetRows asks every host for its checks, at most fleetParallel at once,
// and sorts the answers with the problems first.
func (s *Server) fleetRows(ctx context.Context, hosts []conf.Host) []FleetRow {
	ctx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	now := time.Now()
	var mu sync.Mutex
	var rows []FleetRow
	errs := forEach(ctx, hosts, fleetParallel, func(ctx context.Context, h conf.Host) error {
		hc, err := s.C.Agents.Checks(ctx, h)
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

// --- how times read on the pages ---

func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return span(time.Since(t)) + " ago"
}

// span writes a duration as a person reads it at a glance: 42s, 3m12s, 5h4m, 2d3h.
func span(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
