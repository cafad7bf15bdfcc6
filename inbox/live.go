package inbox

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
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

// livePoll is how often the stream looks for new events; livePing how
// often it sends a comment to keep proxies from closing an idle stream.
const (
	livePoll = 200 * time.Millisecond
	livePing = 15 * time.Second
)

// events streams the account's events as Server-Sent Events: from after
// Last-Event-ID (or ?since=) when given, else from now on.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	c, err := a.authenticate(w, r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	last := int64(-1)
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since")} {
		if v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				httpapi.WriteError(w, r, apperr.Field("Last-Event-ID", "must be an event id"))
				return
			}
			last = n
			break
		}
	}
	if last < 0 {
		if last, err = a.Service.LastEventID(ctx, c.accountID); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	_ = rc.Flush()
	poll, ping := time.NewTicker(livePoll), time.NewTicker(livePing)
	defer poll.Stop()
	defer ping.Stop()
	for {
		if _, err := a.Service.Sequence(ctx); err != nil {
			return
		}
		evs, err := a.Service.EventsAfter(ctx, c.accountID, last, 200)
		if err != nil {
			return
		}
		for _, e := range evs {
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Event, e.Payload)
			last = e.ID
		}
		if len(evs) > 0 {
			if rc.Flush() != nil {
				return
			}
			if len(evs) == 200 {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.Service.stopping:
			return
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-poll.C:
		}
	}
}
