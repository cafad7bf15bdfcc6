package inbox

import (
	"context"
	"encoding/json"
	"fmt"
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

// How events are stored. An inbox event records exactly what happened —
// for a message event the message as it was then, for a conversation
// event the attributes that changed — and the conversation it belongs to.
// The conversation around it (status, contact, assignee, inbox) is
// rendered when the event is read (live updates) or delivered (webhooks),
// from the state at that time, as Chatwoot's own asynchronous webhooks do.
// That keeps the write, which runs inside webhook ingest, to one small
// insert per event instead of several lookups and encodings.

// emit records an event in the account's ordered log and queues a signed
// delivery to every webhook that wants it, in the caller's transaction.
// part is what the event itself carries (nil for nothing).
func (s *Service) emit(ctx context.Context, tx *store.Tx, accountID int64, conv *conversation, event string, part any) error {
	payload := []byte("{}")
	if part != nil {
		var err error
		if payload, err = json.Marshal(part); err != nil {
			return err
		}
	}
	now := store.Millis(s.now())
	var convID int64
	if conv != nil {
		convID = conv.id
	}
	var eventID int64
	insert := `INSERT INTO inbox_events (account_id, conversation_id, event, payload, lazy, created_at)
		VALUES ($1, $2, $3, $4, 1, $5) RETURNING id`
	if tx.Dialect.Name == "sqlite" { // one writer: write order is commit order
		insert = `INSERT INTO inbox_events (account_id, conversation_id, event, payload, lazy, created_at, seq)
		VALUES ($1, $2, $3, $4, 1, $5, (SELECT coalesce(max(seq), 0) + 1 FROM inbox_events)) RETURNING id`
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

// storedEvent is an inbox_events row as rendering needs it.
type storedEvent struct {
	accountID, conversationID int64
	event, payload            string
	lazy                      bool // payload is the event's own part, rendered with its conversation on read
}

// storedEventColumns are the columns scanStoredEvent reads, for a query
// over inbox_events aliased e.
const storedEventColumns = `e.account_id, coalesce(e.conversation_id, 0), e.event, e.payload, e.lazy`

func scanStoredEvent(dest []any, e *storedEvent) []any {
	return append(dest, &e.accountID, &e.conversationID, &e.event, &e.payload, &e.lazy)
}

// render returns an event's JSON as webhooks and live updates carry it:
// message events are the message with its "conversation"; conversation
// events are the conversation with the changed attributes; both with
// "event" and "account".
func (s *Service) render(ctx context.Context, q querier, e storedEvent) (string, error) {
	if !e.lazy {
		return e.payload, nil // stored whole by an earlier version
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(e.payload), &body); err != nil {
		return "", fmt.Errorf("inbox: event payload: %w", err)
	}
	if body == nil {
		body = map[string]any{}
	}
	if e.conversationID != 0 {
		conv, err := getConversation(ctx, q, e.conversationID)
		if err != nil {
			return "", err
		}
		cv, err := s.conversationView(ctx, q, conv)
		if err != nil {
			return "", err
		}
		if e.event == EventMessageCreated || e.event == EventMessageUpdated {
			body["conversation"] = cv
		} else {
			b, err := json.Marshal(cv)
			if err != nil {
				return "", err
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return "", err
			}
			for k, v := range body {
				m[k] = v
			}
			body = m
		}
	}
	body["event"] = e.event
	body["account"] = map[string]int64{"id": e.accountID}
	b, err := json.Marshal(body)
	return string(b), err
}

// messageEvent emits message_created or message_updated with the message
// as it is now.
func (s *Service) messageEvent(ctx context.Context, tx *store.Tx, event string, conv conversation, messageID int64) error {
	m, err := getMessage(ctx, tx, messageID)
	if err != nil {
		return err
	}
	return s.emit(ctx, tx, conv.accountID, &conv, event, m)
}

// conversationEvent emits a conversation event with extra fields (the
// attributes that changed).
func (s *Service) conversationEvent(ctx context.Context, tx *store.Tx, event string, conv conversation, extra map[string]any) error {
	return s.emit(ctx, tx, conv.accountID, &conv, event, extra)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

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
