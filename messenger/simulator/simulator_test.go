package simulator_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	facebook "github.com/huandu/facebook/v2"

	"github.com/handoverd/handoverd/messenger/simulator"
)

const (
	pageID   = "1001" // default app: bot
	zcPageID = "1002" // zero-config
	botApp   = "111"
	inboxApp = "222"
	crmApp   = "333"
	psid     = "9001"

	botToken   = "bot-token"
	inboxToken = "inbox-token"
	crmToken   = "crm-token"
	zcBotToken = "zc-bot-token"
	zcInbToken = "zc-inbox-token"
)

var secrets = map[string]string{botApp: "bot-secret", inboxApp: "inbox-secret", crmApp: "crm-secret"}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hookEvent is one webhook event as received: its field and decoded body.
type hookEvent struct {
	Field string // "messaging" or "standby"
	Event map[string]any
}

// receiver is a webhook endpoint that verifies Meta's signatures.
type receiver struct {
	t      *testing.T
	secret string

	mu       sync.Mutex
	failures int // answer 503 to this many next requests
	posts    [][]byte
	events   []hookEvent
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if got, want := r.Header.Get("X-Hub-Signature-256"), "sha256="+hexMAC(sha256.New, rc.secret, body); got != want {
		rc.t.Errorf("X-Hub-Signature-256 = %q, want %q", got, want)
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	if got, want := r.Header.Get("X-Hub-Signature"), "sha1="+hexMAC(sha1.New, rc.secret, body); got != want {
		rc.t.Errorf("X-Hub-Signature = %q, want %q", got, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("Content-Type = %q", ct)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.failures > 0 {
		rc.failures--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	rc.posts = append(rc.posts, body)
	var env struct {
		Object string
		Entry  []map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Object != "page" {
		return // raw bodies from Deliver
	}
	for _, e := range env.Entry {
		for _, field := range []string{"messaging", "standby"} {
			var evs []map[string]any
			if raw, ok := e[field]; ok {
				decodeNumber(rc.t, raw, &evs)
			}
			for _, ev := range evs {
				rc.events = append(rc.events, hookEvent{Field: field, Event: ev})
			}
		}
	}
}

func (rc *receiver) take() []hookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	evs := rc.events
	rc.events = nil
	return evs
}

func (rc *receiver) setFailures(n int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.failures = n
}

func hexMAC(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func decodeNumber(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

// obj decodes a JSON literal the same way received events are decoded.
func obj(t *testing.T, format string, args ...any) map[string]any {
	t.Helper()
	var m map[string]any
	decodeNumber(t, []byte(fmt.Sprintf(format, args...)), &m)
	return m
}

type fixture struct {
	t     *testing.T
	clock *fakeClock
	sim   *simulator.Sim
	srv   *httptest.Server
	hooks map[string]*receiver
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}, hooks: map[string]*receiver{}}
	f.sim = simulator.New(simulator.Config{Now: f.clock.Now, RetryDelay: time.Millisecond, MaxAttempts: 5})
	for _, app := range []string{botApp, inboxApp, crmApp} {
		rc := &receiver{t: t, secret: secrets[app]}
		hook := httptest.NewServer(rc)
		t.Cleanup(hook.Close)
		f.hooks[app] = rc
		f.sim.AddApp(simulator.App{ID: app, Secret: secrets[app], WebhookURL: hook.URL + "/webhook"})
	}
	f.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: botApp,
		Tokens: map[string]string{botToken: botApp, inboxToken: inboxApp, crmToken: crmApp}})
	f.sim.AddPage(simulator.Page{ID: zcPageID, Tokens: map[string]string{zcBotToken: botApp, zcInbToken: inboxApp}})
	f.srv = httptest.NewServer(f.sim.Handler())
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.sim.Close)
	return f
}

func (f *fixture) flush() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.sim.Flush(ctx); err != nil {
		f.t.Fatalf("Flush: %v", err)
	}
}

// events flushes and returns (and forgets) what each app received.
func (f *fixture) events() map[string][]hookEvent {
	f.flush()
	got := map[string][]hookEvent{}
	for app, rc := range f.hooks {
		if evs := rc.take(); len(evs) > 0 {
			got[app] = evs
		}
	}
	return got
}

func (f *fixture) customer(page, text string) string {
	f.t.Helper()
	mid, err := f.sim.CustomerSends(page, psid, simulator.CustomerMessage{Text: text})
	if err != nil {
		f.t.Fatalf("CustomerSends: %v", err)
	}
	return mid
}

func (f *fixture) ms() int64 { return f.clock.Now().UnixMilli() }

// graph makes a Graph call the way github.com/huandu/facebook does: form
// encoded, non-string values as JSON, access_token and format=json added.
func (f *fixture) graph(method, path, token string, params map[string]any) (int, map[string]any) {
	f.t.Helper()
	form := url.Values{"format": {"json"}, "access_token": {token}}
	for k, v := range params {
		if s, ok := v.(string); ok {
			form.Set(k, s)
		} else {
			b, _ := json.Marshal(v)
			form.Set(k, string(b))
		}
	}
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, f.srv.URL+path+"?"+form.Encode(), nil)
	} else {
		req, _ = http.NewRequest(method, f.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return f.do(req)
}

func (f *fixture) do(req *http.Request) (int, map[string]any) {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	decodeNumber(f.t, body, &m)
	return resp.StatusCode, m
}

func recipient() map[string]string { return map[string]string{"id": psid} }

func (f *fixture) send(token, page, text string, extra ...string) (int, map[string]any) {
	params := map[string]any{"recipient": recipient(), "message": map[string]string{"text": text}}
	for i := 0; i+1 < len(extra); i += 2 {
		params[extra[i]] = extra[i+1]
	}
	return f.graph(http.MethodPost, "/v21.0/"+page+"/messages", token, params)
}

func (f *fixture) control(edge, token string, params map[string]any) (int, map[string]any) {
	if params == nil {
		params = map[string]any{}
	}
	params["recipient"] = recipient()
	return f.graph(http.MethodPost, "/v21.0/me/"+edge, token, params)
}

// graphErr summarises a Graph error answer.
type graphErr struct {
	Status, Code, Subcode int
	Message               string
}

func errOf(status int, body map[string]any) graphErr {
	e, _ := body["error"].(map[string]any)
	num := func(k string) int {
		n, _ := e[k].(json.Number)
		i, _ := n.Int64()
		return int(i)
	}
	if e == nil {
		return graphErr{Status: status}
	}
	if e["type"] != "OAuthException" || e["fbtrace_id"] == "" {
		return graphErr{Status: status, Message: fmt.Sprintf("bad error shape: %v", e)}
	}
	msg, _ := e["message"].(string)
	return graphErr{Status: status, Code: num("code"), Subcode: num("error_subcode"), Message: msg}
}

var okSuccess = graphErr{Status: 200}

func TestCustomerMessageRouting(t *testing.T) {
	f := newFixture(t)
	ms := f.ms()
	mid := f.customer(pageID, "hello")
	msg := obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":"hello"}}`, psid, pageID, ms, mid)
	want := map[string][]hookEvent{
		botApp:   {{"messaging", msg}},
		inboxApp: {{"standby", msg}},
		crmApp:   {{"standby", msg}},
	}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("default-app routing (-want +got):\n%s", diff)
	}
	if got := f.sim.Thread(pageID, psid); got.OwnerAppID != botApp || !got.ExpiresAt.Equal(f.clock.Now().Add(24*time.Hour)) {
		t.Errorf("Thread = %+v, want owner %s expiring in 24h", got, botApp)
	}

	// A thread owned by the inbox: the inbox gets messaging, the bot standby.
	f.sim.SetOwner(pageID, psid, inboxApp)
	mid = f.customer(pageID, "again")
	got := f.events()
	if got[inboxApp][0].Field != "messaging" || got[botApp][0].Field != "standby" || got[crmApp][0].Field != "standby" {
		t.Errorf("owned by inbox: got %+v", got)
	}

	// Zero-config: every app gets messaging; the thread stays idle.
	mid = f.customer(zcPageID, "zero")
	msg = obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":"zero"}}`, psid, zcPageID, ms, mid)
	want = map[string][]hookEvent{botApp: {{"messaging", msg}}, inboxApp: {{"messaging", msg}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("zero-config routing (-want +got):\n%s", diff)
	}
	if got := f.sim.Thread(zcPageID, psid).OwnerAppID; got != "" {
		t.Errorf("zero-config owner = %q, want idle", got)
	}
}

func TestCustomerMessageShapes(t *testing.T) {
	f := newFixture(t)
	ms := f.ms()
	mid, err := f.sim.CustomerSends(pageID, psid, simulator.CustomerMessage{
		Text: "pick", QuickReplyPayload: "QR_1", ReplyToMID: "m_prev",
		Attachments: []simulator.Attachment{{Type: "image", URL: "https://example.com/a.png"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := f.sim.CustomerPostback(pageID, psid, "Talk to a human", "HUMAN")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.CustomerReads(pageID, psid); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf(`"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d`, psid, pageID, ms)
	message := obj(t, `{%s,"message":{"mid":%q,"text":"pick","quick_reply":{"payload":"QR_1"},
		"attachments":[{"type":"image","payload":{"url":"https://example.com/a.png"}}],"reply_to":{"mid":"m_prev"}}}`, head, mid)
	want := map[string][]hookEvent{
		botApp: {
			{"messaging", message},
			{"messaging", obj(t, `{%s,"postback":{"mid":%q,"title":"Talk to a human","payload":"HUMAN"}}`, head, pb)},
			{"messaging", obj(t, `{%s,"read":{"watermark":%d}}`, head, ms)},
		},
		inboxApp: {
			{"standby", message},
			{"standby", obj(t, `{%s,"postback":{"mid":%q,"title":"Talk to a human"}}`, head, pb)},
			{"standby", obj(t, `{%s,"read":{"watermark":%d}}`, head, ms)},
		},
	}
	got := f.events()
	delete(got, crmApp)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if _, err := f.sim.CustomerSends("nope", psid, simulator.CustomerMessage{Text: "x"}); err == nil {
		t.Error("CustomerSends to an unknown page: want error")
	}
	if _, err := f.sim.CustomerSends(pageID, psid, simulator.CustomerMessage{}); err == nil {
		t.Error("empty CustomerSends: want error")
	}
}

func TestSendOwnership(t *testing.T) {
	tests := []struct {
		name  string
		page  string
		owner string // "" = idle
		token string
		want  graphErr
	}{
		{"default app on idle thread", pageID, "", botToken, okSuccess},
		{"other app on idle thread", pageID, "", inboxToken, graphErr{400, 10, 2018300, "(#10) Message failed to send because another app is controlling this thread now."}},
		{"owner", pageID, inboxApp, inboxToken, okSuccess},
		{"non-owner", pageID, inboxApp, crmToken, graphErr{400, 10, 2018300, "(#10) Message failed to send because another app is controlling this thread now."}},
		{"default app while another owns", pageID, inboxApp, botToken, graphErr{400, 10, 2018300, "(#10) Message failed to send because another app is controlling this thread now."}},
		{"zero-config non-owner", zcPageID, botApp, zcInbToken, okSuccess},
		{"zero-config idle", zcPageID, "", zcBotToken, okSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.customer(tt.page, "hi")
			f.sim.SetOwner(tt.page, psid, tt.owner)
			status, body := f.send(tt.token, tt.page, "reply")
			got := errOf(status, body)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("send (-want +got):\n%s", diff)
			}
			if got.Status == 200 {
				if body["recipient_id"] != psid || !strings.HasPrefix(fmt.Sprint(body["message_id"]), "m_") {
					t.Errorf("send answer = %v", body)
				}
			}
		})
	}
}

func TestSendWindow(t *testing.T) {
	errWindow := graphErr{400, 10, 2018278, "(#10) This message is sent outside of allowed window."}
	tests := []struct {
		name    string
		after   time.Duration // since the customer's last message
		noUser  bool          // the customer never wrote
		typ     string
		tag     string
		want    graphErr
		comment string
	}{
		{name: "RESPONSE inside 24h", after: 23 * time.Hour, typ: "RESPONSE", want: okSuccess},
		{name: "no messaging_type inside 24h", after: 23*time.Hour + 59*time.Minute, want: okSuccess},
		{name: "UPDATE after 24h", after: 24 * time.Hour, typ: "UPDATE", want: errWindow},
		{name: "RESPONSE after 25h", after: 25 * time.Hour, typ: "RESPONSE", want: errWindow},
		{name: "HUMAN_AGENT after 6 days", after: 6 * 24 * time.Hour, typ: "MESSAGE_TAG", tag: "HUMAN_AGENT", want: okSuccess},
		{name: "HUMAN_AGENT after 8 days", after: 8 * 24 * time.Hour, typ: "MESSAGE_TAG", tag: "HUMAN_AGENT", want: errWindow},
		{name: "MESSAGE_TAG without tag", after: time.Hour, typ: "MESSAGE_TAG", want: graphErr{400, 100, 0, "(#100) Param tag is required when messaging_type is MESSAGE_TAG"}},
		{name: "never wrote", noUser: true, typ: "RESPONSE", want: errWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.noUser {
				f.sim.SetOwner(pageID, psid, botApp)
			} else {
				f.customer(pageID, "hi")
			}
			f.clock.Advance(tt.after)
			var extra []string
			if tt.typ != "" {
				extra = append(extra, "messaging_type", tt.typ)
			}
			if tt.tag != "" {
				extra = append(extra, "tag", tt.tag)
			}
			// The bot is the default app: it may send whether it still owns the thread or it went idle.
			if diff := cmp.Diff(tt.want, errOf(f.send(botToken, pageID, "late", extra...))); diff != "" {
				t.Errorf("send (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSendEchoesAndInbox(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	f.sim.SetOwner(pageID, psid, inboxApp)
	f.events()
	status, body := f.graph(http.MethodPost, "/v21.0/"+pageID+"/messages", inboxToken, map[string]any{
		"recipient": recipient(), "messaging_type": "RESPONSE",
		"message": map[string]string{"text": "Agent here", "metadata": "agent:42"},
	})
	if status != 200 {
		t.Fatalf("send: %d %v", status, body)
	}
	mid := body["message_id"]
	echo := obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,
		"message":{"is_echo":true,"app_id":222,"metadata":"agent:42","mid":%q,"text":"Agent here"}}`, pageID, psid, f.ms(), mid)
	// Then the delivery receipt, as Meta documents it: no timestamp, the
	// watermark and the mids, from the customer to the Page.
	delivery := obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"delivery":{"mids":[%q],"watermark":%d}}`, psid, pageID, mid, f.ms())
	want := map[string][]hookEvent{inboxApp: {{"messaging", echo}, {"messaging", delivery}},
		botApp: {{"standby", echo}, {"standby", delivery}}, crmApp: {{"standby", echo}, {"standby", delivery}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("echoes and deliveries (-want +got):\n%s", diff)
	}
	if _, ok := echo["message"].(map[string]any)["app_id"].(json.Number); !ok {
		t.Error("echo app_id must be a JSON number")
	}

	// An attachment and an unknown user.
	status, _ = f.graph(http.MethodPost, "/v21.0/me/messages", inboxToken, map[string]any{
		"recipient": recipient(),
		"message":   map[string]any{"attachment": map[string]any{"type": "image", "payload": map[string]string{"url": "https://example.com/x.png"}}},
	})
	if status != 200 {
		t.Fatalf("attachment send: %d", status)
	}
	wantInbox := []simulator.SentMessage{
		{MID: fmt.Sprint(mid), AppID: inboxApp, Text: "Agent here", Metadata: "agent:42", Time: f.clock.Now()},
		{AppID: inboxApp, Attachments: []simulator.Attachment{{Type: "image", URL: "https://example.com/x.png"}}, Time: f.clock.Now()},
	}
	gotInbox := f.sim.Inbox(pageID, psid)
	if len(gotInbox) == 2 {
		gotInbox[1].MID = ""
	}
	if diff := cmp.Diff(wantInbox, gotInbox); diff != "" {
		t.Errorf("Inbox (-want +got):\n%s", diff)
	}
	status, body = f.graph(http.MethodPost, "/v21.0/me/messages", botToken, map[string]any{
		"recipient": map[string]string{"id": "404"}, "message": map[string]string{"text": "x"}})
	if diff := cmp.Diff(graphErr{400, 100, 2018001, "(#100) No matching user found"}, errOf(status, body)); diff != "" {
		t.Errorf("unknown user (-want +got):\n%s", diff)
	}
}

func TestPassThreadControl(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi") // bot owns
	f.events()
	ms := f.ms()

	status, body := f.control("pass_thread_control", botToken, map[string]any{"target_app_id": 222, "metadata": "needs human"})
	if diff := cmp.Diff(okSuccess, errOf(status, body)); diff != "" || body["success"] != true {
		t.Fatalf("pass: %v %v", diff, body)
	}
	want := map[string][]hookEvent{inboxApp: {{"messaging", obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,
		"pass_thread_control":{"previous_owner_app_id":"111","new_owner_app_id":"222","metadata":"needs human"}}`, psid, pageID, ms)}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("pass events (-want +got):\n%s", diff)
	}
	if got := f.sim.Thread(pageID, psid); got.OwnerAppID != inboxApp || !got.ExpiresAt.Equal(f.clock.Now().Add(24*time.Hour)) {
		t.Errorf("Thread = %+v", got)
	}

	// Errors.
	errTests := []struct {
		name   string
		token  string
		params map[string]any
		want   graphErr
	}{
		{"not the owner", crmToken, map[string]any{"target_app_id": "111"}, graphErr{400, 10, 2018300, "(#10) Cannot pass thread control: this app is not the thread owner."}},
		{"to yourself", inboxToken, map[string]any{"target_app_id": "222"}, graphErr{400, 100, 0, "(#100) Cannot pass thread control to yourself"}},
		{"unknown target", inboxToken, map[string]any{"target_app_id": "999"}, graphErr{400, 100, 0, "(#100) Invalid target_app_id 999: the app is not connected to this page"}},
	}
	for _, tt := range errTests {
		if diff := cmp.Diff(tt.want, errOf(f.control("pass_thread_control", tt.token, tt.params))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	// Without target the thread goes back to the default app.
	f.clock.Advance(time.Minute)
	if got := errOf(f.control("pass_thread_control", inboxToken, nil)); got != okSuccess {
		t.Fatalf("pass to default: %+v", got)
	}
	want = map[string][]hookEvent{botApp: {{"messaging", obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,
		"pass_thread_control":{"previous_owner_app_id":"222","new_owner_app_id":"111"}}`, psid, pageID, f.ms())}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("pass to default (-want +got):\n%s", diff)
	}

	// Idle thread: any app may pass; previous owner is null.
	f.sim.SetOwner(pageID, psid, "")
	if got := errOf(f.control("pass_thread_control", crmToken, map[string]any{"target_app_id": "222"})); got != okSuccess {
		t.Fatalf("pass from idle: %+v", got)
	}
	evs := f.events()[inboxApp]
	if len(evs) != 1 || evs[0].Event["pass_thread_control"].(map[string]any)["previous_owner_app_id"] != nil {
		t.Errorf("pass from idle: events %+v, want previous_owner_app_id null", evs)
	}

	// Zero-config: target is required.
	f.customer(zcPageID, "hi")
	want0 := graphErr{400, 100, 0, "(#100) Param target_app_id is required when the page has no default app"}
	if diff := cmp.Diff(want0, errOf(f.graph(http.MethodPost, "/v21.0/me/pass_thread_control", zcBotToken, map[string]any{"recipient": recipient()}))); diff != "" {
		t.Errorf("zero-config pass (-want +got):\n%s", diff)
	}
}

func TestTakeThreadControl(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	f.sim.SetOwner(pageID, psid, inboxApp)
	f.events()

	errTests := []struct {
		name  string
		token string
		want  graphErr
	}{
		{"not the default app", crmToken, graphErr{400, 10, 2018300, "(#10) Only the default app can take thread control of this conversation."}},
		{"owner but not default", inboxToken, graphErr{400, 10, 2018300, "(#10) Only the default app can take thread control of this conversation."}},
	}
	for _, tt := range errTests {
		if diff := cmp.Diff(tt.want, errOf(f.control("take_thread_control", tt.token, nil))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	if got := errOf(f.control("take_thread_control", botToken, map[string]any{"metadata": "bot back"})); got != okSuccess {
		t.Fatalf("take: %+v", got)
	}
	take := obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,
		"take_thread_control":{"previous_owner_app_id":"222","new_owner_app_id":"111","metadata":"bot back"}}`, psid, pageID, f.ms())
	// Only the app that lost control hears of it (crmApp is told nothing).
	want := map[string][]hookEvent{inboxApp: {{"messaging", take}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("take events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(graphErr{400, 100, 0, "(#100) Cannot take thread control: this app already owns the thread"},
		errOf(f.control("take_thread_control", botToken, nil))); diff != "" {
		t.Errorf("take own thread (-want +got):\n%s", diff)
	}

	// From idle: no webhook.
	f.sim.SetOwner(pageID, psid, "")
	if got := errOf(f.control("take_thread_control", botToken, nil)); got != okSuccess {
		t.Fatalf("take idle: %+v", got)
	}
	if got := f.events(); len(got) != 0 {
		t.Errorf("take from idle sent webhooks: %+v", got)
	}
	if got := f.sim.Thread(pageID, psid).OwnerAppID; got != botApp {
		t.Errorf("owner = %q", got)
	}

	// Zero-config: blocked.
	f.customer(zcPageID, "hi")
	status, body := f.graph(http.MethodPost, "/v21.0/"+zcPageID+"/take_thread_control", zcBotToken, map[string]any{"recipient": recipient()})
	if diff := cmp.Diff(graphErr{400, 10, 0, "(#10) Take thread control is not allowed"}, errOf(status, body)); diff != "" {
		t.Errorf("zero-config take (-want +got):\n%s", diff)
	}
}

func TestRequestThreadControl(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi") // bot owns
	f.events()

	if got := errOf(f.control("request_thread_control", inboxToken, map[string]any{"metadata": "customer asked"})); got != okSuccess {
		t.Fatalf("request: %+v", got)
	}
	want := map[string][]hookEvent{botApp: {{"messaging", obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,
		"request_thread_control":{"requested_owner_app_id":"222","metadata":"customer asked"}}`, psid, pageID, f.ms())}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("request events (-want +got):\n%s", diff)
	}
	if got := f.sim.Thread(pageID, psid).OwnerAppID; got != botApp {
		t.Errorf("owner after request = %q, want unchanged %q", got, botApp)
	}
	if diff := cmp.Diff(graphErr{400, 100, 0, "(#100) Cannot request thread control: this app already owns the thread"},
		errOf(f.control("request_thread_control", botToken, nil))); diff != "" {
		t.Errorf("request own thread (-want +got):\n%s", diff)
	}

	// Idle (zero-config page): the requester gets control and a pass event.
	f.customer(zcPageID, "hi")
	f.events()
	status, body := f.graph(http.MethodPost, "/"+zcPageID+"/request_thread_control", zcInbToken, map[string]any{"recipient": recipient()})
	if got := errOf(status, body); got != okSuccess {
		t.Fatalf("request idle: %+v", got)
	}
	want = map[string][]hookEvent{inboxApp: {{"messaging", obj(t, `{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,
		"pass_thread_control":{"previous_owner_app_id":null,"new_owner_app_id":"222"}}`, psid, zcPageID, f.ms())}}}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("request idle events (-want +got):\n%s", diff)
	}
	if got := f.sim.Thread(zcPageID, psid).OwnerAppID; got != inboxApp {
		t.Errorf("owner = %q, want %q", got, inboxApp)
	}
}

func TestReleaseThreadControl(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	f.sim.SetOwner(pageID, psid, inboxApp)
	f.events()
	notOwner := graphErr{400, 10, 2018300, "(#10) Cannot release thread control: this app is not the thread owner."}
	if diff := cmp.Diff(notOwner, errOf(f.control("release_thread_control", botToken, nil))); diff != "" {
		t.Errorf("release by non-owner (-want +got):\n%s", diff)
	}
	if got := errOf(f.control("release_thread_control", inboxToken, nil)); got != okSuccess {
		t.Fatalf("release: %+v", got)
	}
	if got := f.sim.Thread(pageID, psid); got.OwnerAppID != "" || !got.ExpiresAt.IsZero() {
		t.Errorf("Thread after release = %+v, want idle", got)
	}
	if got := f.events(); len(got) != 0 {
		t.Errorf("release sent webhooks: %+v", got)
	}
	if diff := cmp.Diff(notOwner, errOf(f.control("release_thread_control", inboxToken, nil))); diff != "" {
		t.Errorf("release idle (-want +got):\n%s", diff)
	}
}

func TestThreadOwnerVisibility(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	f.sim.SetOwner(pageID, psid, inboxApp)
	exp := f.clock.Now().Add(24 * time.Hour).Unix()
	get := func(token string) map[string]any {
		status, body := f.graph(http.MethodGet, "/v21.0/me/thread_owner", token, map[string]any{"recipient": psid})
		if status != 200 {
			t.Fatalf("thread_owner: %d %v", status, body)
		}
		return body
	}
	full := obj(t, `{"data":[{"thread_owner":{"app_id":"222","expiration":%d}}]}`, exp)
	tests := []struct {
		name, token string
		want        map[string]any
	}{
		{"owner", inboxToken, full},
		{"default app", botToken, full},
		{"other app", crmToken, obj(t, `{"data":[{"thread_owner":{"expiration":%d}}]}`, exp)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, get(tt.token)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	f.sim.SetOwner(pageID, psid, "")
	if diff := cmp.Diff(obj(t, `{"data":[]}`), get(botToken)); diff != "" {
		t.Errorf("idle (-want +got):\n%s", diff)
	}
}

func TestIdleExpiry(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	if err := func() error {
		status, body := f.control("pass_thread_control", botToken, map[string]any{"target_app_id": inboxApp})
		if status != 200 {
			return fmt.Errorf("pass: %v", body)
		}
		return nil
	}(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(24*time.Hour - time.Second)
	if got := f.sim.Thread(pageID, psid).OwnerAppID; got != inboxApp {
		t.Fatalf("owner before expiry = %q", got)
	}
	f.clock.Advance(time.Second)
	if got := f.sim.Thread(pageID, psid); got != (simulator.Thread{LastUserMessageAt: got.LastUserMessageAt}) {
		t.Fatalf("Thread after 24h = %+v, want idle", got)
	}
	// The inbox lost the thread: its sends fail; the next customer message goes to the default app.
	if got := errOf(f.send(inboxToken, pageID, "late")); got.Subcode != 2018300 {
		t.Errorf("send after expiry = %+v, want 2018300", got)
	}
	f.events()
	f.customer(pageID, "back")
	got := f.events()
	if got[botApp][0].Field != "messaging" || got[inboxApp][0].Field != "standby" {
		t.Errorf("after expiry: %+v", got)
	}
}

func TestDeliveryRetryInOrder(t *testing.T) {
	f := newFixture(t)
	f.hooks[botApp].setFailures(3)
	var mids []any
	for _, text := range []string{"one", "two", "three"} {
		mids = append(mids, f.customer(pageID, text))
	}
	var gotMids []any
	for _, ev := range f.events()[botApp] {
		gotMids = append(gotMids, ev.Event["message"].(map[string]any)["mid"])
	}
	if diff := cmp.Diff(mids, gotMids); diff != "" {
		t.Errorf("delivery order (-want +got):\n%s", diff)
	}
	ds := f.sim.Deliveries(botApp)
	var summary [][3]any
	for _, d := range ds {
		summary = append(summary, [3]any{d.Attempts, d.Status, d.Delivered})
	}
	want := [][3]any{{4, 200, true}, {1, 200, true}, {1, 200, true}}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestDeliveryGivesUp(t *testing.T) {
	f := newFixture(t)
	f.hooks[botApp].setFailures(100)
	f.customer(pageID, "lost")
	f.flush()
	ds := f.sim.Deliveries(botApp)
	if len(ds) != 1 || ds[0].Attempts != 5 || ds[0].Status != 503 || ds[0].Delivered {
		t.Errorf("Deliveries = %+v, want one given up after 5 attempts", ds)
	}
}

func TestNoWebhookURLRecordsOnly(t *testing.T) {
	sim := simulator.New(simulator.Config{})
	defer sim.Close()
	sim.AddApp(simulator.App{ID: botApp, Secret: "s"})
	sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: botApp, Tokens: map[string]string{botToken: botApp}})
	if _, err := sim.CustomerSends(pageID, psid, simulator.CustomerMessage{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ds := sim.Deliveries(botApp)
	if len(ds) != 1 || ds[0].Attempts != 0 || ds[0].Delivered || !bytes.Contains(ds[0].Body, []byte(`"messaging"`)) {
		t.Errorf("Deliveries = %+v", ds)
	}
}

func TestFaultInjection(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	f.sim.ResetCalls()
	f.sim.InjectFault(simulator.Fault{Op: "send", AppID: botApp, Times: 2, HTTPStatus: 500, Code: 1200,
		Message: "Temporary send message failure. Please try again later."})
	want := graphErr{500, 1200, 0, "Temporary send message failure. Please try again later."}
	for i := range 2 {
		if diff := cmp.Diff(want, errOf(f.send(botToken, pageID, "x"))); diff != "" {
			t.Errorf("call %d (-want +got):\n%s", i, diff)
		}
	}
	if got := errOf(f.send(botToken, pageID, "x")); got != okSuccess {
		t.Errorf("third call = %+v, want success", got)
	}
	// A fault for another app does not fire for the bot.
	f.sim.InjectFault(simulator.Fault{Op: "take_thread_control", AppID: inboxApp, Code: 4, Subcode: 2018354})
	if got := errOf(f.send(botToken, pageID, "y")); got != okSuccess {
		t.Errorf("send with foreign fault = %+v", got)
	}

	calls := f.sim.Calls()
	var got []simulator.Call
	for _, c := range calls {
		c.Params = nil
		got = append(got, c)
	}
	wantCalls := []simulator.Call{
		{Op: "send", AppID: botApp, PageID: pageID, PSID: psid, HTTPStatus: 500, Code: 1200},
		{Op: "send", AppID: botApp, PageID: pageID, PSID: psid, HTTPStatus: 500, Code: 1200},
		{Op: "send", AppID: botApp, PageID: pageID, PSID: psid, HTTPStatus: 200},
		{Op: "send", AppID: botApp, PageID: pageID, PSID: psid, HTTPStatus: 200},
	}
	if diff := cmp.Diff(wantCalls, got); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	if p := calls[0].Params; p["message"] != `{"text":"x"}` || p["format"] != "json" || p["access_token"] != "" {
		t.Errorf("Params = %v", p)
	}
}

func TestRequestEncodings(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	proof := hexMAC(sha256.New, secrets[botApp], []byte(botToken))

	post := func(path, ct, body string, hdr ...string) graphErr {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return errOf(f.do(req))
	}
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name, path, ct, body string
		hdr                  []string
		want                 graphErr
	}{
		{"form", "/v21.0/me/messages", form,
			"recipient=%7B%22id%22%3A%229001%22%7D&message=%7B%22text%22%3A%22hello%22%7D&format=json&access_token=bot-token", nil, okSuccess},
		{"form, numeric recipient id, no version", "/" + pageID + "/messages", form,
			"recipient=%7B%22id%22%3A9001%7D&message=%7B%22text%22%3A%22hello%22%7D&access_token=bot-token", nil, okSuccess},
		{"JSON body", "/v19.0/" + pageID + "/messages", "application/json",
			`{"recipient":{"id":"9001"},"messaging_type":"RESPONSE","message":{"text":"hello"},"access_token":"bot-token"}`, nil, okSuccess},
		{"Authorization header", "/v21.0/me/messages", "application/json",
			`{"recipient":{"id":"9001"},"message":{"text":"hello"}}`, []string{"Authorization", "Bearer bot-token"}, okSuccess},
		{"valid appsecret_proof", "/v21.0/me/messages", form,
			"recipient=%7B%22id%22%3A%229001%22%7D&message=%7B%22text%22%3A%22hi%22%7D&access_token=bot-token&appsecret_proof=" + proof, nil, okSuccess},
		{"wrong appsecret_proof", "/v21.0/me/messages", form,
			"recipient=%7B%22id%22%3A%229001%22%7D&message=%7B%22text%22%3A%22hi%22%7D&access_token=bot-token&appsecret_proof=00", nil,
			graphErr{400, 100, 0, "Invalid appsecret_proof provided in the API argument"}},
		{"missing token", "/v21.0/me/messages", form, "recipient=%7B%22id%22%3A%229001%22%7D", nil,
			graphErr{400, 190, 0, "Invalid OAuth access token."}},
		{"unknown token", "/v21.0/me/messages", "application/json", `{"recipient":{"id":"9001"}}`, []string{"Authorization", "Bearer nope"},
			graphErr{400, 190, 0, "Invalid OAuth access token."}},
		{"other page", "/v21.0/" + zcPageID + "/messages", form, "access_token=bot-token&recipient=%7B%22id%22%3A%229001%22%7D", nil,
			graphErr{400, 100, 33, "Unsupported post request. Object with ID '1002' does not exist, cannot be loaded due to missing permissions, or does not support this operation."}},
		{"bad version", "/latest/me/messages", form, "access_token=bot-token", nil,
			graphErr{400, 100, 0, "(#100) Unknown path components: /me/messages"}},
		{"missing recipient", "/v21.0/me/messages", form, "access_token=bot-token&message=%7B%7D", nil,
			graphErr{400, 100, 0, "(#100) The parameter recipient is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, post(tt.path, tt.ct, tt.body, tt.hdr...)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestHuanduClient drives the simulator with the Graph client the project uses.
func TestHuanduClient(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "hi")
	for _, useHeader := range []bool{false, true} {
		sess := facebook.New(botApp, secrets[botApp]).Session(botToken)
		sess.BaseURL = f.srv.URL + "/"
		sess.Version = "v21.0"
		if err := sess.EnableAppsecretProof(true); err != nil {
			t.Fatal(err)
		}
		if useHeader {
			sess.UseAuthorizationHeader()
		}
		res, err := sess.Post("/me/messages", facebook.Params{
			"recipient": map[string]string{"id": psid}, "messaging_type": "RESPONSE",
			"message": map[string]string{"text": "from huandu"},
		})
		if err != nil || res.Get("recipient_id") != psid {
			t.Fatalf("send (header %v): %v %v", useHeader, res, err)
		}
		if _, err := sess.Post("/me/pass_thread_control", facebook.Params{
			"recipient": map[string]string{"id": psid}, "target_app_id": 222, "metadata": "m",
		}); err != nil {
			t.Fatalf("pass: %v", err)
		}
		res, err = sess.Get("/me/thread_owner", facebook.Params{"recipient": psid})
		if err != nil {
			t.Fatalf("thread_owner: %v", err)
		}
		var owner struct {
			Data []struct {
				ThreadOwner struct {
					AppID      string `facebook:"app_id"`
					Expiration int64
				} `facebook:"thread_owner"`
			}
		}
		if err := res.Decode(&owner); err != nil || len(owner.Data) != 1 || owner.Data[0].ThreadOwner.AppID != inboxApp {
			t.Fatalf("thread_owner = %v (%v)", res, err)
		}
		_, err = sess.Post("/me/messages", facebook.Params{"recipient": map[string]string{"id": psid}, "message": map[string]string{"text": "x"}})
		var fbErr *facebook.Error
		if !errors.As(err, &fbErr) || fbErr.Code != 10 || fbErr.ErrorSubcode != 2018300 {
			t.Fatalf("non-owner send err = %v", err)
		}
		if _, err := sess.Post("/me/take_thread_control", facebook.Params{"recipient": map[string]string{"id": psid}}); err != nil {
			t.Fatalf("take: %v", err)
		}
	}
}

func TestBatchingAndRawDelivery(t *testing.T) {
	f := newFixture(t)
	f.sim.SetBatching(3)
	m1 := f.customer(pageID, "a")
	f.sim.SetOwner(pageID, psid, inboxApp)
	m2 := f.customer(pageID, "b")
	m3 := f.customer(pageID, "c")
	f.sim.Deliver(botApp, []byte(`{"object":"page","entry":[]}`))
	f.flush()

	// The bot's three events share one POST: entry 1 messaging (a), entry 2 standby (b, c).
	rc := f.hooks[botApp]
	rc.mu.Lock()
	posts := rc.posts
	rc.mu.Unlock()
	if len(posts) != 2 {
		t.Fatalf("bot got %d POSTs, want 2 (batch + raw)", len(posts))
	}
	var env struct {
		Entry []struct {
			Messaging []struct{ Message struct{ MID string } }
			Standby   []struct{ Message struct{ MID string } }
		}
	}
	if err := json.Unmarshal(posts[0], &env); err != nil {
		t.Fatal(err)
	}
	var shape [][]string
	for _, e := range env.Entry {
		var mids []string
		for _, ev := range e.Messaging {
			mids = append(mids, "messaging:"+ev.Message.MID)
		}
		for _, ev := range e.Standby {
			mids = append(mids, "standby:"+ev.Message.MID)
		}
		shape = append(shape, mids)
	}
	want := [][]string{{"messaging:" + m1}, {"standby:" + m2, "standby:" + m3}}
	if diff := cmp.Diff(want, shape); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	if string(posts[1]) != `{"object":"page","entry":[]}` {
		t.Errorf("raw delivery = %s", posts[1])
	}
	if n := len(f.sim.Deliveries(botApp)); n != 2 {
		t.Errorf("Deliveries = %d, want 2", n)
	}
}

func TestNonASCIIIsEscapedAndSigned(t *testing.T) {
	f := newFixture(t)
	f.customer(pageID, "äöå 👋")
	evs := f.events()[botApp]
	if len(evs) != 1 || evs[0].Event["message"].(map[string]any)["text"] != "äöå 👋" {
		t.Fatalf("events = %+v", evs)
	}
	body := f.sim.Deliveries(botApp)[0].Body
	if !bytes.Contains(body, []byte(`\u00e4\u00f6\u00e5 \ud83d\udc4b`)) {
		t.Errorf("body not escaped like Meta's: %s", body)
	}
}

func TestControlEndpoints(t *testing.T) {
	f := newFixture(t)
	call := func(method, path, body string, out any) int {
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode
	}
	base := "/_sim/pages/" + pageID
	var mid struct{ MID string }
	if status := call("POST", base+"/customers/"+psid+"/messages", `{"text":"hi","quick_reply_payload":"Q"}`, &mid); status != 200 || mid.MID == "" {
		t.Fatalf("customer message: %d %+v", status, mid)
	}
	if status := call("POST", base+"/customers/"+psid+"/postbacks", `{"title":"T","payload":"P"}`, &mid); status != 200 || mid.MID == "" {
		t.Fatalf("postback: %d %+v", status, mid)
	}
	var th map[string]any
	call("GET", base+"/threads/"+psid, "", &th)
	exp := f.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	if th["owner_app_id"] != botApp || th["expires_at"] != exp {
		t.Errorf("thread = %v", th)
	}
	call("GET", base+"/threads/nobody", "", &th)
	if th["owner_app_id"] != "" || th["expires_at"] != nil {
		t.Errorf("unknown thread = %v", th)
	}

	f.send(botToken, pageID, "reply 1")
	f.send(inboxToken, pageID, "rejected")
	f.send(botToken, pageID, "reply 2")
	type sent struct {
		Text  string `json:"text"`
		AppID string `json:"app_id"`
	}
	var inbox []sent
	call("GET", base+"/customers/"+psid+"/inbox", "", &inbox)
	if diff := cmp.Diff([]sent{{"reply 1", botApp}, {"reply 2", botApp}}, inbox); diff != "" {
		t.Errorf("inbox (-want +got):\n%s", diff)
	}
	// ?last=1: the newest message only; ?wait=true: after every delivery is done.
	call("GET", base+"/customers/"+psid+"/inbox?last=1&wait=true", "", &inbox)
	if diff := cmp.Diff([]sent{{"reply 2", botApp}}, inbox); diff != "" {
		t.Errorf("inbox?last=1 (-want +got):\n%s", diff)
	}
	if n := pendingDeliveries(f.sim); n != 0 {
		t.Errorf("after ?wait=true, %d deliveries still pending", n)
	}
	var bad map[string]string
	if status := call("GET", base+"/customers/"+psid+"/inbox?last=some", "", &bad); status != 400 || !strings.Contains(bad["error"], "last") {
		t.Errorf("inbox?last=some = %d %v", status, bad)
	}
	var empty map[string]any
	if status := call("POST", "/_sim/settle", "", &empty); status != 200 || len(empty) != 0 {
		t.Errorf("settle = %d %v", status, empty)
	}
	var calls []simulator.Call
	call("GET", "/_sim/calls", "", &calls)
	if len(calls) != 3 || calls[1].Code != 10 || calls[1].AppID != inboxApp {
		t.Errorf("calls = %+v", calls)
	}
	f.flush()
	var ds []struct {
		Delivered bool
		Body      map[string]any
	}
	call("GET", "/_sim/apps/"+botApp+"/deliveries", "", &ds)
	if len(ds) != 6 || !ds[0].Delivered || ds[0].Body["object"] != "page" { // message, postback, 2 × (echo, delivery)
		t.Errorf("deliveries = %+v", ds)
	}
	var e map[string]string
	if status := call("POST", "/_sim/pages/nope/customers/"+psid+"/messages", `{"text":"x"}`, &e); status != 400 || e["error"] == "" {
		t.Errorf("unknown page: %d %v", status, e)
	}
}

func TestFlushHonoursContextAndClose(t *testing.T) {
	f := newFixture(t)
	sim := simulator.New(simulator.Config{RetryDelay: time.Hour, MaxAttempts: 3})
	sim.AddApp(simulator.App{ID: botApp, Secret: "s", WebhookURL: f.srv.URL + "/_sim/does-not-exist"})
	sim.Deliver(botApp, []byte(`{}`))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sim.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush = %v, want deadline exceeded", err)
	}
	sim.Close()
	if err := sim.Flush(context.Background()); err != nil {
		t.Errorf("Flush after Close = %v", err)
	}
	if ds := sim.Deliveries(botApp); len(ds) != 1 || ds[0].Delivered {
		t.Errorf("Deliveries = %+v", ds)
	}
}

// pendingDeliveries counts deliveries not yet delivered or given up.
func pendingDeliveries(sim *simulator.Sim) int {
	n := 0
	for _, app := range []string{botApp, inboxApp, crmApp} {
		for _, d := range sim.Deliveries(app) {
			if !d.Delivered && d.Attempts == 0 {
				n++
			}
		}
	}
	return n
}

// TestAppRoles: a Page admin assigning roles sends every connected app an
// app_roles event in Meta's format (no sender), and the primary receiver
// becomes the app new conversations go to; roles without one leave the
// Page zero-config. Two primaries are refused.
func TestAppRoles(t *testing.T) {
	f := newFixture(t)
	roles := map[string][]string{crmApp: {"primary_receiver"}, botApp: {"secondary_receiver"}}
	if err := f.sim.SetAppRoles(pageID, roles); err != nil {
		t.Fatal(err)
	}
	want := obj(t, `{"recipient":{"id":%q},"timestamp":%d,"app_roles":{%q:["primary_receiver"],%q:["secondary_receiver"]}}`,
		pageID, f.ms(), crmApp, botApp)
	got := f.events()
	for _, app := range []string{botApp, inboxApp, crmApp} {
		if diff := cmp.Diff([]hookEvent{{Field: "messaging", Event: want}}, got[app]); diff != "" {
			t.Errorf("app %s (-want +got):\n%s", app, diff)
		}
	}
	f.customer(pageID, "hi")
	if owner := f.sim.Thread(pageID, psid).OwnerAppID; owner != crmApp {
		t.Errorf("a new conversation went to %q, want the primary receiver %s", owner, crmApp)
	}
	if err := f.sim.SetAppRoles(zcPageID, map[string][]string{botApp: {"secondary_receiver"}}); err != nil {
		t.Fatal(err)
	}
	f.events()
	if _, err := f.sim.CustomerSends(zcPageID, "9002", simulator.CustomerMessage{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if owner := f.sim.Thread(zcPageID, "9002").OwnerAppID; owner != "" {
		t.Errorf("zero-config: a new conversation went to %q, want idle", owner)
	}
	if err := f.sim.SetAppRoles(pageID, map[string][]string{botApp: {"primary_receiver"}, crmApp: {"primary_receiver"}}); err == nil {
		t.Error("two primary receivers were accepted")
	}
}

// TestDeliveryRoundRobinOverReplicas: an app with replicas gets each POST
// at the next URL, so a retry after a replica fails lands on another one,
// and the retry delay stays within MaxDelay.
func TestDeliveryRoundRobinOverReplicas(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	replica := func(name string, status int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits = append(hits, name)
			mu.Unlock()
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	up, down := replica("up", 200), replica("down", 503)
	sim := simulator.New(simulator.Config{RetryDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxAttempts: 3})
	defer sim.Close()
	sim.AddApp(simulator.App{ID: botApp, Secret: "s", WebhookURL: down.URL, Replicas: []string{up.URL}})
	sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: botApp, Tokens: map[string]string{botToken: botApp}})
	for _, text := range []string{"one", "two"} {
		if _, err := sim.CustomerSends(pageID, psid, simulator.CustomerMessage{Text: text}); err != nil {
			t.Fatal(err)
		}
		if err := sim.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var summary [][2]any
	for _, d := range sim.Deliveries(botApp) {
		summary = append(summary, [2]any{d.Attempts, d.Delivered})
	}
	if diff := cmp.Diff([][2]any{{2, true}, {2, true}}, summary); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"down", "up", "down", "up"}, hits); diff != "" {
		t.Errorf("replicas hit (-want +got):\n%s", diff)
	}
}
