package api

import (
	"encoding/json"
	"net/http"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
)

// intervention authenticates an agent and loads the path's intervention,
// which must be on a Page of the agent's client.
func (a *API) intervention(r *http.Request) (auth.Principal, handover.Intervention, error) {
	p, err := a.agent(r)
	if err != nil {
		return p, handover.Intervention{}, err
	}
	id, err := pathID(r, "intervention")
	if err != nil {
		return p, handover.Intervention{}, err
	}
	iv, err := a.Handover.InterventionForPrincipal(r.Context(), p, id)
	return p, iv, err
}

// openIntervention serves POST /1.0/interventions: an agent takes a
// conversation.
func (a *API) openIntervention(w http.ResponseWriter, r *http.Request) {
	p, err := a.agent(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var body struct {
		PageID            string `json:"page_id"`
		IdentityForeignID string `json:"identity_foreign_id"`
	}
	if err := httpapi.DecodeJSON(w, r, MaxBody, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	iv, out, err := a.Handover.OpenInterventionForPrincipal(r.Context(), p, body.PageID, body.IdentityForeignID)
	v := handover.ViewIntervention(iv)
	v.ThreadOwner, v.ControlPending = out.Owner, out.Pending
	reply(w, r, http.StatusCreated, v, err)
}

// listInterventions serves GET /1.0/interventions?identity_foreign_id=...
func (a *API) listInterventions(w http.ResponseWriter, r *http.Request) {
	p, err := a.agent(r)
	var ivs []handover.Intervention
	if err == nil {
		q := r.URL.Query()
		ivs, err = a.Handover.InterventionsForPrincipal(r.Context(), p, q.Get("page_id"), q.Get("identity_foreign_id"))
	}
	out := make([]handover.InterventionView, 0, len(ivs))
	for _, iv := range ivs {
		out = append(out, handover.ViewIntervention(iv))
	}
	reply(w, r, http.StatusOK, out, err)
}

// getIntervention serves GET /1.0/interventions/{id}.
func (a *API) getIntervention(w http.ResponseWriter, r *http.Request) {
	_, iv, err := a.intervention(r)
	reply(w, r, http.StatusOK, handover.ViewIntervention(iv), err)
}

// closeIntervention serves PUT /1.0/interventions/{id}/close.
func (a *API) closeIntervention(w http.ResponseWriter, r *http.Request) {
	p, iv, err := a.intervention(r)
	if err == nil {
		iv, err = a.Handover.CloseIntervention(r.Context(), iv.ID, p.Name, handover.CloseByAgent)
	}
	reply(w, r, http.StatusOK, handover.ViewIntervention(iv), err)
}

// sendMessage serves POST /1.0/interventions/{id}/messages: 201 when the
// message went out, 202 while it is still on its way, 502 when Facebook
// refused it.
func (a *API) sendMessage(w http.ResponseWriter, r *http.Request) {
	p, iv, err := a.intervention(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var body struct {
		Text    string          `json:"text"`
		Message json.RawMessage `json:"message"`
	}
	if err := httpapi.DecodeJSON(w, r, MaxBody, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	msg, err := ParseAgentMessage(body.Text, body.Message)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	m, err := a.Handover.SendInIntervention(r.Context(), iv, p.Name, msg, a.SendWait)
	if err != nil && m.ID == 0 {
		httpapi.WriteError(w, r, err)
		return
	}
	status := http.StatusCreated
	switch m.Status {
	case handover.SendWaiting:
		status = http.StatusAccepted
	case handover.SendFailed:
		status = http.StatusBadGateway
	}
	httpapi.WriteJSON(w, status, handover.ViewAgentMessage(m))
}

// ParseAgentMessage reads an agent's message: text (at most Messenger's
// 2000 characters) or message (a Send API message object), one of them.
func ParseAgentMessage(text string, message json.RawMessage) (json.RawMessage, error) {
	switch {
	case text != "" && len(message) > 0:
		return nil, apperr.Field("text", "give text or message, not both")
	case text != "":
		if len([]rune(text)) > 2000 {
			return nil, apperr.Field("text", "is over Messenger's 2000 characters")
		}
		return json.Marshal(map[string]string{"text": text})
	case len(message) == 0:
		return nil, apperr.Field("text", "is required")
	}
	var obj map[string]any
	if json.Unmarshal(message, &obj) != nil {
		return nil, apperr.Field("message", "must be a Send API message object")
	}
	return message, nil
}

// listMessages serves GET /1.0/interventions/{id}/messages.
func (a *API) listMessages(w http.ResponseWriter, r *http.Request) {
	_, iv, err := a.intervention(r)
	var ms []handover.AgentMessage
	if err == nil {
		ms, err = a.Handover.AgentMessages(r.Context(), iv.ID)
	}
	out := make([]handover.AgentMessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, handover.ViewAgentMessage(m))
	}
	reply(w, r, http.StatusOK, out, err)
}
