package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/console"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

// chromium finds the browser for the console tests. With
// HANDOVERD_BROWSER=1 (set by CI) a missing browser fails the test instead
// of skipping it.
func chromium(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}
	if c := os.Getenv("HANDOVERD_CHROMIUM"); c != "" {
		candidates = []string{c}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("HANDOVERD_BROWSER") == "1" {
		t.Fatal("HANDOVERD_BROWSER=1 but no Chromium found: apt-get install -y chromium (or set HANDOVERD_CHROMIUM)")
	}
	t.Skip("no Chromium found: apt-get install -y chromium to run the console's browser tests (CI sets HANDOVERD_BROWSER=1 and requires them)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab.
func browser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// One bound for the whole browser session keeps a stuck page from
	// holding CI.
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	if err := chromedp.Do(ctx); err != nil {
		cancelTime()
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx, func() { cancelTime(); cancelTab(); cancelAlloc() }
}

// page drives one tab, failing the test with the step's name.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	run(p, step, chromedp.Steps(actions...))
}

// run runs one action that returns a value, failing the test with the step.
func run[T any](p page, step string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("body")))
		p.t.Fatalf("%s: %v\npage text:\n%s", step, err, body)
	}
	return v
}

// fetchResult is a fetch made from inside the page.
type fetchResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// fetch runs fetch(path, {method}) in the page, with the page's cookies,
// and no CSRF header.
func (p page) fetch(method, path string, body string) fetchResult {
	p.t.Helper()
	js := fmt.Sprintf(`(async () => {
		const r = await fetch(%q, {method: %q, headers: {'Content-Type': 'application/json'}, body: %s, credentials: 'same-origin'});
		let b = null; try { b = await r.json(); } catch (e) {}
		return {status: r.status, body: b};
	})()`, path, method, map[bool]string{true: "undefined", false: fmt.Sprintf("%q", body)}[body == ""])
	return run(p, "fetch "+method+" "+path, chromedp.Evaluate[fetchResult](js, chromedp.EvalAwaitPromise))
}

// press clicks the element sel inside the page, retrying until it exists:
// the conversation's header is rebuilt as live events come in, so a node
// found first may be gone by the time a protocol click reaches it.
func press(sel string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el || el.disabled) return false; el.click(); return true; })()`, sel))
}

// textOf reads the text of the element sel (looked up when read).
func textOf(sel string) chromedp.Action[string] {
	return chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

// shows waits until an element matching sel is on screen. (It looks the
// element up afresh each time: live updates replace nodes.)
func shows(sel string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.getClientRects().length > 0; })()`, sel))
}

// gone waits until no element matches sel.
func gone(sel string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`!document.querySelector(%q)`, sel))
}

// until waits until the page's expression js is true.
func until(js string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))(ctx, t)
		return chromedp.Void{}, err
	}
}

// signIn signs in on the sign-in page and waits for the live stream.
func (p page) signIn() {
	p.t.Helper()
	p.do("sign in",
		shows("#token"),
		chromedp.SendKeys(id("token"), agentToken), chromedp.Click(id("signin-button")),
		shows("#app"),
		shows(`#live[data-state="live"]`),
		until(`document.body.dataset.ready === '1'`))
}

func (p page) screenshot(name string) {
	p.t.Helper()
	png := run(p, "screenshot "+name, chromedp.CaptureScreenshot())
	if len(png) < 1000 {
		p.t.Fatalf("screenshot %s is %d bytes", name, len(png))
	}
	dir := p.t.TempDir()
	if os.Getenv("HANDOVERD_SCREENSHOTS") == "1" && strings.HasSuffix(p.t.Name(), "sqlite") {
		dir = filepath.Join("..", "docs", "screenshots")
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }
func id(s string) chromedp.ID   { return chromedp.ID(s) }

// perf is the first load as the browser measured it.
type perf struct {
	Bytes int64   `json:"bytes"`
	FCP   float64 `json:"fcp"`
	Files int     `json:"files"`
}

// deliveryReceipt posts Meta's signed delivery receipt for everything sent
// to psid until now, as the customer's device acknowledges it.
func (h *harness) deliveryReceipt(psid string) {
	h.t.Helper()
	now := h.clock.Now().UnixMilli()
	body := []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"delivery":{"watermark":%d}}]}]}`,
		pageID, now, psid, pageID, now, now))
	if st, b := h.postWebhook(body, messenger.SignatureHeader(ourSecret, body)); st != http.StatusOK {
		h.t.Fatalf("delivery receipt = %d %s", st, b)
	}
}

// TestConsoleInBrowser works a conversation through the console in a real
// Chromium: sign in, the queue updating live, reply, delivery, resolve,
// the thread's history, CSRF refusal and sign-out.
func TestConsoleInBrowser(t *testing.T) {
	chromium(t)
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		ctx, cancel := browser(t)
		defer cancel()
		p := page{t, ctx}
		const psid = "9001"

		// Every Content-Security-Policy violation is recorded: the page must
		// work without any.
		p.do("record CSP violations", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
				Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`})
			return err
		}))

		// First load: the sign-in page, then its weight and first paint.
		p.do("open the console", chromedp.Navigate(h.url+"/"), shows("#token"))
		first := run(p, "measure the first load", chromedp.Poll[perf](`(() => {
			const paint = performance.getEntriesByName('first-contentful-paint')[0];
			if (!paint) return null;
			const nav = performance.getEntriesByType('navigation')[0];
			const res = performance.getEntriesByType('resource');
			return {bytes: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0), fcp: paint.startTime, files: 1 + res.length};
		})()`, chromedp.WithPollingInterval(50*time.Millisecond)))
		t.Logf("console first load (%s): %d bytes transferred in %d requests, first contentful paint %.0f ms", b.Name, first.Bytes, first.Files, first.FCP)
		if first.Bytes <= 0 || first.Files < 4 {
			t.Errorf("first load measured %+v: want the page, its two script modules and its style", first)
		}

		// A wrong token is refused in words.
		p.do("try a wrong token", chromedp.SendKeys(id("token"), "not-a-token"), chromedp.Click(id("signin-button")))
		msg := run(p, "the refusal", chromedp.Poll[string](`document.querySelector('#signin-error').textContent`))
		if !strings.Contains(msg, "not a handoverd user's token") {
			t.Errorf("sign-in error = %q", msg)
		}
		run(p, "clear the token field", chromedp.Evaluate[string](`document.querySelector('#token').value = ''`))
		p.signIn()
		if cookies := run(p, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookies, console.CookieName) {
			t.Errorf("the session cookie is readable from script: %q", cookies)
		}
		if kept := run(p, "storage", chromedp.Evaluate[string](`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + location.href`)); strings.Contains(kept, agentToken) {
			t.Errorf("the page keeps the token: %s", kept)
		}

		// A customer writes to the bot-owned Page: the conversation shows
		// up as pending, live.
		p.do("show pending", chromedp.Click(css(`[role="tab"][data-status="pending"]`)))
		if _, err := h.sim.CustomerSends(pageID, psid, simulator.CustomerMessage{Text: "my order is late",
			Attachments: []simulator.Attachment{{Type: "image", URL: "https://127.0.0.1:1/parcel.jpg"}}}); err != nil {
			t.Fatal(err)
		}
		h.flush()
		p.do("the conversation appears as pending without a reload", shows(`#conversations li[data-status="pending"]`))
		p.do("its unread count", until(`(document.querySelector('#conversations li .unread') || {}).textContent === '1'`))
		p.screenshot("console-queue.png")

		// The bot passes: the conversation moves to open.
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, "customer wants a person"); err != nil {
			t.Fatal(err)
		}
		h.flush()
		p.do("it leaves pending", gone(`#conversations li[data-status="pending"]`))
		p.do("it is open",
			chromedp.Click(css(`[role="tab"][data-status="open"]`)),
			shows(`#conversations li[data-status="open"]`))

		// Open it with the keyboard and reply with Enter.
		p.do("j opens the first conversation", chromedp.Focus(id("conversations")), chromedp.KeyEvent("j"),
			shows(`#owner-badge[data-owner="agent"]`),
			shows(`#window-badge[data-window="standard"]`),
			gone(`#conversations li .unread`)) // opened: read
		if w := run(p, "reply window", textOf("#window-badge")); !strings.HasPrefix(w, "Standard window: 23 h") && !strings.HasPrefix(w, "Standard window: 24 h") {
			t.Errorf("window badge = %q, want about 24 h left", w)
		}
		const reply = "Hi, I'm Alice from support."
		p.do("r focuses the reply box; Enter sends",
			chromedp.Focus(id("timeline")), chromedp.KeyEvent("r"),
			chromedp.SendKeys(id("reply"), reply), chromedp.KeyEvent(kb.Enter),
			shows(`#timeline li[data-kind="agent"] .status:is([data-status="sent"], [data-status="delivered"])`))
		h.deliveryReceipt(psid)
		p.do("the status reaches delivered", shows(`#timeline li[data-kind="agent"] .status[data-status="delivered"]`))
		if err := h.sim.CustomerReads(pageID, psid); err != nil {
			t.Fatal(err)
		}
		h.flush()
		p.do("and read", shows(`#timeline li[data-kind="agent"] .status[data-status="read"]`))
		// The photo's URL does not load here: it becomes a link to it.
		p.do("the customer's photo", until(`!!document.querySelector('#timeline li[data-kind="customer"] a.attachment')`))
		if href := run(p, "the photo's link", chromedp.Evaluate[string](`document.querySelector('#timeline li[data-kind="customer"] a.attachment').getAttribute('href')`)); href != "https://127.0.0.1:1/parcel.jpg" {
			t.Errorf("the attachment links to %q", href)
		}
		got := 0
		for _, m := range h.sim.Inbox(pageID, psid) {
			if m.Text == reply {
				got++
			}
		}
		if got != 1 {
			t.Errorf("the customer got the reply %d times, want once: %+v", got, h.sim.Inbox(pageID, psid))
		}
		// Facebook refuses the next send: the message says why.
		h.sim.InjectFault(simulator.Fault{Op: "send", AppID: ourApp, Times: 1, HTTPStatus: 400, Code: 551, Message: "This person isn't available right now."})
		p.do("a send Facebook refuses", chromedp.SendKeys(id("reply"), "Still there?"), chromedp.KeyEvent(kb.Enter),
			shows(`#timeline li[data-kind="agent"] .status[data-status="failed"]`))
		if failed := run(p, "the failure", textOf(`#timeline li[data-kind="agent"] .status[data-status="failed"]`)); !strings.Contains(failed, "isn't available") {
			t.Errorf("failed status reads %q: want Facebook's reason", failed)
		}
		p.do("a private note", press("#private"), chromedp.SendKeys(id("reply"), "VIP customer"),
			press("#send"), shows(`#timeline li[data-kind="note"]`))
		p.screenshot("console-conversation.png")

		// Usable at 360 px: nothing wider than the screen.
		p.do("narrow screen", chromedp.EmulateViewport(360, 720), shows("#reply"))
		if wide := run(p, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > 360`)); wide {
			t.Errorf("the conversation is wider than a 360 px screen")
		}
		p.screenshot("console-mobile.png")
		back := run(p, "conversation link", chromedp.Evaluate[string](`location.hash`))
		p.do("back to the queue", press(".conv-head .back"), shows("#conversations li"))
		if wide := run(p, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > 360`)); wide {
			t.Errorf("the queue is wider than a 360 px screen")
		}
		p.do("wide screen", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(h.url+"/"+back), shows("#reply"))

		// A write without the CSRF token is refused and changes nothing.
		convID := run(p, "conversation id", chromedp.Evaluate[int](`Number(location.hash.split('/')[2])`))
		res := p.fetch(http.MethodPost, fmt.Sprintf("/api/v1/accounts/1/conversations/%d/toggle_status", convID), `{"status":"resolved"}`)
		if res.Status != http.StatusForbidden || !strings.Contains(string(res.Body), `"field":"X-CSRF-Token"`) {
			t.Errorf("write without CSRF token = %d %s, want 403 naming X-CSRF-Token", res.Status, res.Body)
		}
		if n := h.count(`SELECT count(*) FROM conversations WHERE id = $1 AND status = 'open'`, convID); n != 1 {
			t.Errorf("the refused write changed the conversation")
		}

		// Resolve: the thread goes back to the bot.
		p.do("e resolves", chromedp.Focus(id("timeline")), chromedp.KeyEvent("e"), shows(`#status-badge[data-status="resolved"]`),
			shows(`#owner-badge[data-owner="bot"]`))
		if owner := h.sim.Thread(pageID, psid).OwnerAppID; owner != botApp {
			t.Errorf("Facebook's owner after resolve = %q, want the bot %s", owner, botApp)
		}

		// The thread's ownership history.
		p.do("thread history", press("#thread-link"), shows("#history li"))
		history := run(p, "history", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#history li')].map(li => li.dataset.to)`))
		if want := "bot agent bot"; !strings.HasSuffix(strings.Join(history, " "), want) {
			t.Errorf("history = %v, want it to end %s", history, want)
		}

		if v := run(p, "CSP violations", chromedp.Evaluate[[]string](`window.__csp`)); len(v) > 0 {
			t.Errorf("the page broke its Content-Security-Policy: %v", v)
		}

		// Sign-out ends the session: the cookie no longer opens the APIs,
		// even replayed by hand.
		cookies := run(p, "the session cookie", chromedp.Action[network.GetCookiesResult](func(ctx context.Context, _ *chromedp.Target) (network.GetCookiesResult, error) {
			return chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
		}))
		var session string
		for _, c := range cookies.Cookies {
			if c.Name == console.CookieName {
				session = c.Value
				if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
					t.Errorf("session cookie = %+v, want HttpOnly and SameSite=Strict", c)
				}
			}
		}
		replay := func() int {
			req, _ := http.NewRequest(http.MethodGet, h.url+"/api/v1/accounts/1/conversations", nil)
			req.AddCookie(&http.Cookie{Name: console.CookieName, Value: session})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if st := replay(); st != http.StatusOK {
			t.Fatalf("the session cookie before sign-out = %d, want 200", st)
		}
		p.do("sign out", press("#signout"), shows("#token"))
		if res := p.fetch(http.MethodGet, "/api/v1/accounts/1/conversations", ""); res.Status != http.StatusUnauthorized {
			t.Errorf("API after sign-out = %d %s, want 401", res.Status, res.Body)
		}
		if st := replay(); st != http.StatusUnauthorized {
			t.Errorf("the session cookie replayed after sign-out = %d, want 401", st)
		}
		if n := h.count(`SELECT count(*) FROM console_sessions`); n != 0 {
			t.Errorf("%d sessions left after sign-out", n)
		}
	})
}

// signIn opens a console session over plain HTTP and returns the cookie
// value and the CSRF token.
func signIn(t *testing.T, h *harness, token string) (cookie, csrf string) {
	t.Helper()
	resp, err := http.Post(h.url+"/console/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v console.SessionView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in = %d %v", resp.StatusCode, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			cookie = c.Value
		}
	}
	if cookie == "" || v.CSRFToken == "" {
		t.Fatalf("sign in gave cookie %q, csrf %q", cookie, v.CSRFToken)
	}
	return cookie, v.CSRFToken
}

// checkConsoleAPI exercises the console's documented routes.
func checkConsoleAPI(t *testing.T, o *openapiChecker) {
	t.Helper()
	o.call(openapiCall{method: http.MethodGet, path: "/", status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/console/assets/app.js", status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/console/assets/style.css", status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/console/assets/nope.js", status: 404})
	resp, err := http.Get(o.h.url + "/console/assets/api.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o.call(openapiCall{method: http.MethodGet, path: "/console/assets/api.js", header: http.Header{"If-None-Match": {resp.Header.Get("ETag")}}, status: 304})

	o.call(openapiCall{method: http.MethodPost, path: "/console/session", body: []byte(`{}`), status: 400, invalid: true})
	o.call(openapiCall{method: http.MethodPost, path: "/console/session", body: []byte(`{"token":"not-a-token"}`), status: 401})
	o.call(openapiCall{method: http.MethodPost, path: "/console/session", body: []byte(`{"token":"` + botAPIKey + `"}`), status: 403})
	o.call(openapiCall{method: http.MethodPost, path: "/console/session", body: []byte(`{"token":"` + agentToken + `"}`), status: 200})
	cookie, csrf := signIn(t, o.h, agentToken)
	jar := http.Header{"Cookie": {console.CookieName + "=" + cookie}}
	o.call(openapiCall{method: http.MethodGet, path: "/console/session", header: jar, status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/console/session", status: 401, invalid: true})
	o.call(openapiCall{method: http.MethodDelete, path: "/console/session", header: jar, status: 403, invalid: true})
	o.call(openapiCall{method: http.MethodDelete, path: "/console/session", header: http.Header{"Cookie": jar["Cookie"], "X-Csrf-Token": {csrf}}, status: 204})
	o.call(openapiCall{method: http.MethodGet, path: "/console/session", header: jar, status: 401})
}

// TestConsoleSessionStandsInForToken holds the session middleware to its
// rules over plain HTTP: the cookie opens the agents' APIs, writes need the
// CSRF token, a token named by the request wins over the cookie, ended
// sessions open nothing, and neither the token nor the cookie is stored or
// logged in the clear.
func TestConsoleSessionStandsInForToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "9101"
		h.customerSays(psid, "hello?")
		var list struct {
			Data struct {
				Payload []struct{ ID int } `json:"payload"`
			} `json:"data"`
		}
		if st := h.agentJSON(http.MethodGet, "/api/v1/accounts/1/conversations?status=pending", nil, &list); st != 200 || len(list.Data.Payload) != 1 {
			t.Fatalf("conversations = %d %+v", st, list)
		}
		conv := fmt.Sprintf("/api/v1/accounts/1/conversations/%d", list.Data.Payload[0].ID)
		cookie, csrf := signIn(t, h, agentToken)
		other, _ := signIn(t, h, agentToken) // a second session: its CSRF token is not this one's

		type want struct {
			Status int
			Field  string
		}
		cases := []struct {
			name, method, path, body string
			cookie, csrf, bearer     string
			want                     want
		}{
			{"read with the cookie", "GET", conv, "", cookie, "", "", want{200, ""}},
			{"thread read with the cookie", "GET", "/1.0/threads/" + pageID + "/" + psid, "", cookie, "", "", want{200, ""}},
			{"events with the cookie", "GET", "/api/v1/accounts/9/events", "", cookie, "", "", want{403, ""}},
			{"write without the CSRF token", "POST", conv + "/toggle_status", `{"status":"snoozed"}`, cookie, "", "", want{403, "X-CSRF-Token"}},
			{"write with a wrong CSRF token", "POST", conv + "/toggle_status", `{"status":"snoozed"}`, cookie, csrf + "x", "", want{403, "X-CSRF-Token"}},
			{"write with another session's cookie", "POST", conv + "/toggle_status", `{"status":"snoozed"}`, other, csrf, "", want{403, "X-CSRF-Token"}},
			{"intervention without the CSRF token", "POST", "/1.0/interventions", `{"identity_foreign_id":"` + psid + `"}`, cookie, "", "", want{403, "X-CSRF-Token"}},
			{"unknown session", "GET", conv, "", "not-a-session", "", "", want{401, ""}},
			{"a bearer token wins over the cookie", "GET", conv, "", cookie, "", botAPIKey, want{403, ""}},
			{"no cookie, no token", "GET", conv, "", "", "", "", want{401, ""}},
			{"the cookie does not reach the webhook edge", "POST", "/webhooks/messenger", `{}`, cookie, csrf, "", want{401, "X-Hub-Signature-256"}},
			{"write with the CSRF token", "POST", conv + "/toggle_status", `{"status":"snoozed"}`, cookie, csrf, "", want{200, ""}},
		}
		for _, c := range cases {
			req, _ := http.NewRequest(c.method, h.url+c.path, strings.NewReader(c.body))
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: console.CookieName, Value: c.cookie})
			}
			if c.csrf != "" {
				req.Header.Set(console.CSRFHeader, c.csrf)
			}
			if c.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			got := want{Status: resp.StatusCode}
			if resp.StatusCode >= 400 {
				var e struct {
					Error struct{ Field string } `json:"error"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&e)
				got.Field = e.Error.Field
			}
			resp.Body.Close()
			cancel()
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", c.name, diff)
			}
		}
		// The page allows only its own files and cannot be framed.
		resp, err := http.Get(h.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
		// Only the last, CSRF-carrying write changed anything.
		if n := h.count(`SELECT count(*) FROM conversations WHERE status = 'snoozed'`); n != 1 {
			t.Errorf("%d snoozed conversations, want 1 (only the write with the CSRF token)", n)
		}
		if n := h.count(`SELECT count(*) FROM interventions`); n != 0 {
			t.Errorf("%d interventions, want none (refused without the CSRF token)", n)
		}
		// The database holds the session id's digest, not the id.
		if n := h.count(`SELECT count(*) FROM console_sessions WHERE id_sha256 = $1`, cookie); n != 0 {
			t.Error("the session id is stored in the clear")
		}
		if logs := h.logs.String(); strings.Contains(logs, cookie) || strings.Contains(logs, agentToken) || strings.Contains(logs, csrf) {
			t.Error("the logs carry the session id, the CSRF token or the agent token")
		}
		// Sessions end after their lifetime.
		h.clock.Advance(console.DefaultTTL)
		req, _ := http.NewRequest(http.MethodGet, h.url+"/console/session", nil)
		req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("an expired session = %d, want 401", resp.StatusCode)
		}
	})
}

// The console's page and files are checked as text.
func init() {
	for _, ct := range []string{"text/html", "text/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// serveAt starts a handoverd process on the harness's database at addr.
func serveAt(t *testing.T, h *harness, addr string) {
	t.Helper()
	srv, err := server.New(context.Background(), server.Options{Config: h.cfg, Logger: zerolog.New(h.logs).Level(zerolog.DebugLevel), Clock: h.clock.Paced(),
		GraphRetry: messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}, GraphTransport: delayTransport{h}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h.srv, h.url = srv, "http://"+addr
	h.sim.AddApp(simulator.App{ID: ourApp, Secret: ourSecret, WebhookURL: h.url + "/webhooks/messenger"})
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
		h.stop = func() {}
	}
}

// TestConsoleTakeOverInBrowser takes a conversation from a bot that does
// not let go at once: the reply waits for control and says so, a refused
// action shows the API's reason, and the agent hands back to the bot.
func TestConsoleTakeOverInBrowser(t *testing.T) {
	chromium(t)
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.botPasses.Store(false) // the bot ignores requests for control
		const psid = "9201"
		h.customerSays(psid, "can a person help?")
		if _, err := h.bot.Send(context.Background(), h.botPage(), sendText(psid, "I am the bot, how can I help?")); err != nil {
			t.Fatal(err)
		}
		h.flush()
		// The agent comes to it 22½ hours later: the reply window counts
		// down on the server's clock.
		h.clock.Advance(22*time.Hour + 30*time.Minute)
		ctx, cancel := browser(t)
		defer cancel()
		p := page{t, ctx}
		p.do("open the console", chromedp.Navigate(h.url+"/"))
		p.signIn()
		p.do("open the pending conversation", chromedp.Click(css(`[role="tab"][data-status="pending"]`)),
			press(`#conversations li[data-status="pending"]`),
			shows(`#owner-badge[data-owner="bot"]`),
			shows(`#timeline li[data-kind="bot"]`))
		p.do("the thread's state", shows(`#window-badge[data-window="standard"]`))
		if w := run(p, "reply window", textOf("#window-badge")); !strings.HasPrefix(w, "Standard window: 1 h 2") {
			t.Errorf("window badge = %q, want about 1 h 30 min left", w)
		}
		if who := run(p, "bot message", textOf(`#timeline li[data-kind="bot"] .meta`)); !strings.Contains(who, "automated") {
			t.Errorf("the bot's message is not marked automated: %q", who)
		}

		p.do("take over", press("#take-over"),
			shows("#pending-badge"),
			until(`document.querySelector('#assignee-badge').textContent === 'Assigned to alice'`))
		p.do("take over again", press("#take-over"))
		refusal := run(p, "the refusal", chromedp.Poll[string](`document.querySelector('#action-error').textContent`))
		if strings.Contains(refusal, "409") || strings.Contains(refusal, "conflict") || len(refusal) < 10 {
			t.Errorf("a refused take-over reads %q: want the API's reason in words", refusal)
		}

		const reply = "A person is here."
		p.do("reply while the bot holds the thread",
			chromedp.SendKeys(id("reply"), reply), chromedp.KeyEvent(kb.Enter),
			shows(`#timeline li[data-kind="agent"] .status[data-status="queued"]`))
		if st := run(p, "send state", textOf("#send-state")); st != "waiting for control…" {
			t.Errorf("send state = %q, want waiting for control…", st)
		}
		if n := len(h.sim.Inbox(pageID, psid)); n != 1 {
			t.Errorf("the customer has %d messages before handoverd holds the thread, want 1 (the bot's)", n)
		}
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, "ok, go ahead"); err != nil {
			t.Fatal(err)
		}
		h.flush()
		p.do("the reply goes out", shows(`#timeline li[data-kind="agent"] .status:is([data-status="sent"], [data-status="delivered"])`),
			shows(`#owner-badge[data-owner="agent"]`),
			shows(`#status-badge[data-status="open"]`),
			until(`document.querySelector('#send-state').textContent === ''`))
		waitFor(t, "the reply to reach the customer", func() bool { return len(h.sim.Inbox(pageID, psid)) == 2 })

		p.do("hand back to the bot", press("#hand-back"), shows(`#owner-badge[data-owner="bot"]`))
		waitFor(t, "Facebook to give the thread to the bot", func() bool { return h.sim.Thread(pageID, psid).OwnerAppID == botApp })
		p.do("the hand-back's activity line", until(`document.querySelectorAll('#timeline li[data-kind="activity"]').length === 3`))
		lines := run(p, "activity", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#timeline li[data-kind="activity"]')].map(li => li.textContent.split(' (')[0])`))
		want := []string{"Thread control: idle → bot", "Thread control: bot → agents", "Thread control: agents → bot"}
		if diff := cmp.Diff(want, lines); diff != "" {
			t.Errorf("activity lines (-want +got):\n%s", diff)
		}

		// The stream drops (handoverd restarts) while another customer
		// writes: the page resumes after the last event it saw
		// (Last-Event-ID), so the conversation shows up all the same, and
		// the session outlives the restart.
		addr := strings.TrimPrefix(h.url, "http://")
		h.stop()
		p.do("the stream drops", shows(`#live[data-state="down"]`))
		h.startServer() // another process, on another address, takes the webhook
		h.customerSays("9202", "are you there?")
		h.stop()
		serveAt(t, h, addr)
		p.do("the missed conversation arrives", shows(`#live[data-state="live"]`),
			// Its unread count comes from the message_created event itself.
			until(`[...document.querySelectorAll('#conversations li')].some(li => li.querySelector('.name').textContent === 'Messenger user 9202' && li.querySelector('.unread')?.textContent === '1')`))
	})
}
