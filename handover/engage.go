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

// EngageAPI serves agents' interventions and the handover resources.
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
	r.HandleFunc(http.MethodPost, "/1.0/interventions", a.openIntervention)
	r.HandleFunc(http.MethodGet, "/1.0/interventions", a.listInterventions)
	r.HandleFunc(http.MethodGet, "/1.0/interventions/{id}", a.getIntervention)
	r.HandleFunc(http.MethodPut, "/1.0/interventions/{id}/close", a.closeIntervention)
	r.HandleFunc(http.MethodPost, "/1.0/interventions/{id}/messages", a.sendMessage)
	r.HandleFunc(http.MethodGet, "/1.0/interventions/{id}/messages", a.listMessages)
	a.handoffRoutes(r)
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
	page, err := a.Service.PageFor(p, body.PageID)
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
	page, err := a.Service.PageFor(p, q.Get("page_id"))
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
