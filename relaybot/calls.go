package relaybot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/internal/redact"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// callLease bounds how long one process holds a call it is attempting.
const callLease = time.Minute

// DeliverDue makes every due webhook call — per session only the oldest
// pending one, so a bot sees a conversation in order — and returns how many
// the bot answered.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	now := store.Millis(s.now())
	ids, err := store.IDs(ctx, s.db.Reader(), `SELECT c.id FROM relay_calls c
		WHERE c.status = 'pending' AND c.next_attempt_at <= $1 AND (c.lease_until IS NULL OR c.lease_until < $1)
		AND c.id = (SELECT min(p.id) FROM relay_calls p WHERE p.session_id = c.session_id AND p.status = 'pending')
		ORDER BY c.id LIMIT 50`, now)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, id := range ids {
		ok, err := s.callOne(ctx, id)
		if err != nil {
			return done, err
		}
		if ok {
			done++
		}
	}
	return done, nil
}

func (s *Service) callOne(ctx context.Context, id int64) (bool, error) {
	now := s.now()
	var ss session
	var packet string
	var attempts int
	claimed := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if claimed, err = tx.Lease(ctx, "relay_calls", "pending", id, now.Add(callLease), now, true); err != nil || !claimed {
			return err
		}
		var sid int64
		if err := tx.QueryRowContext(ctx, `SELECT session_id, packet, attempts FROM relay_calls WHERE id = $1`, id).Scan(&sid, &packet, &attempts); err != nil {
			return err
		}
		ss, err = scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM relay_sessions WHERE id = $1`, sid))
		return err
	})
	if err != nil || !claimed {
		return false, err
	}
	var p userlike.Packet
	if err := json.Unmarshal([]byte(packet), &p); err != nil {
		return false, err
	}
	bot, ok := s.bots[ss.bot]
	if !ok || (ss.status != SessionActive && p.Name != userlike.PacketForwardFailed) {
		// The bot left the config, or the session ended: nothing to tell it.
		return false, s.finishCall(ctx, id, "failed", "session is "+ss.status)
	}
	body, err := s.buildCall(ctx, ss, p)
	if err != nil {
		return false, s.finishCall(ctx, id, "failed", err.Error())
	}
	start := time.Now()
	status, answer, callErr := s.post(ctx, bot, body)
	s.metrics.RelayLatency.Observe(time.Since(start).Seconds())
	if ctx.Err() != nil { // shutting down: hand the call back untouched
		return false, s.db.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			_, err := tx.ExecContext(context.WithoutCancel(ctx), `UPDATE relay_calls SET lease_until = NULL, attempts = attempts - 1 WHERE id = $1`, id)
			return err
		})
	}
	if callErr == nil && status >= 200 && status < 300 {
		s.metrics.RelayCalls.WithLabelValues(p.Name, "ok").Inc()
		events, perr := userlike.ParseEvents(answer)
		if len(bytes.TrimSpace(answer)) == 0 || string(bytes.TrimSpace(answer)) == "{}" {
			events, perr = nil, nil
		}
		if perr != nil {
			s.log.Warn().Str("bot", bot.Name).Str("error", apperr.As(perr).Message).Msg("the bot answered events handoverd cannot use; ignored")
		}
		return true, s.db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE relay_calls SET status = 'delivered', finished_at = $2, lease_until = NULL WHERE id = $1`,
				id, store.Millis(s.now())); err != nil {
				return err
			}
			if perr != nil {
				_, err := tx.ExecContext(ctx, `UPDATE relay_sessions SET last_error = $2 WHERE id = $1`, ss.id, apperr.As(perr).Message)
				return err
			}
			return s.acceptEvents(ctx, tx, ss, events)
		})
	}
	reason := fmt.Sprintf("HTTP %d", status)
	if callErr != nil {
		reason = redact.Error(callErr)
	}
	s.metrics.RelayCalls.WithLabelValues(p.Name, "error").Inc()
	if attempts < s.attempts {
		delay := s.retry << (attempts - 1)
		return false, s.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE relay_calls SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1`,
				id, store.Millis(s.now().Add(delay)), reason)
			return err
		})
	}
	// The bot stays down: the agents take over, and the conversation says so.
	s.metrics.RelayFallbacks.Inc()
	s.log.Warn().Str("bot", bot.Name).Str("error", reason).Msg("relay bot down: forwarding to the agents")
	return false, s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE relay_calls SET status = 'failed', last_error = $2, finished_at = $3, lease_until = NULL
			WHERE session_id = $1 AND status = 'pending'`, ss.id, reason, store.Millis(s.now())); err != nil {
			return err
		}
		return s.endSession(ctx, tx, ss, SessionForwarded, "bot_down", handover.RelayForwarded,
			fmt.Sprintf("The bot %s did not answer (%s): forwarded to the agents", bot.Name, reason))
	})
}

func (s *Service) finishCall(ctx context.Context, id int64, status, reason string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE relay_calls SET status = $2, last_error = $3, finished_at = $4, lease_until = NULL WHERE id = $1`,
			id, status, reason, store.Millis(s.now()))
		return err
	})
}

// buildCall encodes the webhook body: the session's info and the packet.
func (s *Service) buildCall(ctx context.Context, ss session, p userlike.Packet) ([]byte, error) {
	var conv userlike.Conversation
	_ = json.Unmarshal([]byte(ss.conversation), &conv)
	conv.ContactChannel.Type = userlike.ChannelFacebook
	var f handover.Contact
	if s.contacts != nil {
		var err error
		if f, _, err = s.contacts.ContactOf(ctx, ss.pageID, ss.psid); err != nil {
			return nil, err
		}
	}
	name := f.Name
	if name == "Messenger user "+ss.psid {
		name = "" // the placeholder handoverd gives unnamed Messenger contacts
	}
	info := userlike.Info{
		ApproachMode: userlike.ApproachNormal,
		CID:          ss.cid,
		Contact:      userlike.Contact{ID: ss.psid, Name: name, Email: f.Email, MobileNumber: f.PhoneNumber},
		Context:      json.RawMessage(ss.context),
		Conversation: conv,
	}
	return userlike.Build(info, p)
}

// post calls the bot's webhook with its configured headers.
func (s *Service) post(ctx context.Context, bot userlike.Bot, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bot.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "handoverd-relay")
	for k, v := range bot.WebhookHeaders {
		req.Header.Set(k, v.Reveal())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}
