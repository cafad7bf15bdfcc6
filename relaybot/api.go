package relaybot

import (
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// API serves the bots' event endpoint: POST /api/chatbot/v1/events (also
// unversioned), authenticated by the bot's SECURITY-TOKEN header.
type API struct {
	// Service runs the events.
	Service *Service
}

// Routes registers the endpoints.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodPost, "/api/chatbot/v1/events", a.events)
	r.HandleFunc(http.MethodPost, "/api/chatbot/events", a.events)
}

// botForToken finds the bot whose api_token is token, comparing with every
// bot in constant time.
func (s *Service) botForToken(token string) (userlike.Bot, bool) {
	got := sha256.Sum256([]byte(token))
	var found userlike.Bot
	ok := false
	for _, b := range s.bots {
		if b.APIToken == "" {
			continue
		}
		want := sha256.Sum256([]byte(b.APIToken.Reveal()))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			found, ok = b, true
		}
	}
	return found, ok && token != ""
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	bot, ok := a.Service.botForToken(r.Header.Get("SECURITY-TOKEN"))
	if !ok {
		httpapi.WriteError(w, r, &apperr.Error{Code: apperr.Unauthorized, Field: "SECURITY-TOKEN", Message: "missing or unknown SECURITY-TOKEN"})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		httpapi.WriteError(w, r, apperr.New(apperr.TooLarge, "request body is over 256 KiB"))
		return
	}
	events, err := userlike.ParseEvents(raw)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	byCID := map[string][]userlike.Event{}
	var order []string
	for _, ev := range events {
		if _, seen := byCID[ev.CID]; !seen {
			order = append(order, ev.CID)
		}
		byCID[ev.CID] = append(byCID[ev.CID], ev)
	}
	for _, cid := range order {
		if !a.Service.limiter.allow(cid, a.Service.now()) {
			w.Header().Set("Retry-After", strconv.Itoa(60))
			httpapi.WriteError(w, r, apperr.New(apperr.RateLimited, "more than 20 requests a minute for cid %s", cid))
			return
		}
	}
	err = a.Service.db.InTx(ctx, func(tx *store.Tx) error {
		for _, cid := range order {
			ss, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM relay_sessions WHERE cid = $1`, cid))
			if errors.Is(err, sql.ErrNoRows) || (err == nil && ss.bot != bot.Name) {
				return apperr.Field("cid", "no session %s for this bot", cid)
			}
			if err != nil {
				return err
			}
			if ss.status != SessionActive {
				return apperr.New(apperr.Conflict, "session %s is %s", cid, ss.status)
			}
			if err := a.Service.acceptEvents(ctx, tx, ss, byCID[cid]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// cidLimiter allows n requests per window per cid.
type cidLimiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	seen   map[string][]time.Time
}

func newCIDLimiter(n int, window time.Duration) *cidLimiter {
	return &cidLimiter{n: n, window: window, seen: map[string][]time.Time{}}
}

func (l *cidLimiter) allow(cid string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.seen[cid][:0]
	for _, t := range l.seen[cid] {
		if now.Sub(t) < l.window {
			ts = append(ts, t)
		}
	}
	if len(ts) >= l.n {
		l.seen[cid] = ts
		return false
	}
	l.seen[cid] = append(ts, now)
	if len(l.seen) > 10000 { // forget idle sessions
		for k, v := range l.seen {
			if len(v) == 0 || now.Sub(v[len(v)-1]) >= l.window {
				delete(l.seen, k)
			}
		}
	}
	return true
}
