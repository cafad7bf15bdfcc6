package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/store"
)

// Conversation statuses.
const (
	StatusOpen     = "open"     // in the agents' queue
	StatusPending  = "pending"  // the bot is handling it
	StatusResolved = "resolved" // done
	StatusSnoozed  = "snoozed"  // parked
)

// Message types. The API shows them as Chatwoot's integers (0, 1, 2).
const (
	Incoming = "incoming"
	Outgoing = "outgoing"
	Activity = "activity"
)

// Sender types.
const (
	SenderContact = "contact"
	SenderAgent   = "agent"
	SenderBot     = "bot"
)

// Message delivery states.
const (
	MsgQueued    = "queued" // waiting for thread control
	MsgSent      = "sent"
	MsgDelivered = "delivered"
	MsgRead      = "read"
	MsgFailed    = "failed"
)

var messageTypeCodes = map[string]int{Incoming: 0, Outgoing: 1, Activity: 2}

// InboxView is an inbox as the API shows it.
type InboxView struct {
	ID                   int64  `json:"id"`
	Name                 string `json:"name"`
	WebsiteURL           string `json:"website_url"`
	ChannelType          string `json:"channel_type"`
	AvatarURL            string `json:"avatar_url"`
	WidgetColor          string `json:"widget_color"`
	WebsiteToken         string `json:"website_token"`
	EnableAutoAssignment bool   `json:"enable_auto_assignment"`
	WebWidgetScript      string `json:"web_widget_script"`
	WelcomeTitle         string `json:"welcome_title"`
	WelcomeTagline       string `json:"welcome_tagline"`
	GreetingEnabled      bool   `json:"greeting_enabled"`
	GreetingMessage      string `json:"greeting_message"`
	WebhookURL           string `json:"webhook_url"`
	PageID               string `json:"page_id,omitempty"`
	// WebhookSecret is shown once, when an API inbox is created.
	WebhookSecret string `json:"webhook_secret,omitempty"`
	AccountID     int64  `json:"-"`
}

// ContactInboxView is a contact's session in an inbox.
type ContactInboxView struct {
	SourceID string    `json:"source_id"`
	Inbox    InboxView `json:"inbox"`
}

// ContactView is a contact as the API shows it.
type ContactView struct {
	ID                   int64              `json:"id"`
	Name                 string             `json:"name"`
	Email                string             `json:"email"`
	PhoneNumber          string             `json:"phone_number"`
	Thumbnail            string             `json:"thumbnail"`
	Identifier           string             `json:"identifier"`
	AdditionalAttributes json.RawMessage    `json:"additional_attributes"`
	CustomAttributes     json.RawMessage    `json:"custom_attributes"`
	ContactInboxes       []ContactInboxView `json:"contact_inboxes"`
	AvailabilityStatus   string             `json:"availability_status"`
	AccountID            int64              `json:"-"`
}

// AgentView is an agent as the API shows it (with Chatwoot's user fields).
type AgentView struct {
	ID                 int64  `json:"id"`
	Name               string `json:"name"`
	Type               string `json:"type"`
	AvailableName      string `json:"available_name"`
	Email              string `json:"email"`
	Thumbnail          string `json:"thumbnail"`
	AvailabilityStatus string `json:"availability_status"`
	Role               string `json:"role"`
}

// agentView is agent id's view.
func (s *Service) agentView(id int64) *AgentView {
	name := s.agentNames[id]
	return &AgentView{ID: id, Name: name, Type: "agent", AvailableName: name, AvailabilityStatus: "online", Role: chatwootRole(s.users[name].Role)}
}

// SenderView is who sent a message.
type SenderView struct {
	ID   *int64 `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// MessageView is a message as the API shows it (the seed's fields first).
type MessageView struct {
	ID                int64           `json:"id"`
	Content           string          `json:"content"`
	InboxID           int64           `json:"inbox_id"`
	ConversationID    int64           `json:"conversation_id"`
	MessageType       int             `json:"message_type"`
	ContentType       string          `json:"content_type"`
	ContentAttributes json.RawMessage `json:"content_attributes"`
	CreatedAt         int64           `json:"created_at"`
	Private           bool            `json:"private"`
	Sender            *SenderView     `json:"sender"`
	SourceID          *string         `json:"source_id"`
	Status            string          `json:"status"`
	Attachments       json.RawMessage `json:"attachments"`
	// ClaimedBy is the bot that claimed (and closed) the message, if any.
	ClaimedBy string `json:"claimed_by,omitempty"`
	// State is "closed" once a bot claimed the message.
	State string `json:"state,omitempty"`
	// Automated is true when the bot echoed the message as its own.
	Automated bool `json:"automated,omitempty"`
	// Surfaced is true when the message surfaced to the agents unclaimed.
	Surfaced  bool  `json:"surfaced,omitempty"`
	AccountID int64 `json:"-"`
}

// ConversationMeta is Chatwoot's conversation meta block.
type ConversationMeta struct {
	Sender       ContactView `json:"sender"`
	Assignee     *AgentView  `json:"assignee"`
	Channel      string      `json:"channel"`
	Team         *TeamView   `json:"team"`
	HMACVerified bool        `json:"hmac_verified"`
}

// ConversationView is a conversation as the API shows it.
type ConversationView struct {
	ID                   int64                `json:"id"`
	AccountID            int64                `json:"account_id"`
	InboxID              int64                `json:"inbox_id"`
	Status               string               `json:"status"`
	AssigneeID           *int64               `json:"assignee_id"`
	ContactInbox         ContactInboxSourceID `json:"contact_inbox"`
	Meta                 ConversationMeta     `json:"meta"`
	AdditionalAttributes json.RawMessage      `json:"additional_attributes"`
	CustomAttributes     json.RawMessage      `json:"custom_attributes"`
	ThreadOwner          string               `json:"thread_owner,omitempty"`
	PageID               string               `json:"page_id,omitempty"`
	PSID                 string               `json:"psid,omitempty"`
	CreatedAt            int64                `json:"created_at"`
	LastActivityAt       int64                `json:"last_activity_at"`
	Timestamp            int64                `json:"timestamp"`
	// UUID is the conversation's stable UUID (derived from its id).
	UUID string `json:"uuid"`
	// Labels are the conversation's labels, sorted.
	Labels []string `json:"labels"`
	// TeamID is the team the conversation is assigned to.
	TeamID *int64 `json:"team_id"`
	// UnreadCount is how many incoming messages arrived since the agents
	// last read the conversation (update_last_seen).
	UnreadCount int `json:"unread_count"`
	// CanReply is false once a Messenger customer's last message is older
	// than Messenger's 7-day human agent window.
	CanReply bool `json:"can_reply"`
	// Messages are the unread incoming messages (at most 10), or else the
	// newest message, as Chatwoot lists them (absent in events).
	Messages *[]MessageView `json:"messages,omitempty"`
	// LastNonActivityMessage is the newest message that is not an activity.
	LastNonActivityMessage *MessageView `json:"last_non_activity_message"`
	AgentLastSeenAt        int64        `json:"agent_last_seen_at"`
	ContactLastSeenAt      int64        `json:"contact_last_seen_at"`
	AssigneeLastSeenAt     int64        `json:"assignee_last_seen_at"`
	WaitingSince           int64        `json:"waiting_since"`
	Muted                  bool         `json:"muted"`
	SnoozedUntil           *int64       `json:"snoozed_until"`
	Priority               *string      `json:"priority"`
	UpdatedAt              int64        `json:"updated_at"`
}

// TeamView is a team as the API shows it.
type TeamView struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	Description     string `json:"description"`
	AllowAutoAssign bool   `json:"allow_auto_assign"`
	AccountID       int64  `json:"account_id"`
	IsMember        bool   `json:"is_member"`
}

// ContactInboxSourceID is the conversation's session.
type ContactInboxSourceID struct {
	SourceID string `json:"source_id"`
}

func channelType(t string) string {
	if t == "facebook" {
		return "Channel::FacebookPage"
	}
	return "Channel::Api"
}

// conversation is a conversations row.
type conversation struct {
	id, accountID, inboxID, contactID, contactInboxID int64
	status                                            string
	assignee, team, agentLastSeen                     sql.NullInt64
	pageID, psid, threadOwner                         string
	additional, custom                                string
	waitingSince                                      sql.NullInt64
	lastActivity, created, updated                    int64
}

const conversationColumns = `id, account_id, inbox_id, contact_id, contact_inbox_id, status, assignee_id, page_id, psid, thread_owner,
	additional_attributes, custom_attributes, agent_waiting_since, last_activity_at, created_at, team_id, agent_last_seen_at, updated_at`

func scanConversation(row interface{ Scan(...any) error }) (conversation, error) {
	var c conversation
	err := row.Scan(&c.id, &c.accountID, &c.inboxID, &c.contactID, &c.contactInboxID, &c.status, &c.assignee, &c.pageID, &c.psid,
		&c.threadOwner, &c.additional, &c.custom, &c.waitingSince, &c.lastActivity, &c.created, &c.team, &c.agentLastSeen, &c.updated)
	return c, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func getConversation(ctx context.Context, q querier, id int64) (conversation, error) {
	c, err := scanConversation(q.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, apperr.New(apperr.NotFound, "conversation %d does not exist", id)
	}
	return c, err
}

// lockConversation reads a conversation for update: on PostgreSQL its row
// stays locked until the transaction ends, so two writers (a resolve and
// an ingest, say) take turns and neither writes over the other with a
// stale read.
func lockConversation(ctx context.Context, tx *store.Tx, id int64) (conversation, error) {
	c, err := scanConversation(tx.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1`+tx.Dialect.ForUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, apperr.New(apperr.NotFound, "conversation %d does not exist", id)
	}
	return c, err
}

// inboxView returns an inbox. Inboxes do not change once created, so each
// is read once per process and then served from memory.
func (s *Service) inboxView(ctx context.Context, q querier, id int64) (InboxView, error) {
	if v, ok := s.inboxCache.Load(id); ok {
		return v.(InboxView), nil
	}
	var v InboxView
	var ct string
	var page sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, account_id, name, channel_type, page_id, webhook_url FROM inboxes WHERE id = $1`, id).
		Scan(&v.ID, &v.AccountID, &v.Name, &ct, &page, &v.WebhookURL)
	if errors.Is(err, sql.ErrNoRows) {
		return v, apperr.New(apperr.NotFound, "inbox %d does not exist", id)
	}
	v.ChannelType, v.PageID = channelType(ct), page.String
	if err == nil {
		s.inboxCache.Store(id, v)
	}
	return v, err
}

func (s *Service) contactView(ctx context.Context, q querier, id int64) (ContactView, error) {
	var v ContactView
	var add, custom string
	err := q.QueryRowContext(ctx, `SELECT id, account_id, name, email, phone_number, avatar_url, identifier, additional_attributes, custom_attributes
		FROM contacts WHERE id = $1`, id).Scan(&v.ID, &v.AccountID, &v.Name, &v.Email, &v.PhoneNumber, &v.Thumbnail, &v.Identifier, &add, &custom)
	if errors.Is(err, sql.ErrNoRows) {
		return v, apperr.New(apperr.NotFound, "contact %d does not exist", id)
	}
	if err != nil {
		return v, err
	}
	v.AdditionalAttributes, v.CustomAttributes, v.AvailabilityStatus = json.RawMessage(add), json.RawMessage(custom), "offline"
	rows, err := q.QueryContext(ctx, `SELECT source_id, inbox_id FROM contact_inboxes WHERE contact_id = $1 ORDER BY id`, id)
	if err != nil {
		return v, err
	}
	type ci struct {
		source string
		inbox  int64
	}
	var cis []ci
	for rows.Next() {
		var c ci
		if err := rows.Scan(&c.source, &c.inbox); err != nil {
			rows.Close()
			return v, err
		}
		cis = append(cis, c)
	}
	rows.Close()
	v.ContactInboxes = []ContactInboxView{}
	for _, c := range cis {
		iv, err := s.inboxView(ctx, q, c.inbox)
		if err != nil {
			return v, err
		}
		v.ContactInboxes = append(v.ContactInboxes, ContactInboxView{SourceID: c.source, Inbox: iv})
	}
	return v, nil
}

func (s *Service) conversationView(ctx context.Context, q querier, c conversation) (ConversationView, error) {
	return s.conversationViewOf(ctx, q, c, true)
}

// eventConversationView is the conversation as events carry it: without
// its messages (an event is about one of them; listing the unread ones in
// every event would make each event's payload grow with the conversation).
func (s *Service) eventConversationView(ctx context.Context, q querier, c conversation) (ConversationView, error) {
	return s.conversationViewOf(ctx, q, c, false)
}

func (s *Service) conversationViewOf(ctx context.Context, q querier, c conversation, withMessages bool) (ConversationView, error) {
	v := ConversationView{ID: c.id, AccountID: c.accountID, InboxID: c.inboxID, Status: c.status,
		AdditionalAttributes: json.RawMessage(c.additional), CustomAttributes: json.RawMessage(c.custom),
		ThreadOwner: c.threadOwner, PageID: c.pageID, PSID: c.psid,
		CreatedAt: store.Time(c.created).Unix(), LastActivityAt: store.Time(c.lastActivity).Unix(), Timestamp: store.Time(c.lastActivity).Unix()}
	if c.assignee.Valid {
		id := c.assignee.Int64
		v.AssigneeID = &id
		v.Meta.Assignee = s.agentView(id)
	}
	contact, err := s.contactView(ctx, q, c.contactID)
	if err != nil {
		return v, err
	}
	v.Meta.Sender = contact
	if err := q.QueryRowContext(ctx, `SELECT source_id FROM contact_inboxes WHERE id = $1`, c.contactInboxID).Scan(&v.ContactInbox.SourceID); err != nil {
		return v, err
	}
	iv, err := s.inboxView(ctx, q, c.inboxID)
	if err != nil {
		return v, err
	}
	v.Meta.Channel = iv.ChannelType
	return v, s.chatwootFields(ctx, q, c, iv, &v, withMessages)
}

const messageColumns = `id, account_id, inbox_id, conversation_id, message_type, private, content, content_type, content_attributes,
	attachments, sender_type, sender_id, sender_name, source_id, status, error, created_at, claimed_by, automated, surfaced_at`

// messageRow is an inbox_messages row as messageColumns reads it.
type messageRow struct {
	id, accountID, inboxID, convID                       int64
	mtype, content, contentType, attrs, atts, senderType string
	senderName, status, errText, claimedBy               string
	private, created, automated                          int64
	senderID, surfaced                                   sql.NullInt64
	source                                               sql.NullString
}

func scanMessage(row interface{ Scan(...any) error }) (MessageView, error) {
	var r messageRow
	err := row.Scan(&r.id, &r.accountID, &r.inboxID, &r.convID, &r.mtype, &r.private, &r.content, &r.contentType, &r.attrs,
		&r.atts, &r.senderType, &r.senderID, &r.senderName, &r.source, &r.status, &r.errText, &r.created, &r.claimedBy, &r.automated, &r.surfaced)
	if err != nil {
		return MessageView{}, err
	}
	return r.view(), nil
}

// view is the row as the API shows it.
func (r messageRow) view() MessageView {
	m := MessageView{ID: r.id, AccountID: r.accountID, InboxID: r.inboxID, ConversationID: r.convID, Content: r.content, ContentType: r.contentType}
	m.ClaimedBy, m.Automated, m.Surfaced = r.claimedBy, r.automated != 0, r.surfaced.Valid
	if r.claimedBy != "" {
		m.State = "closed"
	}
	m.MessageType, m.Private, m.Status = messageTypeCodes[r.mtype], r.private != 0, r.status
	m.ContentAttributes, m.Attachments = json.RawMessage(r.attrs), json.RawMessage(r.atts)
	if r.errText != "" {
		var a map[string]any
		if json.Unmarshal(m.ContentAttributes, &a) != nil || a == nil {
			a = map[string]any{}
		}
		a["external_error"] = r.errText
		if b, err := json.Marshal(a); err == nil {
			m.ContentAttributes = b
		}
	}
	if r.source.Valid {
		src := r.source.String
		m.SourceID = &src
	}
	if r.senderType != "" {
		sv := &SenderView{Name: r.senderName, Type: r.senderType}
		if r.senderID.Valid {
			id := r.senderID.Int64
			sv.ID = &id
		}
		m.Sender = sv
	}
	m.CreatedAt = store.Time(r.created).Unix()
	return m
}

func getMessage(ctx context.Context, q querier, id int64) (MessageView, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM inbox_messages WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, apperr.New(apperr.NotFound, "message %d does not exist", id)
	}
	return m, err
}
