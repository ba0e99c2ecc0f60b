package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/api"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// EnvBrowserTests, when set, makes the browser tests fail instead of skip
// when Chromium is missing: CI sets it (see .ci/run).
const EnvBrowserTests = "ENTITLEMENTS_TEST_BROWSER"

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console screenshots to docs/console/")

// chromium finds the browser: $ENTITLEMENTS_TEST_CHROMIUM, /usr/bin/chromium
// or chromium on the PATH.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ENTITLEMENTS_TEST_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv(EnvBrowserTests) != "" {
		t.Fatalf("%s is set but Chromium is not installed (apt-get install -y chromium)", EnvBrowserTests)
	}
	t.Skipf("Chromium is not installed; set %s to make this a failure", EnvBrowserTests)
	return ""
}

// browserServer serves the real router over h's store on a real HTTP
// server; every /v1 response is checked against openapi.yaml as in h.do.
func browserServer(t *testing.T, h *harness) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			h.handler.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, r)
		res := response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		checkOpenAPI(t, r, res)
		if res.Code == http.StatusInternalServerError {
			t.Errorf("%s %s = 500: %s", r.Method, r.URL, res.Body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startBrowser starts headless Chromium with a fresh profile; page errors
// (exceptions, console errors, refused by the content security policy) fail
// the test.
func startBrowser(t *testing.T, downloads string) context.Context {
	t.Helper()
	exe := chromium(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
		})
		return err
	})); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			t.Errorf("page exception: %s", (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				t.Errorf("console.error: %s", strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			// Refused requests (401, 403, 404) are logged too and expected.
			if e.Entry.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Entry.Text, "Content Security Policy") {
				t.Errorf("refused by the page's security policy: %s", e.Entry.Text)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// step runs browser actions with a time limit and fails the test with what.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds.
func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
		t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, js, err, body)
	}
}

// clear empties an input the way a user's select-all and delete would.
func clear(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	eval[bool](t, ctx, fmt.Sprintf(`(e => { e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); return true })(document.querySelector(%q))`, sel))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ''`, sel))
}

func screenshot(t *testing.T, ctx context.Context, sel, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.Screenshot(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("screenshot %s: %v", sel, err)
	}
	path := filepath.Join("..", "docs", "console", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInTheBrowser drives the console in headless Chromium against
// the real router and a real SQLite store: sign in, find a car by VIN,
// read its timeline, preview and issue a refund, find it in the refunds
// list, download the CSV, open the audit page, and be refused with a
// vehicle token. With -update-screenshots it writes docs/console/*.png.
func TestConsoleInTheBrowser(t *testing.T) {
	downloads := t.TempDir()
	ctx := startBrowser(t, downloads)
	h := newHarness(t, "sqlite", withPayments)
	srv := browserServer(t, h)

	// A car whose trial has ended, with a running monthly package, a
	// yearly one after it, and a monthly refunded before it started.
	v, running := h.boughtAfterLapse("LSVAX4E10P2700001", "monthly")
	h.pay(h.createOrder(v, "alice", "yearly"))
	extra := h.pay(h.createOrder(v, "alice", "monthly"))
	if res := h.refund(extra.ID, map[string]any{"reason": "duplicate", "note": "bought twice"}); res.Code != 201 {
		t.Fatalf("seed refund = %d %s", res.Code, res.Body)
	}
	h.clock.Advance(10 * 24 * time.Hour) // ten days into the monthly package
	at := h.clock.Now().Add(-2 * time.Hour)
	usage := h.do(request{Method: http.MethodPost, Path: "/v1/usage", Token: h.token(api.RoleCarrier, "cmcc"),
		Body: map[string]any{"records": []map[string]any{{"id": "u1", "vin": v, "category": "entertainment", "bytes": 6 << 30,
			"started_at": at.Format(time.RFC3339), "ended_at": at.Add(time.Hour).Format(time.RFC3339)}}}})
	if usage.Code != http.StatusOK {
		t.Fatalf("seed usage = %d %s", usage.Code, usage.Body)
	}
	staff := h.token(api.RoleBilling, "dana")

	step(t, ctx, "open the console", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#token")))

	// A token the service refuses sends the user back with the reason.
	step(t, ctx, "sign in with a bad token", chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"), chromedp.Click(chromedp.CSS("#signin-form button")))
	waitFor(t, ctx, "the 401 message", `document.querySelector('#signin-status').innerText.includes('signed out')`)

	clear(t, ctx, "#token")
	step(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), staff),
		chromedp.Click(chromedp.CSS("#signin-form button")), chromedp.WaitVisible(chromedp.CSS("#find-q")))
	if who := text(t, ctx, "#who"); who != "billing · dana" {
		t.Errorf("signed in as %q, want billing · dana", who)
	}
	if stored := eval[string](t, ctx, `sessionStorage.getItem('entitlements.console.token')`); stored != staff {
		t.Errorf("sessionStorage token = %q, want the token", stored)
	}
	if cookies := eval[string](t, ctx, `document.cookie`); cookies != "" {
		t.Errorf("cookies = %q, want none", cookies)
	}

	// An owner id and an order id are found too.
	step(t, ctx, "find an owner", chromedp.SendKeys(chromedp.CSS("#find-q"), "alice\r"))
	waitFor(t, ctx, "alice's car", fmt.Sprintf(`!!document.querySelector('#find-results a[href="#/vehicle/%s"]')`, v))
	clear(t, ctx, "#find-q")
	step(t, ctx, "find an order", chromedp.SendKeys(chromedp.CSS("#find-q"), running.ID+"\r"))
	waitFor(t, ctx, "the order", fmt.Sprintf(`document.querySelector('#find-results').innerText.includes(%q)`, running.ID))
	clear(t, ctx, "#find-q")

	// The check digit is checked as the VIN is typed.
	wrong := v[:8] + map[bool]string{true: "1", false: "2"}[v[8] != '1'] + v[9:]
	step(t, ctx, "type a VIN with a wrong check digit", chromedp.SendKeys(chromedp.CSS("#find-q"), wrong))
	if got := text(t, ctx, "#vin-check"); !strings.Contains(got, "expected “"+v[8:9]+"”") {
		t.Errorf("VIN check = %q, want the expected digit %c", got, v[8])
	}
	clear(t, ctx, "#find-q")
	step(t, ctx, "type the right VIN", chromedp.SendKeys(chromedp.CSS("#find-q"), strings.ToLower(v)))
	if got := text(t, ctx, "#vin-check"); !strings.Contains(got, "is correct") {
		t.Errorf("VIN check = %q, want correct", got)
	}
	step(t, ctx, "submit with Enter", chromedp.SendKeys(chromedp.CSS("#find-q"), "\r"))
	waitFor(t, ctx, "the timeline", `document.querySelectorAll('#timeline .bar').length > 0`)

	kinds := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#timeline .bar'), b => b.dataset.kind)`)
	if strings.Join(kinds, ",") != "trial,paid,scheduled,refunded" {
		t.Errorf("timeline bars = %v, want trial, paid, scheduled, refunded", kinds)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#timeline line.now').length`); n != 1 {
		t.Errorf("%d now lines, want 1", n)
	}
	step(t, ctx, "focus the paid bar", chromedp.Focus(chromedp.CSS("#timeline .bar-paid")))
	if got := text(t, ctx, "#timeline-detail"); !strings.Contains(got, "from 2026-06-15 12:00:00+08:00") || !strings.Contains(got, "to 2026-07-16 12:00:00+08:00") {
		t.Errorf("bar detail = %q, want its exact local times", got)
	}
	if got := text(t, ctx, "#throttle"); got != "Not throttled." {
		t.Errorf("throttle = %q", got)
	}
	if got := eval[float64](t, ctx, `document.querySelector('#data-meter').value`); got != 6<<30 {
		t.Errorf("data meter = %v, want 6 GiB", got)
	}
	orders := eval[int](t, ctx, `document.querySelectorAll('tr[data-order]').length`)
	if orders != 3 {
		t.Errorf("%d order rows, want 3", orders)
	}
	notices := text(t, ctx, "section[aria-labelledby=notices-title]")
	if !strings.Contains(notices, "refund.issued") || !strings.Contains(notices, "pending") {
		t.Errorf("notices = %q, want the pending refund.issued", notices)
	}
	screenshot(t, ctx, "main", "vehicle.png")

	// Keyboard only: Tab reaches the timeline's bars and the order rows'
	// buttons, and Enter opens the refund form.
	step(t, ctx, "start at the top of the page", chromedp.Focus(chromedp.CSS("#view")))
	rowBtn := fmt.Sprintf(`tr[data-order="%s"] button.refund-open`, running.ID)
	reachedBar := false
	for i := 0; ; i++ {
		if i == 60 {
			t.Fatalf("Tab did not reach the refund button of order %s", running.ID)
		}
		step(t, ctx, "press Tab", chromedp.KeyEvent("\t"))
		reachedBar = reachedBar || eval[bool](t, ctx, `document.activeElement.matches('#timeline .bar')`)
		if eval[bool](t, ctx, fmt.Sprintf(`document.activeElement.matches(%q)`, rowBtn)) {
			break
		}
	}
	if !reachedBar {
		t.Errorf("Tab skipped the timeline's bars")
	}
	step(t, ctx, "press Enter", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("#refund-form")))
	if !eval[bool](t, ctx, `document.activeElement.id === 'refund-title'`) {
		t.Errorf("focus did not move to the refund form")
	}

	// A goodwill amount over the balance is refused next to the field.
	step(t, ctx, "ask for too much", chromedp.Click(chromedp.CSS("#refund-partial")),
		chromedp.SendKeys(chromedp.CSS("#refund-amount"), "20.00"), chromedp.Click(chromedp.CSS("#refund-preview-btn")))
	waitFor(t, ctx, "the refusal", `document.querySelector('#refund-amount-error').innerText.includes('more than what is left')`)

	// The unused part: preview, then issue with a double click.
	step(t, ctx, "refund the unused part", chromedp.Click(chromedp.CSS("#refund-partial")),
		chromedp.SetValue(chromedp.CSS("#refund-reason"), "service_issue"),
		chromedp.SendKeys(chromedp.CSS("#refund-note"), "no signal in the garage"),
		chromedp.Click(chromedp.CSS("#refund-preview-btn")), chromedp.WaitVisible(chromedp.CSS("#refund-confirm")))
	// 21 of 31 days unused of 19.90 yuan: floor(1990 * 21 / 31) = 1348 fen.
	if got := text(t, ctx, "#preview-amount"); !strings.HasPrefix(got, "¥13.48 goes back") {
		t.Errorf("preview = %q, want ¥13.48", got)
	}
	before := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#tl-before .bar'), b => b.dataset.kind)`)
	after := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#tl-after .bar'), b => b.dataset.kind)`)
	if strings.Join(before, ",") != "trial,paid,scheduled,refunded" || strings.Join(after, ",") != "trial,refunded,paid,refunded" {
		t.Errorf("preview timelines: before %v, after %v", before, after)
	}
	screenshot(t, ctx, "#refund", "refund-preview.png")
	step(t, ctx, "issue it with a double click", chromedp.DoubleClick(chromedp.CSS("#refund-confirm")))
	waitFor(t, ctx, "the refund", `!!document.querySelector('#refund .msg-ok')`)
	if got := text(t, ctx, "#refund .msg-ok"); !strings.Contains(got, "Refunded ¥13.48") {
		t.Errorf("result = %q", got)
	}
	if row := text(t, ctx, fmt.Sprintf(`tr[data-order="%s"]`, running.ID)); !strings.Contains(row, "partially_refunded") || !strings.Contains(row, "¥13.48") {
		t.Errorf("order row after the refund = %q, want partially_refunded ¥13.48", row)
	}
	if kinds := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#timeline .bar'), b => b.dataset.kind)`); strings.Join(kinds, ",") != "trial,refunded,paid,refunded" {
		t.Errorf("timeline after the refund = %v, want it as previewed", kinds)
	}
	if href := eval[string](t, ctx, `(document.querySelector('#refund a[href^="#/refunds"]') || {}).hash || ''`); href != "#/refunds?vin="+v {
		t.Errorf("link to the car's refunds = %q", href)
	}

	// The order refunded before it started has nothing left: said next to the amount.
	step(t, ctx, "open the refunded order's form", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-order="%s"] button.refund-open`, extra.ID))),
		chromedp.WaitVisible(chromedp.CSS("#refund-form")), chromedp.Click(chromedp.CSS("#refund-preview-btn")))
	waitFor(t, ctx, "nothing refundable", `document.querySelector('#refund-amount-error').innerText.startsWith('Nothing is left to refund')`)

	var list struct {
		Refunds []refundBody `json:"refunds"`
	}
	h.get("/v1/refunds?operator=dana", staff).decode(t, &list)
	if len(list.Refunds) != 1 || list.Refunds[0].AmountFen != 1348 || list.Refunds[0].OrderID != running.ID {
		t.Fatalf("dana's refunds = %+v, want one of 1348 fen", list.Refunds)
	}

	// The refunds list, by operator, and its CSV.
	step(t, ctx, "open the refunds list", chromedp.Navigate(srv.URL+"/console/#/refunds?vin="+v), chromedp.WaitVisible(chromedp.CSS("#rf-operator")))
	waitFor(t, ctx, "the list", `document.querySelectorAll('#rf-results tr[data-refund]').length === 2`)
	step(t, ctx, "filter by operator", chromedp.SendKeys(chromedp.CSS("#rf-operator"), "dana"), chromedp.SendKeys(chromedp.CSS("#rf-from"), "06152026"),
		chromedp.Click(chromedp.CSS(`#rf-form button[type=submit]`)))
	waitFor(t, ctx, "dana's refund", fmt.Sprintf(`document.querySelectorAll('#rf-results tr[data-refund]').length === 1 && !!document.querySelector('tr[data-refund="%s"]')`, list.Refunds[0].ID))
	if u := eval[string](t, ctx, `location.hash`); !strings.Contains(u, "operator=dana") || !strings.Contains(u, "from=2026-06-15") {
		t.Errorf("the filters are not in the address: %s", u)
	}
	step(t, ctx, "download the CSV", chromedp.Click(chromedp.CSS("#rf-csv")))
	waitFor(t, ctx, "the download", `document.querySelector('#rf-csv-status').innerText.startsWith('Downloaded')`)
	var rows [][]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := os.ReadFile(filepath.Join(downloads, "refunds.csv"))
		if err == nil {
			if rows, err = csv.NewReader(bytes.NewReader(raw)).ReadAll(); err == nil && len(rows) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("refunds.csv did not arrive: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rows) != 2 || rows[0][0] != "id" || rows[1][0] != list.Refunds[0].ID || rows[1][8] != "dana" || rows[1][3] != "1348" {
		t.Errorf("refunds.csv = %q, want the header and dana's refund", rows)
	}

	// The audit page works whether or not the service has the audit trail.
	step(t, ctx, "open the audit page", chromedp.Click(chromedp.CSS(`#nav a[href="#/audit"]`)), chromedp.WaitVisible(chromedp.CSS("#au-vin")))
	if probe := h.get("/v1/audit", staff); probe.Code == http.StatusNotFound {
		waitFor(t, ctx, "the not-available message", `document.querySelector('#au-results').innerText.includes('audit trail is not available')`)
	} else {
		waitFor(t, ctx, "audit entries", `!!document.querySelector('#au-results table, #au-results .msg-info')`)
	}

	// The phone width: nothing wider than the screen but the scrolling tables.
	step(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/console/#/vehicle/"+v))
	waitFor(t, ctx, "the timeline at 390 px", `document.querySelectorAll('#timeline .bar').length === 4`)
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("page is %d px wide at a 390 px screen", w)
	}
	step(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))

	// Every input has a label.
	unlabelled := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('input, select, textarea')).filter(i => !i.labels || !i.labels.length).map(i => i.id || i.name)`)
	if len(unlabelled) > 0 {
		t.Errorf("inputs without a label: %v", unlabelled)
	}

	// An ops token may look but not refund; a vehicle token may not sign in.
	step(t, ctx, "sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	step(t, ctx, "sign in as ops", chromedp.SendKeys(chromedp.CSS("#token"), h.token(api.RoleOps, "olga")),
		chromedp.Click(chromedp.CSS("#signin-form button")), chromedp.WaitVisible(chromedp.CSS("#find-q")),
		chromedp.Navigate(srv.URL+"/console/#/refunds"))
	waitFor(t, ctx, "the 403 for ops", `document.querySelector('#rf-results').innerText.includes('needs the billing role')`)
	step(t, ctx, "sign out again", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	step(t, ctx, "sign in with a vehicle token", chromedp.SendKeys(chromedp.CSS("#token"), h.token(api.RoleVehicle, v)),
		chromedp.Click(chromedp.CSS("#signin-form button")))
	waitFor(t, ctx, "the 403 message", `document.querySelector('#signin-status').innerText.includes('needs the billing or ops role')`)
	if got := text(t, ctx, "#signin-status"); !strings.Contains(got, "role is vehicle") {
		t.Errorf("refusal = %q, want it to name the vehicle role", got)
	}
	if stored := eval[string](t, ctx, `sessionStorage.getItem('entitlements.console.token') || ''`); stored != "" {
		t.Errorf("a refused token was kept")
	}
}
