// Package api is handoverd's own HTTP API: threads and their history
// (/1.0/threads), the Pages' modes (/1.0/pages), agents' interventions and
// their messages (/1.0/interventions), handover resources — offers and
// passes to the agents (/1.0/handovers) — and handoff analytics
// (/1.0/analytics). Each handler authenticates, reads its input, calls one
// service method that returns data or an apperr error, and encodes the
// answer; httpapi maps errors to statuses in its one table.
package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/handoverd/handoverd/analytics"
	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
)

// MaxBody bounds a JSON request body, in bytes.
const MaxBody = 64 << 10

// API serves handoverd's own endpoints.
type API struct {
	// Handover is thread control: threads, interventions, handovers.
	Handover *handover.Service
	// Analytics computes the handoff analytics (nil: no /1.0/analytics).
	Analytics *analytics.Service
	// Users authenticates callers.
	Users *auth.Users
	// SendWait is how long an agent's send waits for the message to go out
	// before answering 202 (it keeps waiting durably after that).
	SendWait time.Duration
}

// Routes registers the endpoints.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, "/1.0/threads/{page_id}/{psid}", a.getThread)
	r.HandleFunc(http.MethodGet, "/1.0/pages", a.listPages)

	r.HandleFunc(http.MethodPost, "/1.0/interventions", a.openIntervention)
	r.HandleFunc(http.MethodGet, "/1.0/interventions", a.listInterventions)
	r.HandleFunc(http.MethodGet, "/1.0/interventions/{id}", a.getIntervention)
	r.HandleFunc(http.MethodPut, "/1.0/interventions/{id}/close", a.closeIntervention)
	r.HandleFunc(http.MethodPost, "/1.0/interventions/{id}/messages", a.sendMessage)
	r.HandleFunc(http.MethodGet, "/1.0/interventions/{id}/messages", a.listMessages)

	r.HandleFunc(http.MethodPost, "/1.0/handovers", a.createHandoff)
	r.HandleFunc(http.MethodGet, "/1.0/handovers/{id}", a.getHandoff)
	r.HandleFunc(http.MethodPost, "/1.0/handovers/{id}/accept", a.acceptHandoff)
	r.HandleFunc(http.MethodPost, "/1.0/handovers/{id}/decline", a.declineHandoff)

	if a.Analytics != nil {
		r.HandleFunc(http.MethodGet, "/1.0/analytics", a.getAnalytics)
	}
}

// token is the caller's bearer token, else its access_token parameter.
func token(r *http.Request) string {
	if tok := httpapi.BearerToken(r); tok != "" {
		return tok
	}
	return r.URL.Query().Get("access_token")
}

// agent authenticates an agent or admin (bearer token or access_token).
func (a *API) agent(r *http.Request) (auth.Principal, error) {
	return a.Users.Require(token(r), config.RoleAgent, config.RoleAdmin)
}

// pathID reads the path's id; a malformed one names a thing that does not
// exist (what is "a handover", "an intervention").
func pathID(r *http.Request, what string) (int64, error) {
	id, err := strconv.ParseInt(httpapi.Var(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.New(apperr.NotFound, "%s %q does not exist", what, httpapi.Var(r, "id"))
	}
	return id, nil
}

// reply writes v with status, or err.
func reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, status, v)
}
