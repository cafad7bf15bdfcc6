package relaybot

import (
	"context"
	"time"

	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/store"
)

// relayLease bounds how long one process holds a call or an action it is
// attempting.
const relayLease = time.Minute

// relayJob is a relay_calls or relay_actions row leased for an attempt,
// with its session.
type relayJob struct {
	id int64
	ss session
	// body is the call's packet, or the action's event.
	body string
	// attempts counts the call's attempts, this one included.
	attempts int
}

// queues returns the two durable queues of the relay bots: webhook calls
// to the bots (delivered by DeliverDue) and the bots' events to run (RunDue),
// each in order per session. A chain of actions that fall due at once is
// followed, boundedly, in one pass.
func (s *Service) queues() (calls, actions *jobs.Queue[relayJob]) {
	calls = &jobs.Queue[relayJob]{
		Name: "relay_calls", Table: "relay_calls", Pending: "pending", Lease: relayLease, CountAttempts: true, HandBack: true,
		DueAt: "next_attempt_at", Per: []string{"session_id"}, Limit: 50, Attempt: s.callOne,
		Load: loadRelayJob(`SELECT session_id, packet, attempts FROM relay_calls WHERE id = $1`),
	}
	actions = &jobs.Queue[relayJob]{
		Name: "relay_actions", Table: "relay_actions", Pending: "pending", Lease: relayLease, HandBack: true, Rounds: 20,
		DueAt: "due_at", Per: []string{"session_id"}, Limit: 50, Attempt: s.runOne,
		Load: loadRelayJob(`SELECT session_id, event, 0 FROM relay_actions WHERE id = $1`),
	}
	return calls, actions
}

// loadRelayJob reads a leased row with query (its session's id, its body
// and its attempts) and the row's session.
func loadRelayJob(query string) func(ctx context.Context, tx *store.Tx, id int64) (relayJob, error) {
	return func(ctx context.Context, tx *store.Tx, id int64) (relayJob, error) {
		j := relayJob{id: id}
		var sid int64
		if err := tx.QueryRowContext(ctx, query, id).Scan(&sid, &j.body, &j.attempts); err != nil {
			return j, err
		}
		var err error
		j.ss, err = scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM relay_sessions WHERE id = $1`, sid))
		return j, err
	}
}
