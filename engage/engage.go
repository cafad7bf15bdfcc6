// Package engage is the Engage Digital compatible Bots API: a bot (or an
// agent's tool) asks for a bot ↔ agent handover with
// POST /1.0/bots/handover, its parameters in the query, and gets Engage
// Digital's answer shape, {"status":200,"message":"Success"}, with the
// status of the one apperr table in httpapi, on failures too.
package engage

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/metrics"
)

// API serves POST /1.0/bots/handover.
type API struct {
	// Service does the handovers.
	Service *handover.Service
	// Users authenticates callers (bots, agents and admins).
	Users *auth.Users
	// Metrics counts the calls (handoverd_handovers_total); nil counts nothing.
	Metrics *metrics.Metrics
}

// Routes registers the endpoint.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFuncWith(http.MethodPost, "/1.0/bots/handover", a.handover, writeError)
}

// writeError answers err in Engage Digital's shape, with the status of the
// one apperr table (the router uses it too, for the input it refuses).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, status := httpapi.Failure(r, err)
	httpapi.WriteJSON(w, status, Status{Status: status, Message: message(e)})
}

// Status is Engage Digital's answer shape: {"status":200,"message":"Success"}.
type Status struct {
	// Status repeats the HTTP status.
	Status int `json:"status"`
	// Message is "Success" or what went wrong.
	Message string `json:"message"`
}

// ParseQuery reads POST /1.0/bots/handover's query parameters: the
// caller's access_token and the handover asked for.
func ParseQuery(q url.Values) (token string, req handover.HandoverRequest) {
	return q.Get("access_token"), handover.HandoverRequest{
		PSID: q.Get("identity_foreign_id"), From: q.Get("from"), To: q.Get("to"),
		Type: q.Get("type"), AppID: q.Get("app_id"), PageID: q.Get("page_id"),
		Mode: q.Get("mode"), Reason: q.Get("reason"), Metadata: q.Get("metadata"),
	}
}

// Query encodes a token and a request as POST /1.0/bots/handover's query
// parameters (the inverse of ParseQuery).
func Query(token string, req handover.HandoverRequest) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"access_token": token, "identity_foreign_id": req.PSID, "from": req.From, "to": req.To,
		"type": req.Type, "app_id": req.AppID, "page_id": req.PageID, "mode": req.Mode, "reason": req.Reason, "metadata": req.Metadata} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func (a *API) handover(w http.ResponseWriter, r *http.Request) {
	token, req := ParseQuery(r.URL.Query())
	if token == "" {
		token = httpapi.BearerToken(r)
	}
	p, err := a.Users.Require(token, config.RoleBot, config.RoleAgent, config.RoleAdmin)
	var out handover.Outcome
	if err == nil {
		out, err = a.Service.Handover(r.Context(), p, req)
	}
	a.count(req.To, out, err)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, Status{Status: http.StatusOK, Message: "Success"})
}

// message is e's message for Engage's body, which has no field of its own:
// one about a parameter names it first, unless it already does.
func message(e *apperr.Error) string {
	if e.Field != "" && !names(e.Message, e.Field) {
		return e.Field + " " + e.Message
	}
	return e.Message
}

// names reports whether msg already names the parameter field: it starts
// with it ("to is missing"), starts by quoting parameters as the query
// has them ("mode=offer offers …", `from="bot" to="bot": …`), or calls it
// unknown ("unknown reason …"). The name elsewhere is not enough: "to"
// appears in many a message about another parameter.
func names(msg, field string) bool {
	first, _, _ := strings.Cut(msg, " ")
	return strings.HasPrefix(msg, field+" ") || strings.Contains(first, "=") || strings.Contains(msg, "unknown "+field+" ")
}

// count records one call by direction and result.
func (a *API) count(to string, out handover.Outcome, err error) {
	if a.Metrics == nil {
		return
	}
	direction := "to_" + to
	if to != "agent" && to != "bot" {
		direction = "invalid"
	}
	a.Metrics.Handovers.WithLabelValues(direction, result(out, err)).Inc()
}

// result is the metrics result of a call.
func result(out handover.Outcome, err error) string {
	if err == nil {
		if out.Noop {
			return "noop"
		}
		return "ok"
	}
	switch apperr.CodeOf(err) {
	case apperr.Conflict:
		return "conflict"
	case apperr.NotFound:
		return "not_found"
	case apperr.Upstream:
		return "upstream_error"
	case apperr.Invalid:
		return "invalid"
	case apperr.Unauthorized, apperr.Forbidden:
		return "unauthorized"
	}
	return "error"
}
