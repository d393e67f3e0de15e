package agent

import (
	"errors"
	"strings"
	"testing"
)

// FuzzIcingaVerdict: whatever Icinga answers, the verdict is taken only
// from a 2xx, a refusal for good only from a 4xx, and an error always says
// what Icinga answered.
func FuzzIcingaVerdict(f *testing.F) {
	for _, seed := range []struct {
		code int
		body string
	}{
		{200, `{"results":[{"code":200,"status":"Successfully processed check result for object 'h1!s1'."}]}`},
		{404, `{"error":404,"status":"No objects found."}`},
		{400, `{"results":[{"code":400,"status":"Parameter 'plugin_output' is required"}]}`},
		{200, `{"results":[{"code":409,"status":"conflict"}]}`},
		{200, `{"results":[{"code":500,"status":"boom"}]}`},
		{500, `{"results":[]}`},
		{503, `<html>unavailable</html>`},
		{401, `{"error":401,"status":"Unauthorized. Please check your user credentials."}`},
		{403, `{"results":[{"code":403,"status":"Passive checks are disabled for object 'web1!s1'."}]}`},
		{429, ``},
		{302, ``},
		{200, `{"results":[{"code":1e300,"status":"huge"}]}`},
		{200, `{"results":[{"code":299.9},{"code":404.5,"status":"half"}]}`},
		{-1, strings.Repeat("x", 300)},
	} {
		f.Add(seed.code, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		err := icingaVerdict(code, body)
		if err == nil {
			if code < 200 || code >= 300 {
				t.Fatalf("answer %d %q taken as accepted", code, body)
			}
			return
		}
		text := err.Error()
		if !strings.Contains(text, "icinga answered ") {
			t.Fatalf("error %q does not say what icinga answered", text)
		}
		if rej, ok := errors.AsType[*rejectedError](err); ok {
			if !strings.HasPrefix(rej.reason, "icinga answered 4") {
				t.Fatalf("refused for good on %q", rej.reason)
			}
		}
	})
}
