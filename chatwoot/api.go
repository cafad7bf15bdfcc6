package chatwoot

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
)

// API serves the Chatwoot-style application API under
// /api/v1/accounts/{account_id}, authenticated with the api_access_token
// header (agent or admin token).
type API struct {
	// Service is the inbox the API shows and changes; its clock paces the
	// live updates' polls and pings.
	Service *inbox.Service
	// Users authenticates callers.
	Users *auth.Users
}

const prefix = "/api/v1/accounts/{account_id}"

// Routes registers the endpoints. Every route also answers with a
// trailing slash (the router's doing), as Chatwoot's do.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, "/api", a.apiInfo)
	r.HandleFunc(http.MethodGet, "/api/v1/profile", a.handleUser(a.profile))
	r.HandleFunc(http.MethodGet, inbox.AttachmentPath+"/{token}/{filename}", a.attachment)
	r.HandleFunc(http.MethodGet, prefix+"/inboxes", a.handle(a.listInboxes))
	r.HandleFunc(http.MethodPost, prefix+"/inboxes", a.handle(a.createInbox))
	r.HandleFunc(http.MethodGet, prefix+"/inboxes/{id}", a.handle(a.getInbox))
	r.HandleFunc(http.MethodGet, prefix+"/agents", a.handle(a.listAgents))
	r.HandleFunc(http.MethodGet, prefix+"/teams", a.handle(a.listTeams))
	r.HandleFunc(http.MethodGet, prefix+"/teams/{id}", a.handle(a.getTeam))
	r.HandleFunc(http.MethodGet, prefix+"/contacts", a.handle(a.listContacts))
	r.HandleFunc(http.MethodPost, prefix+"/contacts", a.handle(a.createContact))
	r.HandleFunc(http.MethodGet, prefix+"/contacts/search", a.handle(a.searchContacts))
	r.HandleFunc(http.MethodPost, prefix+"/contacts/filter", a.handle(a.filterContacts))
	r.HandleFunc(http.MethodGet, prefix+"/contacts/{id}", a.handle(a.getContact))
	r.HandleFunc(http.MethodGet, prefix+"/contacts/{id}/conversations", a.handle(payloadByID(a.Service.ContactConversations)))
	r.HandleFunc(http.MethodGet, prefix+"/contacts/{id}/contact_inboxes", a.handle(payloadByID(a.Service.ContactInboxes)))
	r.HandleFunc(http.MethodPost, prefix+"/contacts/{id}/contact_inboxes", a.handle(a.createContactInbox))
	r.HandleFunc(http.MethodGet, prefix+"/contacts/{id}/contactable_inboxes", a.handle(payloadByID(a.Service.ContactableInboxes)))
	r.HandleFunc(http.MethodPost, prefix+"/conversations", a.handle(a.createConversation))
	r.HandleFunc(http.MethodGet, prefix+"/conversations", a.handle(a.listConversations))
	r.HandleFunc(http.MethodGet, prefix+"/conversations/meta", a.handle(a.conversationMeta))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/filter", a.handle(a.filterConversations))
	r.HandleFunc(http.MethodGet, prefix+"/conversations/{id}", a.handle(a.getConversation))
	r.HandleFunc(http.MethodGet, prefix+"/conversations/{id}/messages", a.handle(a.listMessages))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/messages", a.handle(a.createMessage))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/assignments", a.handle(a.assign))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/toggle_status", a.handle(a.toggleStatus))
	r.HandleFunc(http.MethodGet, prefix+"/conversations/{id}/labels", a.handle(a.listLabels))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/labels", a.handle(a.setLabels))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/update_last_seen", a.handle(a.updateLastSeen))
	r.HandleFunc(http.MethodGet, prefix+"/events", a.events)
}

// call is one authenticated request to the account API.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	p         auth.Principal
	accountID int64
}

// handle authenticates the caller for the path's account and runs f, which
// returns the status and body to write.
func (a *API) handle(f func(c call) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := a.authenticate(w, r)
		if err == nil {
			var status int
			var body any
			if status, body, err = f(c); err == nil {
				httpapi.WriteJSON(w, status, body)
				return
			}
		}
		httpapi.WriteError(w, r, err)
	}
}

// handleUser is handle for routes outside an account (the profile).
func (a *API) handleUser(f func(c call) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.principal(r)
		if err == nil {
			var status int
			var body any
			if status, body, err = f(call{w: w, r: r, p: p}); err == nil {
				httpapi.WriteJSON(w, status, body)
				return
			}
		}
		httpapi.WriteError(w, r, err)
	}
}

func (a *API) principal(r *http.Request) (auth.Principal, error) {
	tok := r.Header.Get("api_access_token")
	if tok == "" {
		tok = r.Header.Get("Api-Access-Token")
	}
	if tok == "" {
		tok = httpapi.BearerToken(r)
	}
	return a.Users.Require(tok, config.RoleAgent, config.RoleAdmin)
}

func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (call, error) {
	p, err := a.principal(r)
	if err != nil {
		return call{}, err
	}
	id, err := strconv.ParseInt(httpapi.Var(r, "account_id"), 10, 64)
	if err != nil {
		return call{}, apperr.New(apperr.NotFound, "account %q does not exist", httpapi.Var(r, "account_id"))
	}
	if err := inbox.CheckAccount(p, id); err != nil {
		return call{}, err
	}
	return call{w: w, r: r, p: p, accountID: id}, nil
}

func (c call) id() (int64, error) {
	id, err := strconv.ParseInt(httpapi.Var(c.r, "id"), 10, 64)
	if err != nil {
		return 0, apperr.New(apperr.NotFound, "%q is not an id", httpapi.Var(c.r, "id"))
	}
	return id, nil
}

func (c call) decode(v any) error { return httpapi.DecodeJSON(c.w, c.r, 256<<10, v) }

func (a *API) listInboxes(c call) (int, any, error) {
	ivs, err := a.Service.Inboxes(c.r.Context(), c.accountID)
	return http.StatusOK, map[string]any{"payload": ivs}, err
}

func (a *API) createInbox(c call) (int, any, error) {
	var in struct {
		Name    string `json:"name"`
		Channel struct {
			Type       string `json:"type"`
			WebhookURL string `json:"webhook_url"`
		} `json:"channel"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Channel.Type != "api" {
		return 0, nil, apperr.Field("channel.type", "only api inboxes can be created; Messenger inboxes come from the config's pages")
	}
	v, err := a.Service.CreateAPIInbox(c.r.Context(), c.accountID, in.Name, in.Channel.WebhookURL)
	return http.StatusOK, v, err
}

func (a *API) createContact(c call) (int, any, error) {
	var in inbox.ContactInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.CreateContact(c.r.Context(), c.accountID, in)
	if err != nil {
		return 0, nil, err
	}
	out := inbox.ContactCreated{ContactView: v}
	out.Payload.Contact = v
	if len(v.ContactInboxes) > 0 {
		out.Payload.ContactInbox = v.ContactInboxes[0]
	}
	return http.StatusOK, out, nil
}

func (a *API) getContact(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Contact(c.r.Context(), c.accountID, id)
	return http.StatusOK, inbox.ContactShown{ContactView: v, Payload: v}, err
}

func (a *API) createConversation(c call) (int, any, error) {
	var in inbox.ConversationInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.CreateConversation(c.r.Context(), c.accountID, in)
	return http.StatusOK, v, err
}

func (a *API) listConversations(c call) (int, any, error) {
	f, err := conversationQuery(c)
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Conversations(c.r.Context(), c.p, c.accountID, f)
	return http.StatusOK, v, err
}

// conversationQuery reads the query parameters of the conversation list
// and its counts.
func conversationQuery(c call) (inbox.ConversationFilter, error) {
	q := c.r.URL.Query()
	f := inbox.ConversationFilter{Status: q.Get("status"), AssigneeType: q.Get("assignee_type"), Q: q.Get("q")}
	f.Labels = append(q["labels[]"], q["labels"]...)
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"inbox_id", &f.InboxID}, {"assignee_id", &f.AssigneeID}, {"team_id", &f.TeamID}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, apperr.Field(p.name, "must be a number")
			}
			*p.dst = n
		}
	}
	page, err := pageParam(c)
	f.Page = page
	return f, err
}

// pageParam reads the page query parameter (default 1).
func pageParam(c call) (int, error) {
	v := c.r.URL.Query().Get("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, apperr.Field("page", "must be a positive number")
	}
	return n, nil
}

func (a *API) getConversation(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Conversation(c.r.Context(), c.accountID, id)
	return http.StatusOK, v, err
}

func (a *API) listMessages(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var before int64
	if v := c.r.URL.Query().Get("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, nil, apperr.Field("before", "must be a message id")
		}
	}
	v, err := a.Service.Messages(c.r.Context(), c.accountID, id, before)
	return http.StatusOK, v, err
}

func (a *API) createMessage(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var in inbox.MessageInput
	if isMultipart(c.r) {
		in, err = decodeMultipartMessage(c.w, c.r)
	} else {
		err = c.decode(&in)
	}
	if err != nil {
		return 0, nil, err
	}
	in.BaseURL = baseURL(a.Service.PublicURL(), c.r)
	v, err := a.Service.CreateMessage(c.r.Context(), c.p, c.accountID, id, in)
	return http.StatusOK, v, err
}

// assign sets the assignee ({"assignee_id":…}, answered with the agent)
// or, without assignee_id, the team ({"team_id":…}, answered with the
// team), as Chatwoot's assignments endpoint does; null or 0 clears.
func (a *API) assign(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var in map[string]json.RawMessage
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	read := func(key string) (int64, error) {
		var v inbox.FlexID
		if err := v.UnmarshalJSON(in[key]); err != nil {
			return 0, apperr.Field(key, "must be an id")
		}
		return int64(v), nil
	}
	_, agentGiven := in["assignee_id"]
	if _, teamGiven := in["team_id"]; teamGiven && !agentGiven {
		team, err := read("team_id")
		if err != nil {
			return 0, nil, err
		}
		v, err := a.Service.AssignTeam(c.r.Context(), c.p, c.accountID, id, team)
		return http.StatusOK, v, err
	}
	agent, err := read("assignee_id")
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Assign(c.r.Context(), c.accountID, id, agent)
	return http.StatusOK, v, err
}

func (a *API) toggleStatus(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Status string `json:"status"`
	}
	if c.r.ContentLength != 0 {
		if err := c.decode(&in); err != nil {
			return 0, nil, err
		}
	}
	st, err := a.Service.ToggleStatus(c.r.Context(), c.p, c.accountID, id, in.Status)
	return http.StatusOK, map[string]any{"meta": map[string]any{}, "payload": map[string]any{
		"success": err == nil, "current_status": st, "conversation_id": id}}, err
}
