package agentapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "in\n") })
	for _, tc := range []struct {
		name, want, header string
		// token is the one the route wants; header is the request's Authorization.
		token string
		code  int
		body  string
	}{
		{name: "right token", token: "s3cret", header: "Bearer s3cret", code: 200, body: "in\n"},
		{name: "no header", token: "s3cret", code: 401, body: "token required\n", want: `Bearer realm="test"`},
		{name: "another scheme", token: "s3cret", header: "Basic czNjcmV0", code: 401, body: "token required\n", want: `Bearer realm="test"`},
		{name: "wrong token", token: "s3cret", header: "Bearer s3cre", code: 401, body: "invalid token\n", want: `Bearer realm="test", error="invalid_token"`},
		{name: "longer token", token: "s3cret", header: "Bearer s3cret2", code: 401, body: "invalid token\n", want: `Bearer realm="test", error="invalid_token"`},
		{name: "none configured", token: "", header: "Bearer ", code: 401, body: "invalid token\n", want: `Bearer realm="test", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			RequireToken(tc.token, "test", ok).ServeHTTP(w, r)
			if w.Code != tc.code || w.Body.String() != tc.body || w.Header().Get("WWW-Authenticate") != tc.want {
				t.Errorf("got %d %q challenge %q, want %d %q challenge %q", w.Code, w.Body, w.Header().Get("WWW-Authenticate"), tc.code, tc.body, tc.want)
			}
			if strings.Contains(w.Body.String(), "s3cre") {
				t.Errorf("the answer repeats the token: %q", w.Body)
			}
		})
	}
}

func TestSetToken(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	SetToken(r, "s3cret")
	if !HasToken(r, "s3cret") || HasToken(r, "other") || HasToken(r, "") {
		t.Errorf("SetToken wrote %q", r.Header.Get("Authorization"))
	}
}
