package agentapi

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// SetToken makes r carry token as its bearer credential.
func SetToken(r *http.Request, token string) {
	r.Header.Set("Authorization", "Bearer "+token)
}

// HasToken tells whether r carries token as its bearer credential. The
// comparison takes the same time wherever the two differ; an empty token
// matches nothing, so a credential that is not configured lets nobody in.
func HasToken(r *http.Request, token string) bool {
	given, ok := bearer(r)
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(given), []byte(token)) == 1
}

// HasBearer tells whether r carries a bearer credential at all.
func HasBearer(r *http.Request) bool {
	_, ok := bearer(r)
	return ok
}

func bearer(r *http.Request) (string, bool) {
	return strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// Unauthorized answers 401 with a challenge for realm: "token required"
// when r carries no bearer credential, "invalid token" when it carries
// another. The token given is never repeated.
func Unauthorized(w http.ResponseWriter, r *http.Request, realm string) {
	if HasBearer(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	http.Error(w, "token required", http.StatusUnauthorized)
}

// RequireToken lets only requests carrying token through to next; the
// others are answered as Unauthorized says.
func RequireToken(token, realm string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !HasToken(r, token) {
			Unauthorized(w, r, realm)
			return
		}
		next.ServeHTTP(w, r)
	})
}
