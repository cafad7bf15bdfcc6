package inbox

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// LexerAPI serves the Lexer-compatible Chatbot User API: a bot claims (and
// closes) the customer messages it handles and echoes the ones it sends.
//
// Answers follow Lexer's bodies exactly, with two deliberate differences in
// status: a missing or invalid field is 422 (Lexer: 500) and malformed JSON
// is 400 with a JSON body (Lexer: 500 with an HTML page).
type LexerAPI struct {
	// Service does the work.
	Service *Service
	// Users authenticates bots (Auth-Api-Token).
	Users *auth.Users
	// RatePerSecond and Burst limit calls per token.
	RatePerSecond float64
	Burst         int
	// Clock times the rate limit (nil: the system clock).
	Clock clock.Clock

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// Routes registers the endpoints.
func (a *LexerAPI) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodPost, "/api/clients/{client_id}/bots/objects/claim", a.handler(KindClaim))
	r.HandleFunc(http.MethodPost, "/api/clients/{client_id}/bots/objects/echo", a.handler(KindEcho))
}

type lexerError struct {
	Status string `json:"status,omitempty"`
	Error  string `json:"error"`
}

func (a *LexerAPI) handler(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, result := a.serve(w, r, kind)
		a.Service.metrics.Claims.WithLabelValues(kind, result).Inc()
		httpapi.WriteJSON(w, status, body)
	}
}

// serve returns the status, body and metrics result of one call.
func (a *LexerAPI) serve(w http.ResponseWriter, r *http.Request, kind string) (int, any, string) {
	p, err := a.Users.Require(r.Header.Get("Auth-Api-Token"), config.RoleBot)
	if err != nil {
		e := apperr.As(err)
		return httpapi.Status(e), lexerError{Error: e.Message}, "unauthorized"
	}
	client, err := strconv.ParseInt(httpapi.Var(r, "client_id"), 10, 64)
	if err != nil || client != p.ClientID {
		return http.StatusForbidden, lexerError{Error: "this token may not act for client " + httpapi.Var(r, "client_id")}, "unauthorized"
	}
	if lim, now := a.limiter(p.Name), clock.Or(a.Clock).Now(); !lim.AllowN(now, 1) {
		wait := lim.ReserveN(now, 1)
		delay := wait.DelayFrom(now)
		wait.CancelAt(now)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(delay, time.Second).Seconds()))))
		return http.StatusTooManyRequests, lexerError{Error: "rate limit exceeded"}, "rate_limited"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return http.StatusRequestEntityTooLarge, lexerError{Error: "request body is over 65536 bytes"}, "invalid"
	}
	obj, err := ParseLexerObject(kind, body)
	if err != nil {
		e := apperr.As(err)
		return httpapi.Status(e), lexerError{Error: e.Message}, "invalid"
	}
	objectID, published, accountID := obj.ObjectID, obj.PublishedAt, obj.AccountID
	page, ok := a.Service.pages[accountID]
	if !ok || page.ClientID != p.ClientID {
		return http.StatusBadRequest, lexerError{Status: "400 Invalid Account", Error: "Cannot find an integrated account: " + accountID}, "invalid"
	}
	err = a.Service.RecordBotObject(r.Context(), BotObject{Kind: kind, PageID: page.ID, ObjectID: objectID, PublishedAt: published, Bot: p.Name})
	if err != nil {
		e := apperr.As(err)
		httpapi.LogError(r, e, httpapi.Status(e))
		return httpapi.Status(e), lexerError{Error: e.Message}, "error"
	}
	return http.StatusCreated, map[string]string{"status": "ok"}, "accepted"
}

// LexerObject is a parsed claim or echo body.
type LexerObject struct {
	// ObjectID is object_id (the message's mid).
	ObjectID string
	// PublishedAt is published_at.
	PublishedAt time.Time
	// AccountID is account_id (the Page).
	AccountID string
}

// ParseLexerObject reads and validates a claim (kind KindClaim) or echo
// body. Malformed JSON is Invalid (400); a missing or wrong field is
// Unprocessable (422) with the seed's message.
func ParseLexerObject(kind string, body []byte) (LexerObject, error) {
	fields, err := decodeLexer(body)
	if err != nil {
		return LexerObject{}, err
	}
	required := []string{"object_id", "published_at", "source", "account_id"}
	if kind == KindClaim {
		required = []string{"object_id", "published_at", "source", "state", "account_id"}
	}
	bad := func(msg string) error { return apperr.New(apperr.Unprocessable, "%s", msg) }
	for _, f := range required {
		if v, ok := fields[f]; !ok || v == nil || v == "" {
			return LexerObject{}, bad(f + " is missing")
		}
	}
	objectID, ok := fields["object_id"].(string)
	if !ok {
		return LexerObject{}, bad("object_id does not have a valid value")
	}
	published, ok := ParsePublishedAt(fields["published_at"])
	if !ok {
		return LexerObject{}, bad("published_at does not have a valid value")
	}
	if fields["source"] != "facebook" {
		return LexerObject{}, bad("source does not have a valid value")
	}
	if kind == KindClaim && fields["state"] != "closed" {
		return LexerObject{}, bad("state does not have a valid value")
	}
	return LexerObject{ObjectID: objectID, PublishedAt: published, AccountID: idString(fields["account_id"])}, nil
}

// decodeLexer reads the JSON object body, keeping numbers exact.
func decodeLexer(body []byte) (map[string]any, error) {
	var raw json.RawMessage
	if err := httpapi.DecodeBody(body, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, apperr.Field("body", "must be a JSON object")
	}
	for k, v := range fields {
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil && k == "published_at" {
				fields[k] = f
			} else {
				fields[k] = n.String()
			}
		}
	}
	return fields, nil
}

func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func (a *LexerAPI) limiter(name string) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.limiters == nil {
		a.limiters = map[string]*rate.Limiter{}
	}
	l, ok := a.limiters[name]
	if !ok {
		r, b := a.RatePerSecond, a.Burst
		if r <= 0 {
			r = 20
		}
		if b <= 0 {
			b = 40
		}
		l = rate.NewLimiter(rate.Limit(r), b)
		a.limiters[name] = l
	}
	return l
}
