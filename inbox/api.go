package inbox

import (
	"net/http"
	"strconv"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// API serves the Chatwoot-style application API under
// /api/v1/accounts/{account_id}, authenticated with the api_access_token
// header (agent or admin token).
type API struct {
	// Service does the work.
	Service *Service
	// Users authenticates callers.
	Users *auth.Users
}

const prefix = "/api/v1/accounts/{account_id}"

// Routes registers the endpoints.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, prefix+"/inboxes", a.handle(a.listInboxes))
	r.HandleFunc(http.MethodPost, prefix+"/inboxes", a.handle(a.createInbox))
	r.HandleFunc(http.MethodPost, prefix+"/contacts", a.handle(a.createContact))
	r.HandleFunc(http.MethodGet, prefix+"/contacts/{id}", a.handle(a.getContact))
	r.HandleFunc(http.MethodPost, prefix+"/conversations", a.handle(a.createConversation))
	r.HandleFunc(http.MethodGet, prefix+"/conversations", a.handle(a.listConversations))
	r.HandleFunc(http.MethodGet, prefix+"/conversations/{id}", a.handle(a.getConversation))
	r.HandleFunc(http.MethodGet, prefix+"/conversations/{id}/messages", a.handle(a.listMessages))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/messages", a.handle(a.createMessage))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/assignments", a.handle(a.assign))
	r.HandleFunc(http.MethodPost, prefix+"/conversations/{id}/toggle_status", a.handle(a.toggleStatus))
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

func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (call, error) {
	tok := r.Header.Get("api_access_token")
	if tok == "" {
		tok = r.Header.Get("Api-Access-Token")
	}
	if tok == "" {
		tok = httpapi.BearerToken(r)
	}
	p, err := a.Users.Require(tok, config.RoleAgent, config.RoleAdmin)
	if err != nil {
		return call{}, err
	}
	id, err := strconv.ParseInt(httpapi.Var(r, "account_id"), 10, 64)
	if err != nil {
		return call{}, apperr.New(apperr.NotFound, "account %q does not exist", httpapi.Var(r, "account_id"))
	}
	if err := account(p, id); err != nil {
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
	var in ContactInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.CreateContact(c.r.Context(), c.accountID, in)
	return http.StatusOK, v, err
}

func (a *API) getContact(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Contact(c.r.Context(), c.accountID, id)
	return http.StatusOK, v, err
}

func (a *API) createConversation(c call) (int, any, error) {
	var in ConversationInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.CreateConversation(c.r.Context(), c.accountID, in)
	return http.StatusOK, v, err
}

func (a *API) listConversations(c call) (int, any, error) {
	q := c.r.URL.Query()
	f := ConversationFilter{Status: q.Get("status"), AssigneeType: q.Get("assignee_type")}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"inbox_id", &f.InboxID}, {"assignee_id", &f.AssigneeID}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, nil, apperr.Field(p.name, "must be a number")
			}
			*p.dst = n
		}
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, apperr.Field("page", "must be a positive number")
		}
		f.Page = n
	}
	v, err := a.Service.Conversations(c.r.Context(), c.p, c.accountID, f)
	return http.StatusOK, v, err
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
	var in MessageInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.CreateMessage(c.r.Context(), c.p, c.accountID, id, in)
	return http.StatusOK, v, err
}

func (a *API) assign(c call) (int, any, error) {
	id, err := c.id()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		AssigneeID flexID `json:"assignee_id"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	v, err := a.Service.Assign(c.r.Context(), c.accountID, id, int64(in.AssigneeID))
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
