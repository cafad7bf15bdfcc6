// Package lexer is the Lexer compatible Chatbot User API: a bot claims
// (and closes) the customer messages it handles and echoes the ones it
// sends, so the agents' inbox shows neither as work to do.
//
// Answers follow Lexer's bodies exactly ({"status":"ok"}, {"error":...},
// {"status":"400 Invalid Account","error":...}), their statuses coming from
// the one apperr table in httpapi. Two differ from Lexer on purpose: a
// missing or invalid field is 422 (Lexer: 500) and malformed JSON is 400
// with a JSON body (Lexer: 500 with an HTML page).
package lexer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/metrics"
)

// MaxBody bounds a claim or echo body, in bytes.
const MaxBody = 64 << 10

// API serves POST /api/clients/{client_id}/bots/objects/claim and .../echo.
type API struct {
	// Service records the claims and echoes; its clock times the rate limit.
	Service *inbox.Service
	// Users authenticates bots (Auth-Api-Token).
	Users *auth.Users
	// Metrics counts the calls (handoverd_claims_total); nil counts nothing.
	Metrics *metrics.Metrics
	// RatePerSecond and Burst limit calls per token (defaults 20 and 40).
	RatePerSecond float64
	// Burst is the number of calls a token may make at once.
	Burst int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// Routes registers the endpoints.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFuncWith(http.MethodPost, "/api/clients/{client_id}/bots/objects/claim", a.handler(inbox.KindClaim), writeError)
	r.HandleFuncWith(http.MethodPost, "/api/clients/{client_id}/bots/objects/echo", a.handler(inbox.KindEcho), writeError)
}

// Error is Lexer's error body.
type Error struct {
	// Status is set for an account that is not integrated (not a Page of
	// the bot's client): "400 Invalid Account".
	Status string `json:"status,omitempty"`
	// Error says what is wrong.
	Error string `json:"error"`
}

func (a *API) handler(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := a.serve(w, r, kind)
		a.count(kind, err)
		if err != nil {
			writeError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusCreated, map[string]string{"status": "ok"})
	}
}

// writeError answers err in Lexer's error body, with the status of the one
// apperr table (the router uses it too, for the input it refuses).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, status := httpapi.Failure(r, err)
	body := Error{Error: e.Message}
	if errors.Is(err, inbox.ErrUnknownAccount) {
		body.Status = "400 Invalid Account"
	}
	httpapi.WriteJSON(w, status, body)
}

// serve authenticates, limits, parses and records one call.
func (a *API) serve(w http.ResponseWriter, r *http.Request, kind string) error {
	p, err := a.Users.Require(r.Header.Get("Auth-Api-Token"), config.RoleBot)
	if err != nil {
		return err
	}
	client, err := strconv.ParseInt(httpapi.Var(r, "client_id"), 10, 64)
	if err != nil || client != p.ClientID {
		return apperr.New(apperr.Forbidden, "this token may not act for client %s", httpapi.Var(r, "client_id"))
	}
	if lim, now := a.limiter(p.Name), a.Service.Clock().Now(); !lim.AllowN(now, 1) {
		wait := lim.ReserveN(now, 1)
		delay := wait.DelayFrom(now)
		wait.CancelAt(now)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(delay, time.Second).Seconds()))))
		return apperr.New(apperr.RateLimited, "rate limit exceeded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.New(apperr.TooLarge, "request body is over %d bytes", MaxBody)
		}
		return apperr.Wrap(err, apperr.Invalid, "request body could not be read")
	}
	obj, err := ParseObject(kind, body)
	if err != nil {
		return err
	}
	return a.Service.RecordBotObjectFor(r.Context(), p, inbox.BotObject{Kind: kind, PageID: obj.AccountID, ObjectID: obj.ObjectID, PublishedAt: obj.PublishedAt})
}

// count records one call by kind and result.
func (a *API) count(kind string, err error) {
	if a.Metrics == nil {
		return
	}
	result := "accepted"
	switch apperr.CodeOf(err) {
	case "":
	case apperr.Unauthorized, apperr.Forbidden:
		result = "unauthorized"
	case apperr.RateLimited:
		result = "rate_limited"
	case apperr.Invalid, apperr.Unprocessable, apperr.TooLarge:
		result = "invalid"
	default:
		result = "error"
	}
	a.Metrics.Claims.WithLabelValues(kind, result).Inc()
}

// Object is a parsed claim or echo body.
type Object struct {
	// ObjectID is object_id (the message's mid).
	ObjectID string
	// PublishedAt is published_at.
	PublishedAt time.Time
	// AccountID is account_id (the Page).
	AccountID string
}

// ParseObject reads and validates a claim (kind inbox.KindClaim) or echo
// body. Malformed JSON is Invalid (400); a missing or wrong field is
// Unprocessable (422) naming the field, with Lexer's message.
func ParseObject(kind string, body []byte) (Object, error) {
	fields, err := decode(body)
	if err != nil {
		return Object{}, err
	}
	required := []string{"object_id", "published_at", "source", "account_id"}
	if kind == inbox.KindClaim {
		required = []string{"object_id", "published_at", "source", "state", "account_id"}
	}
	bad := func(field, msg string) error {
		return &apperr.Error{Code: apperr.Unprocessable, Field: field, Message: field + " " + msg}
	}
	for _, f := range required {
		if v, ok := fields[f]; !ok || v == nil || v == "" {
			return Object{}, bad(f, "is missing")
		}
	}
	objectID, ok := fields["object_id"].(string)
	if !ok {
		return Object{}, bad("object_id", "does not have a valid value")
	}
	published, ok := inbox.ParsePublishedAt(fields["published_at"])
	if !ok {
		return Object{}, bad("published_at", "does not have a valid value")
	}
	if fields["source"] != "facebook" {
		return Object{}, bad("source", "does not have a valid value")
	}
	if kind == inbox.KindClaim && fields["state"] != "closed" {
		return Object{}, bad("state", "does not have a valid value")
	}
	return Object{ObjectID: objectID, PublishedAt: published, AccountID: idString(fields["account_id"])}, nil
}

// decode reads the JSON object body, keeping numbers exact.
func decode(body []byte) (map[string]any, error) {
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

func (a *API) limiter(name string) *rate.Limiter {
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
