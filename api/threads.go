package api

import (
	"net/http"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
)

// getThread serves GET /1.0/threads/{page_id}/{psid} (agents and admins):
// the thread's owner and history.
func (a *API) getThread(w http.ResponseWriter, r *http.Request) {
	p, err := a.Users.Require(httpapi.BearerToken(r), config.RoleAgent, config.RoleAdmin)
	var v handover.ThreadView
	if err == nil {
		v, err = a.Handover.ThreadForPrincipal(r.Context(), p, httpapi.Var(r, "page_id"), httpapi.Var(r, "psid"))
	}
	reply(w, r, http.StatusOK, v, err)
}

// listPages serves GET /1.0/pages (admins): each Page's mode as Meta shows
// it, compared with the configuration.
func (a *API) listPages(w http.ResponseWriter, r *http.Request) {
	p, err := a.Users.Require(httpapi.BearerToken(r), config.RoleAdmin)
	var v []handover.PageView
	if err == nil {
		v, err = a.Handover.PagesForPrincipal(r.Context(), p)
	}
	reply(w, r, http.StatusOK, map[string]any{"pages": v}, err)
}
