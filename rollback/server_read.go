package rollback

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// hiddenOutput stands for what a reader without the read credential may
// not see: the output of the revert, which can quote the application's
// code and its repository's addresses.
const hiddenOutput = "(hidden: give the read or operator token to see it)"

// canRead tells whether r may read what the agents protect: the checks'
// output on /fleet and the revert's output. Open reads let anyone; else r
// must carry the read token or the operator token, as a bearer credential
// or as the password of HTTP Basic authentication, which browsers ask for.
func (s *Server) canRead(r *http.Request) bool {
	if s.OpenReads {
		return true
	}
	given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, given, ok = r.BasicAuth()
	}
	if !ok {
		return false
	}
	match := 0
	for _, token := range []string{s.ReadToken, s.OperatorToken} {
		if token != "" {
			match |= subtle.ConstantTimeCompare([]byte(given), []byte(token))
		}
	}
	return match == 1
}

// needRead lets through only requests that canRead; the others get a 401
// whose challenge makes a browser ask for the token.
func (s *Server) needRead(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.canRead(r) {
			h(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="immune-coordinator read"`)
		msg := "read token required: this page shows what the agents protect (give the read or operator token: as the password in the browser, or as a bearer token)"
		if r.Header.Get("Authorization") != "" {
			msg = "invalid token"
		}
		http.Error(w, msg, http.StatusUnauthorized)
	}
}

// readable is p as a reader sees it: the revert's output hidden unless
// canRead (the request's credential, checked once per request). p itself
// is left alone.
func readable(canRead bool, p *Push) *Push {
	if p == nil || p.Revert == nil || p.Revert.Output == "" || canRead {
		return p
	}
	c := *p
	rev := *p.Revert
	rev.Output = hiddenOutput
	c.Revert = &rev
	return &c
}
