package rollback

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"sort"

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

// hostTypes are the fleet's host types, sorted.
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
