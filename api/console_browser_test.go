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
	"entitlements/billing"

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
	// Staff may also sign in with the identity provider's tokens, whose
	// role is a mapped "roles" claim.
	idpKey := rsaKey(t, "rsa-1", 2048)
	h := newHarness(t, "sqlite", withPayments, withIdP(newIdP(t, newJWKSServer(t, idpKey).URL())))
	srv := browserServer(t, h)

	// A car whose trial has ended, with a running monthly package, a
	// yearly one after it, and a monthly refunded before it started.
	v, running := h.boughtAfterLapse("LSVAX4E10P2700001", "monthly")
	yearly := h.pay(h.createOrder(v, "alice", "yearly"))
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
	// A fleet whose owner id has 17 characters of the VIN alphabet but a
	// wrong check digit, with a page and one more of cars, the first of
	// them with a page and one more of unpaid orders.
	fleetVIN := vin("FLEETS2025XYZ0001")
	fleet := fleetVIN[:8] + map[bool]string{true: "1", false: "2"}[fleetVIN[8] != '1'] + fleetVIN[9:]
	const page = 20 // the console's page of vehicles and of orders
	var fleetCars []string
	for i := range page + 1 {
		car := vin(fmt.Sprintf("LSVAX4E10P28%05d", i))
		h.activate(car, fleet, time.Date(2026, 6, 1, 9, 0, 0, 0, shanghai))
		fleetCars = append(fleetCars, car)
	}
	var unpaid []orderBody
	for range page + 1 {
		unpaid = append(unpaid, h.createOrder(fleetCars[0], fleet, "monthly"))
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

	// Seventeen characters with a wrong check digit are looked up as an
	// order id and an owner id too; the owner's vehicles come a page at a
	// time, with a "More" button.
	step(t, ctx, "type the fleet's owner id", chromedp.SendKeys(chromedp.CSS("#find-q"), fleet))
	if got := text(t, ctx, "#vin-check"); !strings.Contains(got, "check digit is wrong") {
		t.Errorf("VIN check of %s = %q, want a wrong check digit", fleet, got)
	}
	step(t, ctx, "search for it", chromedp.SendKeys(chromedp.CSS("#find-q"), "\r"))
	waitFor(t, ctx, "the fleet's first page", fmt.Sprintf(`document.querySelectorAll('#find-vehicles tr[data-vin]').length === %d`, page))
	step(t, ctx, "show more vehicles", chromedp.Click(chromedp.CSS("#find-more")))
	waitFor(t, ctx, "all the fleet's cars", fmt.Sprintf(`document.querySelectorAll('#find-vehicles tr[data-vin]').length === %d && document.querySelector('#find-more').hidden`, page+1))
	if got := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#find-vehicles tr[data-vin]'), r => r.dataset.vin)`); len(unique(got)) != page+1 {
		t.Errorf("the fleet's pages repeat cars: %v", got)
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

	// The skip link moves focus to the content and leaves the page as it is.
	step(t, ctx, "reach the skip link", chromedp.Focus(chromedp.CSS(`#nav a[href="#/find"]`)),
		chromedp.KeyEvent("\t", chromedp.KeyModifiers(chromedp.ModifierShift)))
	if !eval[bool](t, ctx, `document.activeElement.matches('a.skip') && document.activeElement.getBoundingClientRect().left >= 0`) {
		t.Errorf("Shift+Tab from the navigation did not reach a visible skip link")
	}
	step(t, ctx, "follow the skip link", chromedp.KeyEvent("\r"))
	time.Sleep(200 * time.Millisecond) // a route change would have begun
	if got := eval[string](t, ctx, `location.hash`); got != "#/vehicle/"+v {
		t.Errorf("after the skip link the address is %q, want #/vehicle/%s", got, v)
	}
	if !eval[bool](t, ctx, `document.activeElement.id === 'view' && document.querySelectorAll('#timeline .bar').length === 4`) {
		t.Errorf("the skip link did not focus the vehicle page's content")
	}

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

	// A refund previewed, then issued after someone else refunded most of
	// the order: refused next to the amount with what is left now (and
	// recorded in the audit trail as a refused attempt).
	step(t, ctx, "preview a goodwill refund of the yearly order", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-order="%s"] button.refund-open`, yearly.ID))),
		chromedp.WaitVisible(chromedp.CSS("#refund-form")), chromedp.Click(chromedp.CSS("#refund-partial")),
		chromedp.SetValue(chromedp.CSS("#refund-reason"), "requested_by_customer"),
		chromedp.SendKeys(chromedp.CSS("#refund-amount"), "5.00"), chromedp.Click(chromedp.CSS("#refund-preview-btn")),
		chromedp.WaitVisible(chromedp.CSS("#refund-confirm")))
	if res := h.refund(yearly.ID, map[string]any{"reason": "other", "amount_fen": yearly.AmountFen - 100}); res.Code != 201 {
		t.Fatalf("refund of the yearly order meanwhile = %d %s", res.Code, res.Body)
	}
	step(t, ctx, "issue the previewed refund", chromedp.Click(chromedp.CSS("#refund-confirm")))
	waitFor(t, ctx, "the refusal at issue", `document.querySelector('#refund-amount-error').innerText.includes('more than what is left')`)
	if got := text(t, ctx, "#refund-amount-error"); !strings.Contains(got, "¥1.00 is left") {
		t.Errorf("refusal at issue = %q, want what is left now (¥1.00)", got)
	}

	var list struct {
		Refunds []refundBody `json:"refunds"`
	}
	h.get("/v1/refunds?operator=dana", staff).decode(t, &list)
	if len(list.Refunds) != 1 || list.Refunds[0].AmountFen != 1348 || list.Refunds[0].OrderID != running.ID {
		t.Fatalf("dana's refunds = %+v, want one of 1348 fen", list.Refunds)
	}

	// The refunds list, by operator, and its CSV.
	step(t, ctx, "open the refunds list", chromedp.Navigate(srv.URL+"/console/#/refunds?vin="+v), chromedp.WaitVisible(chromedp.CSS("#rf-operator")))
	waitFor(t, ctx, "the list", `document.querySelectorAll('#rf-results tr[data-refund]').length === 3`)
	step(t, ctx, "filter by operator", chromedp.SendKeys(chromedp.CSS("#rf-operator"), "dana"), chromedp.SendKeys(chromedp.CSS("#rf-from"), "06152026"),
		chromedp.Click(chromedp.CSS(`#rf-form button[type=submit]`)))
	waitFor(t, ctx, "dana's refund", fmt.Sprintf(`document.querySelectorAll('#rf-results tr[data-refund]').length === 1 && !!document.querySelector('tr[data-refund="%s"]')`, list.Refunds[0].ID))
	if u := eval[string](t, ctx, `location.hash`); !strings.Contains(u, "operator=dana") || !strings.Contains(u, "from=2026-06-15") {
		t.Errorf("the filters are not in the address: %s", u)
	}
	step(t, ctx, "download the CSV", chromedp.Click(chromedp.CSS("#rf-csv")))
	waitFor(t, ctx, "the download", `document.querySelector('#rf-csv-status').innerText.startsWith('Downloaded')`)
	rows := readCSV(t, filepath.Join(downloads, "refunds.csv"))
	if len(rows) != 2 || rows[0][0] != "id" || rows[1][0] != list.Refunds[0].ID || rows[1][8] != "dana" || rows[1][3] != "1348" {
		t.Errorf("refunds.csv = %q, want the header and dana's refund", rows)
	}

	// The audit page: the refund issued by dana, the refused attempt of
	// the car found by its VIN, the CSV of the same entries, and the action
	// filter offering exactly the actions the service records.
	refundID := list.Refunds[0].ID
	step(t, ctx, "open the audit page", chromedp.Click(chromedp.CSS(`#nav a[href="#/audit"]`)), chromedp.WaitVisible(chromedp.CSS("#au-vin")))
	issuedRow := fmt.Sprintf(`Array.from(document.querySelectorAll('#au-results tr[data-action="refund.issued"]')).some(r => r.innerText.includes('billing:dana') && r.innerText.includes(%q) && r.innerText.includes(%q))`, refundID, running.ID)
	waitFor(t, ctx, "dana's refund.issued entry", issuedRow)
	options := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#au-action option'), o => o.value)`)
	var actions []string
	for _, a := range billing.AuditActions {
		actions = append(actions, string(a))
	}
	if strings.Join(options, ",") != ","+strings.Join(actions, ",") {
		t.Errorf("action filter offers %q, want any and %v", options, actions)
	}
	step(t, ctx, "filter by VIN", chromedp.SendKeys(chromedp.CSS("#au-vin"), v), chromedp.Click(chromedp.CSS(`#au-form button[type=submit]`)))
	refusedRow := fmt.Sprintf(`Array.from(document.querySelectorAll('#au-results tr[data-action="refund.refused"]')).some(r => r.innerText.includes('billing:dana') && r.innerText.includes(%q) && r.innerText.includes('refund_exceeds_balance'))`, yearly.ID)
	onlyCar := fmt.Sprintf(`Array.from(document.querySelectorAll('#au-results tr[data-entry]')).every(r => r.innerText.includes(%q))`, v)
	waitFor(t, ctx, "the refused attempt among the car's entries only", refusedRow+` && `+issuedRow+` && `+onlyCar)
	step(t, ctx, "download the audit CSV", chromedp.Click(chromedp.CSS("#au-csv")))
	waitFor(t, ctx, "the audit download", `document.querySelector('#au-csv-status').innerText.startsWith('Downloaded')`)
	auditRows := readCSV(t, filepath.Join(downloads, "audit.csv"))
	var issued, refused bool
	for _, r := range auditRows[1:] {
		// id,at,actor,request_id,action,vin,order_id,refund_id,before,after
		issued = issued || r[4] == "refund.issued" && r[2] == "billing:dana" && r[7] == refundID && r[6] == running.ID && r[5] == v
		refused = refused || r[4] == "refund.refused" && r[2] == "billing:dana" && r[6] == yearly.ID
	}
	if len(auditRows) < 3 || auditRows[0][4] != "action" || !issued || !refused {
		t.Errorf("audit.csv = %q, want the header, dana's refund and the refused attempt", auditRows)
	}
	step(t, ctx, "filter by action", chromedp.SetValue(chromedp.CSS("#au-action"), "refund.refused"), chromedp.Click(chromedp.CSS(`#au-form button[type=submit]`)))
	waitFor(t, ctx, "only refused refunds", `document.querySelectorAll('#au-results tr[data-entry]').length > 0 && Array.from(document.querySelectorAll('#au-results tr[data-entry]')).every(r => r.dataset.action === 'refund.refused')`)
	if u := eval[string](t, ctx, `location.hash`); !strings.Contains(u, "action=refund.refused") || !strings.Contains(u, "vin="+v) {
		t.Errorf("the audit filters are not in the address: %s", u)
	}

	// The vehicle page's orders come a page at a time, with a "More"
	// button; refunding an unpaid one is refused in words next to the
	// reason.
	step(t, ctx, "open the fleet's first car", chromedp.Navigate(srv.URL+"/console/#/vehicle/"+fleetCars[0]))
	waitFor(t, ctx, "its first page of orders", fmt.Sprintf(`document.querySelectorAll('#orders tr[data-order]').length === %d`, page))
	step(t, ctx, "show more orders", chromedp.Click(chromedp.CSS("#orders-more")))
	waitFor(t, ctx, "all its orders", fmt.Sprintf(`document.querySelectorAll('#orders tr[data-order]').length === %d && document.querySelector('#orders-more').hidden`, page+1))
	oldest := unpaid[0].ID
	step(t, ctx, "refund the oldest, unpaid, order", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-order="%s"] button.refund-open`, oldest))),
		chromedp.WaitVisible(chromedp.CSS("#refund-form")), chromedp.Click(chromedp.CSS("#refund-preview-btn")))
	waitFor(t, ctx, "order not paid", `document.querySelector('#refund-reason-error').innerText.includes('not paid')`)
	if !eval[bool](t, ctx, `document.querySelector('#refund-reason').getAttribute('aria-invalid') === 'true' && !document.querySelector('#refund-confirm')`) {
		t.Errorf("the unpaid order's refusal is not on the reason field, or a refund is offered")
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
	if got := text(t, ctx, "#rf-results"); !strings.Contains(got, "signed in with an ops token") {
		t.Errorf("ops refusal = %q, want it to name the ops role", got)
	}
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

	// A token of the identity provider carries its role in a mapped
	// "roles" claim: the console shows the role the service decided.
	clear(t, ctx, "#token")
	step(t, ctx, "sign in with the identity provider's token", chromedp.SendKeys(chromedp.CSS("#token"), idpKey.sign(t, idpClaims(h.clock.Now()))),
		chromedp.Click(chromedp.CSS("#signin-form button")), chromedp.WaitVisible(chromedp.CSS("#find-q")))
	if who := text(t, ctx, "#who"); who != "billing · 0f3c9a52-staff-7781" {
		t.Errorf("signed in with the identity provider as %q, want billing · 0f3c9a52-staff-7781", who)
	}
}

// readCSV waits for a downloaded CSV file and reads it.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := os.ReadFile(path)
		if err == nil {
			rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
			if err == nil && len(rows) > 0 {
				return rows
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not arrive: %v", filepath.Base(path), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func unique(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}
