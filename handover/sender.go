package handover

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Messenger's sending windows after the customer's last message.
const (
	StandardWindow   = 24 * time.Hour
	HumanAgentWindow = 7 * 24 * time.Hour
)

// Agent message statuses.
const (
	SendWaiting = "waiting"
	SendSent    = "sent"
	SendFailed  = "failed"
)

// AgentMessage is a message an agent sends through handoverd. It waits,
// durably, until handoverd holds the thread, then goes out through the Send
// API — or fails visibly with the reason.
type AgentMessage struct {
	// ID identifies it.
	ID int64
	// PageID and PSID name the recipient.
	PageID, PSID string
	// InterventionID is the intervention it belongs to (0 if none).
	InterventionID int64
	// Sender is who sends it: an agent, or a relay bot.
	Sender Sender
	// Message is the Send API message object.
	Message json.RawMessage
	// Status is waiting, sent or failed.
	Status string
	// MID is the sent message's id.
	MID string
	// MessagingType is RESPONSE or MESSAGE_TAG (HUMAN_AGENT) once sent.
	MessagingType string
	// Error says why it failed.
	Error string
	// CreatedAt is when the agent sent it.
	CreatedAt time.Time
	// DeadlineAt is when it fails if control has not come.
	DeadlineAt time.Time
	// FinishedAt is when it was sent or failed.
	FinishedAt *time.Time
}

const agentMessageColumns = `id, page_id, psid, intervention_id, actor, message, status, mid, messaging_type, error, created_at, deadline_at, finished_at, sender_kind`

func scanAgentMessage(row rowScanner) (AgentMessage, error) {
	var m AgentMessage
	var iv, finished sql.NullInt64
	var msg string
	var created, deadline int64
	var kind string
	err := row.Scan(&m.ID, &m.PageID, &m.PSID, &iv, &m.Sender.Name, &msg, &m.Status, &m.MID, &m.MessagingType, &m.Error, &created, &deadline, &finished, &kind)
	m.Sender.Kind = SenderKind(kind)
	m.InterventionID, m.Message = iv.Int64, json.RawMessage(msg)
	m.CreatedAt, m.DeadlineAt, m.FinishedAt = store.Time(created), store.Time(deadline), store.TimePtr(finished)
	return m, err
}

// SendAsAgent queues an agent's message, makes sure control is on its way
// (AcquireControl), wakes the sender and waits up to wait for the message
// to leave the queue. It returns the message as it stands.
func (s *Service) SendAsAgent(ctx context.Context, pageID, psid string, interventionID int64, agent string, message json.RawMessage, wait time.Duration) (AgentMessage, error) {
	return s.send(ctx, pageID, psid, interventionID, agent, message, wait)
}

// QueueAutomated queues a message from a relay bot (named bot) in the
// caller's transaction, so it is queued exactly when the caller's work
// commits. It goes out once handoverd holds the thread, only within
// Messenger's 24-hour window (automated messages may not use the
// HUMAN_AGENT tag); call Kick after the commit.
func (s *Service) QueueAutomated(ctx context.Context, tx *store.Tx, pageID, psid, bot string, message json.RawMessage) error {
	now := s.now()
	_, err := tx.ExecContext(ctx, `INSERT INTO agent_messages
		(page_id, psid, actor, message, status, created_at, deadline_at, sender_kind)
		VALUES ($1, $2, $3, $4, 'waiting', $5, $6, $7)`,
		pageID, psid, bot, string(message), store.Millis(now), store.Millis(now.Add(s.hcfg.ControlTimeout)), string(SenderRelayBot))
	return err
}

func (s *Service) send(ctx context.Context, pageID, psid string, interventionID int64, agent string, message json.RawMessage, wait time.Duration) (AgentMessage, error) {
	if _, ok := s.pages[pageID]; !ok {
		return AgentMessage{}, apperr.Field("page_id", "page %s is not configured", pageID)
	}
	now := s.now()
	var m AgentMessage
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := lockExistingThread(ctx, tx, pageID, psid); err != nil {
			return err
		}
		if back, err := handBackInFlight(ctx, tx, pageID, psid); err != nil || back {
			if err == nil {
				err = apperr.New(apperr.Conflict, "the conversation is being handed back; the message was not queued")
			}
			return err
		}
		if open, err := interventionOpen(ctx, tx, interventionID); err != nil || !open {
			if err == nil {
				err = apperr.New(apperr.Conflict, "intervention %d is closed (or being closed); the message was not queued", interventionID)
			}
			return err
		}
		var iv sql.NullInt64
		if interventionID != 0 {
			iv = sql.NullInt64{Int64: interventionID, Valid: true}
		}
		var err error
		m, err = scanAgentMessage(tx.QueryRowContext(ctx, `INSERT INTO agent_messages
			(page_id, psid, intervention_id, actor, message, status, created_at, deadline_at)
			VALUES ($1, $2, $3, $4, $5, 'waiting', $6, $7) RETURNING `+agentMessageColumns,
			pageID, psid, iv, agent, string(message), store.Millis(now), store.Millis(now.Add(s.hcfg.ControlTimeout))))
		if err != nil {
			return err
		}
		return touchIntervention(ctx, tx, pageID, psid, now)
	})
	if err != nil {
		return m, err
	}
	// The message is committed: asking for control must not die with the
	// caller's request (a client that hangs up would leave it stranded).
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	refused, err := s.acquireFor(actx, m, "thread control could not be acquired: ")
	if err != nil {
		return m, err
	}
	if refused != nil {
		got, gerr := s.AgentMessage(ctx, m.ID)
		if gerr != nil {
			return m, gerr
		}
		return got, refused
	}
	s.Kick()
	var got AgentMessage
	err = clock.Poll(ctx, s.clock, 10*time.Millisecond, wait, func() (bool, error) {
		var err error
		got, err = s.AgentMessage(ctx, m.ID)
		// A message its echo showed sent (settleEchoed) is recorded whole
		// a moment later, by the sender that sent it (markSent).
		return got.Status != SendWaiting && (got.Status != SendSent || got.MessagingType != ""), err
	})
	if ctx.Err() != nil {
		return got, nil
	}
	return got, err
}

// acquireFor makes sure control is on its way for a queued message m
// (acquireControlFor). When that fails, m fails with prefix and the reason
// and acquireFor returns the failure as refused — unless a hand-back of
// the identity is in flight: that settles m itself (sent, or cancelled
// with the reason), so it is no failure of m's. err is a failure to
// record any of it.
func (s *Service) acquireFor(ctx context.Context, m AgentMessage, prefix string) (refused, err error) {
	if _, refused = s.acquireControlFor(ctx, m); refused == nil {
		return nil, nil
	}
	var failed, back bool
	reason := prefix + apperr.As(refused).Message
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		failed, back = false, false
		var err error
		if _, err = lockExistingThread(ctx, tx, m.PageID, m.PSID); err != nil {
			return err
		}
		if back, err = handBackInFlight(ctx, tx, m.PageID, m.PSID); err != nil || back {
			return err
		}
		failed, err = s.failQueuedInTx(ctx, tx, m.ID, reason)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case back:
		return nil, nil
	case failed:
		s.failed(m.ID, reason)
	}
	return refused, nil
}

// AgentMessage returns one agent message.
func (s *Service) AgentMessage(ctx context.Context, id int64) (AgentMessage, error) {
	m, err := scanAgentMessage(s.db.Reader().QueryRowContext(ctx, `SELECT `+agentMessageColumns+` FROM agent_messages WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, apperr.New(apperr.NotFound, "agent message %d does not exist", id)
	}
	return m, err
}

// AgentMessages lists an intervention's agent messages, oldest first.
func (s *Service) AgentMessages(ctx context.Context, interventionID int64) ([]AgentMessage, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+agentMessageColumns+` FROM agent_messages
		WHERE intervention_id = $1 ORDER BY id LIMIT 1000`, interventionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AgentMessage{}
	for rows.Next() {
		m, err := scanAgentMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// failAgentMessage fails a waiting message the caller's sender holds (it
// claimed it in sendOne and has not let go of it).
func (s *Service) failAgentMessage(ctx context.Context, id int64, reason string) error {
	return s.failWith(ctx, id, reason, s.failInTx)
}

// failQueued fails a waiting message unless a sender is handing it to the
// Send API right now (failQueuedInTx): for callers that do not hold it.
func (s *Service) failQueued(ctx context.Context, id int64, reason string) error {
	return s.failWith(ctx, id, reason, s.failQueuedInTx)
}

// failWith fails message id in its own transaction with fail.
func (s *Service) failWith(ctx context.Context, id int64, reason string,
	fail func(ctx context.Context, tx *store.Tx, id int64, reason string) (bool, error)) error {
	var failed bool
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		failed, err = fail(ctx, tx, id, reason)
		return err
	})
	if err == nil && failed {
		s.failed(id, reason)
	}
	return err
}

// inFlight is the SQL condition on agent_messages that a sender is handing
// the message to the Send API right now ($3: the current time in ms).
const inFlight = `(sending = 1 AND lease_until >= $3)`

// failInTx fails a waiting message in tx and tells the observers; call
// failed after the commit when it reports true. Only the sender holding
// the message may fail it while it is in flight: others use
// failQueuedInTx.
func (s *Service) failInTx(ctx context.Context, tx *store.Tx, id int64, reason string) (bool, error) {
	return s.failWhere(ctx, tx, id, reason, "")
}

// failQueuedInTx is failInTx for a message no sender is handing to the
// Send API: one in flight is left to its sender (it is sent or fails on
// its own), and failQueuedInTx reports false.
func (s *Service) failQueuedInTx(ctx context.Context, tx *store.Tx, id int64, reason string) (bool, error) {
	return s.failWhere(ctx, tx, id, reason, " AND NOT "+inFlight)
}

// failWhere fails message id in tx if it is waiting and matches cond.
func (s *Service) failWhere(ctx context.Context, tx *store.Tx, id int64, reason, cond string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE agent_messages SET status = 'failed', error = $2, finished_at = $3, lease_until = NULL, sending = 0
		WHERE id = $1 AND status = 'waiting'`+cond, id, reason, store.Millis(s.now()))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, s.observeAgentMessage(ctx, tx, id)
}

// failed counts and logs a message failed by a committed transaction.
func (s *Service) failed(id int64, reason string) {
	s.metrics.AgentSends.WithLabelValues(SendFailed).Inc()
	s.log.Warn().Int64("agent_message", id).Str("reason", reason).Msg("agent message failed")
}

// reasonSenderStopped fails a message whose sender stopped (a process
// killed) while handing it to the Send API, unless its echo showed it
// delivered first (settleEchoed).
const reasonSenderStopped = "handoverd stopped while handing this message to Facebook (it may have been delivered); not sent again, so the customer never gets it twice"

// Reasons a queued message is cancelled (failed without reaching Facebook).
const (
	cancelHandedBack = "cancelled: the conversation was handed back before this message was sent"
	cancelClosed     = "cancelled: the intervention was closed before this message was sent"
)

// cancelQueued fails, in tx, every waiting message of the identity that no
// sender is handing to the Send API right now (those finish first; see
// awaitSends). Called under the thread's row lock, in the transaction that
// decides a hand-back, so no message of the identity is claimed for
// sending after that decision. It returns the ids it cancelled.
func (s *Service) cancelQueued(ctx context.Context, tx *store.Tx, pageID, psid, reason string) ([]int64, error) {
	ids, err := store.IDs(ctx, tx, `SELECT id FROM agent_messages WHERE page_id = $1 AND psid = $2 AND status = 'waiting'
		AND NOT `+inFlight+` ORDER BY id`, pageID, psid, store.Millis(s.now()))
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, id := range ids {
		ok, err := s.failQueuedInTx(ctx, tx, id, reason)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// awaitSends waits until no message of the identity is being handed to
// the Send API, cancelling each one that stops waiting on a sender (a
// retry backing off, a lease run out): a hand-back calls it after recording
// its operation (which stops new claims) and before calling Graph, so every
// message either reached Facebook while the agents held the thread or was
// cancelled. It gives up after leaseFor, when no sender can still hold one.
func (s *Service) awaitSends(ctx context.Context, pageID, psid string) error {
	return clock.Poll(ctx, s.clock, 10*time.Millisecond, leaseFor, func() (bool, error) {
		var cancelled []int64
		var sending int
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if cancelled, err = s.cancelQueued(ctx, tx, pageID, psid, cancelHandedBack); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM agent_messages WHERE page_id = $1 AND psid = $2 AND status = 'waiting'`,
				pageID, psid).Scan(&sending)
		})
		if err != nil {
			return false, err
		}
		for _, id := range cancelled {
			s.failed(id, cancelHandedBack)
		}
		return sending == 0, nil
	})
}

// handBackInFlight reports whether a hand-back (give back or pass to the
// bot) of the identity is in flight. Call it under the thread's row lock.
func handBackInFlight(ctx context.Context, tx *store.Tx, pageID, psid string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM control_ops WHERE page_id = $1 AND psid = $2 AND status = 'in_flight'
		AND direction IN ('give_back', 'to_bot')`, pageID, psid).Scan(&n)
	return n > 0, err
}

// interventionOpen reports whether an intervention is open (0: none, true);
// one closing is not.
func interventionOpen(ctx context.Context, q querier, id int64) (bool, error) {
	if id == 0 {
		return true, nil
	}
	var status string
	err := q.QueryRowContext(ctx, `SELECT status FROM interventions WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return status == InterventionOpen, err
}

// leaseFor bounds how long one process holds a message while sending it:
// longer than one Send with all its retries (30 s) and timeouts, so no
// other process sends it meanwhile.
const leaseFor = 2 * time.Minute

// sendBackoff is the wait before a message the Send API failed transiently
// is tried again (until its deadline).
var sendBackoff = jobs.Backoff{Initial: time.Second, Max: time.Second}

// Reply is how Messenger lets a message reach a customer.
type Reply struct {
	// MessagingType is RESPONSE or MESSAGE_TAG.
	MessagingType string
	// Tag is HUMAN_AGENT with MESSAGE_TAG.
	Tag string
}

// ReplyWindow says how a message may go out at now to a customer who last
// wrote at last (nil: never): within Messenger's 24-hour window as a
// RESPONSE, and a person's message (not an automated one) within the
// 7-day window with the HUMAN_AGENT tag. ok is false when it may not go;
// reason then says why.
func ReplyWindow(last *time.Time, now time.Time, automated bool) (r Reply, reason string, ok bool) {
	if last == nil {
		return Reply{}, "the customer has not written yet; Messenger allows no reply", false
	}
	switch since := now.Sub(*last); {
	case since <= StandardWindow:
		return Reply{MessagingType: "RESPONSE"}, "", true
	case automated:
		return Reply{}, "outside Messenger's 24-hour window; automated messages cannot use the HUMAN_AGENT tag", false
	case since <= HumanAgentWindow:
		return Reply{MessagingType: "MESSAGE_TAG", Tag: "HUMAN_AGENT"}, "", true
	default:
		return Reply{}, "outside Messenger's 7-day human agent window (the customer last wrote " + last.Format(time.RFC3339) + ")", false
	}
}

// sendJob is an agent message claimed for sending, with its thread.
type sendJob struct {
	m          AgentMessage
	th         Thread
	reacquired bool
}

// sendQueue is the queue of agent messages waiting for the Send API.
func (s *Service) sendQueue() *jobs.Queue[sendJob] {
	return &jobs.Queue[sendJob]{
		Name: "agent_messages", Table: "agent_messages", Pending: SendWaiting, Lease: leaseFor,
		Due: s.dueSends, Claim: s.claimSend, Attempt: s.attemptSend,
	}
}

// SendDue sends every waiting agent message whose thread handoverd now
// holds — the oldest per thread first, so a conversation's messages keep
// their order — and fails those whose deadline passed. Several processes
// may run it at once: a message is claimed with a lease before it is sent.
func (s *Service) SendDue(ctx context.Context) (sent int, err error) {
	if err := s.failStaleSends(ctx, s.now()); err != nil {
		return 0, err
	}
	return jobs.Drain(ctx, s.runner, s.sends)
}

// failStaleSends fails the waiting messages whose deadline passed, and
// those whose sender stopped while handing them to the Send API (their
// claim lapsed with sending set): Facebook may have them.
func (s *Service) failStaleSends(ctx context.Context, now time.Time) error {
	for _, stale := range []struct{ query, reason string }{
		{`SELECT id FROM agent_messages WHERE status = 'waiting' AND deadline_at <= $1
			AND (lease_until IS NULL OR lease_until < $1) AND sending = 0`,
			fmt.Sprintf("thread control did not arrive within %s", s.hcfg.ControlTimeout)},
		{`SELECT id FROM agent_messages WHERE status = 'waiting' AND sending = 1 AND lease_until < $1`, reasonSenderStopped},
	} {
		ids, err := store.IDs(ctx, s.db.Reader(), stale.query, store.Millis(now))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := s.failQueued(ctx, id, stale.reason); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) dueSends(ctx context.Context, now time.Time) ([]int64, error) {
	return store.IDs(ctx, s.db.Reader(), `SELECT m.id FROM agent_messages m
		JOIN threads t ON t.page_id = m.page_id AND t.psid = m.psid
		WHERE m.status = 'waiting' AND t.owner = 'agent' AND (m.lease_until IS NULL OR m.lease_until < $1)
		AND m.id = (SELECT min(w.id) FROM agent_messages w WHERE w.page_id = m.page_id AND w.psid = m.psid AND w.status = 'waiting')
		ORDER BY m.id LIMIT 50`, store.Millis(now))
}

// claimSend claims message id for sending until until, under its thread's
// lock, so the claim and a hand-back's decision are ordered: once a
// hand-back is decided, nothing more is claimed. A message whose
// intervention closed, or whose thread is being handed back, is cancelled
// instead; one whose earlier sender stopped mid-send fails (never twice).
func (s *Service) claimSend(ctx context.Context, id int64, now, until time.Time) (sendJob, bool, error) {
	var j sendJob
	claimed, cancel := false, ""
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		claimed, cancel = false, ""
		var err error
		if j.m, err = scanAgentMessage(tx.QueryRowContext(ctx, `SELECT `+agentMessageColumns+` FROM agent_messages WHERE id = $1`, id)); err != nil {
			return err
		}
		if j.th, err = lockExistingThread(ctx, tx, j.m.PageID, j.m.PSID); err != nil || j.th.Owner != OwnerAgent {
			return err
		}
		if cancel, err = s.sendCancelled(ctx, tx, j.m); err != nil || cancel != "" {
			if err == nil {
				// Another sender may have claimed it since it was listed:
				// that one finishes it (the hand-back waits for it).
				var ok bool
				if ok, err = s.failQueuedInTx(ctx, tx, id, cancel); !ok {
					cancel = ""
				}
			}
			return err
		}
		var sending, reacquired int
		if err := tx.QueryRowContext(ctx, `SELECT sending, reacquired FROM agent_messages WHERE id = $1`, id).Scan(&sending, &reacquired); err != nil {
			return err
		}
		j.reacquired = reacquired == 1
		if claimed, err = tx.Lease(ctx, "agent_messages", SendWaiting, "", id, until, now, false); err != nil || !claimed {
			return err
		}
		if sending == 1 {
			// The claim of a sender that stopped while handing it to the
			// Send API lapsed: Facebook may have it. Never twice.
			claimed, cancel = false, reasonSenderStopped
			_, err := s.failInTx(ctx, tx, id, reasonSenderStopped)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE agent_messages SET sending = 1 WHERE id = $1`, id)
		return err
	})
	if err == nil && cancel != "" {
		s.failed(id, cancel)
	}
	return j, claimed && err == nil, err
}

// sendCancelled says why a waiting message must not go (its thread is
// being handed back, its intervention closed), "" when it may.
func (s *Service) sendCancelled(ctx context.Context, tx *store.Tx, m AgentMessage) (string, error) {
	back, err := handBackInFlight(ctx, tx, m.PageID, m.PSID)
	if err != nil || back {
		return cancelHandedBack, err
	}
	open, err := interventionOpen(ctx, tx, m.InterventionID)
	if err != nil || open {
		return "", err
	}
	return cancelClosed, nil
}

// sendOutcome is what a Send API answer means for the message.
type sendOutcome int

const (
	sendDone       sendOutcome = iota // Facebook took it
	sendReacquire                     // refused as not the owner: our state was stale; check, act again, once
	sendNotOwner                      // refused as not the owner even after re-acquiring control
	sendUnanswered                    // no answer: it may have been delivered, so never again
	sendRetry                         // a transient failure before the deadline: again shortly
	sendRefused                       // refused for good
)

// judgeSend is what the Send API's answer gerr means at now for a message
// due by deadline that has (or has not) re-acquired control once.
func judgeSend(gerr error, reacquired bool, now, deadline time.Time) sendOutcome {
	switch {
	case gerr == nil:
		return sendDone
	case messenger.IsClass(gerr, messenger.ClassNotOwner) && !reacquired:
		return sendReacquire
	case messenger.IsClass(gerr, messenger.ClassNotOwner):
		return sendNotOwner
	case messenger.IsUnanswered(gerr):
		return sendUnanswered
	case isRetryable(gerr) && now.Before(deadline):
		return sendRetry
	default:
		return sendRefused
	}
}

// sendRequest is the Send API request for a claimed message at now, or
// why it cannot go.
func sendRequest(j sendJob, now time.Time) (messenger.SendRequest, string) {
	req := messenger.SendRequest{PSID: j.m.PSID}
	if err := json.Unmarshal(j.m.Message, &req.Message); err != nil || req.Message == nil {
		return req, "message is not a JSON object"
	}
	if _, ok := req.Message["metadata"]; !ok {
		req.Message["metadata"] = agentMessageMetadata(j.m.ID)
	}
	reply, reason, ok := ReplyWindow(j.th.LastCustomerAt, now, j.m.Sender.Automated())
	req.MessagingType, req.Tag = reply.MessagingType, reply.Tag
	if !ok {
		return req, reason
	}
	return req, ""
}

// attemptSend sends one claimed message and records what became of it.
func (s *Service) attemptSend(ctx context.Context, j sendJob, now time.Time) (bool, error) {
	m := j.m
	req, why := sendRequest(j, now)
	if why != "" {
		return false, errors.Join(errors.New(why), s.failAgentMessage(ctx, m.ID, why))
	}
	res, gerr := s.graph.Send(ctx, s.pageRef(m.PageID), req)
	switch judgeSend(gerr, j.reacquired, now, m.DeadlineAt) {
	case sendDone:
		if err := s.markSent(ctx, m, res.MessageID, req.MessagingType); err != nil {
			return true, err
		}
		return false, nil
	case sendReacquire:
		return true, errors.Join(gerr, s.reacquireFor(ctx, m, now))
	case sendNotOwner:
		if err := s.raiseDoubt(ctx, m.PageID, m.PSID, doubtSendRefused, now); err != nil {
			return true, err
		}
		return false, s.failSend(ctx, m.ID, "another app controls the thread (Facebook 10/2018300) even after re-acquiring control")
	case sendUnanswered:
		return false, s.failSend(ctx, m.ID, "Facebook did not answer the send (it may have been delivered); not sent again, so the customer never gets it twice")
	case sendRetry: // the runner logs it, paced, with what the error says
		gerr = fmt.Errorf("agent message not sent yet to page %s psid %s: the Send API failed; retrying until %s: %w",
			m.PageID, m.PSID, m.DeadlineAt.UTC().Format(time.RFC3339), gerr)
		return true, errors.Join(gerr, s.db.InTx(ctx, func(tx *store.Tx) error { // try again on a later tick
			_, err := tx.ExecContext(ctx, `UPDATE agent_messages SET lease_until = $2, sending = 0 WHERE id = $1`, m.ID, store.Millis(s.now().Add(sendBackoff.Delay(1)))) // from now: the send may have taken long
			return err
		}))
	default:
		return false, s.failSend(ctx, m.ID, apperr.As(graphFailure(messenger.OpSend, gerr)).Message)
	}
}

// failSend fails a claimed message with reason and returns the failure
// (or the failure to record it).
func (s *Service) failSend(ctx context.Context, id int64, reason string) error {
	return errors.Join(errors.New(reason), s.failAgentMessage(ctx, id, reason))
}

// reacquireFor corrects stale state after the Send API refused m because
// another app controls the thread: it lets go of m's claim (from here on
// m is only queued: another sender may claim it, a hand-back may settle
// it), asks Graph who owns the thread and, unless the agents do, asks for
// control again. A closed intervention never asks for control back.
func (s *Service) reacquireFor(ctx context.Context, m AgentMessage, now time.Time) error {
	if err := s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE agent_messages SET reacquired = 1, lease_until = NULL, sending = 0 WHERE id = $1`, m.ID)
		return err
	}); err != nil {
		return err
	}
	if open, err := interventionOpen(ctx, s.db.Reader(), m.InterventionID); err != nil || !open {
		if err != nil {
			return err
		}
		return s.failQueued(ctx, m.ID, cancelClosed)
	}
	owner, err := s.Reconcile(ctx, m.PageID, m.PSID)
	if err != nil {
		if derr := s.raiseDoubt(ctx, m.PageID, m.PSID, doubtSendRefused, now); derr != nil {
			return derr
		}
		return s.failQueued(ctx, m.ID, "Facebook says another app controls the thread and thread_owner failed: "+apperr.As(err).Message)
	}
	if owner != OwnerAgent {
		if _, err := s.acquireFor(ctx, m, "another app controls the thread and control could not be acquired: "); err != nil {
			return err
		}
	}
	s.Kick()
	return nil
}

// markSent records a message Facebook accepted — unless its echo got
// there first (settleEchoed): then only the messaging type is added.
func (s *Service) markSent(ctx context.Context, m AgentMessage, mid, messagingType string) error {
	now := s.now()
	recorded := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE agent_messages SET status = 'sent', mid = $2, messaging_type = $3, finished_at = $4, lease_until = NULL, sending = 0, error = ''
			WHERE id = $1 AND status = 'waiting'`, m.ID, mid, messagingType, store.Millis(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if recorded = n == 1; err != nil || !recorded {
			if err == nil {
				_, err = tx.ExecContext(ctx, `UPDATE agent_messages SET messaging_type = $2 WHERE id = $1 AND messaging_type = ''`, m.ID, messagingType)
			}
			return err
		}
		if err := touchIntervention(ctx, tx, m.PageID, m.PSID, now); err != nil {
			return err
		}
		return s.observeAgentMessage(ctx, tx, m.ID)
	})
	if err == nil && recorded {
		s.metrics.AgentSends.WithLabelValues(SendSent).Inc()
	}
	return err
}

// agentMessageMetadata is the metadata a message goes out with when its
// sender set none.
func agentMessageMetadata(id int64) string {
	return "handoverd:agent_message:" + strconv.FormatInt(id, 10)
}

// settleEchoed marks sent, in the ingest transaction (under the thread's
// lock), the agent message an echo of handoverd's own send shows
// delivered while no sender has recorded it: a process killed between
// Facebook's answer and the record would otherwise leave the message in
// flight until its claim lapsed, then failed though the customer has it.
// It reports whether it marked one.
func (s *Service) settleEchoed(ctx context.Context, tx *store.Tx, ev messenger.Event) (bool, error) {
	if ev.Kind != messenger.KindEcho || ev.Message == nil || ev.Message.AppID != s.appID || ev.Message.Metadata == "" {
		return false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, message FROM agent_messages WHERE page_id = $1 AND psid = $2 AND status = 'waiting' AND sending = 1
		ORDER BY id`, ev.PageID, ev.PSID)
	if err != nil {
		return false, err
	}
	var match int64
	for rows.Next() {
		var id int64
		var raw string
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return false, err
		}
		var msg struct {
			Text     string `json:"text"`
			Metadata string `json:"metadata"`
		}
		_ = json.Unmarshal([]byte(raw), &msg)
		if msg.Metadata == "" {
			msg.Metadata = agentMessageMetadata(id)
		}
		if match == 0 && msg.Metadata == ev.Message.Metadata && msg.Text == ev.Message.Text {
			match = id
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || match == 0 {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE agent_messages SET status = 'sent', mid = $2, finished_at = $3, lease_until = NULL, sending = 0, error = ''
		WHERE id = $1 AND status = 'waiting'`, match, ev.Message.MID, store.Millis(s.now()))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := touchIntervention(ctx, tx, ev.PageID, ev.PSID, s.now()); err != nil {
		return false, err
	}
	return true, s.observeAgentMessage(ctx, tx, match)
}

func isRetryable(err error) bool {
	var ge *messenger.GraphError
	return errors.As(err, &ge) && ge.Retryable()
}

// Run does the background work until ctx ends: sending agent messages as
// control arrives, expiring offers and delivering bot events (woken by Kick
// or every WorkEvery), and every sweepEvery moving expired threads to idle
// and closing idle interventions.
func (s *Service) Run(ctx context.Context, sweepEvery time.Duration) {
	sweep := s.clock.NewTicker(sweepEvery)
	defer sweep.Stop()
	s.runner.Run(ctx, s.hcfg.WorkEvery,
		jobs.Step{Do: func(ctx context.Context) (int, error) {
			select {
			case <-sweep.C():
				s.sweep(ctx)
			default:
			}
			return 0, nil
		}},
		jobs.Step{Do: s.SendDue, Failed: "sending agent messages failed"},
		jobs.Step{Do: s.LookupTakers, Failed: "thread_owner lookups failed"},
		jobs.Step{Do: s.ExpireOffers, Failed: "expiring offers failed"},
		jobs.Step{Do: s.FailOverdueHandoffs, Failed: "failing overdue handovers failed"},
		jobs.Step{Do: s.DeliverBotEvents, Failed: "bot event deliveries failed"})
}

// sweep moves expired threads to idle and closes idle interventions.
func (s *Service) sweep(ctx context.Context) {
	if n, err := s.ExpireIdle(ctx); err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("idle sweep failed")
	} else if n > 0 {
		s.log.Info().Int("threads", n).Msg("threads moved to idle")
	}
	if n, err := s.CloseIdleInterventions(ctx); err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("closing idle interventions failed")
	} else if n > 0 {
		s.log.Info().Int("interventions", n).Msg("idle interventions closed")
	}
}

// observeAgentMessage tells the observer an agent message was sent or failed.
func (s *Service) observeAgentMessage(ctx context.Context, tx *store.Tx, id int64) error {
	if len(s.observers) == 0 {
		return nil
	}
	m, err := scanAgentMessage(tx.QueryRowContext(ctx, `SELECT `+agentMessageColumns+` FROM agent_messages WHERE id = $1`, id))
	if err != nil {
		return err
	}
	th, err := scanThread(tx.QueryRowContext(ctx, `SELECT `+threadColumns+` FROM threads WHERE page_id = $1 AND psid = $2`, m.PageID, m.PSID))
	if err != nil {
		return err
	}
	return s.observe(ctx, tx, Change{Thread: th, AgentMessage: &m})
}
