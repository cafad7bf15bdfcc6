package chatwoot

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
)

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
	clk := a.Service.Clock()
	poll, ping := clk.NewTicker(livePoll), clk.NewTicker(livePing)
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
		case <-a.Service.Stopping():
			return
		case <-ping.C():
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-poll.C():
		}
	}
}
