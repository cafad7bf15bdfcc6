package inbox

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"

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
	now := store.Millis(s.now())
	var convID int64
	if conv != nil {
		convID = conv.id
	}
	var eventID int64
	insert := `INSERT INTO inbox_events (account_id, conversation_id, event, payload, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`
	if tx.Dialect.Name == "sqlite" { // one writer: write order is commit order
		insert = `INSERT INTO inbox_events (account_id, conversation_id, event, payload, created_at, seq)
		VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(seq), 0) + 1 FROM inbox_events)) RETURNING id`
	}
	if err := tx.QueryRowContext(ctx, insert, accountID, convID, event, string(payload), now).Scan(&eventID); err != nil {
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
	b, err := json.Marshal(cv)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for k, v := range extra {
		m[k] = v
	}
	return s.emit(ctx, tx, conv.accountID, &conv, event, m)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// sequencerLock keeps one sequencer at a time across processes.
const sequencerLock = "inbox:sequencer"

// Sequence gives committed events without a seq the next ones, in id
// order, and returns how many it numbered. Only PostgreSQL needs it (see
// the inbox_events migration); one process at a time does the work.
func (s *Service) Sequence(ctx context.Context) (int, error) {
	if s.db.Dialect.Name != "postgres" {
		return 0, nil
	}
	n := 0
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		locked, err := tx.TryLockKey(ctx, sequencerLock)
		if err != nil || !locked {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE inbox_events e SET seq = base.max + next.rn
			FROM (SELECT coalesce(max(seq), 0) AS max FROM inbox_events) base,
			     (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM
			        (SELECT id FROM inbox_events WHERE seq IS NULL ORDER BY id LIMIT 1000) u) next
			WHERE e.id = next.id`)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		n = int(k)
		return err
	})
	return n, err
}
