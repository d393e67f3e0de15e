package rollback

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// The locks page: who holds them, and the form that clears the commit lock.

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
