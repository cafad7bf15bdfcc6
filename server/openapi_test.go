package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/openapi"
	"github.com/handoverd/handoverd/store/storetest"
)

// undocumentedRoutes is the explicit allow-list of registered routes that
// openapi.yaml deliberately does not describe, each with the reason. An
// entry for a route that no longer exists, or that the document now
// describes, fails the test too.
var undocumentedRoutes = map[string]string{}

// TestOpenAPIDescribesEveryRoute holds the router and openapi.yaml to each
// other: every registered route has an operation, and every operation a
// route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op] = true
	}
	routes := map[string]bool{}
	for _, r := range h.srv.Routes() {
		routes[r] = true
	}
	var noOperation, noRoute, stale []string
	for r := range routes {
		if !documented[r] && undocumentedRoutes[r] == "" {
			noOperation = append(noOperation, r)
		}
	}
	for op := range documented {
		if !routes[op] {
			noRoute = append(noRoute, op)
		}
	}
	for r := range undocumentedRoutes {
		if !routes[r] || documented[r] {
			stale = append(stale, r)
		}
	}
	slices.Sort(noOperation)
	slices.Sort(noRoute)
	slices.Sort(stale)
	if len(noOperation) > 0 {
		t.Errorf("routes without an operation in openapi/openapi.yaml:\n\t%s", strings.Join(noOperation, "\n\t"))
	}
	if len(noRoute) > 0 {
		t.Errorf("operations in openapi/openapi.yaml without a route:\n\t%s", strings.Join(noRoute, "\n\t"))
	}
	if len(stale) > 0 {
		t.Errorf("undocumentedRoutes entries that are gone or documented now:\n\t%s", strings.Join(stale, "\n\t"))
	}
}

// openapiChecker drives real calls through a running handoverd and checks
// each request and response against openapi.yaml.
type openapiChecker struct {
	t      *testing.T
	h      *harness
	doc    *openapi3.T
	router routers.Router
	// called counts the calls per documented operation ("METHOD /path").
	called map[string]int
}

func newOpenAPIChecker(t *testing.T, h *harness) *openapiChecker {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	// The document names the default listen address; the harness listens elsewhere.
	doc.Servers = openapi3.Servers{{URL: h.url}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router for openapi.yaml: %v", err)
	}
	return &openapiChecker{t: t, h: h, doc: doc, router: router, called: map[string]int{}}
}

// The live-update stream (text/event-stream) is checked as text, like
// text/plain; openapiChecker.events checks each event's data itself.
func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
}

// openapiCall is one request for openapiChecker.call.
type openapiCall struct {
	method, path string
	bearer       string
	header       http.Header
	body         []byte
	// status is the status the call must answer.
	status int
	// invalid marks a request that deliberately breaks the document (a
	// missing parameter or credential, a malformed body) to provoke an error:
	// only its response is checked.
	invalid bool
	// sse, for a Server-Sent Events stream, is how many events to read
	// before hanging up (the stream does not end by itself).
	sse int
}

// credentialPresent is the request validator's authentication: the
// credential a documented security scheme names must be in the request.
// (handoverd itself decides whether it is right.)
func credentialPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s, r := in.SecurityScheme, in.RequestValidationInput.Request
	switch {
	case s.Type == "http" && s.Scheme == "bearer":
		if httpapi.BearerToken(r) == "" {
			return fmt.Errorf("no bearer token")
		}
	case s.Type == "apiKey" && s.In == "query":
		if r.URL.Query().Get(s.Name) == "" {
			return fmt.Errorf("no %s query parameter", s.Name)
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) == "" {
			return fmt.Errorf("no %s header", s.Name)
		}
	case s.Type == "apiKey" && s.In == "cookie":
		if _, err := r.Cookie(s.Name); err != nil {
			return fmt.Errorf("no %s cookie", s.Name)
		}
	default:
		return fmt.Errorf("security scheme %s/%s is not handled by this test", s.Type, s.Scheme)
	}
	return nil
}

// call makes c, checks the request (unless c.invalid) and the response
// against the document, and returns the response body.
func (o *openapiChecker) call(c openapiCall) []byte {
	t := o.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, o.h.url+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	name := c.method + " " + c.path
	route, params, err := o.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s: no operation in openapi.yaml: %v", name, err)
	}
	o.called[route.Method+" "+route.Path]++
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: credentialPresent, MultiError: true}}
	if !c.invalid {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s: the request does not match openapi.yaml: %v", name, err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []byte
	if c.sse > 0 && resp.StatusCode == http.StatusOK {
		body = readEvents(t, resp.Body, c.sse)
	} else if body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.status {
		t.Errorf("%s = %d, want %d: %s", name, resp.StatusCode, c.status, body)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s → %d: the response does not match openapi.yaml: %v\nbody: %s", name, resp.StatusCode, err, body)
	}
	return body
}

// TestOpenAPIResponsesMatchDocument drives the documented flows through a
// running handoverd (the simulator plays Facebook, a cooperative bot passes
// control) and validates every request and response against openapi.yaml,
// successes and errors alike; every operation is exercised at least once.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		o := newOpenAPIChecker(t, h)
		const psid = "7101"
		get := func(path, bearer string, status int) []byte {
			t.Helper()
			return o.call(openapiCall{method: http.MethodGet, path: path, bearer: bearer, status: status})
		}

		// Operations: probes, metrics, the document itself.
		get("/healthz", "", 200)
		get("/readyz", "", 200)
		get("/metrics", "", 200)
		if doc := get("/openapi.yaml", "", 200); !bytes.Equal(doc, openapi.Spec()) {
			t.Error("GET /openapi.yaml is not the embedded document")
		}

		// The webhook edge: verification, then signed events.
		if body := get("/webhooks/messenger?hub.mode=subscribe&hub.verify_token="+verify+"&hub.challenge=1158201444", "", 200); string(body) != "1158201444" {
			t.Errorf("verification answered %q", body)
		}
		get("/webhooks/messenger?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", "", 403)
		event := []byte(`{"object":"page","entry":[{"id":"` + pageID + `","time":1,"messaging":[{"sender":{"id":"7199"},"recipient":{"id":"` + pageID + `"},"timestamp":1700000000000,"message":{"mid":"m_openapi","text":"hi"}}]}]}`)
		signed := func(b []byte) http.Header {
			return http.Header{"X-Hub-Signature-256": {messenger.SignatureHeader(ourSecret, b)}}
		}
		if body := o.call(openapiCall{method: http.MethodPost, path: "/webhooks/messenger", header: signed(event), body: event, status: 200}); string(body) != "EVENT_RECEIVED" {
			t.Errorf("webhook answered %q", body)
		}
		o.call(openapiCall{method: http.MethodPost, path: "/webhooks/messenger", body: event, status: 401, invalid: true})
		malformed := []byte(`{"object":"page","entry":[{"messaging":[]}]}`) // an entry without its Page id
		o.call(openapiCall{method: http.MethodPost, path: "/webhooks/messenger", header: signed(malformed), body: malformed, status: 400, invalid: true})
		badItem := []byte(`{"object":"page","entry":[{"id":"` + pageID + `","messaging":[{"sender":{"id":"7199"},"timestamp":1,"message":{"text":"no mid"}}]}]}`)
		o.call(openapiCall{method: http.MethodPost, path: "/webhooks/messenger", header: signed(badItem), body: badItem, status: 200})

		// The thread read API.
		h.customerSays(psid, "I need a human")
		get("/1.0/threads/"+pageID+"/"+psid, agentToken, 200)
		get("/1.0/threads/"+pageID+"/404404", agentToken, 404)
		get("/1.0/threads/777/"+psid, agentToken, 404)
		get("/1.0/threads/"+pageID+"/"+psid, botAPIKey, 403)
		o.call(openapiCall{method: http.MethodGet, path: "/1.0/threads/" + pageID + "/" + psid, status: 401, invalid: true})

		// The Engage Digital Bots API: success and its error answers.
		engage := func(query string, status int, invalid bool) string {
			t.Helper()
			return string(o.call(openapiCall{method: http.MethodPost, path: "/1.0/bots/handover?" + query, status: status, invalid: invalid}))
		}
		if got := engage("access_token="+botAPIKey+"&identity_foreign_id="+psid+"&from=bot&to=agent&type=messenger", 200, false); strings.TrimSpace(got) != success {
			t.Errorf("bot→agent = %s", got)
		}
		h.flush()
		engage("access_token="+botAPIKey+"&from=bot&to=agent&type=messenger", 400, true)
		engage("access_token="+botAPIKey+"&identity_foreign_id="+psid+"&from=bot&to=agent&type=whatsapp", 400, true)
		engage("access_token="+botAPIKey+"&identity_foreign_id=404&from=bot&to=agent", 404, false)
		engage("access_token=nope-nope-nope-nope&identity_foreign_id="+psid+"&from=bot&to=agent", 401, false)
		engage("identity_foreign_id="+psid+"&from=bot&to=agent", 401, true)
		engage("access_token=other-client-token-0123&identity_foreign_id="+psid+"&from=bot&to=agent&page_id="+pageID, 403, false)
		// The bearer header works as well.
		o.call(openapiCall{method: http.MethodPost, path: "/1.0/bots/handover?identity_foreign_id=" + psid + "&from=bot&to=agent&type=messenger", bearer: botAPIKey, status: 200})

		// Interventions.
		openBody, _ := json.Marshal(map[string]string{"page_id": pageID, "identity_foreign_id": psid})
		var iv handover.InterventionView
		if err := json.Unmarshal(o.call(openapiCall{method: http.MethodPost, path: "/1.0/interventions", bearer: agentToken, body: openBody, status: 201}), &iv); err != nil || iv.ID == 0 {
			t.Fatalf("open intervention: %v %+v", err, iv)
		}
		o.call(openapiCall{method: http.MethodPost, path: "/1.0/interventions", bearer: agentToken, body: openBody, status: 409})
		o.call(openapiCall{method: http.MethodPost, path: "/1.0/interventions", bearer: agentToken, body: []byte(`{}`), status: 400, invalid: true})
		o.call(openapiCall{method: http.MethodPost, path: "/1.0/interventions", bearer: agentToken, body: []byte(`{"identity_foreign_id":`), status: 400, invalid: true})
		engage("access_token="+botAPIKey+"&identity_foreign_id="+psid+"&from=agent&to=bot&app_id="+botApp, 409, false)

		ivPath := fmt.Sprintf("/1.0/interventions/%d", iv.ID)
		var msg handover.AgentMessageView
		if err := json.Unmarshal(o.call(openapiCall{method: http.MethodPost, path: ivPath + "/messages", bearer: agentToken, body: []byte(`{"text":"Hi, Alice here"}`), status: 201}), &msg); err != nil || msg.Status != "sent" {
			t.Errorf("agent message: %v %+v", err, msg)
		}
		o.call(openapiCall{method: http.MethodPost, path: ivPath + "/messages", bearer: agentToken,
			body: []byte(`{"message":{"text":"Pick one","quick_replies":[{"content_type":"text","title":"Billing","payload":"BILLING"}]}}`), status: 201})
		o.call(openapiCall{method: http.MethodPost, path: ivPath + "/messages", bearer: agentToken, body: []byte(`{"text":"a","message":{"text":"b"}}`), status: 400, invalid: true})
		get(ivPath+"/messages", agentToken, 200)
		// The interventions endpoints take the token as a query parameter too.
		get(ivPath+"/messages?access_token="+agentToken, "", 200)
		get("/1.0/interventions?identity_foreign_id="+psid, agentToken, 200)
		o.call(openapiCall{method: http.MethodGet, path: "/1.0/interventions?page_id=" + pageID, bearer: agentToken, status: 400, invalid: true})
		get(ivPath, agentToken, 200)
		get(ivPath, botAPIKey, 403)
		get("/1.0/interventions/999999", agentToken, 404)
		o.call(openapiCall{method: http.MethodPut, path: ivPath + "/close", bearer: agentToken, status: 200})
		o.call(openapiCall{method: http.MethodPost, path: ivPath + "/messages", bearer: agentToken, body: []byte(`{"text":"too late"}`), status: 409})
		h.flush()
		get("/1.0/threads/"+pageID+"/"+psid, agentToken, 200)

		// The inbox API, its live updates and its outbound webhooks.
		checkInboxAPI(t, h, o, psid)

		// The handover resource API: offers, accepts, declines.
		checkHandoversAPI(t, h, o)

		// The Lexer-compatible Chatbot User API: claims and echoes.
		checkLexerAPI(t, h, o)

		// The relay bots' event API, on a handoverd whose Page a relay bot serves.
		checkRelayAPI(t, b, o)

		// The agents' console: its page, its files and its sessions.
		checkConsoleAPI(t, o)

		// The Pages and their modes (admins), and /readyz naming a Page
		// whose config and Meta disagree.
		checkPagesAPI(t, h, o)

		ops, err := openapi.Operations()
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if o.called[op] == 0 {
				t.Errorf("%s is documented but not exercised by this test: add a real call", op)
			}
		}

		// Last, as it restarts handoverd: the Chatbot User API's rate limit.
		checkLexerRateLimit(t, h)
	})
}

// rehost points the checker at the harness's current address (after a restart).
func (o *openapiChecker) rehost() {
	o.t.Helper()
	o.doc.Servers = openapi3.Servers{{URL: o.h.url}}
	router, err := gorillamux.NewRouter(o.doc)
	if err != nil {
		o.t.Fatalf("router for openapi.yaml: %v", err)
	}
	o.router = router
}

// checkPagesAPI calls GET /1.0/pages before and after an app_roles
// webhook that makes the config wrong, /readyz with the warning, and GET
// /1.0/analytics.
func checkPagesAPI(t *testing.T, h *harness, o *openapiChecker) {
	t.Helper()
	h.withAdmin()
	o.rehost()
	get := func(path, bearer string, status int) []byte {
		t.Helper()
		return o.call(openapiCall{method: http.MethodGet, path: path, bearer: bearer, status: status})
	}
	get("/1.0/pages", adminToken, 200)
	get("/1.0/analytics?page_id="+pageID+"&from=2026-11-01&to=2026-11-02", agentToken, 200)
	get("/1.0/analytics?page_id="+pageID+"&format=csv", agentToken, 200)
	get("/1.0/analytics?page_id="+pageID+"&from=2026-11-03&to=2026-11-02", agentToken, 400)
	o.call(openapiCall{method: http.MethodGet, path: "/1.0/analytics", bearer: agentToken, status: 400, invalid: true})
	get("/1.0/analytics?page_id=777", agentToken, 404)
	get("/1.0/analytics?page_id="+pageID, botAPIKey, 403)
	o.call(openapiCall{method: http.MethodGet, path: "/1.0/analytics?page_id=" + pageID, status: 401, invalid: true})
	get("/1.0/pages", agentToken, 403)
	o.call(openapiCall{method: http.MethodGet, path: "/1.0/pages", status: 401, invalid: true})
	if err := h.sim.SetAppRoles(pageID, map[string][]string{"333": {"primary_receiver"}, ourApp: {"secondary_receiver"}}); err != nil {
		t.Fatal(err)
	}
	h.flush()
	var pages struct{ Pages []handover.PageView }
	if err := json.Unmarshal(get("/1.0/pages", adminToken, 200), &pages); err != nil || len(pages.Pages) != 1 || pages.Pages[0].Agrees {
		t.Errorf("pages after app_roles: %v %+v", err, pages)
	}
	if body := get("/readyz", "", 200); !strings.Contains(string(body), `"warnings"`) {
		t.Errorf("readyz names no warning: %s", body)
	}
	// Back to what the config says, for what follows.
	if err := h.sim.SetAppRoles(pageID, map[string][]string{botApp: {"primary_receiver"}, ourApp: {"secondary_receiver"}}); err != nil {
		t.Fatal(err)
	}
	h.flush()
}

// readEvents reads a Server-Sent Events stream until n events have come
// and returns what it read.
func readEvents(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	var out bytes.Buffer
	br := bufio.NewReader(r)
	for seen := 0; ; {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			t.Fatalf("the event stream ended after %d of %d events: %v\n%s", seen, n, err, out.Bytes())
		}
		if strings.HasPrefix(line, "data: ") {
			seen++
		}
		if seen == n && line == "\n" {
			return out.Bytes()
		}
	}
}

// schema returns a component schema of the document.
func (o *openapiChecker) schema(name string) *openapi3.Schema {
	o.t.Helper()
	s := o.doc.Components.Schemas[name]
	if s == nil || s.Value == nil {
		o.t.Fatalf("openapi.yaml has no schema %s", name)
	}
	return s.Value
}

// events checks each event of a Server-Sent Events body against the
// document's InboxEvent and returns the event names seen, with the last id.
func (o *openapiChecker) events(stream []byte) (map[string]int, int64) {
	t := o.t
	t.Helper()
	seen := map[string]int{}
	var last int64
	var id, name string
	for _, line := range strings.Split(string(stream), "\n") {
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var v any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err != nil {
				t.Errorf("event %s: data is not JSON: %v", id, err)
				continue
			}
			if err := o.schema("InboxEvent").VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
				t.Errorf("event %s (%s) does not match InboxEvent: %v\n%s", id, name, err, line)
			}
			if m, _ := v.(map[string]any); m == nil || m["event"] != name {
				t.Errorf("event %s: the event line says %q, the data %v", id, name, v)
			}
			seen[name]++
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil || n <= last {
				t.Errorf("event id %q does not follow %d", id, last)
			}
			last = n
		}
	}
	return seen, last
}

// webhookRecorder records outbound webhook deliveries.
type webhookRecorder struct {
	mu  sync.Mutex
	got []*http.Request
	raw [][]byte
}

func (w *webhookRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.got, w.raw = append(w.got, r), append(w.raw, b)
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

// checkInboxEventWebhook checks every delivery against the inboxEvents
// callback of POST .../inboxes: its headers, its signature and its body.
func (o *openapiChecker) checkInboxEventWebhook(rec *webhookRecorder, secret string) {
	t := o.t
	t.Helper()
	create := o.doc.Paths.Value("/api/v1/accounts/{account_id}/inboxes").Post
	cb := create.Callbacks["inboxEvents"]
	if cb == nil || cb.Value == nil || cb.Value.Value("{$request.body#/channel/webhook_url}") == nil {
		t.Fatal("POST .../inboxes has no inboxEvents callback on {$request.body#/channel/webhook_url}")
	}
	op := cb.Value.Value("{$request.body#/channel/webhook_url}").Post
	body := op.RequestBody.Value.Content.Get("application/json").Schema.Value
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) == 0 {
		t.Fatal("no webhook deliveries")
	}
	for i, r := range rec.got {
		raw := rec.raw[i]
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("delivery %d: %s %q", i, r.Method, r.Header.Get("Content-Type"))
		}
		for _, p := range op.Parameters {
			v := r.Header.Get(p.Value.Name)
			if v == "" {
				if p.Value.Required {
					t.Errorf("delivery %d lacks %s", i, p.Value.Name)
				}
				continue
			}
			if err := p.Value.Schema.Value.VisitJSON(v, openapi3.EnableFormatValidation()); err != nil {
				t.Errorf("delivery %d: %s %q does not match openapi.yaml: %v", i, p.Value.Name, v, err)
			}
		}
		ts, _ := strconv.ParseInt(r.Header.Get(inbox.HeaderTimestamp), 10, 64)
		if got, want := r.Header.Get(inbox.HeaderSignature), inbox.SignWebhook(secret, ts, raw); got != want {
			t.Errorf("delivery %d: signature %s, want %s", i, got, want)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("delivery %d is not JSON: %v", i, err)
			continue
		}
		if err := body.VisitJSON(v, openapi3.VisitAsRequest(), openapi3.MultiErrors()); err != nil {
			t.Errorf("delivery %d does not match the inboxEvents callback body: %v\n%s", i, err, raw)
		}
	}
}

// checkInboxAPI drives every inbox route — successes and errors — through
// the checker: an API inbox with a contact, a conversation and messages;
// the Messenger conversation of psid (the bot owns its thread) with an
// agent reply; then the live-update stream of all the account's events and
// the signed deliveries to the API inbox's webhook.
func checkInboxAPI(t *testing.T, h *harness, o *openapiChecker, psid string) {
	const acct = "/api/v1/accounts/1"
	token := http.Header{}
	token.Set("api_access_token", agentToken)
	call := func(method, path, body string, status int, invalid bool) map[string]any {
		t.Helper()
		c := openapiCall{method: method, path: acct + path, header: token, status: status, invalid: invalid}
		if body != "" {
			c.body = []byte(body)
		}
		var out map[string]any
		if b := o.call(c); len(b) > 0 && b[0] == '{' {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		return out
	}
	id := func(v any) int { f, _ := v.(float64); return int(f) }

	// Inboxes: the Page's, then an API inbox with a webhook.
	list := call(http.MethodGet, "/inboxes", "", 200, false)
	var messengerInbox int
	for _, ib := range list["payload"].([]any) {
		if ib := ib.(map[string]any); ib["page_id"] == pageID {
			messengerInbox = id(ib["id"])
		}
	}
	if messengerInbox == 0 {
		t.Fatalf("no inbox for page %s: %v", pageID, list)
	}
	o.call(openapiCall{method: http.MethodGet, path: acct + "/inboxes", bearer: agentToken, status: 200})
	o.call(openapiCall{method: http.MethodGet, path: acct + "/inboxes", status: 401, invalid: true})
	o.call(openapiCall{method: http.MethodGet, path: acct + "/inboxes", bearer: botAPIKey, status: 403})
	o.call(openapiCall{method: http.MethodGet, path: "/api/v1/accounts/2/inboxes", header: token, status: 403})
	o.call(openapiCall{method: http.MethodGet, path: "/api/v1/accounts/acme/inboxes", header: token, status: 404, invalid: true})

	rec := &webhookRecorder{}
	recv := httptest.NewServer(rec)
	defer recv.Close()
	ib := call(http.MethodPost, "/inboxes", `{"name":"Website","channel":{"type":"api","webhook_url":"`+recv.URL+`/hook"}}`, 200, false)
	apiInbox, secret := id(ib["id"]), fmt.Sprint(ib["webhook_secret"])
	if apiInbox == 0 || len(secret) < 32 {
		t.Fatalf("create inbox = %v", ib)
	}
	call(http.MethodPost, "/inboxes", `{"name":"Mail","channel":{"type":"email"}}`, 400, true)
	call(http.MethodPost, "/inboxes", `{"name":"Website","channel":{"type":"api","webhook_url":"ftp://example.com"}}`, 400, true)
	call(http.MethodPost, "/inboxes", `{"name":`, 400, true)

	// Contacts.
	contact := call(http.MethodPost, "/contacts", fmt.Sprintf(`{"inbox_id":%d,"name":"Jane Doe","email":"jane@example.com",
		"phone_number":"+33612345678","avatar":null,"avatar_url":"https://example.com/jane.png","identifier":"crm-4711","custom_attributes":{"plan":"gold"}}`, apiInbox), 200, false)
	contactID := id(contact["id"])
	source := contact["contact_inboxes"].([]any)[0].(map[string]any)["source_id"].(string)
	call(http.MethodPost, "/contacts", fmt.Sprintf(`{"inbox_id":"%d"}`, messengerInbox), 422, false)
	call(http.MethodPost, "/contacts", `{"inbox_id":999999}`, 400, false)
	call(http.MethodPost, "/contacts", fmt.Sprintf(`{"inbox_id":%d,"email":"nope"}`, apiInbox), 400, false)
	call(http.MethodPost, "/contacts", `{"name":"no inbox"}`, 400, true)
	call(http.MethodPost, "/contacts", `{"inbox_id":"two"}`, 400, true)
	call(http.MethodGet, fmt.Sprintf("/contacts/%d", contactID), "", 200, false)
	call(http.MethodGet, "/contacts/999999", "", 404, false)
	call(http.MethodGet, "/contacts/jane", "", 404, true)

	// Conversations in the API inbox.
	conv := call(http.MethodPost, "/conversations", fmt.Sprintf(`{"source_id":%q,"inbox_id":"%d","contact_id":"%d","additional_attributes":{},
		"custom_attributes":{"priority_conversation_number":3},"status":"open","assignee_id":"","team_id":""}`, source, apiInbox, contactID), 200, false)
	convPath := fmt.Sprintf("/conversations/%d", id(conv["id"]))
	call(http.MethodPost, "/conversations", `{"source_id":"nope"}`, 400, false)
	call(http.MethodPost, "/conversations", fmt.Sprintf(`{"source_id":%q,"contact_id":999999}`, source), 400, false)
	call(http.MethodPost, "/conversations", `{"source_id":"`+psid+`"}`, 422, false)
	call(http.MethodPost, "/conversations", fmt.Sprintf(`{"source_id":%q,"status":"closed"}`, source), 400, true)
	call(http.MethodPost, "/conversations", `{}`, 400, true)
	call(http.MethodGet, "/conversations", "", 200, false)
	call(http.MethodGet, fmt.Sprintf("/conversations?status=all&assignee_type=unassigned&inbox_id=%d&page=1", apiInbox), "", 200, false)
	call(http.MethodGet, "/conversations?status=open&assignee_type=me&assignee_id=1&page=2", "", 200, false)
	call(http.MethodGet, "/conversations?status=closed", "", 400, true)
	call(http.MethodGet, "/conversations?page=0", "", 400, true)
	call(http.MethodGet, convPath, "", 200, false)
	call(http.MethodGet, "/conversations/999999", "", 404, false)
	call(http.MethodGet, "/conversations/latest", "", 404, true)

	// Messages.
	msg := call(http.MethodPost, convPath+"/messages", `{"content":"This is a incoming message from API Channel","message_type":"incoming",
		"private":false,"content_type":"text","content_attributes":{}}`, 200, false)
	note := call(http.MethodPost, convPath+"/messages", `{"content":"VIP customer, be nice","message_type":"outgoing","private":true,"content_type":"cards","content_attributes":{}}`, 200, false)
	alice := id(note["sender"].(map[string]any)["id"])
	call(http.MethodPost, convPath+"/messages", `{"content":"What is it about?","message_type":1,"content_type":"input_select",
		"content_attributes":{"items":[{"title":"Billing","value":"BILLING"}]}}`, 200, false)
	call(http.MethodPost, convPath+"/messages", `{"content":"  "}`, 400, false)
	call(http.MethodPost, convPath+"/messages", `{"content":"x","message_type":"sideways"}`, 400, true)
	call(http.MethodPost, convPath+"/messages", `{"content":"x","content_type":"video"}`, 400, true)
	call(http.MethodPost, "/conversations/999999/messages", `{"content":"x"}`, 404, false)
	call(http.MethodGet, convPath+"/messages", "", 200, false)
	call(http.MethodGet, fmt.Sprintf("%s/messages?before=%d", convPath, id(msg["id"])+1), "", 200, false)
	call(http.MethodGet, convPath+"/messages?before=last", "", 400, true)
	call(http.MethodGet, "/conversations/999999/messages", "", 404, false)

	// Assignments.
	if a := call(http.MethodPost, convPath+"/assignments", fmt.Sprintf(`{"assignee_id":"%d"}`, alice), 200, false); a["name"] != "alice" {
		t.Errorf("assign = %v", a)
	}
	if b := o.call(openapiCall{method: http.MethodPost, path: acct + convPath + "/assignments", header: token, body: []byte(`{"assignee_id":null}`), status: 200}); strings.TrimSpace(string(b)) != "null" {
		t.Errorf("unassign = %s, want null", b)
	}
	call(http.MethodPost, convPath+"/assignments", fmt.Sprintf(`{"assignee_id":%d}`, alice), 200, false)
	call(http.MethodPost, convPath+"/assignments", `{"assignee_id":999}`, 400, false)
	call(http.MethodPost, "/conversations/999999/assignments", `{}`, 404, false)

	// Chatwoot's routes: agents, teams, contacts, labels, filters, attachments.
	checkChatwootRoutes(t, o, call, apiInbox, messengerInbox, contactID, convPath)

	// Status: toggle without a body, set one, refuse an unknown one.
	toggled := call(http.MethodPost, convPath+"/toggle_status", "", 200, false)
	if p := toggled["payload"].(map[string]any); p["current_status"] != "resolved" || p["success"] != true {
		t.Errorf("toggle = %v", toggled)
	}
	call(http.MethodPost, convPath+"/toggle_status", `{"status":"open"}`, 200, false)
	call(http.MethodPost, convPath+"/toggle_status", `{"status":"closed"}`, 400, true)
	call(http.MethodPost, "/conversations/999999/toggle_status", `{"status":"resolved"}`, 404, false)

	// The Messenger conversation: the bot owns the thread; an agent reply
	// takes it, goes out, and resolving gives the thread back.
	convs := call(http.MethodGet, fmt.Sprintf("/conversations?status=all&inbox_id=%d", messengerInbox), "", 200, false)
	var mPath string
	for _, c := range convs["data"].(map[string]any)["payload"].([]any) {
		if c := c.(map[string]any); c["psid"] == psid {
			mPath = fmt.Sprintf("/conversations/%d", id(c["id"]))
		}
	}
	if mPath == "" {
		t.Fatalf("no conversation for psid %s: %v", psid, convs)
	}
	call(http.MethodGet, mPath, "", 200, false)
	h.clock.Advance(time.Minute) // a later moment than the give-back above, as in real life
	reply := call(http.MethodPost, mPath+"/messages", `{"content":"Hi from the inbox","message_type":"outgoing"}`, 200, false)
	waitFor(t, "the inbox reply to go out", func() bool {
		h.flush() // the bot's pass_thread_control, then our send's echo
		_, msgs := h.api(http.MethodGet, mPath+"/messages", nil)
		for _, m := range msgs["payload"].([]any) {
			if m := m.(map[string]any); m["id"] == reply["id"] {
				return m["status"] != "queued"
			}
		}
		return false
	})
	h.flush()
	call(http.MethodPost, mPath+"/messages", `{"content":"from the customer?","message_type":"incoming"}`, 422, false)
	call(http.MethodPost, mPath+"/messages", `{"content":"a card","content_type":"cards"}`, 422, false)
	call(http.MethodGet, mPath+"/messages", "", 200, false)
	call(http.MethodPost, mPath+"/toggle_status", `{"status":"resolved"}`, 200, false)
	h.flush()

	// Live updates: the account's whole log from the start, every event
	// checked against InboxEvent; then a resumed read and a bad resume.
	n := h.count(`SELECT count(*) FROM inbox_events WHERE account_id = 1`)
	replay := token.Clone()
	replay.Set("Last-Event-ID", "0")
	seen, last := o.events(o.call(openapiCall{method: http.MethodGet, path: acct + "/events", header: replay, status: 200, sse: n}))
	for _, ev := range []string{"conversation_created", "conversation_status_changed", "conversation_owner_changed", "assignee_changed", "message_created", "message_updated"} {
		if seen[ev] == 0 {
			t.Errorf("the event stream had no %s event (saw %v)", ev, seen)
		}
	}
	if resumed, _ := o.events(o.call(openapiCall{method: http.MethodGet, path: fmt.Sprintf("%s/events?since=%d", acct, last-1), bearer: agentToken, status: 200, sse: 1})); len(resumed) != 1 {
		t.Errorf("resumed stream = %v, want the last event", resumed)
	}
	call(http.MethodGet, "/events?since=yesterday", "", 400, true)
	o.call(openapiCall{method: http.MethodGet, path: acct + "/events", bearer: botAPIKey, status: 403})

	// The API inbox's webhook: every event of its conversation, signed.
	deadline := time.Now().Add(10 * time.Second)
	for h.count(`SELECT count(*) FROM outbox WHERE status = 'pending'`) > 0 {
		if _, err := h.srv.Inbox().DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook deliveries still pending")
		}
		time.Sleep(5 * time.Millisecond) // another attempt may hold a lease
	}
	if failed := h.count(`SELECT count(*) FROM outbox WHERE status <> 'delivered'`); failed > 0 {
		t.Errorf("%d webhook deliveries failed", failed)
	}
	o.checkInboxEventWebhook(rec, secret)
}

// lexerCall posts body to the Chatbot User API's action (claim or echo) for
// client, with token in Auth-Api-Token (none when empty), through the
// checker, and returns the trimmed response body.
func (o *openapiChecker) lexerCall(action, client, token, body string, status int, invalid bool) string {
	o.t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Auth-Api-Token", token)
	}
	return strings.TrimSpace(string(o.call(openapiCall{method: http.MethodPost, path: "/api/clients/" + client + "/bots/objects/" + action,
		header: header, body: []byte(body), status: status, invalid: invalid})))
}

// checkLexerAPI drives the Chatbot User API through the checker: claims
// and echoes in each accepted published_at form (before and after their
// message lands, and repeated), every error answer, and the claimed and
// echoed messages as the inbox API shows them.
func checkLexerAPI(t *testing.T, h *harness, o *openapiChecker) {
	const psid = "7301"
	const ok = `{"status":"ok"}`
	lexer := func(action, client, token, body string, status int, invalid bool, want string) {
		t.Helper()
		if got := o.lexerCall(action, client, token, body, status, invalid); want != "" && got != want {
			t.Errorf("%s %s = %s, want %s", action, body, got, want)
		}
	}
	claim := func(mid, publishedAt, accountID string) string {
		return fmt.Sprintf(`{"object_id":%q,"published_at":%s,"source":"facebook","state":"closed","account_id":%s}`, mid, publishedAt, accountID)
	}

	// Claims: after the message's webhook, repeated, and before it.
	mid := h.customerSays(psid, "claim me")
	lexer("claim", "1", botAPIKey, claimBody(mid), 201, false, ok)
	lexer("claim", "1", botAPIKey, claimBody(mid), 201, false, ok)
	lexer("claim", "1", botAPIKey, claim(mid, "1458692752478", `"`+pageID+`"`), 201, false, ok)
	lexer("claim", "1", botAPIKey, claim("m_openapi_early", `"1458692752"`, pageID), 201, false, ok)
	lexer("claim", "1", botAPIKey, claim("m_openapi_early2", `"2017-08-01T07:29:44+02:00"`, `"`+pageID+`"`), 201, false, ok)
	lexer("claim", "1", botAPIKey, claim("m_openapi_early3", `1458692752.5`, `"`+pageID+`"`), 201, false, ok)

	// Echoes: before the bot's message lands, and after, repeated.
	sent, err := h.bot.Send(context.Background(), h.botPage(), sendText(psid, "automated answer"))
	if err != nil {
		t.Fatal(err)
	}
	lexer("echo", "1", botAPIKey, echoBody(sent.MessageID), 201, false, ok)
	h.flush()
	sent2, err := h.bot.Send(context.Background(), h.botPage(), sendText(psid, "second automated answer"))
	if err != nil {
		t.Fatal(err)
	}
	h.flush()
	echo2 := fmt.Sprintf(`{"object_id":%q,"published_at":"2017-08-01t05:29:44z","source":"facebook","account_id":%s,"state":"closed"}`, sent2.MessageID, pageID)
	lexer("echo", "1", botAPIKey, echo2, 201, false, ok)
	lexer("echo", "1", botAPIKey, echo2, 201, false, ok)

	// The inbox shows the claimed message closed by the bot, the echoed
	// ones automated (MessageView checked against the document).
	m := h.message("claim me")
	if m == nil {
		t.Fatal("no inbox message for the claimed customer message")
	}
	token := http.Header{}
	token.Set("api_access_token", agentToken)
	var list struct {
		Payload []map[string]any `json:"payload"`
	}
	body := o.call(openapiCall{method: http.MethodGet, path: fmt.Sprintf("/api/v1/accounts/1/conversations/%d/messages", int(m["conversation_id"].(float64))),
		header: token, status: 200})
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("messages: %v: %s", err, body)
	}
	seen := map[string]bool{}
	for _, msg := range list.Payload {
		switch msg["content"] {
		case "claim me":
			seen["claim"] = msg["claimed_by"] == "support-bot" && msg["state"] == "closed"
		case "automated answer", "second automated answer":
			seen[msg["content"].(string)] = msg["automated"] == true && msg["sender"].(map[string]any)["type"] == "bot"
		}
	}
	for _, want := range []string{"claim", "automated answer", "second automated answer"} {
		if !seen[want] {
			t.Errorf("%s: not applied in the inbox: %v", want, list.Payload)
		}
	}

	// 400: an account that is not a Page of the bot's client; malformed JSON.
	lexer("claim", "1", botAPIKey, claim(mid, "1458692752478", `"12345"`), 400, false,
		`{"status":"400 Invalid Account","error":"Cannot find an integrated account: 12345"}`)
	lexer("echo", "1", botAPIKey, `{"object_id":"m_x","published_at":1458692752478,"source":"facebook","account_id":12345}`, 400, false,
		`{"status":"400 Invalid Account","error":"Cannot find an integrated account: 12345"}`)
	lexer("claim", "2", "other-client-token-0123", claimBody(mid), 400, false,
		`{"status":"400 Invalid Account","error":"Cannot find an integrated account: `+pageID+`"}`)
	for _, bad := range []string{`{"object_id":`, `[1]`, `null`} {
		var e map[string]any
		got := o.lexerCall("claim", "1", botAPIKey, bad, 400, true)
		if err := json.Unmarshal([]byte(got), &e); err != nil || len(e) != 1 || e["error"] == "" {
			t.Errorf("claim %s = %s, want {\"error\":\"...\"}", bad, got)
		}
	}
	// 413: over 64 KiB.
	lexer("echo", "1", botAPIKey, fmt.Sprintf(`{"object_id":%q,"published_at":1,"source":"facebook","account_id":%q}`, strings.Repeat("m", 64<<10), pageID), 413, false,
		`{"error":"request body is over 65536 bytes"}`)

	// 422: each missing field, in order, and each invalid value.
	for _, tt := range []struct{ action, body, want string }{
		{"claim", `{"published_at":1458692752478,"source":"facebook","state":"closed","account_id":"1001"}`, "object_id is missing"},
		{"claim", `{"object_id":"m","published_at":null,"source":"facebook","state":"closed","account_id":"1001"}`, "published_at is missing"},
		{"claim", `{"object_id":"m","published_at":1,"source":"","state":"closed","account_id":"1001"}`, "source is missing"},
		{"claim", `{"object_id":"m","published_at":1,"source":"facebook","account_id":"1001"}`, "state is missing"},
		{"claim", `{"object_id":"m","published_at":1,"source":"facebook","state":"closed"}`, "account_id is missing"},
		{"echo", `{"source":"facebook","account_id":"1001"}`, "object_id is missing"},
		{"echo", `{"object_id":"m","source":"facebook","account_id":"1001"}`, "published_at is missing"},
		{"echo", `{"object_id":"m","published_at":1,"account_id":"1001"}`, "source is missing"},
		{"echo", `{"object_id":"m","published_at":1,"source":"facebook"}`, "account_id is missing"},
		{"claim", `{"object_id":true,"published_at":1,"source":"facebook","state":"closed","account_id":"1001"}`, "object_id does not have a valid value"},
		{"claim", strings.Replace(claimBody(mid), `"facebook"`, `"twitter"`, 1), "source does not have a valid value"},
		{"claim", strings.Replace(claimBody(mid), `"closed"`, `"open"`, 1), "state does not have a valid value"},
		{"claim", strings.Replace(claimBody(mid), `"2017-08-01t05:29:44Z"`, `"yesterday"`, 1), "published_at does not have a valid value"},
		{"echo", strings.Replace(echoBody(mid), `1458692752478`, `-5`, 1), "published_at does not have a valid value"},
		{"echo", strings.Replace(echoBody(mid), `"facebook"`, `"twitter"`, 1), "source does not have a valid value"},
	} {
		lexer(tt.action, "1", botAPIKey, tt.body, 422, true, `{"error":"`+tt.want+`"}`)
	}

	// 401 and 403.
	lexer("claim", "1", "", claimBody(mid), 401, true, `{"error":"missing API token"}`)
	lexer("echo", "1", "no-such-token-0123456789", echoBody(mid), 401, false, `{"error":"invalid API token"}`)
	lexer("claim", "1", agentToken, claimBody(mid), 403, false, `{"error":"role agent may not use this API"}`)
	lexer("echo", "2", botAPIKey, echoBody(mid), 403, false, `{"error":"this token may not act for client 2"}`)
	lexer("claim", "acme", botAPIKey, claimBody(mid), 403, true, `{"error":"this token may not act for client acme"}`)
}

// checkLexerRateLimit restarts handoverd with a rate of one call per 100 s
// and checks the second call of a bot token answers 429 with Retry-After,
// against the document.
func checkLexerRateLimit(t *testing.T, h *harness) {
	h.cfg.Claims.RatePerSecond, h.cfg.Claims.Burst = 0.01, 1
	h.restart()
	o := newOpenAPIChecker(t, h) // the new process listens elsewhere
	if got := o.lexerCall("echo", "1", botAPIKey, echoBody("m_openapi_rate"), 201, false); got != `{"status":"ok"}` {
		t.Errorf("first echo = %s", got)
	}
	for _, action := range []string{"echo", "claim"} {
		if got := o.lexerCall(action, "1", botAPIKey, claimBody("m_openapi_rate"), 429, false); got != `{"error":"rate limit exceeded"}` {
			t.Errorf("%s over the rate = %s", action, got)
		}
	}
}

// checkRelayAPI drives the relay bots' event API (both routes) through a
// second handoverd whose Page is served by a relay bot (relayHarness: the
// seed's Python sample bot), on a fresh database of b's dialect: events
// accepted one by one and as a list, and every error answer, each request
// and response checked against the document. Its calls count for o.
func checkRelayAPI(t *testing.T, b storetest.Backend, o *openapiChecker) {
	fresh := storetest.SQLite
	if b.Name == "postgres" {
		fresh = storetest.Postgres
	}
	h, _ := relayHarness(t, fresh(t))
	r := newOpenAPIChecker(t, h)
	defer func() {
		for op, n := range r.called {
			o.called[op] += n
		}
	}()
	const v1, unversioned = "/api/chatbot/v1/events", "/api/chatbot/events"
	const relayAPIToken = "relay-bot-api-token-0123456789" // relayHarness's bot's api_token
	type errorBody struct {
		Error struct{ Code, Field, Message string }
	}
	post := func(path, token, body string, status int, invalid bool) errorBody {
		t.Helper()
		header := http.Header{}
		if token != "" {
			header.Set("SECURITY-TOKEN", token)
		}
		got := r.call(openapiCall{method: http.MethodPost, path: path, header: header, body: []byte(body), status: status, invalid: invalid})
		var e errorBody
		if status == http.StatusOK {
			if s := strings.TrimSpace(string(got)); s != `{"status":"ok"}` {
				t.Errorf("POST %s = %s, want {\"status\":\"ok\"}", path, s)
			}
		} else if err := json.Unmarshal(got, &e); err != nil {
			t.Errorf("POST %s: %v: %s", path, err, got)
		}
		return e
	}
	event := func(cid, name, payload string) string {
		return fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":%q,"payload":%s}}`, cid, name, payload)
	}
	// session starts a relay session for psid (the sample bot welcomes the
	// customer) and returns its cid.
	session := func(psid string) string {
		t.Helper()
		h.customerSays(psid, "hi")
		waitFor(t, "the welcome", func() bool { return len(h.customerInbox(psid)) == 1 })
		var cid string
		if err := h.srv.DB().Reader().QueryRow(`SELECT cid FROM relay_sessions WHERE psid = '` + psid + `'`).Scan(&cid); err != nil {
			t.Fatalf("the relay session of %s: %v", psid, err)
		}
		return cid
	}
	const psid = "7401"
	cid := session(psid)

	// 200: one event, and a list (the seed's Python sample reply, for this
	// session). Both run: the customer gets the messages.
	counted := 0 // requests for cid the rate limit has counted
	post(v1, relayAPIToken, event(cid, "message", `{"body":"Your order **4711** was shipped","text_format":"markdown_v1"}`), 200, false)
	counted++
	seed, err := os.ReadFile("../userlike/testdata/seed/python_name_reply.json")
	if err != nil {
		t.Fatal(err)
	}
	post(unversioned, relayAPIToken, strings.ReplaceAll(string(seed), "chatbot::258:a56785fb6fb84edd890905913b0c0821", cid), 200, false)
	counted++
	waitFor(t, "the bot's events to reach the customer", func() bool { return len(h.customerInbox(psid)) == 3 })
	if got := h.customerInbox(psid)[1:]; got[0] != "Your order *4711* was shipped" || got[1] != "Hello Jane Doe! Could you tell me your email as well?" {
		t.Errorf("the customer got %q", got)
	}

	// 401: no token, an unknown one.
	for _, tt := range []struct {
		path, token string
		invalid     bool
	}{{v1, "", true}, {unversioned, "no-such-relay-token-0123", false}} {
		if e := post(tt.path, tt.token, event(cid, "message", `{"body":"x"}`), 401, tt.invalid); e.Error.Code != "unauthorized" || e.Error.Field != "SECURITY-TOKEN" {
			t.Errorf("token %q = %+v", tt.token, e)
		}
	}

	// 400: what the parser refuses (nothing of it counts for the rate),
	// and a cid that is no session of this bot.
	for _, tt := range []struct {
		path, body, field string
		invalid           bool
	}{
		{v1, event(cid, "teleport", `{}`), "packet.name", true},
		{unversioned, event(cid, "message", fmt.Sprintf(`{"body":%q}`, strings.Repeat("x", 5001))), "packet.payload.body", true},
		{v1, fmt.Sprintf(`{"info":{"cid":%q,"context":{"k":%q}},"packet":{"name":"end"}}`, cid, strings.Repeat("y", 11000)), "info.context", false},
		{unversioned, "[" + event(cid, "message", `{"body":"a"}`) + "," + event("chatbot::other", "message", `{"body":"b"}`) + "]", "events[1].info.cid", false},
		{v1, `{"info":`, "", true},
		{unversioned, event("chatbot::258:a56785fb6fb84edd890905913b0c0821", "message", `{"body":"x"}`), "cid", false},
	} {
		if e := post(tt.path, relayAPIToken, tt.body, 400, tt.invalid); e.Error.Code != "invalid" || e.Error.Field != tt.field {
			t.Errorf("%.80s = %+v, want invalid %q", tt.body, e, tt.field)
		}
	}

	// 413: over 256 KiB.
	if e := post(v1, relayAPIToken, event(cid, "message", fmt.Sprintf(`{"body":%q}`, strings.Repeat("z", 300<<10))), 413, true); e.Error.Code != "too_large" {
		t.Errorf("a big body = %+v", e)
	}

	// 409: a session the bot ended.
	ended := session("7402")
	post(unversioned, relayAPIToken, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"end"}}`, ended), 200, false)
	waitFor(t, "the end event to run", func() bool {
		return h.count(`SELECT count(*) FROM relay_sessions WHERE psid = '7402' AND status = 'ended'`) == 1
	})
	if e := post(v1, relayAPIToken, event(ended, "message", `{"body":"too late"}`), 409, false); e.Error.Code != "conflict" {
		t.Errorf("an ended session = %+v", e)
	}

	// 429: the 21st request in a minute for a cid, on either route, with
	// Retry-After: 60 (the fake clock stands still).
	for ; counted < 20; counted++ {
		path := []string{v1, unversioned}[counted%2]
		post(path, relayAPIToken, event(cid, "conversation_update", `{"subject":"Delivery status","topics":["shipping"]}`), 200, false)
	}
	for _, path := range []string{v1, unversioned} {
		if e := post(path, relayAPIToken, event(cid, "message", `{"body":"one too many"}`), 429, false); e.Error.Code != "rate_limited" {
			t.Errorf("POST %s over the rate = %+v", path, e)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+v1, strings.NewReader(event(cid, "message", `{"body":"still too many"}`)))
	req.Header.Set("SECURITY-TOKEN", relayAPIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("over the rate = %d, Retry-After %q; want 429, 60", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
