package inbox

import (
	"context"
)

// LiveEvent is one event of the account's ordered log.
type LiveEvent struct {
	// ID is the event's seq: events are streamed in its order, and clients
	// resume after it (Last-Event-ID).
	ID int64
	// Event is the event's name.
	Event string
	// Payload is its JSON.
	Payload string
}

// EventsAfter returns up to limit of the account's events after seq after.
func (s *Service) EventsAfter(ctx context.Context, accountID, after int64, limit int) ([]LiveEvent, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT e.seq, `+storedEventColumns+` FROM inbox_events e
		WHERE e.account_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3`, accountID, after, limit)
	if err != nil {
		return nil, err
	}
	var out []LiveEvent
	var stored []storedEvent
	for rows.Next() {
		var e LiveEvent
		var st storedEvent
		if err := rows.Scan(scanStoredEvent([]any{&e.ID}, &st)...); err != nil {
			rows.Close()
			return nil, err
		}
		e.Event = st.event
		out = append(out, e)
		stored = append(stored, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Payload, err = s.render(ctx, s.db.Reader(), stored[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LastEventID returns the account's newest event seq (0 when none).
func (s *Service) LastEventID(ctx context.Context, accountID int64) (int64, error) {
	var id int64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM inbox_events WHERE account_id = $1`, accountID).Scan(&id)
	return id, err
}

// Stopping is closed when the process starts draining (Drain): live
// streams end on it.
func (s *Service) Stopping() <-chan struct{} { return s.stopping }
