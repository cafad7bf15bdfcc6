package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/store"
)

// Bot object kinds.
const (
	KindClaim = "claim" // the bot claims and closes a customer message
	KindEcho  = "echo"  // the bot says it sent a message itself
)

// BotObject is a claim or echo call: the bot names a message by its mid.
type BotObject struct {
	// Kind is claim or echo.
	Kind string
	// PageID is account_id: the Facebook Page.
	PageID string
	// ObjectID is the message's mid.
	ObjectID string
	// PublishedAt is published_at.
	PublishedAt time.Time
	// Bot is the bot user.
	Bot string
}

// ParsePublishedAt reads published_at: epoch seconds or milliseconds, as a
// number or a string, or ISO 8601 (including a lowercase "t"). Times
// before 2004 or from 2100 on (NaN, Inf, 1e30, ...) are not accepted.
func ParsePublishedAt(v any) (time.Time, bool) {
	t, ok := parsePublishedAt(v)
	return t, ok && !t.Before(minPublished) && t.Before(maxPublished)
}

// The range of published_at accepted.
var (
	minPublished = time.Date(2004, 1, 1, 0, 0, 0, 0, time.UTC)
	maxPublished = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func parsePublishedAt(v any) (time.Time, bool) {
	finite := func(f float64) bool { return f > 0 && f < 1e15 } // also false for NaN
	switch x := v.(type) {
	case float64:
		return epoch(x), finite(x)
	case string:
		s := strings.TrimSpace(x)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return epoch(f), finite(f)
		}
		s = strings.ToUpper(s)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}

func epoch(f float64) time.Time {
	if f < 1e11 { // seconds
		return time.UnixMilli(int64(f * 1000)).UTC()
	}
	return time.UnixMilli(int64(f)).UTC()
}

// ErrUnknownAccount is the cause of RecordBotObjectFor's error for an
// account_id that is not a Page of the bot's client (test it with
// errors.Is).
var ErrUnknownAccount = errors.New("unknown account")

// RecordBotObjectFor records o for bot p: o.PageID (the account_id the bot
// names) must be a Page of p's client, or the error is Invalid naming
// account_id, its cause ErrUnknownAccount. The bot recorded is p.
func (s *Service) RecordBotObjectFor(ctx context.Context, p auth.Principal, o BotObject) error {
	page, ok := s.pages[o.PageID]
	if !ok || page.ClientID != p.ClientID {
		e := apperr.Field("account_id", "Cannot find an integrated account: %s", o.PageID)
		e.Err = ErrUnknownAccount
		return e
	}
	o.Bot = p.Name
	return s.RecordBotObject(ctx, o)
}

// RecordBotObject stores a claim or echo (repeats change nothing) and
// applies it at once if its message has landed; otherwise it is applied
// when the message lands.
func (s *Service) RecordBotObject(ctx context.Context, o BotObject) error {
	ref, ok := s.pageInbox[o.PageID]
	if !ok {
		return apperr.New(apperr.NotFound, "page %s", o.PageID)
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.LockKey(ctx, objectLock(o.PageID, o.ObjectID)); err != nil {
			return err
		}
		now := store.Millis(s.now())
		res, err := tx.ExecContext(ctx, `INSERT INTO bot_objects (page_id, object_id, kind, bot, published_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (page_id, object_id, kind) DO NOTHING`,
			o.PageID, o.ObjectID, o.Kind, o.Bot, store.Millis(o.PublishedAt), now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // a repeat: already recorded (and applied, if its message landed)
		}
		if o.Kind == KindClaim {
			if _, err := tx.ExecContext(ctx, `UPDATE inboxes SET bot_claims_at = $2 WHERE id = $1 AND bot_claims_at IS NULL`, ref.id, now); err != nil {
				return err
			}
		}
		var msgID int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM inbox_messages WHERE inbox_id = $1 AND source_id = $2`, ref.id, o.ObjectID).Scan(&msgID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // applied when the message lands
		}
		if err != nil {
			return err
		}
		return s.applyBotObjects(ctx, tx, o.PageID, msgID, o.ObjectID)
	})
}

// applyBotObjects applies the claims and echoes recorded for a message that
// has landed (message id msgID, mid objectID), and marks them applied.
func (s *Service) applyBotObjects(ctx context.Context, tx *store.Tx, pageID string, msgID int64, objectID string) error {
	if !batchOf(tx).waitingObjects(pageID, objectID) {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, kind, bot FROM bot_objects WHERE page_id = $1 AND object_id = $2 AND applied_at IS NULL`, pageID, objectID)
	if err != nil {
		return err
	}
	type obj struct {
		id        int64
		kind, bot string
	}
	var objs []obj
	for rows.Next() {
		var o obj
		if err := rows.Scan(&o.id, &o.kind, &o.bot); err != nil {
			rows.Close()
			return err
		}
		objs = append(objs, o)
	}
	rows.Close()
	if len(objs) == 0 {
		return nil
	}
	m, err := getMessage(ctx, tx, msgID)
	if err != nil {
		return err
	}
	conv, err := lockConversation(ctx, tx, m.ConversationID)
	if err != nil {
		return err
	}
	now := store.Millis(s.now())
	changed := false
	for _, o := range objs {
		switch {
		case o.kind == KindClaim && m.MessageType == messageTypeCodes[Incoming]:
			res, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET claimed_by = $2, claimed_at = $3, updated_at = $3
				WHERE id = $1 AND claimed_at IS NULL`, msgID, o.bot, now)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed = true
				s.metrics.Claims.WithLabelValues(KindClaim, "applied").Inc()
			}
		case o.kind == KindEcho && m.MessageType == messageTypeCodes[Outgoing]:
			if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET automated = 1, sender_type = 'bot',
				sender_name = CASE WHEN sender_type = 'bot' THEN sender_name ELSE $2 END, updated_at = $3 WHERE id = $1`, msgID, o.bot, now); err != nil {
				return err
			}
			changed = true
			s.metrics.Claims.WithLabelValues(KindEcho, "applied").Inc()
		default:
			s.metrics.Claims.WithLabelValues(o.kind, "mismatched").Inc()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bot_objects SET applied_at = $2 WHERE id = $1`, o.id, now); err != nil {
			return err
		}
	}
	if !changed {
		return nil
	}
	return s.messageEvent(ctx, tx, EventMessageUpdated, conv, msgID)
}

// markForSurfacing gives a new customer message in a conversation the bot
// handles a grace period: unclaimed after it, the message surfaces to the
// agents. Only on Pages whose bot claims (the Lexer model).
func (s *Service) markForSurfacing(ctx context.Context, tx *store.Tx, ref inboxRef, conv conversation, msgID int64) error {
	if conv.status != StatusPending {
		return nil
	}
	b := batchOf(tx)
	claims, known := sql.NullInt64{}, false
	if b != nil {
		claims, known = b.claims[ref.id]
	}
	if !known {
		if err := tx.QueryRowContext(ctx, `SELECT bot_claims_at FROM inboxes WHERE id = $1`, ref.id).Scan(&claims); err != nil {
			return err
		}
		if b != nil {
			b.claims[ref.id] = claims
		}
	}
	if !claims.Valid {
		return nil
	}
	at := store.Millis(s.now().Add(s.grace))
	if b != nil && b.surface(msgID, at) {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET surface_at = $2 WHERE id = $1 AND claimed_at IS NULL`, msgID, at)
	return err
}

// SurfaceDue moves unclaimed messages whose grace period ended into the
// agents' queue: their conversation opens, with an activity message saying
// why. It returns how many messages surfaced.
func (s *Service) SurfaceDue(ctx context.Context) (int, error) {
	ids, err := store.IDs(ctx, s.db.Reader(), `SELECT id FROM inbox_messages
		WHERE surface_at IS NOT NULL AND surfaced_at IS NULL AND claimed_at IS NULL AND surface_at <= $1 ORDER BY id LIMIT 200`, store.Millis(s.now()))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			now := s.now()
			res, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET surfaced_at = $2
				WHERE id = $1 AND surfaced_at IS NULL AND claimed_at IS NULL`, id, store.Millis(now))
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 0 {
				return nil // claimed meanwhile, or another process surfaced it
			}
			n++
			s.metrics.ClaimSurfaced.Inc()
			m, err := getMessage(ctx, tx, id)
			if err != nil {
				return err
			}
			conv, err := lockConversation(ctx, tx, m.ConversationID)
			if err != nil {
				return err
			}
			if conv.status != StatusPending {
				return nil
			}
			prev := conv.status
			conv.status, conv.waitingSince = StatusOpen, sql.NullInt64{Int64: store.Millis(now), Valid: true}
			if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = 'open', agent_waiting_since = $2, updated_at = $2 WHERE id = $1`,
				conv.id, store.Millis(now)); err != nil {
				return err
			}
			text := fmt.Sprintf("The bot did not claim the customer's message within %s: in the agents' queue", s.grace)
			if err := s.addMessage(ctx, tx, conv, false, newMessage{convID: conv.id, messageType: Activity, content: text, at: now}); err != nil {
				return err
			}
			return s.statusChanged(ctx, tx, conv, prev)
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// objectLock names the lock a message and the claims and echoes naming it
// share, whichever comes first.
func objectLock(pageID, mid string) string { return "inbox:object:" + pageID + ":" + mid }
