package inbox

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/google/uuid"

	"github.com/handoverd/handoverd/store"
)

// Events emitted to webhooks and live updates.
const (
	EventMessageCreated       = "message_created"
	EventMessageUpdated       = "message_updated"
	EventConversationCreated  = "conversation_created"
	EventConversationStatus   = "conversation_status_changed"
	EventConversationOwner    = "conversation_owner_changed"
	EventConversationAssigned = "assignee_changed"
)

// emit records an event in the account's ordered log and queues a signed
// delivery to every webhook that wants it, in the caller's transaction.
func (s *Service) emit(ctx context.Context, tx *store.Tx, accountID int64, conv *conversation, event string, body any) error {
	payload, err := eventPayload(event, accountID, body)
	if err != nil {
		return err
	}
	// Event ids must become visible in id order, or a live stream that
	// resumes after id N would skip a smaller id committed later (and a
	// conversation's deliveries could go out of order): one writer per
	// account at a time. (SQLite's single writer does this anyway.)
	if err := tx.LockKey(ctx, "inbox:events:"+itoa(accountID)); err != nil {
		return err
	}
	now := store.Millis(s.now())
	var convID int64
	if conv != nil {
		convID = conv.id
	}
	var eventID int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO inbox_events (account_id, conversation_id, event, payload, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, accountID, convID, event, string(payload), now).Scan(&eventID); err != nil {
		return err
	}
	type target struct{ key, url string }
	var targets []target
	if conv != nil {
		iv, err := s.inboxView(ctx, tx, conv.inboxID)
		if err != nil {
			return err
		}
		if iv.WebhookURL != "" {
			targets = append(targets, target{"inbox:" + itoa(conv.inboxID), iv.WebhookURL})
		}
	}
	for _, w := range s.webhooks {
		if w.AccountID == accountID && (len(w.Events) == 0 || slices.Contains(w.Events, event)) {
			targets = append(targets, target{"config:" + w.URL, w.URL})
		}
	}
	for _, t := range targets {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (event_id, account_id, conversation_id, target, url, delivery_id, status, next_attempt_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)`, eventID, accountID, convID, t.key, t.url, id.String(), now); err != nil {
			return err
		}
	}
	return nil
}

// eventPayload is the object's JSON with "event" and "account" added.
func eventPayload(event string, accountID int64, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["event"] = event
	m["account"] = map[string]int64{"id": accountID}
	return json.Marshal(m)
}

// messageEvent emits message_created or message_updated with the message
// and its conversation.
func (s *Service) messageEvent(ctx context.Context, tx *store.Tx, event string, conv conversation, messageID int64) error {
	m, err := getMessage(ctx, tx, messageID)
	if err != nil {
		return err
	}
	cv, err := s.conversationView(ctx, tx, conv)
	if err != nil {
		return err
	}
	body := struct {
		MessageView
		Conversation ConversationView `json:"conversation"`
	}{m, cv}
	return s.emit(ctx, tx, conv.accountID, &conv, event, body)
}

// conversationEvent emits a conversation event with extra fields.
func (s *Service) conversationEvent(ctx context.Context, tx *store.Tx, event string, conv conversation, extra map[string]any) error {
	cv, err := s.conversationView(ctx, tx, conv)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(cv)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for k, v := range extra {
		m[k] = v
	}
	return s.emit(ctx, tx, conv.accountID, &conv, event, m)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
