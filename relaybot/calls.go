package relaybot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// DeliverDue makes every due webhook call — per session only the oldest
// pending one, so a bot sees a conversation in order — and returns how many
// it finished (the bot answered, or there was nothing more to tell it).
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	return jobs.Drain(ctx, s.runner, s.calls)
}

// callPolicy is the retry policy of the calls: the configured first delay,
// doubling, until the bot has failed the configured number of attempts.
func (s *Service) callPolicy() jobs.Policy {
	return jobs.Policy{Backoff: jobs.Backoff{Initial: s.retry, Max: s.retry << 6, Jitter: 0.1}, Attempts: s.attempts}
}

// callOne makes one leased call to the bot and records the answer: the
// bot's events on success; on failure a later attempt, or — once the bot
// counts as down — the agents take over.
func (s *Service) callOne(ctx context.Context, j relayJob, now time.Time) (bool, error) {
	var p userlike.Packet
	if err := json.Unmarshal([]byte(j.body), &p); err != nil {
		return false, errors.Join(err, s.finishCall(ctx, j.id, "failed", err.Error()))
	}
	bot, ok := s.bots[j.ss.bot]
	if !ok || (j.ss.status != SessionActive && p.Name != userlike.PacketForwardFailed) {
		// The bot left the config, or the session ended: nothing to tell it.
		return false, s.finishCall(ctx, j.id, "failed", "session is "+j.ss.status)
	}
	body, err := s.buildCall(ctx, j.ss, p)
	if err != nil {
		return false, errors.Join(err, s.finishCall(ctx, j.id, "failed", err.Error()))
	}
	start := s.clock.Now()
	status, answer, callErr := s.post(ctx, bot, body)
	s.metrics.RelayLatency.Observe(clock.Since(s.clock, start).Seconds())
	retry, err := jobs.HTTPResult(status, callErr)
	if err == nil {
		s.metrics.RelayCalls.WithLabelValues(p.Name, "ok").Inc()
		return false, s.acceptAnswer(ctx, j, bot, answer)
	}
	s.metrics.RelayCalls.WithLabelValues(p.Name, "error").Inc()
	if ctx.Err() != nil { // shutdown cut the call short: the runner hands it back, and the bot is not down
		return true, err
	}
	d := s.callPolicy().Decide(retry, err, j.attempts, time.Time{}, now)
	if d.Result == jobs.ResultRetry {
		return true, errors.Join(err, s.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE relay_calls SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1`,
				j.id, store.Millis(d.Next), d.Error)
			return err
		}))
	}
	return false, errors.Join(err, s.botDown(ctx, j.ss, bot, d.Error))
}

// acceptAnswer records a call the bot answered, with the events it
// answered (an answer handoverd cannot use is noted on the session).
func (s *Service) acceptAnswer(ctx context.Context, j relayJob, bot userlike.Bot, answer []byte) error {
	events, perr := userlike.ParseEvents(answer)
	if len(bytes.TrimSpace(answer)) == 0 || string(bytes.TrimSpace(answer)) == "{}" {
		events, perr = nil, nil
	}
	if perr != nil {
		s.log.Warn().Str("bot", bot.Name).Str("error", apperr.As(perr).Message).Msg("the bot answered events handoverd cannot use; ignored")
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE relay_calls SET status = 'delivered', finished_at = $2, lease_until = NULL WHERE id = $1`,
			j.id, store.Millis(s.now())); err != nil {
			return err
		}
		if perr != nil {
			_, err := tx.ExecContext(ctx, `UPDATE relay_sessions SET last_error = $2 WHERE id = $1`, j.ss.id, apperr.As(perr).Message)
			return err
		}
		return s.acceptEvents(ctx, tx, j.ss, events)
	})
}

// botDown hands a session whose bot stays down to the agents: its pending
// calls fail, and the conversation says so.
func (s *Service) botDown(ctx context.Context, ss session, bot userlike.Bot, reason string) error {
	s.metrics.RelayFallbacks.Inc()
	s.log.Warn().Str("bot", bot.Name).Str("error", reason).Msg("relay bot down: forwarding to the agents")
	return s.db.InTx(ctx, func(tx *store.Tx) error {
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
