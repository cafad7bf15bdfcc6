package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Handler returns the HTTP handler serving the Graph API
// (/{version}/{page-id|me}/{edge}, version optional) and the /_sim control
// endpoints used to drive the simulator from outside:
//
//	POST /_sim/pages/{page}/customers/{psid}/messages  {"text","quick_reply_payload","attachments","reply_to_mid"} → {"mid"}
//	POST /_sim/pages/{page}/customers/{psid}/postbacks {"title","payload"} → {"mid"}
//	POST /_sim/pages/{page}/customers/{psid}/reads     → {}
//	GET  /_sim/pages/{page}/customers/{psid}/inbox     → messages received via the Send API (?last=N: the newest N)
//	POST /_sim/settle                                  → {} once every webhook delivery is done
//	GET  /_sim/pages/{page}/threads/{psid}             → {"owner_app_id","expires_at","last_user_message_at"}
//	PUT  /_sim/pages/{page}/app_roles                  {"app id":["primary_receiver"],…} → {} after the app_roles webhooks
//	GET  /_sim/calls                                   → Graph calls received (DELETE resets)
//	GET  /_sim/apps/{app}/deliveries                   → webhook deliveries to an app
//
// The customer endpoints and inbox take ?wait=true: answer only once every
// webhook delivery the simulator has queued — including those the apps'
// reactions queue while the first ones are delivered — is done (at most
// 30 s), so what is read next is settled.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_sim/pages/{page}/customers/{psid}/messages", s.ctlMessage)
	mux.HandleFunc("POST /_sim/pages/{page}/customers/{psid}/postbacks", s.ctlPostback)
	mux.HandleFunc("POST /_sim/pages/{page}/customers/{psid}/reads", s.ctlRead)
	mux.HandleFunc("GET /_sim/pages/{page}/customers/{psid}/inbox", s.ctlInbox)
	mux.HandleFunc("GET /_sim/pages/{page}/threads/{psid}", s.ctlThread)
	mux.HandleFunc("PUT /_sim/pages/{page}/app_roles", s.ctlAppRoles)
	mux.HandleFunc("POST /_sim/settle", s.ctlSettle)
	mux.HandleFunc("GET /_sim/calls", s.ctlCalls)
	mux.HandleFunc("DELETE /_sim/calls", s.ctlResetCalls)
	mux.HandleFunc("GET /_sim/apps/{app}/deliveries", s.ctlDeliveries)
	mux.HandleFunc("/{node}/{edge}", s.serveGraph)
	mux.HandleFunc("/{version}/{node}/{edge}", s.serveGraph)
	return mux
}

// ctlError writes a control-endpoint error.
func ctlError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// settle waits, when the request asks (?wait=true), for every webhook
// delivery to be done; it reports false after writing an error.
func (s *Sim) settle(w http.ResponseWriter, r *http.Request, always bool) bool {
	if !always {
		if v := r.URL.Query().Get("wait"); v == "" || v == "false" || v == "0" {
			return true
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		ctlError(w, http.StatusGatewayTimeout, fmt.Errorf("webhook deliveries did not settle: %w", err))
		return false
	}
	return true
}

func (s *Sim) ctlSettle(w http.ResponseWriter, r *http.Request) {
	if s.settle(w, r, true) {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// decodeBody decodes an optional JSON request body into v.
func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
	if err == io.EOF {
		return nil
	}
	return err
}

func (s *Sim) ctlMessage(w http.ResponseWriter, r *http.Request) {
	var m CustomerMessage
	if err := decodeBody(r, &m); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	mid, err := s.CustomerSends(r.PathValue("page"), r.PathValue("psid"), m)
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if !s.settle(w, r, false) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mid": mid})
}

func (s *Sim) ctlPostback(w http.ResponseWriter, r *http.Request) {
	var pb struct{ Title, Payload string }
	if err := decodeBody(r, &pb); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	mid, err := s.CustomerPostback(r.PathValue("page"), r.PathValue("psid"), pb.Title, pb.Payload)
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if !s.settle(w, r, false) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mid": mid})
}

func (s *Sim) ctlRead(w http.ResponseWriter, r *http.Request) {
	if err := s.CustomerReads(r.PathValue("page"), r.PathValue("psid")); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if !s.settle(w, r, false) {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// ctlAppRoles assigns app roles ({"app id": ["primary_receiver"]}) and
// sends the app_roles webhooks.
func (s *Sim) ctlAppRoles(w http.ResponseWriter, r *http.Request) {
	var roles map[string][]string
	if err := decodeBody(r, &roles); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.SetAppRoles(r.PathValue("page"), roles); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if !s.settle(w, r, false) {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Sim) ctlInbox(w http.ResponseWriter, r *http.Request) {
	if !s.settle(w, r, false) {
		return
	}
	inbox := s.Inbox(r.PathValue("page"), r.PathValue("psid"))
	if v := r.URL.Query().Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("last must be a non-negative number, got %q", v))
			return
		}
		if n < len(inbox) {
			inbox = inbox[len(inbox)-n:]
		}
	}
	if inbox == nil {
		inbox = []SentMessage{}
	}
	writeJSON(w, http.StatusOK, inbox)
}

// threadJSON is the control-endpoint view of a Thread; times are RFC 3339 or null.
type threadJSON struct {
	OwnerAppID        string     `json:"owner_app_id"`
	ExpiresAt         *time.Time `json:"expires_at"`
	LastUserMessageAt *time.Time `json:"last_user_message_at"`
}

func (s *Sim) ctlThread(w http.ResponseWriter, r *http.Request) {
	th := s.Thread(r.PathValue("page"), r.PathValue("psid"))
	out := threadJSON{OwnerAppID: th.OwnerAppID}
	if !th.ExpiresAt.IsZero() {
		out.ExpiresAt = &th.ExpiresAt
	}
	if !th.LastUserMessageAt.IsZero() {
		out.LastUserMessageAt = &th.LastUserMessageAt
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) ctlCalls(w http.ResponseWriter, r *http.Request) {
	calls := s.Calls()
	if calls == nil {
		calls = []Call{}
	}
	writeJSON(w, http.StatusOK, calls)
}

func (s *Sim) ctlResetCalls(w http.ResponseWriter, r *http.Request) {
	s.ResetCalls()
	writeJSON(w, http.StatusOK, struct{}{})
}

// deliveryJSON is the control-endpoint view of a Delivery, with the body inline.
type deliveryJSON struct {
	Attempts  int             `json:"attempts"`
	Status    int             `json:"status"`
	Delivered bool            `json:"delivered"`
	Body      json.RawMessage `json:"body"`
}

func (s *Sim) ctlDeliveries(w http.ResponseWriter, r *http.Request) {
	out := []deliveryJSON{}
	for _, d := range s.Deliveries(r.PathValue("app")) {
		body := d.Body
		if !json.Valid(body) {
			body, _ = json.Marshal(string(body))
		}
		out = append(out, deliveryJSON{Attempts: d.Attempts, Status: d.Status, Delivered: d.Delivered, Body: body})
	}
	writeJSON(w, http.StatusOK, out)
}
