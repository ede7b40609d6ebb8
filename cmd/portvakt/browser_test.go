package main

// The browser-test harness of the web console: Debian's chromium, headless,
// driven by chromedp against the real server running in the test. One
// browser process serves the whole test binary; each test gets a tab of its
// own in a fresh browser context (its own cookies), so two tabs of one test
// are two people.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portvakt/portvakt/internal/config"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browser.stop()
	os.Exit(code)
}

// browser is the test binary's one chromium, started by the first test
// that asks for a tab.
var browser browserProc

type browserProc struct {
	once   sync.Once
	ctx    context.Context // the browser's chromedp context
	cancel func()
	dir    string // its user-data-dir
	err    error
}

func (b *browserProc) stop() {
	if b.cancel != nil {
		b.cancel()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// chromiumPath finds Debian's chromium: missing, the test fails under
// CI=true (scripts/chromium.sh installs it there) and is skipped otherwise.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/chromium.sh installs it)")
	}
	t.Skip("chromium is not installed: the browser tests are skipped (scripts/chromium.sh installs it)")
	return ""
}

// newTab opens a tab in a fresh browser context (no cookies) of the
// binary's browser. Its actions time out after two minutes; the tab closes
// when the test ends.
func newTab(t testing.TB) context.Context {
	t.Helper()
	path := chromiumPath(t)
	browser.once.Do(func() {
		browser.dir, browser.err = os.MkdirTemp("", "portvakt-chromium-")
		if browser.err != nil {
			return
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(browser.dir),
			chromedp.WindowSize(1280, 900),
		)
		ctx, cancel := chromedp.NewContext(alloc)
		browser.ctx = ctx
		browser.cancel = func() { cancel(); cancelAlloc() }
		browser.err = chromedp.Do(ctx) // starts the browser, with no timeout
	})
	if browser.err != nil {
		t.Fatalf("start chromium: %v", browser.err)
	}
	tab, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancelT := context.WithTimeout(tab, 2*time.Minute)
	t.Cleanup(cancelT)
	return ctx
}

// do runs the steps in the tab, failing the test on an error or after
// 15 seconds (a missing element fails the test then, not the whole tab).
func do(t testing.TB, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v (at %s)", err, location(tab))
	}
}

func location(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// visit loads url as a whole page (not through htmx) and logs its load
// time as PAGELOAD.
func visit(t testing.TB, tab context.Context, url, page string) {
	t.Helper()
	do(t, tab, chromedp.Navigate(url))
	pageLoad(t, tab, page)
}

// pageLoad logs the load time of the page the tab last loaded as a whole,
// read from the Navigation Timing API: "PAGELOAD <page> <ms>". It polls
// until the load event has ended, riding over a document replaced under
// the poll.
func pageLoad(t testing.TB, tab context.Context, page string) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := chromedp.Run(tab, chromedp.Evaluate[float64](`(() => {
			const e = performance.getEntriesByType("navigation")[0];
			return e && e.loadEventEnd > 0 ? e.loadEventEnd - e.startTime : 0;
		})()`))
		if err == nil && ms > 0 {
			t.Logf("PAGELOAD %s %.1f", page, ms)
			return ms
		}
		if time.Now().After(deadline) || tab.Err() != nil {
			t.Fatalf("page load time of %s: %v", page, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitText waits until the element sel holds text (htmx swaps in place,
// so a click's page shows up some time after it). It polls, riding over a
// page load that replaces the document under the poll.
func waitText(t testing.TB, tab context.Context, sel, text string) {
	t.Helper()
	waitFor(t, tab, sel, fmt.Sprintf("%q", text), fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, text))
}

// waitNoText waits until the element sel is there without text.
func waitNoText(t testing.TB, tab context.Context, sel, text string) {
	t.Helper()
	waitFor(t, tab, sel, fmt.Sprintf("no %q", text), fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.textContent.includes(%q); })()`, sel, text))
}

func waitFor(t testing.TB, tab context.Context, sel, what, js string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || tab.Err() != nil {
			got, _ := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || "(no %s)"`, sel, sel)))
			t.Fatalf("waiting for %s in %s at %s (%v); it holds: %s", what, sel, location(tab), err, strings.TrimSpace(got))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// textOf is the text of the first element sel matches ("" when none).
func textOf(t testing.TB, tab context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// click clicks the element sel; fill sets the value of the input sel.
func click(t testing.TB, tab context.Context, sel string) {
	t.Helper()
	do(t, tab, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func fill(t testing.TB, tab context.Context, sel, value string) {
	t.Helper()
	// As typing would leave it: the value set, an input event fired.
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false;
		e.focus(); e.value = %q; e.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`, sel, value)
	ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](js))
	if err != nil || !ok {
		t.Fatalf("fill %s at %s: no such input (%v)", sel, location(tab), err)
	}
}

// screenshotsUpdate: PORTVAKT_UPDATE_SCREENSHOTS=1 writes the main pages'
// screenshots to docs/screenshots (the README shows them).
var screenshotsUpdate = os.Getenv("PORTVAKT_UPDATE_SCREENSHOTS") == "1"

// screenshot saves the whole page as name.png in the test's temp dir and,
// for a main page (docs) with PORTVAKT_UPDATE_SCREENSHOTS=1, in
// docs/screenshots.
func screenshot(t testing.TB, tab context.Context, name string, docs bool) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name+".png"), png, 0o600); err != nil {
		t.Fatal(err)
	}
	if docs && screenshotsUpdate {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// consoleDev starts what `serve --dev` starts and returns its config and
// the console's URL.
func consoleDev(t testing.TB) (*config.Config, *app, string) {
	t.Helper()
	chromiumPath(t) // skip before the server starts
	cfg, a := startDev(t, newLoggerFor(t))
	return cfg, a, cfg.Issuer + "console/"
}

// devLogin logs the tab in with the dev login as a dev person of org.
func devLogin(t testing.TB, tab context.Context, consoleURL, org string) {
	t.Helper()
	visit(t, tab, consoleURL+"dev-login", "dev-login")
	click(t, tab, fmt.Sprintf(`button[data-dev-org="%s"]`, org))
	waitText(t, tab, "[data-org]", org)
}

// waitABit is the pause of a loop that polls for work done in the
// background (a webhook delivery).
func waitABit() { time.Sleep(20 * time.Millisecond) }

// cookie is the value of the tab's cookie name for url ("" when none),
// HttpOnly ones included (read through the DevTools protocol).
func cookie(t testing.TB, tab context.Context, url, name string) string {
	t.Helper()
	res, err := chromedp.Run(tab, chromedp.Action[*network.GetCookiesResult](func(ctx context.Context, tg *chromedp.Target) (*network.GetCookiesResult, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		return &r, err
	}))
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
