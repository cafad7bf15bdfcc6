package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/handoverd/handoverd/store"
)

// newMessage is a message about to be stored.
type newMessage struct {
	convID         int64
	messageType    string
	private        bool
	content        string
	contentType    string
	attrs          map[string]any
	attachments    []map[string]any
	senderType     string
	senderID       sql.NullInt64
	senderName     string
	sourceID       string
	status         string
	agentMessageID sql.NullInt64
	at             time.Time
	// fresh says the source id cannot be stored yet (a customer's mid,
	// deduplicated with its webhook event), so a batch may write the
	// message later without checking (see batch.deferMessage).
	fresh bool
}

// addMessage stores m in conv — once: a message whose source id (the
// Messenger mid) is already stored is skipped — and emits
// conversation_created (when created) and message_created.
func (s *Service) addMessage(ctx context.Context, tx *store.Tx, conv conversation, created bool, m newMessage) error {
	v, err := s.insertMessage(ctx, tx, conv, m)
	if err != nil || v.ID == 0 {
		return err
	}
	return s.announce(ctx, tx, conv, created, v)
}

// announce emits conversation_created (when created) and message_created.
func (s *Service) announce(ctx context.Context, tx *store.Tx, conv conversation, created bool, m MessageView) error {
	if created {
		if err := s.conversationEvent(ctx, tx, EventConversationCreated, conv, nil); err != nil {
			return err
		}
	}
	return s.emit(ctx, tx, conv.accountID, &conv, EventMessageCreated, m)
}

// insertMessage stores m and returns it as stored, or a zero view (ID 0)
// when its source id was already stored.
func (s *Service) insertMessage(ctx context.Context, tx *store.Tx, conv conversation, m newMessage) (MessageView, error) {
	if m.contentType == "" {
		m.contentType = "text"
	}
	if m.status == "" {
		m.status = MsgSent
	}
	if m.attrs == nil {
		m.attrs = map[string]any{}
	}
	if m.attachments == nil {
		m.attachments = []map[string]any{}
	}
	attrs, err := json.Marshal(m.attrs)
	if err != nil {
		return MessageView{}, err
	}
	atts, err := json.Marshal(m.attachments)
	if err != nil {
		return MessageView{}, err
	}
	var source sql.NullString
	if m.sourceID != "" {
		source = sql.NullString{String: m.sourceID, Valid: true}
	}
	private := 0
	if m.private {
		private = 1
	}
	now := s.now()
	at := m.at
	if at.IsZero() {
		at = now
	}
	if b := batchOf(tx); b != nil && (m.fresh || !source.Valid) {
		r := messageRow{accountID: conv.accountID, inboxID: conv.inboxID, convID: conv.id, mtype: m.messageType, private: int64(private),
			content: m.content, contentType: m.contentType, attrs: string(attrs), atts: string(atts), senderType: m.senderType,
			senderID: m.senderID, senderName: m.senderName, source: source, status: m.status, created: store.Millis(at)}
		v, err := b.deferMessage(ctx, tx, r, m.agentMessageID, store.Millis(now))
		if err == nil && m.messageType != Activity {
			b.touch(conv.id, store.Millis(at))
		}
		return v, err
	}
	v, err := scanMessage(tx.QueryRowContext(ctx, `INSERT INTO inbox_messages
		(account_id, inbox_id, conversation_id, message_type, private, content, content_type, content_attributes, attachments,
		 sender_type, sender_id, sender_name, source_id, status, agent_message_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (inbox_id, source_id) DO NOTHING RETURNING `+messageColumns,
		conv.accountID, conv.inboxID, conv.id, m.messageType, private, m.content, m.contentType, string(attrs), string(atts),
		m.senderType, m.senderID, m.senderName, source, m.status, m.agentMessageID, store.Millis(at), store.Millis(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return MessageView{}, nil
	}
	if err != nil {
		return MessageView{}, err
	}
	if b := batchOf(tx); b != nil && m.messageType != Activity {
		b.touch(conv.id, store.Millis(at))
	} else if m.messageType != Activity {
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET last_activity_at = $2, updated_at = $3 WHERE id = $1 AND last_activity_at < $2`,
			conv.id, store.Millis(at), store.Millis(now)); err != nil {
			return MessageView{}, err
		}
	}
	return v, nil
}
