package rollback

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/immune-ops/immune/agentapi"
)

// FuzzAgentAnswer: whatever an agent answers to the calls the coordinator
// makes, a non-2xx is a StatusError with its code, a 2xx either decodes or
// says it could not, and what decodes encodes again to what it decoded.
func FuzzAgentAnswer(f *testing.F) {
	for _, seed := range []struct {
		code int
		body string
	}{
		{200, `{"host":"web1","host_type":"www","taken_at":"2026-01-02T03:04:05Z","gauges":{"loadavg1":{"value":0.5,"at":"2026-01-02T03:04:05Z","source":"system"}},"missing":{"php_errors":"no run yet"}}`},
		{200, `{"host":"web1","host_type":"www","checks":[{"name":"check_load","state":0,"output":"OK","state_type":"HARD","attempt":1,"max_attempts":3,"last_check":"2026-01-02T03:04:05+02:00","duration_ns":1500000}]}`},
		{200, `{"current":"v2","previous":"v1","releases":["v1","v2"]}`},
		{409, `another deploy or rollback is running on this host`},
		{422, "artifact refused, nothing unpacked: entry \"../evil\": \"..\" in name\n"},
		{200, `{"gauges":{"x":{"value":1e308}}}`},
		{200, `{"taken_at":"0000-01-01T00:00:00Z"}`},
		{200, `not json`},
		{204, ``},
		{302, `<a href="/">Found</a>`},
	} {
		f.Add(seed.code, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		for _, out := range []any{&agentapi.Snapshot{}, &agentapi.Checks{}, &agentapi.Release{}} {
			err := decodeAnswer("web1", http.MethodGet, "/api/v1/x", code, "status", body, out)
			if code/100 != 2 {
				var se *StatusError
				if !errors.As(err, &se) || se.Code != code || se.Msg != strings.TrimSpace(string(body)) {
					t.Fatalf("answer %d %q: error %v, want a StatusError with the code and the body", code, body, err)
				}
				continue
			}
			if err != nil {
				if !strings.Contains(err.Error(), "web1 GET /api/v1/x: decode answer: ") {
					t.Fatalf("answer %q: error %q does not say what failed", body, err)
				}
				continue
			}
			// The coordinator stores and shows what it read: it must encode.
			once, err := json.Marshal(out)
			if err != nil {
				t.Fatalf("answer %q decoded to %+v, which does not encode: %v", body, out, err)
			}
			again := reflect.New(reflect.TypeOf(out).Elem()).Interface()
			if err := decodeAnswer("web1", http.MethodGet, "/api/v1/x", code, "status", once, again); err != nil {
				t.Fatalf("answer %q re-encoded as %q does not decode: %v", body, once, err)
			}
			twice, _ := json.Marshal(again)
			if !bytes.Equal(once, twice) {
				t.Fatalf("answer %q: encodes as %q, then as %q", body, once, twice)
			}
		}
	})
}
