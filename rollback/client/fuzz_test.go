package client

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/immune-ops/immune/rollback"
)

// FuzzDecodeAnswer: whatever the coordinator answers, a non-2xx is an
// Error with its code whose message is never empty when the answer said
// anything, and a 2xx decodes or says it could not.
func FuzzDecodeAnswer(f *testing.F) {
	for _, seed := range []struct {
		code int
		body string
	}{
		{201, `{"sha256":"` + strings.Repeat("ab", 32) + `","bytes":1234}`},
		{201, `{"id":"20260102-030405-000-v2","revision":"v2","who":"ann","state":"baseline","created":"2026-01-02T03:04:05Z"}`},
		{200, `{"commit":{"push":"p1","revision":"v1","reason":"rolled back","since":"2026-01-02T03:04:05Z"}}`},
		{409, `{"error":"locked: push p1 is in progress"}`},
		{400, `{"error":""}`},
		{401, "unauthorized\n"},
		{502, `<html>bad gateway</html>`},
		{200, `not json`},
	} {
		f.Add(seed.code, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		for _, out := range []any{&rollback.Upload{}, &rollback.Push{}, &rollback.Locks{}, &[]rollback.Push{}} {
			err := decodeAnswer(http.MethodPost, "/api/v1/x", code, "status", body, out)
			if code/100 != 2 {
				var e *Error
				if !errors.As(err, &e) || StatusCode(err) != code {
					t.Fatalf("answer %d %q: error %v, want an Error with the code", code, body, err)
				}
				if strings.TrimSpace(string(body)) != "" && e.Msg == "" {
					t.Fatalf("answer %d %q: the error lost the message", code, body)
				}
				continue
			}
			if err != nil && !strings.HasPrefix(err.Error(), "POST /api/v1/x: decode answer: ") {
				t.Fatalf("answer %q: error %q does not say what failed", body, err)
			}
		}
	})
}
