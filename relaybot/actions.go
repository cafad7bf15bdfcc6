package relaybot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// acceptEvents stores a bot's events as actions, each due at its offset
// (a delay holds back the events after it), and applies their context at
// once so the next call carries it.
func (s *Service) acceptEvents(ctx context.Context, tx *store.Tx, ss session, events []userlike.Event) error {
	now := s.now()
	offsets := userlike.Offsets(events)
	// The session's context as it is now, under its row lock — not as it
	// was read before a webhook call: a context the bot set meanwhile
	// (POST /api/chatbot/v1/events) must not be written back over.
	var current string
	if err := tx.QueryRowContext(ctx, `SELECT context FROM relay_sessions WHERE id = $1`+tx.Dialect.ForUpdate, ss.id).Scan(&current); err != nil {
		return err
	}
	contextJSON := json.RawMessage(current)
	for i, ev := range events {
		if ev.Context != nil {
			merged, err := userlike.MergeContext(contextJSON, ev.Context)
			if err != nil {
				return err
			}
			contextJSON = merged
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO relay_actions (session_id, event, due_at, status, created_at) VALUES ($1, $2, $3, 'pending', $4)`,
			ss.id, string(b), store.Millis(now.Add(offsets[i])), store.Millis(now)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE relay_sessions SET context = $2, last_activity_at = $3 WHERE id = $1`,
		ss.id, string(contextJSON), store.Millis(now)); err != nil {
		return err
	}
	s.Kick()
	return nil
}

// RunDue runs every due action — per session only the oldest pending one,
// in order — and returns how many it finished.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	return jobs.Drain(ctx, s.runner, s.actions)
}

// runOne runs one leased action. Its effects and its completion commit
// together: a crash before the commit runs it again from scratch, after it
// never again (messages are queued in this transaction, not sent).
func (s *Service) runOne(ctx context.Context, j relayJob, now time.Time) (bool, error) {
	ss := j.ss
	if ss.status != SessionActive {
		return false, s.finishAction(ctx, j.id, "aborted", "session is "+ss.status)
	}
	var ev userlike.Event
	if err := json.Unmarshal([]byte(j.body), &ev); err != nil {
		return false, errors.Join(err, s.finishAction(ctx, j.id, "failed", err.Error()))
	}
	if ev.Name == userlike.EventDelay && ev.Delay != nil && ev.Delay.Typing {
		s.typing(ctx, ss) // best effort, and harmless to repeat
	}
	actionErr := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := s.perform(ctx, tx, ss, ev); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE relay_actions SET status = 'done', done_at = $2, lease_until = NULL WHERE id = $1 AND status = 'pending'`,
			j.id, store.Millis(s.now()))
		return err
	})
	if ctx.Err() != nil {
		return true, actionErr // shutting down: the runner gives it back (a no-op if the commit landed)
	}
	if actionErr != nil {
		msg := apperr.As(actionErr).Message
		s.log.Warn().Str("bot", ss.bot).Str("event", string(ev.Name)).Str("error", msg).Msg("relay action failed")
		s.metrics.RelayActions.WithLabelValues(string(ev.Name), "failed").Inc()
		return false, errors.Join(actionErr, s.finishAction(ctx, j.id, "failed", msg))
	}
	s.metrics.RelayActions.WithLabelValues(string(ev.Name), "done").Inc()
	if ev.Name.ShowsCustomer() {
		s.handover.Kick() // queued messages: the sender takes them from here
	}
	return false, nil
}

// typing shows the customer a typing indicator.
func (s *Service) typing(ctx context.Context, ss session) {
	if ref, ok := s.pages[ss.pageID]; ok && s.graph != nil {
		_, _ = s.graph.Send(ctx, ref, messenger.SendRequest{PSID: ss.psid, SenderAction: "typing_on"})
	}
}

func (s *Service) finishAction(ctx context.Context, id int64, status, reason string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE relay_actions SET status = $2, error = $3, done_at = $4, lease_until = NULL WHERE id = $1 AND status = 'pending'`,
			id, status, reason, store.Millis(s.now()))
		return err
	})
}

// perform carries out one event of the bot's, in tx.
func (s *Service) perform(ctx context.Context, tx *store.Tx, ss session, ev userlike.Event) error {
	bot := s.bots[ss.bot]
	if ev.Name.ShowsCustomer() {
		msgs, pending, err := userlike.ToMessenger(ev)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			b, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := s.handover.QueueAutomated(ctx, tx, ss.pageID, ss.psid, ss.bot, b); err != nil {
				return err
			}
		}
		if pending == nil {
			return nil
		}
		b, err := json.Marshal(pending)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE relay_sessions SET pending_choice = $2 WHERE id = $1`, ss.id, string(b))
		return err
	}
	switch ev.Name {
	case userlike.EventDelay:
		return nil // the typing indicator went out before; the delay itself is the due time of what follows
	case userlike.EventContactUpdate:
		u := ev.ContactUpdate
		return s.handover.Relayed(ctx, tx, ss.pageID, ss.psid, handover.Relay{Kind: handover.RelayContact, Bot: ss.bot,
			Contact: handover.Contact{Name: u.Name, Email: u.Email, PhoneNumber: u.MobileNumber, Identifier: u.ExternalCustomerID}})
	case userlike.EventConversationUpdate:
		var conv userlike.Conversation
		_ = json.Unmarshal([]byte(ss.conversation), &conv)
		conv, err := conv.Apply(*ev.ConversationUpdate)
		if err != nil {
			return err
		}
		b, err := json.Marshal(conv)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE relay_sessions SET conversation = $2 WHERE id = $1`, ss.id, string(b))
		return err
	case userlike.EventNoteCreate:
		return s.handover.Relayed(ctx, tx, ss.pageID, ss.psid, handover.Relay{Kind: handover.RelayNote, Bot: ss.bot, Note: ev.Note.Body})
	case userlike.EventAbort:
		// The bot steps back: its remaining events are dropped and the
		// conversation goes to normal routing, the agents' queue.
		return s.endSession(ctx, tx, ss, SessionForwarded, "abort", handover.RelayForwarded, "The bot "+ss.bot+" stepped back: in the agents' queue")
	case userlike.EventEnd:
		return s.endSession(ctx, tx, ss, SessionEnded, "end", handover.RelayEnded, "The bot "+ss.bot+" ended the conversation")
	case userlike.EventForwardGroup, userlike.EventForwardSkills, userlike.EventForwardAny:
		if !s.agentsAvailable(bot, s.now()) && ev.Forward.Feedback() {
			s.metrics.RelaySessions.WithLabelValues("forward_failed").Inc()
			return s.enqueueCall(ctx, tx, ss.id, userlike.ForwardFailedPacket())
		}
		why := "Forwarded to the agents by the bot " + ss.bot
		switch {
		case ev.Forward.GroupID != "":
			why += " (group " + ev.Forward.GroupID + ")"
		case len(ev.Forward.Skills) > 0:
			why += " (skills " + strings.Join(ev.Forward.Skills, ", ") + ")"
		}
		return s.endSession(ctx, tx, ss, SessionForwarded, "forward", handover.RelayForwarded, why)
	case userlike.EventAddonDispatch, userlike.EventEmailDispatch:
		note := fmt.Sprintf("The bot %s asked for %s", ss.bot, strings.ReplaceAll(string(ev.Name), "_", " "))
		if d := ev.EmailDispatch; d != nil {
			note += fmt.Sprintf(" to the %s", d.RecipientType)
		}
		return s.handover.Relayed(ctx, tx, ss.pageID, ss.psid, handover.Relay{Kind: handover.RelayNote, Bot: ss.bot, Note: note})
	}
	return apperr.New(apperr.Invalid, "unknown event %s", ev.Name)
}

// endSession ends a session (forwarded or ended) for reason, drops its
// pending actions, and tells the consumers after the bots (the inbox) with
// a fact of kind, saying why. A forwarded session leaves the conversation
// held by the agents.
func (s *Service) endSession(ctx context.Context, tx *store.Tx, ss session, status, reason string, kind handover.RelayKind, why string) error {
	now := store.Millis(s.now())
	res, err := tx.ExecContext(ctx, `UPDATE relay_sessions SET status = $2, end_reason = $3, ended_at = $4 WHERE id = $1 AND status = 'active'`,
		ss.id, status, reason, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil // already over: leave the conversation alone
	}
	s.metrics.RelaySessions.WithLabelValues(status).Inc() // ended or forwarded
	if _, err := tx.ExecContext(ctx, `UPDATE relay_calls SET status = 'failed', last_error = 'session over', finished_at = $2
		WHERE session_id = $1 AND status = 'pending' AND lease_until IS NULL`, ss.id, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE relay_actions SET status = 'aborted', done_at = $2 WHERE session_id = $1 AND status = 'pending' AND lease_until IS NULL`,
		ss.id, now); err != nil {
		return err
	}
	if status == SessionForwarded {
		if err := s.hold(ctx, tx, ss.pageID, ss.psid, HoldForwarded); err != nil {
			return err
		}
	}
	return s.handover.Relayed(ctx, tx, ss.pageID, ss.psid, handover.Relay{Kind: kind, Bot: ss.bot, Why: why})
}

// TimeOutIdle applies each bot's conversation_timeout to its active
// sessions without activity: end resolves the conversation; unassign and
// forward give it to the agents. It returns how many sessions it closed.
func (s *Service) TimeOutIdle(ctx context.Context) (int, error) {
	n := 0
	for _, bot := range s.bots {
		if bot.ConversationTimeout <= 0 {
			continue
		}
		cutoff := store.Millis(s.now().Add(-bot.ConversationTimeout))
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+sessionColumns+` FROM relay_sessions
			WHERE bot = $1 AND status = 'active' AND last_activity_at <= $2 ORDER BY id LIMIT 200`, bot.Name, cutoff)
		if err != nil {
			return n, err
		}
		var idle []session
		for rows.Next() {
			ss, err := scanSession(rows)
			if err != nil {
				rows.Close()
				return n, err
			}
			idle = append(idle, ss)
		}
		rows.Close()
		for _, ss := range idle {
			status, kind, why := SessionForwarded, handover.RelayForwarded, fmt.Sprintf("No messages for %s: the bot %s handed the conversation to the agents", bot.ConversationTimeout, bot.Name)
			if bot.TimeoutAction == userlike.TimeoutEnd {
				status, kind, why = SessionEnded, handover.RelayEnded, fmt.Sprintf("No messages for %s: the bot %s ended the conversation", bot.ConversationTimeout, bot.Name)
			}
			err := s.db.InTx(ctx, func(tx *store.Tx) error {
				var still int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM relay_sessions WHERE id = $1 AND status = 'active' AND last_activity_at <= $2`,
					ss.id, cutoff).Scan(&still); err != nil || still == 0 {
					return err
				}
				n++
				return s.endSession(ctx, tx, ss, status, "timeout", kind, why)
			})
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
