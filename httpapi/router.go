package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/internal/jsoncheck"
	"github.com/handoverd/handoverd/metrics"
)

// Router routes requests to handlers by method and path template. It is a
// thin wrapper over gorilla/mux so that the rest of the code base never
// imports mux directly.
type Router struct {
	mux     *mux.Router
	log     zerolog.Logger
	metrics *metrics.Metrics
	wrap    []func(http.Handler) http.Handler
	// writeErr holds the error writers of the routes registered with
	// HandleFuncWith; the others answer in the default shape.
	writeErr map[*mux.Route]ErrorWriter
}

// ErrorWriter writes err as a response, in an adapter's own error shape
// (WriteError writes the default one).
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// NewRouter returns an empty router that logs to log and records request
// metrics on m.
func NewRouter(log zerolog.Logger, m *metrics.Metrics) *Router {
	r := &Router{mux: mux.NewRouter(), log: log, metrics: m, writeErr: map[*mux.Route]ErrorWriter{}}
	r.mux.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteError(w, req, apperr.New(apperr.NotFound, "no route for %s %s", req.Method, req.URL.Path))
	})
	r.mux.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: "method_not_allowed", Message: req.Method + " is not allowed on " + req.URL.Path}})
	})
	return r
}

// Handle registers h for method and path template (e.g. "/1.0/threads/{page_id}/{psid}").
func (r *Router) Handle(method, path string, h http.Handler) {
	r.mux.Handle(path, h).Methods(method)
}

// HandleFunc registers f for method and path template.
func (r *Router) HandleFunc(method, path string, f http.HandlerFunc) {
	r.Handle(method, path, f)
}

// HandleFuncWith registers f for method and path template, and writeErr
// as the route's error writer: the router answers with it when it refuses
// the route's input (CheckInput) or f panics, so an adapter whose protocol
// has its own error body keeps that body on every failure.
func (r *Router) HandleFuncWith(method, path string, f http.HandlerFunc, writeErr ErrorWriter) {
	r.writeErr[r.mux.Handle(path, f).Methods(method)] = writeErr
}

// HandlePrefix registers h for every path under prefix, any method.
func (r *Router) HandlePrefix(prefix string, h http.Handler) {
	r.mux.PathPrefix(prefix).Handler(h)
}

// Use adds middleware that runs inside the request id, logging and metrics
// wrapping, before routing: each request passes through the middleware in
// the order they were added.
func (r *Router) Use(mw func(http.Handler) http.Handler) {
	r.wrap = append(r.wrap, mw)
}

// Var returns the path variable name of the matched route.
func Var(r *http.Request, name string) string { return mux.Vars(r)[name] }

// Routes lists the registered method and path templates (for tests and the
// API description).
func (r *Router) Routes() []string {
	var out []string
	_ = r.mux.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := route.GetMethods()
		if len(methods) == 0 {
			methods = []string{"*"}
		}
		for _, m := range methods {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	return out
}

// Handler returns the router wrapped in the middleware every request gets:
// request id, per-request logger, panic recovery, access log and metrics.
// The wrapping is outside mux so 404s and 405s are logged and counted too.
func (r *Router) Handler() http.Handler {
	var inner http.Handler = r.mux
	for i := len(r.wrap) - 1; i >= 0; i-- {
		inner = r.wrap[i](inner)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		id := requestID(req)
		w.Header().Set("X-Request-Id", id)
		l := r.log.With().Str("req_id", id).Logger()
		ctx := l.WithContext(req.Context())
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		route := "unmatched"
		writeErr := WriteError
		var match mux.RouteMatch
		matched := r.mux.Match(req, &match) && match.Route != nil && match.MatchErr == nil
		if !matched && len(req.URL.Path) > 1 && strings.HasSuffix(req.URL.Path, "/") {
			// A trailing slash (Chatwoot's clients send some) names the same
			// route as the path without it.
			alt := req.Clone(req.Context())
			alt.URL.Path, alt.URL.RawPath = strings.TrimRight(req.URL.Path, "/"), ""
			var altMatch mux.RouteMatch
			if r.mux.Match(alt, &altMatch) && altMatch.MatchErr != mux.ErrNotFound {
				// Found, or found for another method (answered 405 as
				// without the slash).
				req, match = alt, altMatch
				matched = match.Route != nil && match.MatchErr == nil
			}
		}
		if matched {
			if tpl, err := match.Route.GetPathTemplate(); err == nil {
				route = tpl
			}
			if we := r.writeErr[match.Route]; we != nil {
				writeErr = we
			}
		}
		ctx = context.WithValue(ctx, routeKey{}, route)
		req = req.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				// As text: an error value (errors.New, a runtime bounds
				// error) has no exported fields and would encode as {}.
				l.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("handler panicked")
				if !rec.wrote {
					writeErr(rec, req, apperr.New(apperr.Internal, "internal error"))
				}
			}
			d := time.Since(start)
			if r.metrics != nil {
				method := metrics.HTTPMethod(req.Method)
				r.metrics.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(rec.status)).Inc()
				r.metrics.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
			}
			// Only the path: query strings carry hub.verify_token and access_token.
			// Probes and scrapes that succeed are debug: Kubernetes and
			// Prometheus ask every few seconds.
			ev := l.Info()
			if quietRoutes[route] && rec.status < 400 {
				ev = l.Debug()
			}
			ev.Str("method", req.Method).Str("route", route).Str("path", logPath(req.URL.Path, match.Vars)).
				Int("status", rec.status).Int64("bytes", rec.bytes).Float64("duration_ms", float64(d.Microseconds())/1000).Msg("request")
		}()
		if err := CheckInput(req, match.Vars); err != nil {
			writeErr(rec, req, err)
			return
		}
		inner.ServeHTTP(rec, req)
	})
}

// secretVar names the path variable that is a secret (an attachment's
// token): the access log shows "{token}" in its place.
const secretVar = "token"

// logPath is path for the access log, with the value of a secret path
// variable replaced by its name in braces.
func logPath(path string, vars map[string]string) string {
	if v := vars[secretVar]; v != "" {
		return strings.ReplaceAll(path, v, "{"+secretVar+"}")
	}
	return path
}

// quietRoutes are logged at debug level when they succeed.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// maxParam bounds a path variable or a query parameter's name, in bytes:
// those are ids and names, bounded as ids in JSON bodies are.
const maxParam = 1024

// maxQueryValue bounds a query parameter's value, in bytes. It is above
// the largest value an API takes on purpose: Engage's metadata parameter
// may be 4 KB (handover.MaxMetadataBytes), checked by the handover service
// itself, so this router-wide bound only stops what no API could take.
const maxQueryValue = 8 << 10

// CheckInput validates every path variable and query parameter once, for
// every route: valid UTF-8, no NUL, at most maxParam bytes (a query value:
// maxQueryValue).
func CheckInput(req *http.Request, vars map[string]string) error {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if msg := jsoncheck.String(vars[k], maxParam); msg != "" {
			return apperr.Field(k, "%s", msg)
		}
	}
	q, _ := url.ParseQuery(req.URL.RawQuery) // as Request.URL.Query: malformed pairs are left out
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if msg := jsoncheck.String(k, maxParam); msg != "" {
			return apperr.Field("query", "parameter name %s", msg)
		}
		for _, v := range q[k] {
			if msg := jsoncheck.String(v, maxQueryValue); msg != "" {
				return apperr.Field(k, "%s", msg)
			}
		}
	}
	return nil
}

type routeKey struct{}

// Route returns the route template of the request being served.
func Route(ctx context.Context) string {
	s, _ := ctx.Value(routeKey{}).(string)
	return s
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID honours a sane incoming X-Request-Id or makes a new one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); validRequestID.MatchString(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
