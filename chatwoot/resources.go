package chatwoot

import (
	"context"
	"net/http"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
)

// apiInfo answers GET /api as Chatwoot does (n8n's credential test calls
// it); it needs no token.
func (a *API) apiInfo(w http.ResponseWriter, r *http.Request) {
	now, err := a.Service.Health(r.Context())
	data := "ok"
	if err != nil {
		data = "failing"
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"version": "handoverd", "timestamp": now.UTC().Format(time.RFC3339),
		"queue_services": "ok", "data_services": data})
}

func (a *API) profile(c call) (int, any, error) {
	v, err := a.Service.Profile(c.p)
	return http.StatusOK, v, err
}

func (a *API) getInbox(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Inbox(c.r.Context(), c.accountID, id)
	return http.StatusOK, v, err
}

func (a *API) listAgents(c call) (int, any, error) {
	return http.StatusOK, a.Service.Agents(c.accountID), nil
}

func (a *API) listTeams(c call) (int, any, error) {
	return http.StatusOK, a.Service.Teams(c.p, c.accountID), nil
}

func (a *API) getTeam(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Team(c.p, c.accountID, id)
	return http.StatusOK, v, err
}

func (a *API) listContacts(c call) (int, any, error) {
	page, err := pageParam(c)
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Contacts(c.r.Context(), c.accountID, inbox.ContactFilter{Sort: c.r.URL.Query().Get("sort"), Page: page})
	return http.StatusOK, v, err
}

func (a *API) searchContacts(c call) (int, any, error) {
	page, err := pageParam(c)
	if err != nil {
		return 0, nil, err
	}
	q := c.r.URL.Query()
	v, err := a.Service.Contacts(c.r.Context(), c.accountID, inbox.ContactFilter{Q: q.Get("q"), Sort: q.Get("sort"), Page: page})
	return http.StatusOK, v, err
}

// filterBody is the body of POST …/filter.
type filterBody struct {
	Payload []inbox.FilterRule `json:"payload"`
}

// filterRules reads a POST …/filter body: at least one rule.
func filterRules(c call) ([]inbox.FilterRule, error) {
	var in filterBody
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Payload) == 0 {
		return nil, apperr.Field("payload", "needs at least one filter rule")
	}
	return in.Payload, nil
}

func (a *API) filterContacts(c call) (int, any, error) {
	page, err := pageParam(c)
	if err != nil {
		return 0, nil, err
	}
	rules, err := filterRules(c)
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Contacts(c.r.Context(), c.accountID, inbox.ContactFilter{Rules: rules, Page: page})
	return http.StatusOK, v, err
}

// payloadByID answers {"payload": …} with what get returns for the path's
// {id} in the caller's account (Chatwoot wraps its lists so).
func payloadByID[T any](get func(ctx context.Context, accountID, id int64) (T, error)) func(call) (int, any, error) {
	return func(c call) (int, any, error) {
		id, err := c.id()
		if err != nil {
			return 0, nil, err
		}
		v, err := get(c.r.Context(), c.accountID, id)
		return http.StatusOK, map[string]any{"payload": v}, err
	}
}

func (a *API) createContactInbox(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		InboxID  inbox.FlexID `json:"inbox_id"`
		SourceID string       `json:"source_id"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.CreateContactInbox(c.r.Context(), c.accountID, id, int64(in.InboxID), in.SourceID)
	return http.StatusOK, v, err
}

func (a *API) conversationMeta(c call) (int, any, error) {
	f, err := conversationQuery(c)
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.ConversationCounts(c.r.Context(), c.p, c.accountID, f)
	return http.StatusOK, map[string]any{"meta": v}, err
}

// filterConversations answers POST …/conversations/filter as Chatwoot
// does: {"meta": counts, "payload": conversations}.
func (a *API) filterConversations(c call) (int, any, error) {
	page, err := pageParam(c)
	if err != nil {
		return 0, nil, err
	}
	rules, err := filterRules(c)
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Conversations(c.r.Context(), c.p, c.accountID, inbox.ConversationFilter{Status: "all", Rules: rules, Page: page})
	return http.StatusOK, map[string]any{"meta": v.Data.Meta, "payload": v.Data.Payload}, err
}

func (a *API) listLabels(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Labels(c.r.Context(), c.accountID, id)
	return http.StatusOK, map[string]any{"payload": v}, err
}

func (a *API) setLabels(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Labels *[]string `json:"labels"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Labels == nil {
		return 0, nil, apperr.Field("labels", "is required (a list; empty clears)")
	}
	v, err := a.Service.SetLabels(c.r.Context(), c.accountID, id, *in.Labels)
	return http.StatusOK, map[string]any{"payload": v}, err
}

func (a *API) updateLastSeen(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.MarkSeen(c.r.Context(), c.accountID, id)
	return http.StatusOK, v, err
}
