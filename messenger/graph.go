package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	fb "github.com/huandu/facebook/v2"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/metrics"
)

// Graph operations, as used in metrics and errors.
const (
	OpSend        = "send"
	OpPass        = "pass_thread_control"
	OpTake        = "take_thread_control"
	OpRequest     = "request_thread_control"
	OpRelease     = "release_thread_control"
	OpThreadOwner = "thread_owner"
)

// defaultAttempts is how often a retryable failure is tried in all.
const defaultAttempts = 4

// ErrorClass says what a Graph failure means for the caller.
type ErrorClass string

// Error classes. Only RateLimited and Transient are retried.
const (
	ClassNotOwner      ErrorClass = "not_owner"      // 10/2018300: another app controls the thread
	ClassOutsideWindow ErrorClass = "outside_window" // 10/2018278: outside the messaging window
	ClassRateLimited   ErrorClass = "rate_limited"   // 4, 17, 32, 613, 80006
	ClassTransient     ErrorClass = "transient"      // 1, 2, 1200, is_transient, HTTP 5xx, network, timeouts
	ClassBadToken      ErrorClass = "bad_token"      // 190
	ClassPermission    ErrorClass = "permission"     // 10 (other subcodes), 200–299
	ClassBadRequest    ErrorClass = "bad_request"    // 100, 551 and anything else Meta refused
)

// GraphError is a failed Graph call, classified.
type GraphError struct {
	// Op is the operation that failed.
	Op string
	// Class says what the failure means.
	Class ErrorClass
	// HTTPStatus is the response status (0 when no response came).
	HTTPStatus int
	// Code and Subcode are Graph's error code and error_subcode.
	Code, Subcode int
	// Message is Graph's error message.
	Message string
	// TraceID is Graph's fbtrace_id.
	TraceID string
	// Err is the transport or decoding error, if that is what failed.
	Err error
}

// Error implements error.
func (e *GraphError) Error() string {
	s := fmt.Sprintf("graph %s: %s", e.Op, e.Class)
	if e.Code != 0 {
		s += fmt.Sprintf(" (code %d", e.Code)
		if e.Subcode != 0 {
			s += fmt.Sprintf(", subcode %d", e.Subcode)
		}
		s += ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the transport error, if any.
func (e *GraphError) Unwrap() error { return e.Err }

// Retryable reports whether trying again later may succeed.
func (e *GraphError) Retryable() bool {
	return e.Class == ClassRateLimited || e.Class == ClassTransient
}

// Unanswered reports whether no response came (a timeout, a broken
// connection): the call may or may not have taken effect.
func (e *GraphError) Unanswered() bool { return e.HTTPStatus == 0 && e.Err != nil }

// IsUnanswered reports whether err is a GraphError without a response.
func IsUnanswered(err error) bool {
	var ge *GraphError
	return errors.As(err, &ge) && ge.Unanswered()
}

// IsClass reports whether err is a GraphError of class c.
func IsClass(err error, c ErrorClass) bool {
	var ge *GraphError
	return errors.As(err, &ge) && ge.Class == c
}

// Classify maps a Graph error to its class. This is the one place that
// knows Meta's codes.
func Classify(httpStatus, code, subcode int, transient bool) ErrorClass {
	switch {
	case code == 10 && subcode == 2018300:
		return ClassNotOwner
	case code == 10 && subcode == 2018278:
		return ClassOutsideWindow
	case code == 4 || code == 17 || code == 32 || code == 613 || code == 80006 || (code == 9 && subcode == 2018352):
		return ClassRateLimited
	case code == 190:
		return ClassBadToken
	case transient || code == 1 || code == 2 || code == 1200:
		return ClassTransient
	case code == 10 || (code >= 200 && code <= 299):
		return ClassPermission
	case code == 0 && (httpStatus >= 500 || httpStatus == 0 || httpStatus == http.StatusTooManyRequests):
		return ClassTransient
	}
	return ClassBadRequest
}

// PageRef names a Page and handoverd's access token for it.
type PageRef struct {
	// ID is the Page id.
	ID string
	// Token is the Page access token.
	Token config.Secret
}

// Retry bounds the retries of retryable failures.
type Retry struct {
	// Attempts is the most calls made for one operation (default 4).
	Attempts int
	// Initial is the first backoff delay (default 200 ms).
	Initial time.Duration
	// Max caps one delay (default 5 s).
	Max time.Duration
	// Elapsed caps the whole operation including retries (default 30 s).
	Elapsed time.Duration
}

// GraphOptions configures a Graph client.
type GraphOptions struct {
	// BaseURL is the Graph API base URL, ending with a slash.
	BaseURL string
	// Version is the API version, e.g. v21.0.
	Version string
	// AppID and AppSecret are the calling app's; the secret signs
	// appsecret_proof.
	AppID     string
	AppSecret config.Secret
	// Timeout bounds every single call.
	Timeout time.Duration
	// Transport is the HTTP transport (nil: http.DefaultTransport).
	Transport http.RoundTripper
	// Retry bounds retries.
	Retry Retry
	// Metrics records calls (may be nil).
	Metrics *metrics.Metrics
}

// Graph calls the Graph API's Send API and thread-control endpoints as one
// app, with appsecret_proof, a timeout on every call, and retries with
// exponential backoff for rate limits and transient failures only.
type Graph struct {
	app     *fb.App
	opts    GraphOptions
	client  *http.Client
	metrics *metrics.Metrics
}

// NewGraph returns a client.
func NewGraph(o GraphOptions) *Graph {
	if o.Timeout <= 0 {
		o.Timeout = config.DefaultGraphTimeout
	}
	if o.Retry.Attempts <= 0 {
		o.Retry.Attempts = defaultAttempts
	}
	if o.Retry.Initial <= 0 {
		o.Retry.Initial = 200 * time.Millisecond
	}
	if o.Retry.Max <= 0 {
		o.Retry.Max = 5 * time.Second
	}
	if o.Retry.Elapsed <= 0 {
		o.Retry.Elapsed = 30 * time.Second
	}
	tr := o.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	app := fb.New(o.AppID, o.AppSecret.Reveal())
	app.EnableAppsecretProof = true
	return &Graph{
		app:     app,
		opts:    o,
		client:  &http.Client{Timeout: o.Timeout, Transport: statusTransport{tr}},
		metrics: o.Metrics,
	}
}

// SendRequest is one Send API call.
type SendRequest struct {
	// PSID is the recipient.
	PSID string
	// MessagingType is RESPONSE, UPDATE or MESSAGE_TAG (default RESPONSE).
	MessagingType string
	// Tag is the message tag with MESSAGE_TAG, e.g. HUMAN_AGENT.
	Tag string
	// Message is the message object (text, attachment, quick_replies, metadata).
	Message map[string]any
	// SenderAction is typing_on, typing_off or mark_seen (instead of Message).
	SenderAction string
}

// SendResult is the Send API's answer.
type SendResult struct {
	// RecipientID is the PSID.
	RecipientID string `json:"recipient_id"`
	// MessageID is the new message's mid.
	MessageID string `json:"message_id"`
}

// Send calls the Send API.
func (g *Graph) Send(ctx context.Context, page PageRef, req SendRequest) (SendResult, error) {
	p := fb.Params{"recipient": map[string]string{"id": req.PSID}}
	if req.SenderAction != "" {
		p["sender_action"] = req.SenderAction
	} else {
		mt := req.MessagingType
		if mt == "" {
			mt = "RESPONSE"
		}
		p["messaging_type"] = mt
		p["message"] = req.Message
		if req.Tag != "" {
			p["tag"] = req.Tag
		}
	}
	var out SendResult
	res, err := g.call(ctx, OpSend, page, fb.POST, "/"+page.ID+"/messages", p)
	if err != nil {
		return out, err
	}
	if err := res.Decode(&out); err != nil {
		return out, &GraphError{Op: OpSend, Class: ClassTransient, Err: err}
	}
	return out, nil
}

// PassThreadControl passes the thread to targetAppID ("" = the default app).
func (g *Graph) PassThreadControl(ctx context.Context, page PageRef, psid, targetAppID, metadata string) error {
	p := fb.Params{"recipient": map[string]string{"id": psid}}
	if targetAppID != "" {
		p["target_app_id"] = targetAppID
	}
	if metadata != "" {
		p["metadata"] = metadata
	}
	_, err := g.call(ctx, OpPass, page, fb.POST, "/"+page.ID+"/pass_thread_control", p)
	return err
}

// TakeThreadControl takes the thread.
func (g *Graph) TakeThreadControl(ctx context.Context, page PageRef, psid, metadata string) error {
	return g.control(ctx, OpTake, page, psid, metadata)
}

// RequestThreadControl asks the owner for the thread.
func (g *Graph) RequestThreadControl(ctx context.Context, page PageRef, psid, metadata string) error {
	return g.control(ctx, OpRequest, page, psid, metadata)
}

// ReleaseThreadControl releases the thread to idle.
func (g *Graph) ReleaseThreadControl(ctx context.Context, page PageRef, psid, metadata string) error {
	return g.control(ctx, OpRelease, page, psid, metadata)
}

func (g *Graph) control(ctx context.Context, op string, page PageRef, psid, metadata string) error {
	p := fb.Params{"recipient": map[string]string{"id": psid}}
	if metadata != "" {
		p["metadata"] = metadata
	}
	_, err := g.call(ctx, op, page, fb.POST, "/"+page.ID+"/"+op, p)
	return err
}

// ThreadOwner is what thread_owner reveals. Under Conversation Routing only
// the owner and the default app see AppID; others see only Expiration; an
// idle thread reads as empty (Idle true).
type ThreadOwner struct {
	// AppID is the owner's app id, when visible.
	AppID string
	// Expiration is when control expires, when known.
	Expiration time.Time
	// Idle is true when Graph returned no owner at all.
	Idle bool
}

// ThreadOwner asks Graph who owns the thread.
func (g *Graph) ThreadOwner(ctx context.Context, page PageRef, psid string) (ThreadOwner, error) {
	res, err := g.call(ctx, OpThreadOwner, page, fb.GET, "/"+page.ID+"/thread_owner", fb.Params{"recipient": psid})
	if err != nil {
		return ThreadOwner{}, err
	}
	var body struct {
		Data []struct {
			ThreadOwner struct {
				AppID      json.RawMessage `json:"app_id"`
				Expiration json.Number     `json:"expiration"`
			} `json:"thread_owner"`
		} `json:"data"`
	}
	b, err := json.Marshal(res)
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil {
		return ThreadOwner{}, &GraphError{Op: OpThreadOwner, Class: ClassTransient, Err: err}
	}
	if len(body.Data) == 0 {
		return ThreadOwner{Idle: true}, nil
	}
	var out ThreadOwner
	var id flexString
	if len(body.Data[0].ThreadOwner.AppID) > 0 {
		_ = id.UnmarshalJSON(body.Data[0].ThreadOwner.AppID)
	}
	out.AppID = string(id)
	if n, err := body.Data[0].ThreadOwner.Expiration.Int64(); err == nil && n > 0 {
		out.Expiration = time.Unix(n, 0).UTC()
	}
	return out, nil
}

// call performs one operation with retries of retryable failures.
func (g *Graph) call(ctx context.Context, op string, page PageRef, method fb.Method, path string, params fb.Params) (fb.Result, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = g.opts.Retry.Initial
	b.MaxInterval = g.opts.Retry.Max
	return backoff.Retry(ctx, func() (fb.Result, error) {
		// A fresh map per attempt: the library adds keys to the one it gets.
		p := fb.Params{}
		for k, v := range params {
			p[k] = v
		}
		res, err := g.once(ctx, op, page, method, path, p)
		if err == nil {
			return res, nil
		}
		var ge *GraphError
		// A send without an answer may have reached the customer: sending
		// it again could deliver it twice (the Send API has no idempotency).
		if errors.As(err, &ge) && ge.Retryable() && !(op == OpSend && ge.Unanswered()) {
			return nil, err
		}
		return nil, backoff.Permanent(err)
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(g.opts.Retry.Attempts)), backoff.WithMaxElapsedTime(g.opts.Retry.Elapsed))
}

// once performs one HTTP call and classifies its failure.
func (g *Graph) once(ctx context.Context, op string, page PageRef, method fb.Method, path string, params fb.Params) (fb.Result, error) {
	start := time.Now()
	holder := &statusHolder{}
	sess := g.app.Session(page.Token.Reveal())
	sess.BaseURL = g.opts.BaseURL
	sess.Version = g.opts.Version
	sess.HttpClient = g.client
	sess.UseAuthorizationHeader()
	res, err := sess.WithContext(context.WithValue(ctx, statusKey{}, holder)).Api(path, method, params)
	status := holder.status
	if err == nil && status >= 500 {
		err = fmt.Errorf("HTTP %d without a Graph error body", status)
	}
	var gerr *GraphError
	if err != nil {
		gerr = &GraphError{Op: op, HTTPStatus: status}
		var fe *fb.Error
		if errors.As(err, &fe) {
			gerr.Code, gerr.Subcode, gerr.Message, gerr.TraceID = fe.Code, fe.ErrorSubcode, fe.Message, fe.TraceID
			gerr.Class = Classify(status, fe.Code, fe.ErrorSubcode, fe.IsTransient)
		} else {
			gerr.Err = err
			gerr.Class = ClassTransient
		}
	}
	if g.metrics != nil {
		result := "ok"
		if gerr != nil {
			result = string(gerr.Class)
		}
		g.metrics.GraphRequests.WithLabelValues(op, result).Inc()
		g.metrics.GraphDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
	if gerr != nil {
		return res, gerr
	}
	return res, nil
}

type statusKey struct{}

type statusHolder struct{ status int }

// statusTransport records the response status in the request's context,
// because huandu/facebook ignores HTTP status codes.
type statusTransport struct{ next http.RoundTripper }

func (t statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if h, ok := r.Context().Value(statusKey{}).(*statusHolder); ok && resp != nil {
		h.status = resp.StatusCode
	}
	return resp, err
}

// String helps logs show a PageRef without its token.
func (p PageRef) String() string { return "page " + p.ID }
