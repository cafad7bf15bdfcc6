package handover

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// ThreadView is the read API's representation of a thread.
type ThreadView struct {
	PageID         string           `json:"page_id"`
	PSID           string           `json:"psid"`
	Owner          Owner            `json:"owner"`
	OwnerAppID     string           `json:"owner_app_id"`
	ExpiresAt      *time.Time       `json:"expires_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
	PendingRequest *PendingView     `json:"pending_request,omitempty"`
	History        []TransitionView `json:"history"`
	// LastCustomerAt is the customer's last message: Messenger's reply
	// windows (24 h standard, 7 days HUMAN_AGENT) run from it.
	LastCustomerAt *time.Time `json:"last_customer_at"`
}

// PendingView is an outstanding request for thread control.
type PendingView struct {
	AppID string    `json:"app_id"`
	At    time.Time `json:"at"`
}

// TransitionView is one history entry.
type TransitionView struct {
	At        time.Time `json:"at"`
	From      Owner     `json:"from"`
	To        Owner     `json:"to"`
	Cause     Cause     `json:"cause"`
	FromAppID string    `json:"from_app_id,omitempty"`
	ToAppID   string    `json:"to_app_id,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	Reason    Reason    `json:"reason,omitempty"`
	Metadata  Metadata  `json:"metadata,omitempty"`
}

// ThreadForPrincipal returns the view of a thread p may read: agents and
// admins of the Page's client.
func (s *Service) ThreadForPrincipal(ctx context.Context, p auth.Principal, pageID, psid string) (ThreadView, error) {
	page, ok := s.pages[pageID]
	if !ok {
		return ThreadView{}, apperr.New(apperr.NotFound, "page %s is not configured", pageID)
	}
	if !p.CanActOnClient(page.ClientID) {
		return ThreadView{}, apperr.New(apperr.Forbidden, "page %s belongs to another client", pageID)
	}
	th, hist, err := s.Get(ctx, pageID, psid)
	if errors.Is(err, ErrNotFound) {
		return ThreadView{}, apperr.New(apperr.NotFound, "no thread for psid %s on page %s", psid, pageID)
	}
	if err != nil {
		return ThreadView{}, err
	}
	v := ThreadView{PageID: th.PageID, PSID: th.PSID, Owner: th.Owner, OwnerAppID: th.OwnerAppID,
		ExpiresAt: th.ExpiresAt, UpdatedAt: th.UpdatedAt, LastCustomerAt: th.LastCustomerAt, History: []TransitionView{}}
	if th.PendingAppID != "" && th.PendingAt != nil {
		v.PendingRequest = &PendingView{AppID: th.PendingAppID, At: *th.PendingAt}
	}
	for _, t := range hist {
		v.History = append(v.History, TransitionView{At: t.At, From: t.From, To: t.To, Cause: t.Cause,
			FromAppID: t.FromAppID, ToAppID: t.ToAppID, Actor: t.Actor, Reason: t.Reason, Metadata: t.Metadata})
	}
	return v, nil
}

// API serves the thread read API.
type API struct {
	// Service answers the queries.
	Service *Service
	// Users authenticates callers.
	Users *auth.Users
}

// Routes registers GET /1.0/threads/{page_id}/{psid} and GET /1.0/pages.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, "/1.0/threads/{page_id}/{psid}", a.getThread)
	r.HandleFunc(http.MethodGet, "/1.0/pages", a.listPages)
}

// listPages serves GET /1.0/pages (admins): each Page's mode as Meta shows
// it, compared with the configuration.
func (a *API) listPages(w http.ResponseWriter, r *http.Request) {
	p, err := a.Users.Require(httpapi.BearerToken(r), config.RoleAdmin)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v, err := a.Service.PagesForPrincipal(r.Context(), p)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"pages": v})
}

func (a *API) getThread(w http.ResponseWriter, r *http.Request) {
	p, err := a.Users.Require(httpapi.BearerToken(r), config.RoleAgent, config.RoleAdmin)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v, err := a.Service.ThreadForPrincipal(r.Context(), p, httpapi.Var(r, "page_id"), httpapi.Var(r, "psid"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
}
