package rollback

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
)

// TestArtifactLinks: a link opens one artifact, for the push it names,
// until it expires; anything else about it is refused.
func TestArtifactLinks(t *testing.T) {
	l := NewArtifactLinks("https://coordinator:5680/", time.Hour)
	now := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return now }
	sum, other := strings.Repeat("a", 64), strings.Repeat("b", 64)
	link, err := url.Parse(l.URL("push-1", sum))
	if err != nil || !strings.HasPrefix(link.String(), "https://coordinator:5680/api/v1/artifacts/"+sum+"?") {
		t.Fatalf("link %v %v", link, err)
	}
	q := link.Query()
	tamper := func(key, value string) url.Values {
		c := url.Values{}
		for k, v := range q {
			c[k] = v
		}
		c.Set(key, value)
		return c
	}
	if err := l.Check(sum, q); err != nil {
		t.Errorf("the link itself: %v", err)
	}
	for name, tc := range map[string]struct {
		sum string
		q   url.Values
	}{
		"another artifact":  {other, q},
		"another push":      {sum, tamper("push", "push-2")},
		"a later expiry":    {sum, tamper("expires", "9999999999")},
		"no signature":      {sum, tamper("sig", "")},
		"another signature": {sum, tamper("sig", strings.Repeat("0", 64))},
	} {
		if err := l.Check(tc.sum, tc.q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	now = now.Add(time.Hour + time.Second)
	if err := l.Check(sum, q); err != ErrLinkExpired {
		t.Errorf("an hour later: %v, want it expired", err)
	}
	// Another coordinator (or this one restarted) has another key.
	if err := NewArtifactLinks("https://coordinator:5680", time.Hour).Check(sum, q); err == nil {
		t.Error("another coordinator's key opened the link")
	}
}

// TestArtifactRoute: agents fetch with the link alone; the deploy token,
// which no longer travels to the coordinator, opens nothing there.
func TestArtifactRoute(t *testing.T) {
	dir := t.TempDir()
	sum := strings.Repeat("c", 64)
	os.WriteFile(filepath.Join(dir, sum+".tar.gz"), []byte("release"), 0o600)
	s := &Server{C: &Coordinator{}, OperatorToken: "op", DeployToken: "deploy", ArtifactDir: dir}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.Links = NewArtifactLinks(srv.URL, time.Minute)
	for _, tc := range []struct {
		name, url, token string
		code             int
	}{
		{"link", s.Links.URL("p1", sum), "", 200},
		{"operator token", srv.URL + "/api/v1/artifacts/" + sum, "op", 200},
		{"deploy token", srv.URL + "/api/v1/artifacts/" + sum, "deploy", 403},
		{"nothing", srv.URL + "/api/v1/artifacts/" + sum, "", 403},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.token != "" {
			agentapi.SetToken(req, tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	// An operator asks for a link to deploy by hand.
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/artifacts/"+sum+"/link", nil)
	agentapi.SetToken(req, "op")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("link by hand: %v %v", resp, err)
	}
	resp.Body.Close()
}
