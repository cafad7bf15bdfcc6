package relaybot

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// The Service runs the Userlike adapter's events endpoint.
var _ userlike.Runtime = (*Service)(nil)

// BotForToken returns the name of the bot whose API token is token,
// comparing with every bot in constant time; an empty or unknown token is
// an Unauthorized error naming the SECURITY-TOKEN header.
func (s *Service) BotForToken(token string) (string, error) {
	got := sha256.Sum256([]byte(token))
	found := ""
	for _, b := range s.bots {
		if b.APIToken == "" {
			continue
		}
		want := sha256.Sum256([]byte(b.APIToken.Reveal()))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			found = b.Name
		}
	}
	if found == "" || token == "" {
		return "", &apperr.Error{Code: apperr.Unauthorized, Field: "SECURITY-TOKEN", Message: "missing or unknown SECURITY-TOKEN"}
	}
	return found, nil
}

// PostEvents stores the events bot posted for its sessions, as actions run
// in order (a delay holds back the ones after it), in one transaction: all
// of them or, on any error, none. Each event's cid must name an active
// session of bot (Invalid naming cid when it is not the bot's, Conflict
// when it is no longer active), and no session may post more than 20
// times a minute (RateLimited).
func (s *Service) PostEvents(ctx context.Context, bot string, events []userlike.Event) error {
	byCID := map[string][]userlike.Event{}
	var order []string
	for _, ev := range events {
		if _, seen := byCID[ev.CID]; !seen {
			order = append(order, ev.CID)
		}
		byCID[ev.CID] = append(byCID[ev.CID], ev)
	}
	for _, cid := range order {
		if !s.limiter.allow(cid, s.now()) {
			return apperr.New(apperr.RateLimited, "more than %d requests a minute for cid %s", s.limiter.n, cid)
		}
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, cid := range order {
			ss, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM relay_sessions WHERE cid = $1`, cid))
			if errors.Is(err, sql.ErrNoRows) || (err == nil && ss.bot != bot) {
				return apperr.Field("cid", "no session %s for this bot", cid)
			}
			if err != nil {
				return err
			}
			if ss.status != SessionActive {
				return apperr.New(apperr.Conflict, "session %s is %s", cid, ss.status)
			}
			if err := s.acceptEvents(ctx, tx, ss, byCID[cid]); err != nil {
				return err
			}
		}
		return nil
	})
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
