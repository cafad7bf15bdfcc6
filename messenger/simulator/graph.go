package simulator

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// graphError is a Graph API error answer.
type graphError struct {
	status, code, subcode int
	msg                   string
}

func errParam(msg string) *graphError {
	return &graphError{status: http.StatusBadRequest, code: 100, msg: "(#100) " + msg}
}

func errCode10(subcode int, msg string) *graphError {
	return &graphError{status: http.StatusBadRequest, code: 10, subcode: subcode, msg: "(#10) " + msg}
}

var (
	errToken       = &graphError{status: http.StatusBadRequest, code: 190, msg: "Invalid OAuth access token."}
	errProof       = &graphError{status: http.StatusBadRequest, code: 100, msg: "Invalid appsecret_proof provided in the API argument"}
	errNoUser      = &graphError{status: http.StatusBadRequest, code: 100, subcode: 2018001, msg: "(#100) No matching user found"}
	errNoRecipient = errParam("The parameter recipient is required")
	errSendOwner   = errCode10(2018300, "Message failed to send because another app is controlling this thread now.")
	errWindow      = errCode10(2018278, "This message is sent outside of allowed window.")
)

// Send API windows after the customer's last message.
const (
	standardWindow   = 24 * time.Hour
	humanAgentWindow = 7 * 24 * time.Hour
)

var versionRE = regexp.MustCompile(`^v\d+\.\d+$`)

// edgeOps maps Graph edges to Call.Op names.
var edgeOps = map[string]string{
	"messages":               "send",
	"pass_thread_control":    "pass_thread_control",
	"take_thread_control":    "take_thread_control",
	"request_thread_control": "request_thread_control",
	"release_thread_control": "release_thread_control",
	"thread_owner":           "thread_owner",
}

// graphRequest is a parsed Graph API call.
type graphRequest struct {
	method, node, edge string
	token, proof       string
	params             map[string]string
	parseErr           *graphError
}

// serveGraph answers /{version}/{node}/{edge} and /{node}/{edge}.
func (s *Sim) serveGraph(w http.ResponseWriter, r *http.Request) {
	g := graphRequest{method: r.Method, node: r.PathValue("node"), edge: r.PathValue("edge")}
	if v := r.PathValue("version"); v != "" && !versionRE.MatchString(v) {
		g.parseErr = errParam(fmt.Sprintf("Unknown path components: /%s/%s", g.node, g.edge))
	}
	params, err := readParams(r)
	if err != nil && g.parseErr == nil {
		g.parseErr = errParam("Invalid request body: " + err.Error())
	}
	g.token = params["access_token"]
	if auth := r.Header.Get("Authorization"); g.token == "" && auth != "" {
		if scheme, tok, ok := strings.Cut(auth, " "); ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
			g.token = strings.TrimSpace(tok)
		}
	}
	g.proof = params["appsecret_proof"]
	delete(params, "access_token")
	delete(params, "appsecret_proof")
	g.params = params

	op := edgeOps[g.edge]
	if op == "" {
		op = g.edge
	}
	s.mu.Lock()
	call := Call{Op: op, PageID: g.node, PSID: recipientID(params["recipient"]), Params: maps.Clone(params)}
	var res any
	injected, delay := s.chaosFor(op, s.tokens[g.token].app)
	gerr := injected
	if injected != nil {
		call.AppID = s.tokens[g.token].app
	} else {
		res, gerr = s.graphCall(&call, &g)
	}
	call.HTTPStatus = http.StatusOK
	if gerr != nil {
		call.HTTPStatus, call.Code, call.Subcode = gerr.status, gerr.code, gerr.subcode
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	ev := s.log.Debug().Str("op", call.Op).Str("app_id", call.AppID).Str("page_id", call.PageID).
		Str("psid", call.PSID).Int("status", call.HTTPStatus)
	if gerr != nil {
		ev = ev.Int("code", gerr.code).Int("subcode", gerr.subcode)
	}
	ev.Msg("graph call")
	if delay > 0 { // executed; the answer comes late
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}

	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// graphCall authenticates and executes a Graph call. Called with mu held.
func (s *Sim) graphCall(call *Call, g *graphRequest) (any, *graphError) {
	if g.parseErr != nil {
		return nil, g.parseErr
	}
	ti, ok := s.tokens[g.token]
	if !ok {
		return nil, errToken
	}
	call.AppID = ti.app
	if g.proof != "" {
		want := Sign256(s.apps[ti.app].Secret, []byte(g.token))
		if !hmac.Equal([]byte(strings.ToLower(g.proof)), []byte(want)) {
			return nil, errProof
		}
	}
	if g.node != "me" && g.node != ti.page {
		return nil, &graphError{status: http.StatusBadRequest, code: 100, subcode: 33, msg: fmt.Sprintf(
			"Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
			strings.ToLower(g.method), g.node)}
	}
	call.PageID = ti.page
	pg := s.pages[ti.page]
	wantMethod := http.MethodPost
	if call.Op == "thread_owner" {
		wantMethod = http.MethodGet
	}
	if _, known := edgeOps[g.edge]; !known || g.method != wantMethod {
		return nil, errParam(fmt.Sprintf("Unsupported %s request on edge '%s'.", strings.ToLower(g.method), g.edge))
	}
	if f := s.takeFault(call.Op, ti.app); f != nil {
		return nil, &graphError{status: f.HTTPStatus, code: f.Code, subcode: f.Subcode, msg: f.Message}
	}
	if call.PSID == "" {
		return nil, errNoRecipient
	}
	now := s.now()
	th := s.thread(pg.ID, call.PSID, false)
	if th == nil {
		if call.Op == "thread_owner" {
			return map[string]any{"data": []any{}}, nil
		}
		return nil, errNoUser
	}
	th.expire(now)
	c := opCtx{app: ti.app, page: pg, psid: call.PSID, th: th, now: now, params: g.params}
	switch call.Op {
	case "send":
		return s.send(c)
	case "pass_thread_control":
		return s.pass(c)
	case "take_thread_control":
		return s.take(c)
	case "request_thread_control":
		return s.request(c)
	case "release_thread_control":
		return s.release(c)
	default:
		return threadOwner(c), nil
	}
}

// opCtx is what every thread operation works on.
type opCtx struct {
	app    string // calling app
	page   *Page
	psid   string
	th     *thread // expiry already applied
	now    time.Time
	params map[string]string
}

var success = map[string]bool{"success": true}

// sendMessage is the Send API "message" parameter.
type sendMessage struct {
	Text       string `json:"text"`
	Metadata   string `json:"metadata"`
	Attachment *struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	} `json:"attachment"`
}

// send implements POST /messages.
func (s *Sim) send(c opCtx) (any, *graphError) {
	if c.page.DefaultAppID != "" && c.th.owner != c.app && !(c.th.owner == "" && c.app == c.page.DefaultAppID) {
		return nil, errSendOwner
	}
	result := map[string]string{"recipient_id": c.psid}
	if c.params["message"] == "" {
		switch c.params["sender_action"] {
		case "typing_on", "typing_off", "mark_seen":
			return result, nil
		}
		return nil, errParam("Must send either message or sender action")
	}
	var m sendMessage
	if err := json.Unmarshal([]byte(c.params["message"]), &m); err != nil {
		return nil, errParam("param message must be a JSON object")
	}
	if m.Text == "" && m.Attachment == nil {
		return nil, errParam("Message cannot be empty, must provide valid attachment or text")
	}
	window := standardWindow
	switch c.params["messaging_type"] {
	case "", "RESPONSE", "UPDATE":
	case "MESSAGE_TAG":
		switch c.params["tag"] {
		case "HUMAN_AGENT":
			window = humanAgentWindow
		case "":
			return nil, errParam("Param tag is required when messaging_type is MESSAGE_TAG")
		default:
			window = 0 // other tags are not bound to a window
		}
	default:
		return nil, errParam("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
	}
	if window > 0 && (c.th.lastUser.IsZero() || !c.now.Before(c.th.lastUser.Add(window))) {
		return nil, errWindow
	}

	mid := newID("m_", 32)
	sent := SentMessage{MID: mid, AppID: c.app, Text: m.Text, Metadata: m.Metadata, Time: c.now}
	echo := wireMessage{IsEcho: true, AppID: numericID(c.app), Metadata: m.Metadata, MID: mid, Text: m.Text}
	if a := m.Attachment; a != nil {
		echo.Attachments = []wireAttachment{{Type: a.Type, Payload: a.Payload}}
		var p struct {
			URL string `json:"url"`
		}
		_ = json.Unmarshal(a.Payload, &p)
		sent.Attachments = []Attachment{{Type: a.Type, URL: p.URL}}
	}
	c.th.transcript = append(c.th.transcript, sent)
	s.log.Info().Str("page_id", c.page.ID).Str("psid", c.psid).Str("app_id", c.app).Str("mid", mid).Str("text", m.Text).
		Bool("attachment", m.Attachment != nil).Msg("customer received")

	owner := c.th.owner
	if owner == "" {
		owner = c.app // the default app answering an idle thread
	}
	for _, app := range s.connectedApps(c.page) {
		standby := c.page.DefaultAppID != "" && app != owner
		ev := wireEvent{Sender: &idRef{c.page.ID}, Recipient: idRef{c.psid}, Timestamp: c.now.UnixMilli(), Message: &echo}
		s.enqueue(app, c.page.ID, standby, ev)
	}
	// The customer's device acknowledges the message: a delivery receipt in
	// the shape Meta documents (mids and watermark, no timestamp), from the
	// customer to the Page, on messaging for the owner and standby for the rest.
	for _, app := range s.connectedApps(c.page) {
		standby := c.page.DefaultAppID != "" && app != owner
		ev := wireEvent{Sender: &idRef{c.psid}, Recipient: idRef{c.page.ID}, Delivery: &wireDelivery{MIDs: []string{mid}, Watermark: c.now.UnixMilli()}}
		s.enqueue(app, c.page.ID, standby, ev)
	}
	result["message_id"] = mid
	return result, nil
}

// handoverEvent returns an event from the customer to the page at c.now.
func handoverEvent(c opCtx) wireEvent {
	return wireEvent{Sender: &idRef{c.psid}, Recipient: idRef{c.page.ID}, Timestamp: c.now.UnixMilli()}
}

// pass implements POST /pass_thread_control.
func (s *Sim) pass(c opCtx) (any, *graphError) {
	if c.th.owner != "" && c.th.owner != c.app {
		return nil, errCode10(2018300, "Cannot pass thread control: this app is not the thread owner.")
	}
	target := c.params["target_app_id"]
	if target == "" {
		target = c.page.DefaultAppID
	}
	switch {
	case target == "":
		return nil, errParam("Param target_app_id is required when the page has no default app")
	case target == c.app:
		return nil, errParam("Cannot pass thread control to yourself")
	case !isConnected(c.page, target) && target != pageInboxAppID:
		return nil, errParam(fmt.Sprintf("Invalid target_app_id %s: the app is not connected to this page", target))
	}
	var prev *string
	if c.th.owner != "" {
		p := c.th.owner
		prev = &p
	}
	c.th.setOwner(target, c.now)
	if _, ok := s.apps[target]; ok {
		ev := handoverEvent(c)
		ev.PassThreadControl = &wireHandover{PreviousOwnerAppID: prev, NewOwnerAppID: target, Metadata: c.params["metadata"]}
		s.enqueue(target, c.page.ID, false, ev)
	}
	return success, nil
}

// take implements POST /take_thread_control.
func (s *Sim) take(c opCtx) (any, *graphError) {
	switch {
	case c.page.DefaultAppID == "":
		return nil, errCode10(0, "Take thread control is not allowed")
	case c.app != c.page.DefaultAppID:
		return nil, errCode10(2018300, "Only the default app can take thread control of this conversation.")
	case c.th.owner == c.app:
		return nil, errParam("Cannot take thread control: this app already owns the thread")
	}
	prev := c.th.owner
	c.th.setOwner(c.app, c.now)
	if prev == "" {
		return success, nil // taking an idle thread sends no webhook
	}
	// Meta tells the app that lost control, and no one else.
	if _, ok := s.apps[prev]; ok && isConnected(c.page, prev) {
		ev := handoverEvent(c)
		ev.TakeThreadControl = &wireHandover{PreviousOwnerAppID: &prev, NewOwnerAppID: c.app, Metadata: c.params["metadata"]}
		s.enqueue(prev, c.page.ID, false, ev)
	}
	return success, nil
}

// request implements POST /request_thread_control.
func (s *Sim) request(c opCtx) (any, *graphError) {
	if c.th.owner == c.app {
		return nil, errParam("Cannot request thread control: this app already owns the thread")
	}
	ev := handoverEvent(c)
	if c.th.owner == "" {
		c.th.setOwner(c.app, c.now)
		ev.PassThreadControl = &wireHandover{NewOwnerAppID: c.app, Metadata: c.params["metadata"]}
		s.enqueue(c.app, c.page.ID, false, ev)
		return success, nil
	}
	if _, ok := s.apps[c.th.owner]; ok {
		ev.RequestThreadControl = &wireRequested{RequestedOwnerAppID: c.app, Metadata: c.params["metadata"]}
		s.enqueue(c.th.owner, c.page.ID, false, ev)
	}
	return success, nil
}

// release implements POST /release_thread_control.
func (s *Sim) release(c opCtx) (any, *graphError) {
	if c.th.owner != c.app {
		return nil, errCode10(2018300, "Cannot release thread control: this app is not the thread owner.")
	}
	c.th.setOwner("", c.now)
	return success, nil
}

// threadOwner implements GET /thread_owner: the owner and the default app
// see the owner; other apps only the expiration; idle threads are empty.
func threadOwner(c opCtx) any {
	data := []any{}
	if c.th.owner != "" {
		o := map[string]any{"expiration": c.th.expiresAt.Unix()}
		if c.app == c.th.owner || c.app == c.page.DefaultAppID {
			o["app_id"] = c.th.owner
		}
		data = append(data, map[string]any{"thread_owner": o})
	}
	return map[string]any{"data": data}
}

// readParams merges the query string with a form-encoded or JSON body. JSON
// values that are not strings are kept as their JSON text, which is what the
// form encoding of github.com/huandu/facebook sends for them.
func readParams(r *http.Request) (map[string]string, error) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	if r.Body == nil {
		return params, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(body) == 0 {
		return params, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return params, err
		}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				params[k] = str
			} else {
				params[k] = string(raw)
			}
		}
		return params, nil
	}
	form, err := url.ParseQuery(string(body))
	for k, v := range form {
		params[k] = v[0]
	}
	return params, err
}

// recipientID extracts the PSID of a recipient parameter, either a JSON object
// {"id": ...} (id as string or number) or a bare PSID.
func recipientID(v string) string {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "{") {
		return v
	}
	var r struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal([]byte(v), &r) != nil || len(r.ID) == 0 {
		return ""
	}
	var str string
	if json.Unmarshal(r.ID, &str) == nil {
		return str
	}
	return string(r.ID)
}

// writeGraphError writes e in Graph's error JSON shape.
func writeGraphError(w http.ResponseWriter, e *graphError) {
	trace := newID("A", 16)
	body := map[string]any{"error": map[string]any{
		"message": e.msg, "type": "OAuthException", "code": e.code, "fbtrace_id": trace,
	}}
	if e.subcode != 0 {
		body["error"].(map[string]any)["error_subcode"] = e.subcode
	}
	w.Header().Set("X-FB-Trace-ID", trace)
	writeJSON(w, e.status, body)
}

// writeJSON writes v as a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
