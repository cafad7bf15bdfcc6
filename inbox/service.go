package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/store"
)

// account checks p may act on accountID.
func account(p auth.Principal, accountID int64) error {
	if !p.CanActOnClient(accountID) {
		return apperr.New(apperr.Forbidden, "account %d is not yours", accountID)
	}
	return nil
}

// CheckAccount returns a Forbidden error unless p may act on accountID.
func CheckAccount(p auth.Principal, accountID int64) error { return account(p, accountID) }

// Inbox returns the account's inbox id as an InboxView (NotFound when the
// account has no such inbox).
func (s *Service) Inbox(ctx context.Context, accountID, id int64) (InboxView, error) {
	v, err := s.inboxView(ctx, s.db.Reader(), id)
	if err == nil && v.AccountID != accountID {
		err = apperr.New(apperr.NotFound, "inbox %d does not exist", id)
	}
	return v, err
}

// Inboxes lists an account's inboxes.
func (s *Service) Inboxes(ctx context.Context, accountID int64) ([]InboxView, error) {
	ids, err := store.IDs(ctx, s.db.Reader(), `SELECT id FROM inboxes WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, err
	}
	out := []InboxView{}
	for _, id := range ids {
		v, err := s.inboxView(ctx, s.db.Reader(), id)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// CreateAPIInbox creates an API-channel inbox; its webhook secret is
// returned once.
func (s *Service) CreateAPIInbox(ctx context.Context, accountID int64, name, webhookURL string) (InboxView, error) {
	if strings.TrimSpace(name) == "" {
		return InboxView{}, apperr.Field("name", "is required")
	}
	if webhookURL != "" && !strings.HasPrefix(webhookURL, "http://") && !strings.HasPrefix(webhookURL, "https://") {
		return InboxView{}, apperr.Field("channel.webhook_url", "must be an http(s) URL")
	}
	secret := newSecret()
	var id int64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO inboxes (account_id, name, channel_type, webhook_url, webhook_secret, created_at)
			VALUES ($1, $2, 'api', $3, $4, $5) RETURNING id`, accountID, name, webhookURL, secret, store.Millis(s.now())).Scan(&id)
	})
	if err != nil {
		return InboxView{}, err
	}
	v, err := s.inboxView(ctx, s.db.Reader(), id)
	v.WebhookSecret = secret
	return v, err
}

// ContactInput is the body of POST .../contacts.
type ContactInput struct {
	InboxID          FlexID          `json:"inbox_id"`
	Name             string          `json:"name"`
	Email            string          `json:"email"`
	PhoneNumber      string          `json:"phone_number"`
	AvatarURL        string          `json:"avatar_url"`
	Identifier       string          `json:"identifier"`
	CustomAttributes json.RawMessage `json:"custom_attributes"`
}

// CreateContact creates a contact and its session (contact inbox) in an
// API inbox; the answer carries contact_inboxes[].source_id.
func (s *Service) CreateContact(ctx context.Context, accountID int64, in ContactInput) (ContactView, error) {
	if in.InboxID == 0 {
		return ContactView{}, apperr.Field("inbox_id", "is required")
	}
	iv, err := s.inboxView(ctx, s.db.Reader(), int64(in.InboxID))
	if err != nil || iv.AccountID != accountID {
		return ContactView{}, apperr.Field("inbox_id", "inbox %d does not exist in account %d", in.InboxID, accountID)
	}
	if iv.ChannelType != channelType("api") {
		return ContactView{}, &apperr.Error{Code: apperr.Unprocessable, Field: "inbox_id", Message: "inbox is a Messenger inbox: its contacts come from Messenger"}
	}
	if in.Email != "" && !strings.Contains(in.Email, "@") {
		return ContactView{}, apperr.Field("email", "is not an email address")
	}
	custom, err := jsonObject("custom_attributes", in.CustomAttributes)
	if err != nil {
		return ContactView{}, err
	}
	source := uuid.NewString()
	var id int64
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		now := store.Millis(s.now())
		if err := tx.QueryRowContext(ctx, `INSERT INTO contacts (account_id, name, email, phone_number, avatar_url, identifier, custom_attributes, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`, accountID, in.Name, in.Email, in.PhoneNumber, in.AvatarURL, in.Identifier, custom, now).Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, created_at) VALUES ($1, $2, $3, $4)`, id, iv.ID, source, now)
		return err
	})
	if err != nil {
		return ContactView{}, err
	}
	return s.contactView(ctx, s.db.Reader(), id)
}

// Contact returns a contact of the account.
func (s *Service) Contact(ctx context.Context, accountID, id int64) (ContactView, error) {
	v, err := s.contactView(ctx, s.db.Reader(), id)
	if err == nil && v.AccountID != accountID {
		return ContactView{}, apperr.New(apperr.NotFound, "contact %d does not exist", id)
	}
	return v, err
}

// ConversationInput is the body of POST .../conversations.
type ConversationInput struct {
	SourceID             string          `json:"source_id"`
	InboxID              FlexID          `json:"inbox_id"`
	ContactID            FlexID          `json:"contact_id"`
	AdditionalAttributes json.RawMessage `json:"additional_attributes"`
	CustomAttributes     json.RawMessage `json:"custom_attributes"`
	Status               string          `json:"status"`
	AssigneeID           FlexID          `json:"assignee_id"`
	TeamID               FlexID          `json:"team_id"`
}

// CreateConversation starts a conversation on a contact's session.
func (s *Service) CreateConversation(ctx context.Context, accountID int64, in ConversationInput) (ConversationView, error) {
	if in.SourceID == "" {
		return ConversationView{}, apperr.Field("source_id", "is required")
	}
	status := in.Status
	if status == "" {
		status = StatusOpen
	}
	if !validStatus(status) {
		return ConversationView{}, apperr.Field("status", "must be one of open, pending, resolved, snoozed")
	}
	additional, err := jsonObject("additional_attributes", in.AdditionalAttributes)
	if err != nil {
		return ConversationView{}, err
	}
	custom, err := jsonObject("custom_attributes", in.CustomAttributes)
	if err != nil {
		return ConversationView{}, err
	}
	var assignee sql.NullInt64
	if in.AssigneeID != 0 {
		if !s.accountAgent(accountID, int64(in.AssigneeID)) {
			return ConversationView{}, apperr.Field("assignee_id", "agent %d does not exist", in.AssigneeID)
		}
		assignee = sql.NullInt64{Int64: int64(in.AssigneeID), Valid: true}
	}
	var team sql.NullInt64
	if in.TeamID != 0 {
		if t, ok := s.teams[int64(in.TeamID)]; !ok || t.AccountID != accountID {
			return ConversationView{}, apperr.Field("team_id", "team %d does not exist in account %d", in.TeamID, accountID)
		}
		team = sql.NullInt64{Int64: int64(in.TeamID), Valid: true}
	}
	var conv conversation
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var ciID, contactID, inboxID int64
		var ct string
		q := `SELECT ci.id, ci.contact_id, ci.inbox_id, i.channel_type FROM contact_inboxes ci JOIN inboxes i ON i.id = ci.inbox_id
			WHERE ci.source_id = $1 AND i.account_id = $2`
		args := []any{in.SourceID, accountID}
		if in.InboxID != 0 {
			q += ` AND ci.inbox_id = $3`
			args = append(args, int64(in.InboxID))
		}
		err := tx.QueryRowContext(ctx, q, args...).Scan(&ciID, &contactID, &inboxID, &ct)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Field("source_id", "no contact inbox with source_id %q in this account", in.SourceID)
		}
		if err != nil {
			return err
		}
		if in.ContactID != 0 && int64(in.ContactID) != contactID {
			return apperr.Field("contact_id", "does not match the contact of source_id")
		}
		if ct == "facebook" {
			return &apperr.Error{Code: apperr.Unprocessable, Field: "source_id", Message: "Messenger conversations are started by the customer"}
		}
		now := store.Millis(s.now())
		var waiting sql.NullInt64
		if status == StatusOpen {
			waiting = sql.NullInt64{Int64: now, Valid: true}
		}
		conv, err = scanConversation(tx.QueryRowContext(ctx, `INSERT INTO conversations
			(account_id, inbox_id, contact_id, contact_inbox_id, status, assignee_id, additional_attributes, custom_attributes,
			 agent_waiting_since, last_activity_at, created_at, updated_at, team_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11) RETURNING `+conversationColumns,
			accountID, inboxID, contactID, ciID, status, assignee, additional, custom, waiting, now, team))
		if err != nil {
			return err
		}
		return s.conversationEvent(ctx, tx, EventConversationCreated, conv, nil)
	})
	if err != nil {
		return ConversationView{}, err
	}
	return s.conversationView(ctx, s.db.Reader(), conv)
}

func validStatus(s string) bool {
	switch s {
	case StatusOpen, StatusPending, StatusResolved, StatusSnoozed:
		return true
	}
	return false
}

// Conversation returns a conversation of the account.
func (s *Service) Conversation(ctx context.Context, accountID, id int64) (ConversationView, error) {
	c, err := s.accountConversation(ctx, accountID, id)
	if err != nil {
		return ConversationView{}, err
	}
	return s.conversationView(ctx, s.db.Reader(), c)
}

func (s *Service) accountConversation(ctx context.Context, accountID, id int64) (conversation, error) {
	c, err := getConversation(ctx, s.db.Reader(), id)
	if err == nil && c.accountID != accountID {
		return conversation{}, apperr.New(apperr.NotFound, "conversation %d does not exist", id)
	}
	return c, err
}

// ConversationFilter selects conversations.
type ConversationFilter struct {
	// Status is open, pending, resolved, snoozed or all (default open).
	Status string
	// AssigneeType is me, unassigned, assigned or all (default all).
	AssigneeType string
	// AssigneeID selects one agent's conversations.
	AssigneeID int64
	// InboxID selects one inbox.
	InboxID int64
	// TeamID selects one team's conversations.
	TeamID int64
	// Labels selects conversations with any of these labels.
	Labels []string
	// Q selects conversations whose messages or contact (name, email,
	// phone number, identifier) contain it.
	Q string
	// Rules are a Chatwoot filter payload (POST …/conversations/filter).
	Rules []FilterRule
	// Page is 1-based; 25 conversations a page.
	Page int
}

// ConversationPageSize is how many conversations a page lists.
const ConversationPageSize = 25

// ConversationCounts are Chatwoot's conversation counts.
type ConversationCounts struct {
	MineCount       int `json:"mine_count"`
	UnassignedCount int `json:"unassigned_count"`
	AssignedCount   int `json:"assigned_count"`
	AllCount        int `json:"all_count"`
}

// ConversationList is the answer of GET .../conversations.
type ConversationList struct {
	Data struct {
		Meta    ConversationCounts `json:"meta"`
		Payload []ConversationView `json:"payload"`
	} `json:"data"`
}

// conversationWhere is the filter's condition before the assignee type,
// which the counts break down.
func conversationWhere(accountID int64, f ConversationFilter) (*sqlWhere, error) {
	w := &sqlWhere{}
	w.add("account_id = ?", accountID)
	if f.Status != "all" {
		w.add("status = ?", f.Status)
	}
	if f.InboxID != 0 {
		w.add("inbox_id = ?", f.InboxID)
	}
	if f.TeamID != 0 {
		w.add("team_id = ?", f.TeamID)
	}
	if len(f.Labels) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(f.Labels)), ", ")
		args := make([]any, len(f.Labels))
		for i, l := range f.Labels {
			args[i] = l
		}
		w.add("id IN (SELECT conversation_id FROM conversation_labels WHERE label IN ("+marks+"))", args...)
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		p := likePattern(q)
		w.add(`(id IN (SELECT conversation_id FROM inbox_messages WHERE lower(content) LIKE ? ESCAPE '\') OR contact_id IN (SELECT id FROM contacts
			WHERE lower(name) LIKE ? ESCAPE '\' OR lower(email) LIKE ? ESCAPE '\' OR lower(phone_number) LIKE ? ESCAPE '\' OR lower(identifier) LIKE ? ESCAPE '\'))`,
			p, p, p, p, p)
	}
	if len(f.Rules) > 0 {
		cond, args, err := buildFilter(f.Rules, conversationAttrs, "id")
		if err != nil {
			return nil, err
		}
		w.add(cond, args...)
	}
	return w, nil
}

// ConversationCounts counts the conversations f selects, by assignee.
func (s *Service) ConversationCounts(ctx context.Context, p auth.Principal, accountID int64, f ConversationFilter) (ConversationCounts, error) {
	var out ConversationCounts
	if f.Status == "" {
		f.Status = StatusOpen
	}
	if f.Status != "all" && !validStatus(f.Status) {
		return out, apperr.Field("status", "must be one of open, pending, resolved, snoozed, all")
	}
	w, err := conversationWhere(accountID, f)
	if err != nil {
		return out, err
	}
	me := s.agentIDs[p.Name]
	counts := []struct {
		dst  *int
		cond string
	}{
		{&out.AllCount, ""},
		{&out.UnassignedCount, " AND assignee_id IS NULL"},
		{&out.AssignedCount, " AND assignee_id IS NOT NULL"},
		{&out.MineCount, " AND assignee_id = " + strconv.FormatInt(me, 10)},
	}
	for _, c := range counts {
		if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM conversations WHERE `+w.String()+c.cond, w.args...).Scan(c.dst); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Conversations lists an account's conversations, most recently active first.
func (s *Service) Conversations(ctx context.Context, p auth.Principal, accountID int64, f ConversationFilter) (ConversationList, error) {
	var out ConversationList
	if f.Status == "" {
		f.Status = StatusOpen
	}
	if f.Page < 1 {
		f.Page = 1
	}
	counts, err := s.ConversationCounts(ctx, p, accountID, f)
	if err != nil {
		return out, err
	}
	out.Data.Meta = counts
	w, err := conversationWhere(accountID, f)
	if err != nil {
		return out, err
	}
	switch f.AssigneeType {
	case "", "all":
	case "me":
		w.add("assignee_id = ?", s.agentIDs[p.Name])
	case "unassigned":
		w.add("assignee_id IS NULL")
	case "assigned":
		w.add("assignee_id IS NOT NULL")
	default:
		return out, apperr.Field("assignee_type", "must be one of me, unassigned, assigned, all")
	}
	if f.AssigneeID != 0 {
		w.add("assignee_id = ?", f.AssigneeID)
	}
	n := len(w.args)
	args := append(w.args, ConversationPageSize, (f.Page-1)*ConversationPageSize)
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE `+w.String()+
		` ORDER BY last_activity_at DESC, id DESC LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2), args...)
	if err != nil {
		return out, err
	}
	var convs []conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			rows.Close()
			return out, err
		}
		convs = append(convs, c)
	}
	rows.Close()
	out.Data.Payload = []ConversationView{}
	for _, c := range convs {
		v, err := s.conversationView(ctx, s.db.Reader(), c)
		if err != nil {
			return out, err
		}
		out.Data.Payload = append(out.Data.Payload, v)
	}
	return out, nil
}

// MessageList is the answer of GET .../messages.
type MessageList struct {
	Meta struct {
		Contact  ContactView `json:"contact"`
		Assignee *AgentView  `json:"assignee"`
	} `json:"meta"`
	Payload []MessageView `json:"payload"`
}

// Messages lists a conversation's messages, oldest first: the newest 100,
// or the 100 before message id before.
func (s *Service) Messages(ctx context.Context, accountID, conversationID, before int64) (MessageList, error) {
	var out MessageList
	c, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return out, err
	}
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+messageColumns+` FROM inbox_messages WHERE conversation_id = $1 AND id < $2
		ORDER BY id DESC LIMIT 100`, c.id, before)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	out.Payload = []MessageView{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return out, err
		}
		out.Payload = append([]MessageView{m}, out.Payload...)
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	cv, err := s.conversationView(ctx, s.db.Reader(), c)
	if err != nil {
		return out, err
	}
	out.Meta.Contact, out.Meta.Assignee = cv.Meta.Sender, cv.Meta.Assignee
	return out, nil
}

// MessageInput is the body of POST .../conversations/{id}/messages.
type MessageInput struct {
	Content           string          `json:"content"`
	MessageType       json.RawMessage `json:"message_type"`
	Private           bool            `json:"private"`
	ContentType       string          `json:"content_type"`
	ContentAttributes json.RawMessage `json:"content_attributes"`
	// Files are the attachments of a multipart body.
	Files []Upload `json:"-"`
	// BaseURL is where attachment URLs point (see Service.baseURL).
	BaseURL string `json:"-"`
}

var contentTypes = map[string]bool{"text": true, "input_text": true, "input_textarea": true, "input_email": true,
	"input_select": true, "cards": true, "form": true, "article": true}

// parseMessageType accepts "incoming"/"outgoing" or Chatwoot's 0/1.
func parseMessageType(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return Outgoing, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case Incoming, Outgoing:
			return s, nil
		}
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && (n == 0 || n == 1) {
		return []string{Incoming, Outgoing}[n], nil
	}
	return "", apperr.Field("message_type", "must be incoming or outgoing")
}

// CreateMessage adds a message to a conversation. An outgoing, non-private
// message on a Messenger conversation is an agent reply: it opens or
// continues the agent's intervention, waits for thread control, and goes
// out through the Send API.
func (s *Service) CreateMessage(ctx context.Context, p auth.Principal, accountID, conversationID int64, in MessageInput) (MessageView, error) {
	parsed, err := parseMessage(in)
	if err != nil {
		return MessageView{}, err
	}
	conv, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return MessageView{}, err
	}
	facts, err := s.messageFacts(ctx, conv, parsed, in.Private)
	if err != nil {
		return MessageView{}, err
	}
	plan, err := planMessage(parsed, in, conv, p.Name, facts, s.now())
	if err != nil {
		return MessageView{}, err
	}
	if plan.m.senderType == SenderAgent {
		s.setAgentSender(&plan.m)
	}
	id, stored, err := s.writeMessage(ctx, p, conv, plan, in)
	if err != nil {
		return MessageView{}, err
	}
	if plan.reply {
		sends := plan.sends
		for _, a := range stored { // Messenger takes one attachment a message, by URL
			sends = append(sends, map[string]any{"attachment": map[string]any{"type": a.FileType,
				"payload": map[string]any{"url": a.DataURL, "is_reusable": true}}})
		}
		// The reply is committed: hand it on even if the client hangs up.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := s.sendReply(rctx, p, conv, id, sends); err != nil {
			return MessageView{}, err
		}
	}
	return getMessage(ctx, s.db.Reader(), id)
}

// parsedMessage is a message's input, checked on its own: its type, its
// content type and its content attributes.
type parsedMessage struct {
	messageType string
	contentType string
	attrs       map[string]any
}

// parseMessage checks what can be checked of in without the store.
func parseMessage(in MessageInput) (parsedMessage, error) {
	mtype, err := parseMessageType(in.MessageType)
	if err != nil {
		return parsedMessage{}, err
	}
	ct := in.ContentType
	if ct == "" {
		ct = "text"
	}
	if !contentTypes[ct] {
		return parsedMessage{}, apperr.Field("content_type", "unknown content_type %q", ct)
	}
	attrsJSON, err := jsonObject("content_attributes", in.ContentAttributes)
	if err != nil {
		return parsedMessage{}, err
	}
	var attrs map[string]any
	_ = json.Unmarshal([]byte(attrsJSON), &attrs)
	if strings.TrimSpace(in.Content) == "" && ct == "text" && len(in.Files) == 0 {
		return parsedMessage{}, apperr.Field("content", "is required")
	}
	if len([]rune(in.Content)) > 5000 {
		return parsedMessage{}, apperr.Field("content", "is over 5000 characters")
	}
	return parsedMessage{messageType: mtype, contentType: ct, attrs: attrs}, nil
}

// messageFacts is what deciding a new message needs from the store: the
// contact's name (for an incoming message of an API conversation) and
// when the customer last wrote (for a reply on Messenger).
type messageFacts struct {
	contactName    string
	lastCustomerAt *time.Time
}

// messageFacts loads the facts a message of type pm in conv needs.
func (s *Service) messageFacts(ctx context.Context, conv conversation, pm parsedMessage, private bool) (messageFacts, error) {
	var f messageFacts
	switch {
	case pm.messageType == Incoming && conv.psid == "":
		_ = s.db.Reader().QueryRowContext(ctx, `SELECT name FROM contacts WHERE id = $1`, conv.contactID).Scan(&f.contactName)
	case pm.messageType == Outgoing && conv.psid != "" && !private:
		th, _, err := s.handover.Get(ctx, conv.pageID, conv.psid)
		if err != nil {
			return f, err
		}
		f.lastCustomerAt = th.LastCustomerAt
	}
	return f, nil
}

// messagePlan is what to store for a new message and whether, and what,
// to send on Messenger.
type messagePlan struct {
	m newMessage
	// reply says the message is an agent's reply on Messenger: its sends
	// go to the customer (attachments follow once stored).
	reply bool
	sends []map[string]any
	// opens says the reply opens the conversation (it was neither open nor
	// resolved): the agents take the thread first.
	opens bool
}

// planMessage decides what a new message in conv is, from its checked
// input, what the store knows and the time (pure: no I/O). The agent's
// sender id is left to the caller.
func planMessage(pm parsedMessage, in MessageInput, conv conversation, agent string, f messageFacts, now time.Time) (messagePlan, error) {
	onMessenger := conv.psid != ""
	m := newMessage{convID: conv.id, messageType: pm.messageType, private: in.Private, content: in.Content, contentType: pm.contentType, attrs: pm.attrs}
	switch {
	case pm.messageType == Incoming && onMessenger:
		return messagePlan{}, &apperr.Error{Code: apperr.Unprocessable, Field: "message_type", Message: "incoming Messenger messages come from Messenger"}
	case pm.messageType == Incoming:
		m.senderType, m.senderID, m.senderName = SenderContact, sql.NullInt64{Int64: conv.contactID, Valid: true}, f.contactName
	default:
		m.senderType, m.senderName = SenderAgent, agent
	}
	plan := messagePlan{reply: onMessenger && pm.messageType == Outgoing && !in.Private}
	if plan.reply {
		if strings.TrimSpace(in.Content) != "" || len(in.Files) == 0 {
			send, err := messengerMessage(in.Content, pm.contentType, pm.attrs)
			if err != nil {
				return messagePlan{}, err
			}
			plan.sends = append(plan.sends, send)
		}
		if _, _, ok := handover.ReplyWindow(f.lastCustomerAt, now, false); !ok {
			return messagePlan{}, &apperr.Error{Code: apperr.Unprocessable, Field: "content",
				Message: "outside Messenger's 7-day human agent window: the customer must write first"}
		}
		m.status = MsgQueued
		plan.opens = conv.status != StatusOpen && conv.status != StatusResolved
	}
	plan.m = m
	return plan, nil
}

// writeMessage stores plan's message and in's files in one transaction
// (a reply that opens the conversation claims it for the agents first)
// and returns the message's id and the stored attachments.
func (s *Service) writeMessage(ctx context.Context, p auth.Principal, conv conversation, plan messagePlan, in MessageInput) (int64, []AttachmentView, error) {
	var id int64
	var stored []AttachmentView
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if plan.opens {
			// The reply opens the conversation: the agents take it (see
			// ToggleStatus), before the bots could answer too.
			if err := s.handover.ClaimByAgents(ctx, tx, conv.pageID, conv.psid, p.Name, true); err != nil {
				return err
			}
		}
		v, err := s.insertMessage(ctx, tx, conv, plan.m)
		if err != nil {
			return err
		}
		id = v.ID
		if len(in.Files) > 0 {
			atts, err := s.storeAttachments(ctx, tx, conv.accountID, id, in.BaseURL, in.Files)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(atts)
			if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET attachments = $2 WHERE id = $1`, id, string(b)); err != nil {
				return err
			}
			stored = atts
		}
		if plan.opens {
			prev := conv.status
			conv.status = StatusOpen
			if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = 'open' WHERE id = $1`, conv.id); err != nil {
				return err
			}
			if err := s.statusChanged(ctx, tx, conv, prev); err != nil {
				return err
			}
		}
		return s.messageEvent(ctx, tx, EventMessageCreated, conv, id)
	})
	return id, stored, err
}

// sendReply opens or continues the agent's intervention and hands the
// message's parts (its text, then each attachment) to the handover
// service, which sends them once handoverd holds the thread.
func (s *Service) sendReply(ctx context.Context, p auth.Principal, conv conversation, messageID int64, sends []map[string]any) error {
	ivs, err := s.handover.Interventions(ctx, conv.pageID, conv.psid)
	if err != nil {
		return err
	}
	var ivID int64
	if len(ivs) > 0 && ivs[0].Status == handover.InterventionOpen {
		ivID = ivs[0].ID
	} else {
		iv, _, err := s.handover.OpenIntervention(ctx, conv.pageID, conv.psid, p.Name)
		if apperr.CodeOf(err) == apperr.Conflict { // opened concurrently: use it
			if ivs, err = s.handover.Interventions(ctx, conv.pageID, conv.psid); err == nil && len(ivs) > 0 {
				iv = ivs[0]
			}
		} else if err != nil {
			return s.failReply(ctx, conv, messageID, err)
		}
		ivID = iv.ID
	}
	for _, send := range sends {
		send["metadata"] = metaInbox + strconv.FormatInt(messageID, 10)
		body, err := json.Marshal(send)
		if err != nil {
			return s.failReply(ctx, conv, messageID, err)
		}
		_, err = s.handover.SendAsAgent(ctx, conv.pageID, conv.psid, ivID, p.Name, body, 2*time.Second)
		if err != nil && apperr.CodeOf(err) != apperr.Upstream {
			return s.failReply(ctx, conv, messageID, err)
		}
	}
	return nil
}

// failReply marks a reply failed with the reason and reports it.
func (s *Service) failReply(ctx context.Context, conv conversation, messageID int64, cause error) error {
	reason := apperr.As(cause).Message
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET status = 'failed', error = $2, updated_at = $3 WHERE id = $1`,
			messageID, reason, store.Millis(s.now())); err != nil {
			return err
		}
		return s.messageEvent(ctx, tx, EventMessageUpdated, conv, messageID)
	})
	if err != nil {
		return err
	}
	return cause
}

// messengerMessage converts an inbox message to a Send API message: text,
// or input_select as quick replies.
func messengerMessage(content, contentType string, attrs map[string]any) (map[string]any, error) {
	switch contentType {
	case "text":
		if len([]rune(content)) > 2000 {
			return nil, apperr.Field("content", "is over Messenger's 2000 characters")
		}
		return map[string]any{"text": content}, nil
	case "input_select":
		items, _ := attrs["items"].([]any)
		if len(items) == 0 || len(items) > 13 {
			return nil, apperr.Field("content_attributes.items", "input_select needs 1 to 13 items for Messenger quick replies")
		}
		var qrs []map[string]any
		for i, it := range items {
			obj, _ := it.(map[string]any)
			title, _ := obj["title"].(string)
			value, _ := obj["value"].(string)
			if title == "" {
				return nil, apperr.Field("content_attributes.items["+strconv.Itoa(i)+"].title", "is required")
			}
			if value == "" {
				value = title
			}
			qrs = append(qrs, map[string]any{"content_type": "text", "title": truncate(title, 20), "payload": value})
		}
		return map[string]any{"text": content, "quick_replies": qrs}, nil
	}
	return nil, &apperr.Error{Code: apperr.Unprocessable, Field: "content_type", Message: "content_type " + contentType + " cannot be sent to Messenger"}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// Assign sets (or, with 0, clears) a conversation's assignee.
func (s *Service) Assign(ctx context.Context, accountID, conversationID, agentID int64) (*AgentView, error) {
	var assignee sql.NullInt64
	if agentID != 0 {
		if !s.accountAgent(accountID, agentID) {
			return nil, apperr.Field("assignee_id", "agent %d does not exist", agentID)
		}
		assignee = sql.NullInt64{Int64: agentID, Valid: true}
	}
	conv, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET assignee_id = $2, updated_at = $3 WHERE id = $1`, conv.id, assignee, store.Millis(s.now())); err != nil {
			return err
		}
		conv.assignee = assignee
		return s.conversationEvent(ctx, tx, EventConversationAssigned, conv, nil)
	})
	if err != nil || agentID == 0 {
		return nil, err
	}
	return s.agentView(agentID), nil
}

// accountAgent reports whether id is an agent of the account. Users of
// other accounts (and global admins) answer as if they did not exist, so
// ids cannot be used to enumerate them.
func (s *Service) accountAgent(accountID, id int64) bool {
	client, ok := s.agentOf[id]
	return ok && client == accountID
}

// ToggleStatus sets a conversation's status (with "", open ⇄ resolved).
// Resolving a Messenger conversation gives the thread back (see
// giveThreadBack).
func (s *Service) ToggleStatus(ctx context.Context, p auth.Principal, accountID, conversationID int64, status string) (string, error) {
	conv, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return "", err
	}
	if status == "" {
		status = StatusResolved
		if conv.status == StatusResolved {
			status = StatusOpen
		}
	}
	if !validStatus(status) {
		return "", apperr.Field("status", "must be one of open, pending, resolved, snoozed")
	}
	if status == StatusResolved && conv.psid != "" {
		if err := s.giveThreadBack(ctx, p, conv); err != nil {
			return "", err
		}
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if conv.psid != "" && conv.status != status {
			// Thread control tells everyone downstream: the relay bots stay
			// out of a conversation the agents hold, and may come back once
			// they let go. First, so the bots' tables are locked before the
			// conversation, as in every other transaction.
			if err := s.handover.ClaimByAgents(ctx, tx, conv.pageID, conv.psid, p.Name, status == StatusOpen || status == StatusSnoozed); err != nil {
				return err
			}
		}
		c, err := lockConversation(ctx, tx, conv.id)
		if err != nil || c.status == status {
			return err
		}
		prev := c.status
		c.status = status
		var waiting sql.NullInt64
		if status == StatusOpen {
			waiting = sql.NullInt64{Int64: store.Millis(s.now()), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = $2, agent_waiting_since = $3, updated_at = $4 WHERE id = $1`,
			c.id, status, waiting, store.Millis(s.now())); err != nil {
			return err
		}
		return s.statusChanged(ctx, tx, c, prev)
	})
	return status, err
}

// giveThreadBack ends the agents' hold on a resolved Messenger
// conversation's thread, intervention or not: an open intervention is
// closed (which gives the thread back); without one — the bot passed and
// no agent replied yet — the thread is given back directly (passed to the
// bot when it is the Page's default app, else released).
func (s *Service) giveThreadBack(ctx context.Context, p auth.Principal, conv conversation) error {
	ivs, err := s.handover.Interventions(ctx, conv.pageID, conv.psid)
	if err != nil {
		return err
	}
	if len(ivs) > 0 && ivs[0].Status != handover.InterventionClosed { // open, or a close to finish
		_, err := s.handover.CloseIntervention(ctx, ivs[0].ID, p.Name, handover.CloseByAgent)
		return err
	}
	_, err = s.handover.GiveBack(ctx, conv.pageID, conv.psid, p.Name)
	return err
}

// jsonObject validates an optional JSON object field and returns it ("{}" when absent).
func jsonObject(field string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "{}", nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", apperr.Field(field, "must be a JSON object")
	}
	if len(raw) > 10<<10 {
		return "", apperr.Field(field, "is over 10 KB")
	}
	return string(raw), nil
}

// FlexID is an id as Chatwoot clients send it: a JSON number or a numeric
// string.
type FlexID int64

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A type error lets encoding/json name the field in the message.
		return &json.UnmarshalTypeError{Value: "string " + string(b), Type: reflect.TypeOf(int64(0))}
	}
	*f = FlexID(n)
	return nil
}
