package handover

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// EngageAPI serves the Engage Digital compatible Bots API
// (POST /1.0/bots/handover) and agents' interventions.
type EngageAPI struct {
	// Service does the work.
	Service *Service
	// Users authenticates callers.
	Users *auth.Users
	// SendWait is how long an agent's send waits for the message to go out
	// before answering 202 (it keeps waiting durably after that).
	SendWait time.Duration
}

// Routes registers the endpoints.
func (a *EngageAPI) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodPost, "/1.0/bots/handover", a.handover)
	r.HandleFunc(http.MethodPost, "/1.0/interventions", a.openIntervention)
	r.HandleFunc(http.MethodGet, "/1.0/interventions", a.listInterventions)
	r.HandleFunc(http.MethodGet, "/1.0/interventions/{id}", a.getIntervention)
	r.HandleFunc(http.MethodPut, "/1.0/interventions/{id}/close", a.closeIntervention)
	r.HandleFunc(http.MethodPost, "/1.0/interventions/{id}/messages", a.sendMessage)
	r.HandleFunc(http.MethodGet, "/1.0/interventions/{id}/messages", a.listMessages)
	a.handoffRoutes(r)
}

// engageStatus is Engage Digital's answer shape: {"status":200,"message":"Success"}.
type engageStatus struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// HandoverRequest is a parsed POST /1.0/bots/handover.
type HandoverRequest struct {
	// Token is the caller's access token.
	Token string
	// PSID is identity_foreign_id.
	PSID string
	// From and To are bot or agent.
	From, To string
	// Type is the channel type (messenger).
	Type string
	// AppID is the bot's app id for agent → bot.
	AppID string
	// PageID is the Page, when the caller's client has several.
	PageID string
	// Mode is pass (the default) or offer (bot → agent only).
	Mode string
	// Reason is a Reason ("" for the direction's default).
	Reason string
	// Metadata is a flat JSON object (as text), at most 4 KB.
	Metadata string
}

// ParseHandoverQuery reads POST /1.0/bots/handover's query parameters.
func ParseHandoverQuery(q url.Values) HandoverRequest {
	return HandoverRequest{
		Token: q.Get("access_token"), PSID: q.Get("identity_foreign_id"), From: q.Get("from"), To: q.Get("to"),
		Type: q.Get("type"), AppID: q.Get("app_id"), PageID: q.Get("page_id"),
		Mode: q.Get("mode"), Reason: q.Get("reason"), Metadata: q.Get("metadata"),
	}
}

// Query encodes the request as POST /1.0/bots/handover's query parameters
// (the inverse of ParseHandoverQuery).
func (req HandoverRequest) Query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"access_token": req.Token, "identity_foreign_id": req.PSID, "from": req.From, "to": req.To,
		"type": req.Type, "app_id": req.AppID, "page_id": req.PageID, "mode": req.Mode, "reason": req.Reason, "metadata": req.Metadata} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Handover performs a bot ↔ agent handover for principal p.
func (s *Service) Handover(ctx context.Context, p auth.Principal, req HandoverRequest) (Outcome, error) {
	if err := req.Validate(); err != nil {
		return Outcome{}, err
	}
	page, err := s.pageFor(p, req.PageID)
	if err != nil {
		return Outcome{}, err
	}
	if req.To == "agent" {
		in := HandoffInput{PageID: page.ID, PSID: req.PSID, To: "agent", Mode: req.Mode, Reason: req.Reason, Metadata: []byte(req.Metadata)}
		mode, why, err := parseHandoff(in)
		if err != nil {
			return Outcome{}, err
		}
		if mode == ModePass && page.BotWebhook.URL == "" {
			// Nobody to tell how it went: no handover record is needed.
			return s.AcquireControl(withWhy(ctx, why), page.ID, req.PSID, p.Name)
		}
		_, out, err := s.CreateHandoff(ctx, p, in)
		return out, err
	}
	r, _ := ParseReason("reason", req.Reason)
	md, _ := ParseMetadata("metadata", []byte(req.Metadata))
	return s.PassToBot(WithReason(ctx, r, md), page.ID, req.PSID, req.AppID, p.Name)
}

// Validate checks the request's parameters (not who may make it).
func (req HandoverRequest) Validate() error {
	switch {
	case req.PSID == "":
		return apperr.Field("identity_foreign_id", "identity_foreign_id is missing")
	case req.From == "":
		return apperr.Field("from", "from is missing (bot or agent)")
	case req.To == "":
		return apperr.Field("to", "to is missing (bot or agent)")
	case req.Type != "" && req.Type != "messenger":
		return apperr.Field("type", "type must be messenger, got %q", req.Type)
	case !(req.From == "bot" && req.To == "agent") && !(req.From == "agent" && req.To == "bot"):
		return apperr.Field("to", "from=%q to=%q: handovers go from=bot&to=agent or from=agent&to=bot", req.From, req.To)
	case req.AppID != "" && !numeric(req.AppID):
		return apperr.Field("app_id", "app_id must be a numeric Facebook app id")
	case req.Mode != "" && req.Mode != ModePass && req.Mode != ModeOffer:
		return apperr.Field("mode", "mode must be pass or offer, got %q", req.Mode)
	case req.Mode == ModeOffer && req.To != "agent":
		return apperr.Field("mode", "mode=offer offers a conversation to the agents: from=bot&to=agent")
	}
	if _, err := ParseReason("reason", req.Reason); err != nil {
		return err
	}
	if _, err := ParseMetadata("metadata", []byte(req.Metadata)); err != nil {
		return err
	}
	return nil
}

// pageFor resolves the Page a caller acts on: the named one, which must
// belong to the caller's client, or the client's only Page.
func (s *Service) pageFor(p auth.Principal, pageID string) (config.Page, error) {
	if pageID != "" {
		page, ok := s.pages[pageID]
		if !ok {
			return config.Page{}, apperr.New(apperr.NotFound, "page %s is not configured", pageID)
		}
		if !p.CanActOnClient(page.ClientID) {
			return config.Page{}, apperr.New(apperr.Forbidden, "page %s belongs to another client", pageID)
		}
		return page, nil
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

func numeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func (a *EngageAPI) handover(w http.ResponseWriter, r *http.Request) {
	req := ParseHandoverQuery(r.URL.Query())
	if req.Token == "" {
		req.Token = httpapi.BearerToken(r)
	}
	direction := "to_" + req.To
	if req.To != "agent" && req.To != "bot" {
		direction = "invalid"
	}
	p, err := a.Users.Require(req.Token, config.RoleBot, config.RoleAgent, config.RoleAdmin)
	if err == nil {
		var out Outcome
		out, err = a.Service.Handover(r.Context(), p, req)
		if err == nil {
			result := "ok"
			if out.Noop {
				result = "noop"
			}
			a.Service.metrics.Handovers.WithLabelValues(direction, result).Inc()
			httpapi.WriteJSON(w, http.StatusOK, engageStatus{Status: 200, Message: "Success"})
			return
		}
	}
	e := apperr.As(err)
	status := httpapi.Status(e)
	a.Service.metrics.Handovers.WithLabelValues(direction, handoverResult(e.Code)).Inc()
	httpapi.LogError(r, e, status)
	httpapi.WriteJSON(w, status, engageStatus{Status: status, Message: e.Message})
}

func handoverResult(c apperr.Code) string {
	switch c {
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

// InterventionView is an intervention as the API shows it.
type InterventionView struct {
	ID                int64      `json:"id"`
	PageID            string     `json:"page_id"`
	IdentityForeignID string     `json:"identity_foreign_id"`
	Status            string     `json:"status"`
	OpenedBy          string     `json:"opened_by"`
	OpenedAt          time.Time  `json:"opened_at"`
	LastActivityAt    time.Time  `json:"last_activity_at"`
	ClosedBy          string     `json:"closed_by,omitempty"`
	ClosedAt          *time.Time `json:"closed_at"`
	CloseReason       string     `json:"close_reason,omitempty"`
	ThreadOwner       Owner      `json:"thread_owner,omitempty"`
	ControlPending    bool       `json:"control_pending,omitempty"`
}

func viewIntervention(iv Intervention) InterventionView {
	return InterventionView{ID: iv.ID, PageID: iv.PageID, IdentityForeignID: iv.PSID, Status: iv.Status, OpenedBy: iv.OpenedBy,
		OpenedAt: iv.OpenedAt, LastActivityAt: iv.LastActivityAt, ClosedBy: iv.ClosedBy, ClosedAt: iv.ClosedAt, CloseReason: iv.CloseReason}
}

// agent authenticates an agent or admin.
func (a *EngageAPI) agent(r *http.Request) (auth.Principal, error) {
	tok := httpapi.BearerToken(r)
	if tok == "" {
		tok = r.URL.Query().Get("access_token")
	}
	return a.Users.Require(tok, config.RoleAgent, config.RoleAdmin)
}

// intervention authenticates an agent and loads the path's intervention,
// which must belong to the agent's client.
func (a *EngageAPI) intervention(r *http.Request) (auth.Principal, Intervention, error) {
	p, err := a.agent(r)
	if err != nil {
		return p, Intervention{}, err
	}
	iv, err := a.loadIntervention(r, p)
	return p, iv, err
}

func (a *EngageAPI) loadIntervention(r *http.Request, p auth.Principal) (Intervention, error) {
	id, err := strconv.ParseInt(httpapi.Var(r, "id"), 10, 64)
	if err != nil {
		return Intervention{}, apperr.New(apperr.NotFound, "intervention %q does not exist", httpapi.Var(r, "id"))
	}
	iv, err := a.Service.Intervention(r.Context(), id)
	if err != nil {
		return iv, err
	}
	if page, ok := a.Service.pages[iv.PageID]; !ok || !p.CanActOnClient(page.ClientID) {
		return Intervention{}, apperr.New(apperr.NotFound, "intervention %d does not exist", id)
	}
	return iv, nil
}

func (a *EngageAPI) openIntervention(w http.ResponseWriter, r *http.Request) {
	p, err := a.agent(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var body struct {
		PageID            string `json:"page_id"`
		IdentityForeignID string `json:"identity_foreign_id"`
	}
	if err := httpapi.DecodeJSON(w, r, 64<<10, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.IdentityForeignID == "" {
		httpapi.WriteError(w, r, apperr.Field("identity_foreign_id", "is required"))
		return
	}
	page, err := a.Service.pageFor(p, body.PageID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	iv, out, err := a.Service.OpenIntervention(r.Context(), page.ID, body.IdentityForeignID, p.Name)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v := viewIntervention(iv)
	v.ThreadOwner, v.ControlPending = out.Owner, out.Pending
	httpapi.WriteJSON(w, http.StatusCreated, v)
}

func (a *EngageAPI) listInterventions(w http.ResponseWriter, r *http.Request) {
	p, err := a.agent(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	psid := q.Get("identity_foreign_id")
	if psid == "" {
		httpapi.WriteError(w, r, apperr.Field("identity_foreign_id", "is required"))
		return
	}
	page, err := a.Service.pageFor(p, q.Get("page_id"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ivs, err := a.Service.Interventions(r.Context(), page.ID, psid)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]InterventionView, 0, len(ivs))
	for _, iv := range ivs {
		out = append(out, viewIntervention(iv))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *EngageAPI) getIntervention(w http.ResponseWriter, r *http.Request) {
	_, iv, err := a.intervention(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, viewIntervention(iv))
}

func (a *EngageAPI) closeIntervention(w http.ResponseWriter, r *http.Request) {
	p, iv, err := a.intervention(r)
	if err == nil {
		iv, err = a.Service.CloseIntervention(r.Context(), iv.ID, p.Name, CloseByAgent)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, viewIntervention(iv))
}

// AgentMessageView is an agent message as the API shows it.
type AgentMessageView struct {
	ID             int64           `json:"id"`
	InterventionID int64           `json:"intervention_id"`
	Status         string          `json:"status"`
	Message        json.RawMessage `json:"message"`
	MID            string          `json:"mid,omitempty"`
	MessagingType  string          `json:"messaging_type,omitempty"`
	Error          string          `json:"error,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	DeadlineAt     time.Time       `json:"deadline_at"`
	FinishedAt     *time.Time      `json:"finished_at"`
}

func viewAgentMessage(m AgentMessage) AgentMessageView {
	return AgentMessageView{ID: m.ID, InterventionID: m.InterventionID, Status: m.Status, Message: m.Message, MID: m.MID,
		MessagingType: m.MessagingType, Error: m.Error, CreatedAt: m.CreatedAt, DeadlineAt: m.DeadlineAt, FinishedAt: m.FinishedAt}
}

func (a *EngageAPI) sendMessage(w http.ResponseWriter, r *http.Request) {
	p, iv, err := a.intervention(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if iv.Status != InterventionOpen {
		httpapi.WriteError(w, r, apperr.New(apperr.Conflict, "intervention %d is %s", iv.ID, iv.Status))
		return
	}
	var body struct {
		Text    string          `json:"text"`
		Message json.RawMessage `json:"message"`
	}
	if err := httpapi.DecodeJSON(w, r, 64<<10, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	msg := body.Message
	switch {
	case body.Text != "" && len(msg) > 0:
		httpapi.WriteError(w, r, apperr.Field("text", "give text or message, not both"))
		return
	case body.Text != "":
		if len([]rune(body.Text)) > 2000 {
			httpapi.WriteError(w, r, apperr.Field("text", "is over Messenger's 2000 characters"))
			return
		}
		if msg, err = json.Marshal(map[string]string{"text": body.Text}); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	case len(msg) == 0:
		httpapi.WriteError(w, r, apperr.Field("text", "is required"))
		return
	default:
		var obj map[string]any
		if json.Unmarshal(msg, &obj) != nil {
			httpapi.WriteError(w, r, apperr.Field("message", "must be a Send API message object"))
			return
		}
	}
	m, err := a.Service.SendAsAgent(r.Context(), iv.PageID, iv.PSID, iv.ID, p.Name, msg, a.SendWait)
	if err != nil && m.ID == 0 {
		httpapi.WriteError(w, r, err)
		return
	}
	status := http.StatusCreated
	switch m.Status {
	case SendWaiting:
		status = http.StatusAccepted
	case SendFailed:
		status = http.StatusBadGateway
	}
	httpapi.WriteJSON(w, status, viewAgentMessage(m))
}

func (a *EngageAPI) listMessages(w http.ResponseWriter, r *http.Request) {
	_, iv, err := a.intervention(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ms, err := a.Service.AgentMessages(r.Context(), iv.ID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]AgentMessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, viewAgentMessage(m))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
