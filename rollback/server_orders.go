package rollback

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// order takes an operator's order to a running push:
// POST /api/v1/pushes/{id}/orders {"kind":"abort","who":"ann","reason":"...","host":""}.
// 202: taken, carried out at the push's next step; 404: no such push
// running; 400: a bad order.
func (s *Server) order(w http.ResponseWriter, r *http.Request) {
	var o Order
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&o); err != nil {
		fail(w, 400, "read order: %v", err)
		return
	}
	err := s.C.Command(r.PathValue("id"), o)
	switch {
	case errors.Is(err, ErrNoPush):
		fail(w, 404, "%v", err)
	case err != nil:
		fail(w, 400, "%v", err)
	default:
		writeJSON(w, http.StatusAccepted, o)
	}
}
