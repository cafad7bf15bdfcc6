package handover

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
)

// The methods below act for a caller: each checks that the Pages involved
// belong to the caller's client.

// PageFor resolves the Page p acts on: the named one, which must belong to
// p's client, or the client's only Page when pageID is "".
func (s *Service) PageFor(p auth.Principal, pageID string) (config.Page, error) {
	if pageID != "" {
		return p.Page(s.pages, pageID)
	}
	var found []config.Page
	for _, page := range s.pages {
		if p.CanActOnClient(page.ClientID) {
			found = append(found, page)
		}
	}
	switch len(found) {
	case 0:
		return config.Page{}, apperr.New(apperr.Forbidden, "no page belongs to your client")
	case 1:
		return found[0], nil
	}
	return config.Page{}, apperr.Field("page_id", "page_id is required: your client has %d pages", len(found))
}

// ThreadForPrincipal returns the view of a thread p may read: agents and
// admins of the Page's client.
func (s *Service) ThreadForPrincipal(ctx context.Context, p auth.Principal, pageID, psid string) (ThreadView, error) {
	if _, err := p.Page(s.pages, pageID); err != nil {
		return ThreadView{}, err
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

// InterventionForPrincipal returns intervention id if it is on a Page of
// p's client; any other is NotFound, as if it did not exist.
func (s *Service) InterventionForPrincipal(ctx context.Context, p auth.Principal, id int64) (Intervention, error) {
	iv, err := s.Intervention(ctx, id)
	if err != nil {
		return iv, err
	}
	if page, ok := s.pages[iv.PageID]; !ok || !p.CanActOnClient(page.ClientID) {
		return Intervention{}, apperr.New(apperr.NotFound, "intervention %d does not exist", id)
	}
	return iv, nil
}

// InterventionsForPrincipal lists the interventions with psid on the Page
// p names (see PageFor).
func (s *Service) InterventionsForPrincipal(ctx context.Context, p auth.Principal, pageID, psid string) ([]Intervention, error) {
	if psid == "" {
		return nil, apperr.Field("identity_foreign_id", "is required")
	}
	page, err := s.PageFor(p, pageID)
	if err != nil {
		return nil, err
	}
	return s.Interventions(ctx, page.ID, psid)
}

// OpenInterventionForPrincipal opens an intervention by agent p with psid
// on the Page p names (see PageFor).
func (s *Service) OpenInterventionForPrincipal(ctx context.Context, p auth.Principal, pageID, psid string) (Intervention, Outcome, error) {
	if psid == "" {
		return Intervention{}, Outcome{}, apperr.Field("identity_foreign_id", "is required")
	}
	page, err := s.PageFor(p, pageID)
	if err != nil {
		return Intervention{}, Outcome{}, err
	}
	return s.OpenIntervention(ctx, page.ID, psid, p.Name)
}

// SendInIntervention sends message as agent within iv, which must be
// open (Conflict otherwise); see SendAsAgent. It checks no principal: iv
// must come from InterventionForPrincipal (or OpenInterventionForPrincipal),
// which checks that the caller may act on its Page.
func (s *Service) SendInIntervention(ctx context.Context, iv Intervention, agent string, message json.RawMessage, wait time.Duration) (AgentMessage, error) {
	if iv.Status != InterventionOpen {
		return AgentMessage{}, apperr.New(apperr.Conflict, "intervention %d is %s", iv.ID, iv.Status)
	}
	return s.SendAsAgent(ctx, iv.PageID, iv.PSID, iv.ID, agent, message, wait)
}
