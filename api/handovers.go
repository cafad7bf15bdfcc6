package api

import (
	"encoding/json"
	"net/http"

	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
)

// caller authenticates a bot, agent or admin (bearer token or access_token).
func (a *API) caller(r *http.Request) (auth.Principal, error) {
	return a.Users.Require(token(r), config.RoleBot, config.RoleAgent, config.RoleAdmin)
}

// createHandoff serves POST /1.0/handovers: an offer or a pass of a
// conversation to the agents.
func (a *API) createHandoff(w http.ResponseWriter, r *http.Request) {
	p, err := a.caller(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var body struct {
		PageID            string          `json:"page_id"`
		IdentityForeignID string          `json:"identity_foreign_id"`
		To                string          `json:"to"`
		Mode              string          `json:"mode"`
		Reason            string          `json:"reason"`
		Metadata          json.RawMessage `json:"metadata"`
	}
	if err := httpapi.DecodeJSON(w, r, MaxBody, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	h, out, err := a.Handover.CreateHandoff(r.Context(), p, handover.HandoffInput{PageID: body.PageID, PSID: body.IdentityForeignID, To: body.To,
		Mode: body.Mode, Reason: body.Reason, Metadata: body.Metadata})
	v := handover.ViewHandoff(h)
	v.ThreadOwner, v.ControlPending = out.Owner, out.Pending
	reply(w, r, http.StatusCreated, v, err)
}

// getHandoff serves GET /1.0/handovers/{id}.
func (a *API) getHandoff(w http.ResponseWriter, r *http.Request) {
	p, err := a.caller(r)
	var id int64
	if err == nil {
		id, err = pathID(r, "handover")
	}
	var h handover.Handoff
	if err == nil {
		h, err = a.Handover.Handoff(r.Context(), p, id)
	}
	reply(w, r, http.StatusOK, handover.ViewHandoff(h), err)
}

// acceptHandoff serves POST /1.0/handovers/{id}/accept (agents).
func (a *API) acceptHandoff(w http.ResponseWriter, r *http.Request) {
	a.decideHandoff(w, r, func(p auth.Principal, id int64) (handover.HandoffView, error) {
		h, out, err := a.Handover.AcceptOffer(r.Context(), p, id)
		v := handover.ViewHandoff(h)
		v.ThreadOwner, v.ControlPending = out.Owner, out.Pending
		return v, err
	})
}

// declineHandoff serves POST /1.0/handovers/{id}/decline (agents).
func (a *API) declineHandoff(w http.ResponseWriter, r *http.Request) {
	a.decideHandoff(w, r, func(p auth.Principal, id int64) (handover.HandoffView, error) {
		h, err := a.Handover.DeclineOffer(r.Context(), p, id)
		return handover.ViewHandoff(h), err
	})
}

func (a *API) decideHandoff(w http.ResponseWriter, r *http.Request, fn func(auth.Principal, int64) (handover.HandoffView, error)) {
	p, err := a.agent(r)
	var id int64
	if err == nil {
		id, err = pathID(r, "handover")
	}
	var v handover.HandoffView
	if err == nil {
		v, err = fn(p, id)
	}
	reply(w, r, http.StatusOK, v, err)
}
