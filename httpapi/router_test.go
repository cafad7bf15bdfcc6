package httpapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/metrics"
)

// testServer is a Router served over loopback HTTP.
type testServer struct {
	*httptest.Server
	logs    *logBuffer
	metrics *metrics.Metrics
}

// serve builds a router with a debug-level logger and fresh metrics,
// lets register add routes, and serves r.Handler() on loopback.
func serve(t *testing.T, register func(r *httpapi.Router)) *testServer {
	t.Helper()
	logs := &logBuffer{}
	m := metrics.New()
	r := httpapi.NewRouter(newLogger(logs), m)
	register(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, logs: logs, metrics: m}
}

// do sends a request and returns the response, its body read.
func (s *testServer) do(t *testing.T, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

// accessLines returns the access log lines ("request") logged so far.
func (s *testServer) accessLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range s.logs.Lines(t) {
		if l["message"] == "request" {
			out = append(out, l)
		}
	}
	return out
}

// requests reads the request counter for one route, method and code.
func (s *testServer) requests(route, method, code string) float64 {
	return testutil.ToFloat64(s.metrics.HTTPRequests.WithLabelValues(route, method, code))
}

// observations counts the latency observations recorded for route and method.
func (s *testServer) observations(t *testing.T, route, method string) uint64 {
	t.Helper()
	mfs, err := s.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "handoverd_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["method"] == method {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func ok(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) { r.HandleFunc("GET", "/things/{id}", ok("thing")) })
	tests := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"no route", "GET", "/nope", 404, `{"error":{"code":"not_found","message":"no route for GET /nope"}}`},
		{"too deep", "GET", "/things/1/more", 404, `{"error":{"code":"not_found","message":"no route for GET /things/1/more"}}`},
		{"wrong method", "POST", "/things/1", 405, `{"error":{"code":"method_not_allowed","message":"POST is not allowed on /things/1"}}`},
		{"wrong method, trailing slash", "POST", "/things/1/", 405, `{"error":{"code":"method_not_allowed","message":"POST is not allowed on /things/1"}}`},
		{"trailing slash, no route", "GET", "/nope/", 404, `{"error":{"code":"not_found","message":"no route for GET /nope/"}}`},
		{"unknown method", "BREW", "/things/1", 405, `{"error":{"code":"method_not_allowed","message":"BREW is not allowed on /things/1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(t, tt.method, tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if diff := cmp.Diff(tt.body, strings.TrimSpace(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
		})
	}
	// 404s and 405s are counted and logged like the rest, as unmatched.
	counts := []float64{s.requests("unmatched", "GET", "404"), s.requests("unmatched", "POST", "405"), s.requests("unmatched", "other", "405")}
	if diff := cmp.Diff([]float64{3, 2, 1}, counts); diff != "" {
		t.Errorf("unmatched requests counted (-want +got):\n%s", diff)
	}
	if got := len(s.accessLines(t)); got != len(tests) {
		t.Errorf("%d access log lines, want %d", got, len(tests))
	}
}

func TestRequestID(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) { r.HandleFunc("GET", "/", ok("")) })
	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)
	tests := []struct {
		name     string
		incoming []string
		keep     bool
	}{
		{"none", nil, false},
		{"empty", []string{""}, false},
		{"valid", []string{"abc-DEF_12.3"}, true},
		{"64 characters", []string{strings.Repeat("a", 64)}, true},
		{"65 characters", []string{strings.Repeat("a", 65)}, false},
		{"space", []string{"abc def"}, false},
		{"markup", []string{"<script>"}, false},
		{"newline escape", []string{"a%0Ab"}, false},
		{"unicode", []string{"ümlaut"}, false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if tt.incoming != nil {
				h = http.Header{"X-Request-Id": tt.incoming}
			}
			before := len(s.accessLines(t))
			resp, _ := s.do(t, "GET", "/", h)
			got := resp.Header.Get("X-Request-Id")
			if tt.keep {
				if got != tt.incoming[0] {
					t.Errorf("X-Request-Id = %q, want the incoming %q kept", got, tt.incoming[0])
				}
			} else {
				if !generated.MatchString(got) {
					t.Errorf("X-Request-Id = %q, want a new 16-hex-digit id", got)
				}
				if seen[got] {
					t.Errorf("X-Request-Id %q handed out twice", got)
				}
				seen[got] = true
			}
			lines := s.accessLines(t)
			if len(lines) != before+1 {
				t.Fatalf("%d new access log lines, want 1", len(lines)-before)
			}
			if id := lines[len(lines)-1]["req_id"]; id != got {
				t.Errorf("access log req_id = %v, want the answered %q", id, got)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) {
		r.HandleFunc("GET", "/panic", func(http.ResponseWriter, *http.Request) { panic("boom: token=hunter2") })
		r.HandleFunc("GET", "/panic-late", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("partial"))
			panic(errors.New("late"))
		})
		r.HandleFunc("GET", "/panic-index", func(_ http.ResponseWriter, r *http.Request) {
			var list []string
			_ = list[len(r.URL.Path)] // a runtime error: out of range
		})
		r.HandleFunc("GET", "/ok", ok("fine"))
	})

	resp, body := s.do(t, "GET", "/panic", nil)
	if resp.StatusCode != 500 {
		t.Errorf("status = %d, want 500", resp.StatusCode)
	}
	if diff := cmp.Diff(`{"error":{"code":"internal","message":"internal error"}}`, strings.TrimSpace(body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the 500")
	}

	if resp, _ := s.do(t, "GET", "/panic-index", nil); resp.StatusCode != 500 {
		t.Errorf("runtime error panic: status = %d, want 500", resp.StatusCode)
	}

	// A handler that already answered keeps its answer.
	resp, body = s.do(t, "GET", "/panic-late", nil)
	if resp.StatusCode != 202 || body != "partial" {
		t.Errorf("late panic answered %d %q, want 202 %q", resp.StatusCode, body, "partial")
	}

	// The server survives.
	for range 2 {
		if resp, body := s.do(t, "GET", "/ok", nil); resp.StatusCode != 200 || body != "fine" {
			t.Errorf("after panics: %d %q, want 200 fine", resp.StatusCode, body)
		}
	}

	var panics []string
	for _, l := range s.logs.Lines(t) {
		if l["message"] == "handler panicked" {
			if l["level"] != "error" || l["stack"] == nil {
				t.Errorf("panic logged as %v, want level error with a stack", l)
			}
			p, _ := l["panic"].(string)
			panics = append(panics, p)
		}
	}
	want := []string{"boom: token=hunter2", "runtime error: index out of range [12] with length 0", "late"}
	if diff := cmp.Diff(want, panics); diff != "" {
		t.Errorf("panics logged (-want +got):\n%s", diff)
	}
	counts := []float64{s.requests("/panic", "GET", "500"), s.requests("/panic-late", "GET", "202"), s.requests("/ok", "GET", "200")}
	if diff := cmp.Diff([]float64{1, 1, 2}, counts); diff != "" {
		t.Errorf("requests counted (-want +got):\n%s", diff)
	}
}

// echoRoute answers with the route template and the path variables.
func echoRoute(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte(httpapi.Route(r.Context()) + " page=" + httpapi.Var(r, "page") + " psid=" + httpapi.Var(r, "psid") + " path=" + r.URL.Path))
}

func TestRoutingAndVars(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) {
		r.HandleFunc("GET", "/threads/{page}/{psid}", echoRoute)
		r.HandleFunc("POST", "/threads/{page}/{psid}", echoRoute)
		r.HandleFunc("GET", "/pages", echoRoute)
		r.HandleFunc("GET", "/", echoRoute)
		r.HandlePrefix("/static/", http.HandlerFunc(echoRoute))
	})
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/threads/1001/42", 200, "/threads/{page}/{psid} page=1001 psid=42 path=/threads/1001/42"},
		{"POST", "/threads/1001/42", 200, "/threads/{page}/{psid} page=1001 psid=42 path=/threads/1001/42"},
		{"GET", "/threads/1001/42/", 200, "/threads/{page}/{psid} page=1001 psid=42 path=/threads/1001/42"},
		{"GET", "/threads/1001/42//", 200, "/threads/{page}/{psid} page=1001 psid=42 path=/threads/1001/42"},
		{"GET", "/pages/", 200, "/pages page= psid= path=/pages"},
		{"GET", "/pages", 200, "/pages page= psid= path=/pages"},
		{"GET", "/", 200, "/ page= psid= path=/"},
		{"DELETE", "/static/app.js", 200, "/static/ page= psid= path=/static/app.js"},
		{"GET", "/static/", 200, "/static/ page= psid= path=/static/"},
		{"GET", "/threads/1001/", 404, `{"error":{"code":"not_found","message":"no route for GET /threads/1001/"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := s.do(t, tt.method, tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if diff := cmp.Diff(tt.body, strings.TrimSpace(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	// Requests are counted by template, with and without the slash alike.
	if got := s.requests("/threads/{page}/{psid}", "GET", "200"); got != 3 {
		t.Errorf("GET /threads/{page}/{psid} counted %v, want 3", got)
	}
	if got := s.requests("/pages", "GET", "200"); got != 2 {
		t.Errorf("GET /pages counted %v, want 2", got)
	}
	if got := s.observations(t, "/threads/{page}/{psid}", "GET"); got != 3 {
		t.Errorf("GET /threads/{page}/{psid} latency observed %d times, want 3", got)
	}
}

func TestRoutes(t *testing.T) {
	r := httpapi.NewRouter(newLogger(&logBuffer{}), nil)
	r.HandleFunc("GET", "/a", ok(""))
	r.HandleFunc("POST", "/a", ok(""))
	r.Handle("GET", "/b/{id}", ok(""))
	r.HandlePrefix("/static/", ok(""))
	want := []string{"GET /a", "POST /a", "GET /b/{id}", "* /static/"}
	if diff := cmp.Diff(want, r.Routes()); diff != "" {
		t.Errorf("Routes (-want +got):\n%s", diff)
	}
	if got := httpapi.NewRouter(newLogger(&logBuffer{}), nil).Routes(); len(got) != 0 {
		t.Errorf("empty router Routes = %v", got)
	}
}

func TestNilMetrics(t *testing.T) {
	r := httpapi.NewRouter(newLogger(&logBuffer{}), nil)
	r.HandleFunc("GET", "/a", ok("a"))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "a" {
		t.Errorf("without metrics: %d %q, want 200 a", resp.StatusCode, body)
	}
}

func TestUseOrder(t *testing.T) {
	mark := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Middleware runs inside the wrapping: the route and the
				// request id are already known.
				w.Header().Add("X-Order", name+" "+httpapi.Route(r.Context()))
				next.ServeHTTP(w, r)
			})
		}
	}
	s := serve(t, func(r *httpapi.Router) {
		r.HandleFunc("GET", "/a/{id}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Add("X-Order", "handler")
			w.WriteHeader(204)
		})
		r.Use(mark("first"))
		r.Use(mark("second"))
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("deny") != "" {
					httpapi.WriteError(w, r, apperr.New(apperr.Forbidden, "denied"))
					return
				}
				next.ServeHTTP(w, r)
			})
		})
	})
	tests := []struct {
		path   string
		status int
		order  []string
	}{
		{"/a/1", 204, []string{"first /a/{id}", "second /a/{id}", "handler"}},
		{"/a/1/", 204, []string{"first /a/{id}", "second /a/{id}", "handler"}},
		{"/nope", 404, []string{"first unmatched", "second unmatched"}},
		{"/a/1?deny=1", 403, []string{"first /a/{id}", "second /a/{id}"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := s.do(t, "GET", tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if diff := cmp.Diff(tt.order, resp.Header.Values("X-Order")); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
	// The status a middleware answers with is what is counted.
	if got := s.requests("/a/{id}", "GET", "403"); got != 1 {
		t.Errorf("403 from middleware counted %v times, want 1", got)
	}
}

func TestAccessLog(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) {
		r.HandleFunc("GET", "/webhooks/messenger", ok("challenge-echo"))
		r.HandleFunc("GET", "/things/{id}", func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteError(w, r, apperr.New(apperr.Conflict, "taken"))
		})
		r.HandleFunc("GET", "/healthz", ok("ok"))
		r.HandleFunc("GET", "/files/{token}/{name}", ok("file"))
		r.HandleFunc("GET", "/readyz", func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteError(w, r, apperr.New(apperr.Unavailable, "not ready"))
		})
	})
	const token, verify, fileToken = "EAAB-page-access-token-sekrit", "verify-sekrit", "0c7d3f7e-file-token-sekrit"
	tests := []struct {
		path  string
		level string
		want  map[string]any
	}{
		{"/webhooks/messenger?hub.mode=subscribe&hub.verify_token=" + verify + "&hub.challenge=42", "info",
			map[string]any{"method": "GET", "route": "/webhooks/messenger", "path": "/webhooks/messenger", "status": 200.0}},
		{"/things/7?access_token=" + token, "info",
			map[string]any{"method": "GET", "route": "/things/{id}", "path": "/things/7", "status": 409.0}},
		{"/nope?access_token=" + token, "info",
			map[string]any{"method": "GET", "route": "unmatched", "path": "/nope", "status": 404.0}},
		{"/healthz?access_token=" + token, "debug",
			map[string]any{"method": "GET", "route": "/healthz", "path": "/healthz", "status": 200.0}},
		{"/files/" + fileToken + "/notes.txt", "info",
			map[string]any{"method": "GET", "route": "/files/{token}/{name}", "path": "/files/{token}/notes.txt", "status": 200.0}},
		{"/files/" + fileToken + "/notes.txt/", "info",
			map[string]any{"method": "GET", "route": "/files/{token}/{name}", "path": "/files/{token}/notes.txt", "status": 200.0}},
		{"/readyz", "info",
			map[string]any{"method": "GET", "route": "/readyz", "path": "/readyz", "status": 503.0}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := len(s.accessLines(t))
			_, body := s.do(t, "GET", tt.path, nil)
			tt.want["bytes"] = float64(len(body))
			lines := s.accessLines(t)
			if len(lines) != before+1 {
				t.Fatalf("%d new access log lines, want 1", len(lines)-before)
			}
			line := lines[len(lines)-1]
			if line["level"] != tt.level {
				t.Errorf("level = %v, want %s", line["level"], tt.level)
			}
			if _, ok := line["duration_ms"].(float64); !ok {
				t.Errorf("duration_ms = %v, want a number", line["duration_ms"])
			}
			got := map[string]any{}
			for k := range tt.want {
				got[k] = line[k]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("access log (-want +got):\n%s", diff)
			}
		})
	}
	if logs := s.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, verify) || strings.Contains(logs, fileToken) {
		t.Errorf("the log shows a secret:\n%s", logs)
	}
}

func TestCheckInput(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) { r.HandleFunc("GET", "/things/{id}", echoRoute) })
	long := strings.Repeat("x", 8<<10+1)
	tests := []struct {
		name, path string
		status     int
		field      string
	}{
		{"fine", "/things/1?q=a&q=b", 200, ""},
		{"1024 bytes", "/things/" + long[:1024] + "?q=" + long[:1024], 200, ""},
		{"4 KB metadata", "/things/1?metadata=" + long[:4096], 200, ""},
		{"8 KiB query value", "/things/1?q=" + long[:8<<10], 200, ""},
		{"query name too long", "/things/1?" + long[:1025] + "=1", 400, "query"},
		{"NUL in path variable", "/things/a%00b", 400, "id"},
		{"invalid UTF-8 in path variable", "/things/a%FFb", 400, "id"},
		{"path variable too long", "/things/" + long[:1025], 400, "id"},
		{"NUL in query value", "/things/1?q=a&access_token=x%00y", 400, "access_token"},
		{"second value checked", "/things/1?q=a&q=%FF", 400, "q"},
		{"query value too long", "/things/1?q=" + long, 400, "q"},
		{"bad query name", "/things/1?%FF=1", 400, "query"},
		{"malformed pair skipped", "/things/1?a=%zz&b=1", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(t, "GET", tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.field != "" && !strings.Contains(body, `"field":"`+tt.field+`"`) {
				t.Errorf("body %s does not name field %s", body, tt.field)
			}
			if strings.Contains(body, "x\x00y") || strings.Contains(body, long) {
				t.Errorf("body %s echoes the input", body)
			}
		})
	}
	t.Run("direct", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/?a=1", nil)
		err := httpapi.CheckInput(req, map[string]string{"b": "ok", "a": "x\x00"})
		if e := apperr.As(err); e.Code != apperr.Invalid || e.Field != "a" {
			t.Errorf("CheckInput = %v, want invalid field a", err)
		}
		if err := httpapi.CheckInput(req, nil); err != nil {
			t.Errorf("CheckInput without vars = %v", err)
		}
	})
}

// TestHandleFuncWith: a route registered with its own error writer is
// answered with it when the router refuses its input or its handler
// panics; the other routes keep the default shape.
func TestHandleFuncWith(t *testing.T) {
	own := func(w http.ResponseWriter, r *http.Request, err error) {
		e, status := httpapi.Failure(r, err)
		httpapi.WriteJSON(w, status, map[string]any{"status": status, "message": e.Field + " " + e.Message})
	}
	s := serve(t, func(r *httpapi.Router) {
		r.HandleFuncWith("GET", "/own/{id}", echoRoute, own)
		r.HandleFuncWith("GET", "/own-panic", func(http.ResponseWriter, *http.Request) { panic("boom") }, own)
		r.HandleFunc("GET", "/default/{id}", echoRoute)
	})
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"own, fine", "/own/1?q=a", 200, "/own/{id} page= psid= path=/own/1"},
		{"own, NUL in query", "/own/1?metadata=a%00b", 400, `{"message":"metadata contains a NUL character","status":400}`},
		{"own, invalid path variable", "/own/a%FFb", 400, `{"message":"id is not valid UTF-8","status":400}`},
		{"own, panic", "/own-panic", 500, `{"message":" internal error","status":500}`},
		{"default, NUL in query", "/default/1?metadata=a%00b", 400, `{"error":{"code":"invalid","field":"metadata","message":"contains a NUL character"}}`},
		{"no route", "/own", 404, `{"error":{"code":"not_found","message":"no route for GET /own"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(t, "GET", tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if diff := cmp.Diff(tt.body, strings.TrimSpace(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if got := s.requests("/own/{id}", "GET", "400"); got != 2 {
		t.Errorf("refusals on /own/{id} counted %v, want 2", got)
	}
}

func TestStreamingThroughRecorder(t *testing.T) {
	s := serve(t, func(r *httpapi.Router) {
		r.HandleFunc("GET", "/stream", func(w http.ResponseWriter, _ *http.Request) {
			rc := http.NewResponseController(w)
			_, _ = w.Write([]byte("a"))
			if err := rc.Flush(); err != nil {
				_, _ = w.Write([]byte(" flush: " + err.Error()))
			}
			if err := rc.SetWriteDeadline(time.Time{}); err != nil {
				_, _ = w.Write([]byte(" deadline: " + err.Error()))
			}
			if _, ok := w.(http.Flusher); !ok {
				_, _ = w.Write([]byte(" not a Flusher"))
			}
		})
	})
	if _, body := s.do(t, "GET", "/stream", nil); body != "a" {
		t.Errorf("body = %q, want %q (flush and deadline through the recorder)", body, "a")
	}
}
