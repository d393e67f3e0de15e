package rollback

import (
	"encoding/base64"

	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"github.com/chromedp/chromedp"

	"github.com/immune-ops/immune/fixtures/real"
)

const chromium = "/usr/bin/chromium"

// browser starts Debian's chromium headless, quiet on the network, with
// its own profile; without chromium the test is skipped, unless
// IMMUNE_REQUIRE_REAL asks for the real thing.
func browser(t *testing.T) context.Context {
	t.Helper()
	real.Command(t, chromium, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser, which lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx
}

// screenshot saves the page as name.png in the test's temp dir, and in
// /tmp/immune-screens for people to look at.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, d := range []string{dir, "/tmp/immune-screens"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPagesInBrowser(t *testing.T) {
	ctx := browser(t)
	f := newPagesFleet(t)
	base := serve(t, f)
	shots := t.TempDir()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	visit := func(path string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}
	text := func(selector string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(selector)+`).innerText`))
		if err != nil {
			t.Fatalf("read %s: %v", selector, err)
		}
		return s
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return s
	}
	has := func(what, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no %q in\n%s", what, w, got)
			}
		}
	}

	good, err := f.c.Start("good", sha, "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, good.ID)
	// The bad push's page is open while it runs: it says so, and updates
	// itself to the rollback without anyone reloading it.
	p, err := f.c.Start("bad", sha, "bob")
	if err != nil {
		t.Fatal(err)
	}
	visit("/pushes/" + p.ID)
	has("running push", text("main"), "In progress:", "phase 1 of 3:", "updating every 2 s")
	screenshot(t, ctx, shots, "push-running")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(".banner.bad"))); err != nil {
		t.Fatalf("the running push's page never showed the rollback: %v", err)
	}
	bad := f.wait(t, p.ID)
	if bad.State != StateRolledBack {
		t.Fatalf("the bad push: %s (%s)", bad.State, bad.Reason)
	}
	ids := []string{good.ID, bad.ID}

	visit("/")
	has("history", text("table.pushes"), "bad", "good", "rolled back", "live", bad.Reason)
	if first := text("table.pushes tbody tr"); !strings.HasPrefix(first, "bad") {
		t.Errorf("the newest push is not first: %q", first)
	}
	// The rollback stands on the day it ended, which is today's bar.
	day := bad.Finished.UTC().Format(time.DateOnly)
	got := eval(`(() => { const g = document.querySelector('g[data-day="` + day + `"]');
		const rb = g && g.querySelector("rect.rb");
		return g ? g.getAttribute("class") + " " + (rb ? rb.getAttribute("data-n") : "none") : "no bar" })()`)
	if got != "day today 1" {
		t.Errorf("the bar of %s: %q, want today's with 1 rollback", day, got)
	}
	screenshot(t, ctx, shots, "pushes")

	visit("/pushes/" + bad.ID)
	has("push page", text("h1"), "Metrics of phase 1 of revision bad")
	has("banner", text(".banner.bad"), "Rolled back.", bad.Reason)
	if d := eval(`getComputedStyle(document.getElementById("g-php_errors")).display`); d != "block" {
		t.Errorf("the breaching gauge's tab is %q, want it open", d)
	}
	if d := eval(`getComputedStyle(document.getElementById("g-loadavg1")).display`); d != "none" {
		t.Errorf("another gauge's tab is %q, want it closed", d)
	}
	has("breaching row", text("#g-php_errors tr.breach"), "www", "41", "0.2", "+40.8", "rise +10", "breach", "against the hosts still on the old release")
	screenshot(t, ctx, shots, "push")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="#g-loadavg1"]`))); err != nil {
		t.Fatal(err)
	}
	if d := eval(`getComputedStyle(document.getElementById("g-loadavg1")).display`); d != "block" {
		t.Errorf("the loadavg1 tab does not open: %q", d)
	}

	visit("/pushes/" + ids[0])
	has("good push", text("main"), "Metrics of the watch of revision good", "Live", "Phase:", "every gauge held its limits on every host")
	screenshot(t, ctx, shots, "push-good")

	visit("/limits")
	has("limits", text("main"), "php_errors", "+10", "loadavg1", "5% → 100%")
	screenshot(t, ctx, shots, "limits")

	// The fleet grid asks for the read token; the browser gives it as
	// HTTP Basic credentials once someone typed them.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("viewer:"+readToken))}}); err != nil {
		t.Fatal(err)
	}
	visit("/fleet")
	has("fleet", text("table.fleet"), "www02", "CRITICAL", "NO ANSWER", "db2", "chat1", "WARNING", "2/5", "OK")
	if first := text("table.fleet tbody tr"); !strings.Contains(first, "CRITICAL") {
		t.Errorf("the fleet does not start with the problems: %q", first)
	}
	screenshot(t, ctx, shots, "fleet")

	visit("/locks")
	has("locks", text("main"), "commit lock", "bad", bad.Reason)
	screenshot(t, ctx, shots, "locks")
	unlock := func(token, wait string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`input[name="token"]`), token),
			chromedp.SetValue(chromedp.CSS(`input[name="who"]`), "dave"),
			chromedp.SetValue(chromedp.CSS(`input[name="reason"]`), "fixed the PHP fatal in bad"),
			chromedp.Click(chromedp.CSS(`form.unlock button`)),
			chromedp.WaitVisible(chromedp.CSS(wait)),
		)
		if err != nil {
			t.Fatalf("unlock form with token %q: %v", token, err)
		}
	}
	unlock("not-the-credential", "#refused")
	has("wrong credential", text("#refused"), "not the operator credential", "still on")
	if l, _ := f.c.Store.Locks(); l.Commit == nil {
		t.Fatal("a wrong credential cleared the commit lock")
	}
	screenshot(t, ctx, shots, "locks-refused")
	unlock(operatorToken, "#cleared")
	if l, _ := f.c.Store.Locks(); l.Commit != nil || len(l.Cleared) != 1 || l.Cleared[0].ClearedBy != "dave" {
		t.Fatalf("locks after unlocking: %+v", l)
	}
	has("cleared", text("main"), "pushes are open", "dave", "fixed the PHP fatal in bad")
	screenshot(t, ctx, shots, "locks-cleared")
	t.Logf("screenshots in %s and /tmp/immune-screens", shots)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
