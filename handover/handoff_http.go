package handover

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// HandoffView is a handoff as the API (and the bot events) show it.
type HandoffView struct {
	ID                int64      `json:"id"`
	PageID            string     `json:"page_id"`
	IdentityForeignID string     `json:"identity_foreign_id"`
	To                string     `json:"to"`
	Mode              string     `json:"mode"`
	Status            string     `json:"status"`
	Reason            Reason     `json:"reason"`
	Metadata          Metadata   `json:"metadata"`
	CreatedBy         string     `json:"created_by"`
	CreatedAt         time.Time  `json:"created_at"`
	ExpiresAt         *time.Time `json:"expires_at"`
	DecidedBy         string     `json:"decided_by,omitempty"`
	DecidedAt         *time.Time `json:"decided_at"`
	InterventionID    int64      `json:"intervention_id,omitempty"`
	Error             string     `json:"error,omitempty"`
	GraphCode         int        `json:"graph_code,omitempty"`
	ThreadOwner       Owner      `json:"thread_owner,omitempty"`
	ControlPending    bool       `json:"control_pending,omitempty"`
}

// ViewHandoff is h as the API shows it.
func ViewHandoff(h Handoff) HandoffView {
	md := h.Metadata
	if md == nil {
		md = Metadata{}
	}
	return HandoffView{ID: h.ID, PageID: h.PageID, IdentityForeignID: h.PSID, To: "agent", Mode: h.Mode, Status: h.Status,
		Reason: h.Reason, Metadata: md, CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt,
		DecidedBy: h.DecidedBy, DecidedAt: h.DecidedAt, InterventionID: h.InterventionID, Error: h.Error, GraphCode: h.GraphCode}
}

// handoffRoutes registers the handover resource API.
func (a *EngageAPI) handoffRoutes(r *httpapi.Router) {
	r.HandleFunc(http.MethodPost, "/1.0/handovers", a.createHandoff)
	r.HandleFunc(http.MethodGet, "/1.0/handovers/{id}", a.getHandoff)
	r.HandleFunc(http.MethodPost, "/1.0/handovers/{id}/accept", a.acceptHandoff)
	r.HandleFunc(http.MethodPost, "/1.0/handovers/{id}/decline", a.declineHandoff)
}

func (a *EngageAPI) createHandoff(w http.ResponseWriter, r *http.Request) {
	tok := httpapi.BearerToken(r)
	if tok == "" {
		tok = r.URL.Query().Get("access_token")
	}
	p, err := a.Users.Require(tok, config.RoleBot, config.RoleAgent, config.RoleAdmin)
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
	if err := httpapi.DecodeJSON(w, r, 64<<10, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	h, out, err := a.Service.CreateHandoff(r.Context(), p, HandoffInput{PageID: body.PageID, PSID: body.IdentityForeignID, To: body.To,
		Mode: body.Mode, Reason: body.Reason, Metadata: body.Metadata})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v := ViewHandoff(h)
	v.ThreadOwner, v.ControlPending = out.Owner, out.Pending
	httpapi.WriteJSON(w, http.StatusCreated, v)
}

// handoffID reads the path's id; a malformed one is an unknown handover.
func handoffID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(httpapi.Var(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.New(apperr.NotFound, "handover %q does not exist", httpapi.Var(r, "id"))
	}
	return id, nil
}

func (a *EngageAPI) getHandoff(w http.ResponseWriter, r *http.Request) {
	tok := httpapi.BearerToken(r)
	if tok == "" {
		tok = r.URL.Query().Get("access_token")
	}
	p, err := a.Users.Require(tok, config.RoleBot, config.RoleAgent, config.RoleAdmin)
	var id int64
	if err == nil {
		id, err = handoffID(r)
	}
	var h Handoff
	if err == nil {
		h, err = a.Service.Handoff(r.Context(), p, id)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ViewHandoff(h))
}

func (a *EngageAPI) acceptHandoff(w http.ResponseWriter, r *http.Request) {
	a.decideHandoff(w, r, func(p auth.Principal, id int64) (HandoffView, error) {
		h, out, err := a.Service.AcceptOffer(r.Context(), p, id)
		v := ViewHandoff(h)
		v.ThreadOwner, v.ControlPending = out.Owner, out.Pending
		return v, err
	})
}

func (a *EngageAPI) declineHandoff(w http.ResponseWriter, r *http.Request) {
	a.decideHandoff(w, r, func(p auth.Principal, id int64) (HandoffView, error) {
		h, err := a.Service.DeclineOffer(r.Context(), p, id)
		return ViewHandoff(h), err
	})
}

func (a *EngageAPI) decideHandoff(w http.ResponseWriter, r *http.Request, fn func(auth.Principal, int64) (HandoffView, error)) {
	p, err := a.agent(r)
	var id int64
	if err == nil {
		id, err = handoffID(r)
	}
	var v HandoffView
	if err == nil {
		v, err = fn(p, id)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
}
