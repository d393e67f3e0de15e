package rollback

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"
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
	mux.HandleFunc("GET /fleet", s.needRead(s.page("fleet", s.fleetView)))
	mux.HandleFunc("GET /api/fleet", s.needRead(s.api(s.fleetView)))
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
