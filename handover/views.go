package handover

import (
	"encoding/json"
	"time"
)

// The views below are thread control's data as handoverd's API (and, for
// handoffs, the bots' events) show it.

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

// ViewIntervention is iv as the API shows it.
func ViewIntervention(iv Intervention) InterventionView {
	return InterventionView{ID: iv.ID, PageID: iv.PageID, IdentityForeignID: iv.PSID, Status: iv.Status, OpenedBy: iv.OpenedBy,
		OpenedAt: iv.OpenedAt, LastActivityAt: iv.LastActivityAt, ClosedBy: iv.ClosedBy, ClosedAt: iv.ClosedAt, CloseReason: iv.CloseReason}
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

// ViewAgentMessage is m as the API shows it.
func ViewAgentMessage(m AgentMessage) AgentMessageView {
	return AgentMessageView{ID: m.ID, InterventionID: m.InterventionID, Status: m.Status, Message: m.Message, MID: m.MID,
		MessagingType: m.MessagingType, Error: m.Error, CreatedAt: m.CreatedAt, DeadlineAt: m.DeadlineAt, FinishedAt: m.FinishedAt}
}
