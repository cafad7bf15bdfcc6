package chatwoot_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// logged is the account's events after seq after as the inbox keeps them:
// "id event" each. On PostgreSQL events are numbered after they commit,
// by one sequencer at a time (an open stream may be it): logged waits
// until every event has its number.
func (e *env) logged(account, after int64) []string {
	e.t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := e.in.Sequence(ctx); err != nil {
			e.t.Fatal(err)
		}
		var unnumbered int
		if err := e.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM inbox_events WHERE seq IS NULL`).Scan(&unnumbered); err != nil {
			e.t.Fatal(err)
		}
		if unnumbered == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d events never got a number", unnumbered)
		}
	}
	evs, err := e.in.EventsAfter(ctx, account, after, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []string{}
	for _, ev := range evs {
		out = append(out, strconv.FormatInt(ev.ID, 10)+" "+ev.Event)
	}
	return out
}

// stream is an open live-updates stream.
type stream struct {
	t     *testing.T
	resp  *http.Response
	lines *bufio.Scanner
}

// open starts a stream of account 1's events, after lastID when not "".
func (e *env) open(ctx context.Context, lastID string) *stream {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+path("1/events"), nil)
	req.Header.Set("api_access_token", aliceToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	if d := cmp.Diff([]string{"200", "text/event-stream", "no-cache"},
		[]string{strconv.Itoa(resp.StatusCode), resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control")}); d != "" {
		e.t.Fatalf("stream answer (-want +got):\n%s", d)
	}
	s := &stream{t: e.t, resp: resp, lines: bufio.NewScanner(resp.Body)}
	s.lines.Buffer(make([]byte, 1<<20), 1<<20)
	return s
}

// next reads n events: "id event" each (data must be JSON).
func (s *stream) next(n int) []string {
	s.t.Helper()
	out := []string{}
	var id, event string
	for len(out) < n && s.lines.Scan() {
		l := s.lines.Text()
		switch {
		case strings.HasPrefix(l, "id: "):
			id = l[4:]
		case strings.HasPrefix(l, "event: "):
			event = l[7:]
		case strings.HasPrefix(l, "data: "):
			var v map[string]any
			if err := json.Unmarshal([]byte(l[6:]), &v); err != nil {
				s.t.Errorf("event data is not JSON: %s", l)
			}
			out = append(out, id+" "+event)
		}
	}
	return out
}

// TestLiveEvents: the Server-Sent Events stream sends the account's
// events (only its own) from after Last-Event-ID, in order, then those
// that happen while it is open; without Last-Event-ID it starts from now;
// it ends when the process drains.
func TestLiveEvents(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.customer(pageID, "psid-l", "one")
		e.customer(otherPage, "psid-x", "another account")
		all := e.logged(1, 0)
		if len(all) < 2 {
			t.Fatalf("account 1 has too few events to stream: %v", all)
		}
		first := strings.Fields(all[0])[0]
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := e.open(ctx, first)
		if d := cmp.Diff(all[1:], s.next(len(all)-1)); d != "" {
			t.Errorf("stream after event %s (-want +got):\n%s", first, d)
		}
		e.customer(pageID, "psid-l", "two")
		last, _ := strconv.ParseInt(strings.Fields(all[len(all)-1])[0], 10, 64)
		more := e.logged(1, last)
		if len(more) == 0 {
			t.Fatal("the second message made no event")
		}
		if d := cmp.Diff(more, s.next(len(more))); d != "" {
			t.Errorf("stream while open (-want +got):\n%s", d)
		}

		fresh := e.open(ctx, "")
		last, _ = strconv.ParseInt(strings.Fields(more[len(more)-1])[0], 10, 64)
		e.customer(pageID, "psid-l", "three")
		now := e.logged(1, last)
		if d := cmp.Diff(now, fresh.next(len(now))); d != "" {
			t.Errorf("a stream without Last-Event-ID (-want +got):\n%s", d)
		}
		e.in.Drain()
		if got := fresh.next(1); len(got) != 0 {
			t.Errorf("after Drain the stream sent %v", got)
		}
		if err := fresh.lines.Err(); err != nil {
			t.Errorf("the stream did not end cleanly on Drain: %v", err)
		}
	})
}
