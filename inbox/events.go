package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
// part is what the event itself carries (nil for nothing). While a batch
// is being projected the event is held and written, with the batch's
// others and in the same order, by EndChanges.
func (s *Service) emit(ctx context.Context, tx *store.Tx, accountID int64, conv *conversation, event string, part any) error {
	payload := []byte("{}")
	if part != nil {
		var err error
		if payload, err = json.Marshal(part); err != nil {
			return err
		}
	}
	e := pendingEvent{accountID: accountID, event: event, payload: string(payload)}
	if conv != nil {
		e.convID = conv.id
		iv, err := s.inboxView(ctx, tx, conv.inboxID)
		if err != nil {
			return err
		}
		if iv.WebhookURL != "" {
			e.targets = append(e.targets, webhookTarget{"inbox:" + itoa(conv.inboxID), iv.WebhookURL})
		}
	}
	for _, w := range s.webhooks {
		if w.AccountID == accountID && (len(w.Events) == 0 || slices.Contains(w.Events, event)) {
			e.targets = append(e.targets, webhookTarget{"config:" + w.URL, w.URL})
		}
	}
	if b := batchOf(tx); b != nil {
		b.events = append(b.events, e)
		return nil
	}
	return s.writeEvents(ctx, tx, []pendingEvent{e})
}

// webhookTarget is where an event is delivered.
type webhookTarget struct{ key, url string }

// pendingEvent is an event about to be written.
type pendingEvent struct {
	accountID, convID int64
	event, payload    string
	targets           []webhookTarget
}

// writeEvents writes events to the log, in order, and their deliveries.
// On SQLite, whose one writer commits in write order, each gets its seq
// now; on PostgreSQL the sequencer numbers them after commit.
func (s *Service) writeEvents(ctx context.Context, tx *store.Tx, evs []pendingEvent) error {
	if len(evs) == 0 {
		return nil
	}
	now := store.Millis(s.now())
	var seq int64
	if tx.Dialect.Name == "sqlite" {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM inbox_events`).Scan(&seq); err != nil {
			return err
		}
	}
	type delivery struct {
		event int // index in evs
		webhookTarget
	}
	var deliveries []delivery
	ids := make([]int64, 0, len(evs))
	err := store.Chunks(len(evs), func(from, to int) error {
		args := make([]any, 0, 7*(to-from))
		for i, e := range evs[from:to] {
			var sq sql.NullInt64
			if tx.Dialect.Name == "sqlite" {
				sq = sql.NullInt64{Int64: seq + int64(from+i) + 1, Valid: true}
			}
			args = append(args, e.accountID, e.convID, e.event, e.payload, now, sq, 1)
			for _, t := range e.targets {
				deliveries = append(deliveries, delivery{from + i, t})
			}
		}
		got, err := store.IDsBulk(ctx, tx, `INSERT INTO inbox_events (account_id, conversation_id, event, payload, created_at, seq, lazy) VALUES `+
			tx.Values(to-from, "BIGINT", "BIGINT", "", "", "BIGINT", "BIGINT", "BIGINT")+` RETURNING id`, args...)
		if err != nil {
			return err
		}
		// Ids are handed out in row order; RETURNING's order is not promised.
		slices.Sort(got)
		ids = append(ids, got...)
		return nil
	})
	if err != nil {
		return err
	}
	if len(ids) != len(evs) {
		return fmt.Errorf("inbox: %d events written, %d ids returned", len(evs), len(ids))
	}
	return store.Chunks(len(deliveries), func(from, to int) error {
		args := make([]any, 0, 7*(to-from))
		for _, d := range deliveries[from:to] {
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			e := evs[d.event]
			args = append(args, ids[d.event], e.accountID, e.convID, d.key, d.url, id.String(), now)
		}
		_, err := tx.ExecBulk(ctx, `INSERT INTO outbox (event_id, account_id, conversation_id, target, url, delivery_id, next_attempt_at, created_at, status) SELECT
			v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column7, 'pending' FROM (VALUES `+
			tx.Values(to-from, "BIGINT", "BIGINT", "BIGINT", "", "", "", "BIGINT")+`) AS v`, args...)
		return err
	})
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

// render returns an event's JSON as live updates carry it (webhooks get
// webhookBody of it): message events are the message with its
// "conversation"; conversation events are the conversation with the
// changed attributes; all with "event", "account" and "inbox", as
// Chatwoot's webhooks carry them.
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
		cv, err := s.eventConversationView(ctx, q, conv)
		if err != nil {
			return "", err
		}
		iv, err := s.inboxView(ctx, q, conv.inboxID)
		if err != nil {
			return "", err
		}
		body["inbox"] = map[string]any{"id": iv.ID, "name": iv.Name}
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
	body["account"] = map[string]any{"id": e.accountID, "name": "Account " + itoa(e.accountID)}
	b, err := json.Marshal(body)
	return string(b), err
}

// messageTypeNames are Chatwoot's webhook names for message types.
var messageTypeNames = map[float64]string{0: Incoming, 1: Outgoing, 2: Activity, 3: "template"}

// webhookBody is an event's payload as a webhook receives it: Chatwoot's
// webhooks name a message's type ("incoming") where its REST answers and
// live updates use numbers.
func webhookBody(payload []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return payload
	}
	var n float64
	if json.Unmarshal(m["message_type"], &n) != nil {
		return payload
	}
	name, ok := messageTypeNames[n]
	if !ok {
		return payload
	}
	m["message_type"], _ = json.Marshal(name)
	out, err := json.Marshal(m)
	if err != nil {
		return payload
	}
	return out
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
