package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
)

// logBuffer collects zerolog's JSON lines; handlers on a test server
// write to it from their own goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines returns every line logged so far, decoded.
func (b *logBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// String returns the raw log text.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(b *logBuffer) zerolog.Logger {
	return zerolog.New(b).Level(zerolog.DebugLevel)
}

// requestWithLogger returns a request whose context carries a logger
// writing to b, as the router gives every request.
func requestWithLogger(b *logBuffer) *http.Request {
	r := httptest.NewRequest("GET", "/x", nil)
	l := newLogger(b)
	return r.WithContext(l.WithContext(r.Context()))
}

// allCodes is every apperr code with the status the one table gives it.
var allCodes = []struct {
	code   apperr.Code
	status int
}{
	{apperr.Invalid, 400},
	{apperr.Unauthorized, 401},
	{apperr.Forbidden, 403},
	{apperr.NotFound, 404},
	{apperr.Conflict, 409},
	{apperr.Unprocessable, 422},
	{apperr.TooLarge, 413},
	{apperr.RateLimited, 429},
	{apperr.Upstream, 502},
	{apperr.Unavailable, 503},
	{apperr.Internal, 500},
}

func TestStatus(t *testing.T) {
	for _, c := range allCodes {
		t.Run(string(c.code), func(t *testing.T) {
			if diff := cmp.Diff(c.status, httpapi.Status(apperr.New(c.code, "m"))); diff != "" {
				t.Errorf("Status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.status, httpapi.Status(fmt.Errorf("ctx: %w", apperr.New(c.code, "m")))); diff != "" {
				t.Errorf("Status of wrapped (-want +got):\n%s", diff)
			}
		})
	}
	for name, err := range map[string]error{
		"unknown code": &apperr.Error{Code: "teapot"},
		"empty code":   &apperr.Error{},
		"plain error":  errors.New("boom"),
	} {
		t.Run(name, func(t *testing.T) {
			if got := httpapi.Status(err); got != 500 {
				t.Errorf("Status(%v) = %d, want 500", err, got)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	cause := errors.New("pq: password authentication failed for user secret-db-user")
	tests := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"field", apperr.Field("psid", "must be digits"), 400, `{"error":{"code":"invalid","field":"psid","message":"must be digits"}}`},
		{"no field", apperr.New(apperr.NotFound, "no thread <1>"), 404, `{"error":{"code":"not_found","message":"no thread <1>"}}`},
		{"wrapped 4xx", fmt.Errorf("x: %w", apperr.Wrap(cause, apperr.Conflict, "taken")), 409, `{"error":{"code":"conflict","message":"taken"}}`},
		{"5xx with cause", apperr.Wrap(cause, apperr.Unavailable, "the store is down"), 503, `{"error":{"code":"unavailable","message":"the store is down"}}`},
		{"plain error", fmt.Errorf("query: %w", cause), 500, `{"error":{"code":"internal","message":"internal error"}}`},
		{"unknown code", &apperr.Error{Code: "teapot", Message: "short and stout"}, 500, `{"error":{"code":"teapot","message":"short and stout"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			w := httptest.NewRecorder()
			httpapi.WriteError(w, requestWithLogger(&logs), tt.err)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			if diff := cmp.Diff(tt.want, strings.TrimSpace(w.Body.String())); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if strings.Contains(w.Body.String(), "secret-db-user") {
				t.Errorf("body %s shows the cause", w.Body)
			}
			wantHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Content-Type-Options": {"nosniff"}}
			if diff := cmp.Diff(wantHeader, w.Header()); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailureLogs(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   apperr.Code
		wantLog    map[string]any
	}{
		{"5xx at error with cause", apperr.Wrap(cause, apperr.Unavailable, "store down"), 503, apperr.Unavailable,
			map[string]any{"level": "error", "error": "connection refused", "code": "unavailable", "message": "store down"}},
		{"plain error at error with its text", cause, 500, apperr.Internal,
			map[string]any{"level": "error", "error": "connection refused", "code": "internal", "message": "internal error"}},
		{"502", apperr.Wrap(cause, apperr.Upstream, "graph"), 502, apperr.Upstream,
			map[string]any{"level": "error", "error": "connection refused", "code": "upstream", "message": "graph"}},
		{"4xx at debug without cause", apperr.Wrap(cause, apperr.Invalid, "bad"), 400, apperr.Invalid,
			map[string]any{"level": "debug", "code": "invalid", "field": "", "message": "bad"}},
		{"4xx names the field", apperr.Field("psid", "too long"), 400, apperr.Invalid,
			map[string]any{"level": "debug", "code": "invalid", "field": "psid", "message": "too long"}},
		{"429", apperr.New(apperr.RateLimited, "slow"), 429, apperr.RateLimited,
			map[string]any{"level": "debug", "code": "rate_limited", "field": "", "message": "slow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			e, status := httpapi.Failure(requestWithLogger(&logs), tt.err)
			if status != tt.wantStatus || e.Code != tt.wantCode {
				t.Errorf("Failure = %s, %d; want %s, %d", e.Code, status, tt.wantCode, tt.wantStatus)
			}
			if diff := cmp.Diff([]map[string]any{tt.wantLog}, logs.Lines(t)); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	httpapi.WriteJSON(w, http.StatusCreated, map[string]string{"html": "<b>&</b>"})
	if w.Code != 201 {
		t.Errorf("status = %d, want 201", w.Code)
	}
	if diff := cmp.Diff("{\"html\":\"<b>&</b>\"}\n", w.Body.String()); diff != "" {
		t.Errorf("body, not HTML-escaped (-want +got):\n%s", diff)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
}

type payload struct {
	Text  string `json:"text"`
	Count int    `json:"count"`
	Inner struct {
		OK bool `json:"ok"`
	} `json:"inner"`
	PageID string   `json:"page_id"`
	Tags   []string `json:"tags"`
}

// failingReader fails every read with err.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestDecodeJSON(t *testing.T) {
	long := strings.Repeat("a", 1025)
	tests := []struct {
		name      string
		body      string
		limit     int64
		want      payload
		wantCode  apperr.Code
		wantField string
	}{
		{name: "ok", body: `{"text":"hi","count":2,"inner":{"ok":true}}`, limit: 100,
			want: payload{Text: "hi", Count: 2, Inner: struct {
				OK bool `json:"ok"`
			}{true}}},
		{name: "trailing whitespace is fine", body: "{\"text\":\"hi\"}\n\t ", limit: 100, want: payload{Text: "hi"}},
		{name: "exactly at the limit", body: `{"text":"12345"}`, limit: 16, want: payload{Text: "12345"}},
		{name: "one byte over the limit", body: `{"text":"123456"}`, limit: 16, wantCode: apperr.TooLarge},
		{name: "trailing data", body: `{"text":"hi"} x`, limit: 100, wantCode: apperr.Invalid, wantField: "body"},
		{name: "two values", body: `{}{}`, limit: 100, wantCode: apperr.Invalid, wantField: "body"},
		{name: "invalid JSON", body: `{"text":`, limit: 100, wantCode: apperr.Invalid, wantField: "body"},
		{name: "empty body", body: ``, limit: 100, wantCode: apperr.Invalid, wantField: "body"},
		{name: "wrong type", body: `{"count":"two"}`, limit: 100, wantCode: apperr.Invalid, wantField: "count"},
		{name: "wrong type nested", body: `{"inner":{"ok":"yes"}}`, limit: 100, wantCode: apperr.Invalid, wantField: "inner.ok"},
		{name: "NUL in a string", body: `{"text":"a\u0000b"}`, limit: 100, wantCode: apperr.Invalid, wantField: "text"},
		{name: "invalid UTF-8", body: "{\"text\":\"a\xffb\"}", limit: 100, wantCode: apperr.Invalid, wantField: "text"},
		{name: "id over its limit", body: `{"page_id":"` + long + `"}`, limit: 4096, wantCode: apperr.Invalid, wantField: "page_id"},
		{name: "NUL in a list", body: `{"tags":["a","\u0000"]}`, limit: 100, wantCode: apperr.Invalid, wantField: "tags[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			var got payload
			err := httpapi.DecodeJSON(httptest.NewRecorder(), r, tt.limit, &got)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("decoded (-want +got):\n%s", diff)
				}
				return
			}
			var e *apperr.Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeJSON = %v, want an *apperr.Error", err)
			}
			if e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Errorf("DecodeJSON = %s field %q (%v), want %s field %q", e.Code, e.Field, e, tt.wantCode, tt.wantField)
			}
		})
	}
	t.Run("read failure", func(t *testing.T) {
		cause := errors.New("connection reset")
		r := httptest.NewRequest("POST", "/", failingReader{cause})
		err := httpapi.DecodeJSON(httptest.NewRecorder(), r, 100, &payload{})
		if apperr.CodeOf(err) != apperr.Invalid || !errors.Is(err, cause) {
			t.Errorf("DecodeJSON = %v, want Invalid wrapping the read error", err)
		}
	})
	t.Run("too large names the limit", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat(" ", 11)))
		err := httpapi.DecodeJSON(httptest.NewRecorder(), r, 10, &payload{})
		if got, want := apperr.As(err).Message, "request body is over 10 bytes"; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
	})
}

func TestDecodeBody(t *testing.T) {
	var m map[string]int
	if err := httpapi.DecodeBody([]byte(`{"a":1}`), &m); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"a": 1}, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	err := httpapi.DecodeBody([]byte(`{"a":1} 2`), &m)
	if e := apperr.As(err); e.Code != apperr.Invalid || e.Field != "body" {
		t.Errorf("DecodeBody trailing data = %v, want invalid field body", err)
	}
}

// typed holds a field of each kind a wrong JSON type can meet.
type typed struct {
	Int   int               `json:"int"`
	Uint  uint8             `json:"uint"`
	Float float64           `json:"float"`
	Bool  bool              `json:"bool"`
	Str   string            `json:"str"`
	Ptr   *int              `json:"ptr"`
	List  []string          `json:"list"`
	Arr   [2]int            `json:"arr"`
	Bytes []byte            `json:"bytes"`
	Map   map[string]string `json:"map"`
	Obj   struct{ A int }   `json:"obj"`
	Addr  netip.Addr        `json:"addr"`
	Items []struct {
		ID int `json:"id"`
	} `json:"items"`
}

func TestDecodeWrongType(t *testing.T) {
	tests := []struct {
		name, body string
		into       any
		want       apperr.Error
	}{
		{"string for int", `{"int":"2"}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "int", Message: "must be an integer"}},
		{"fraction for int", `{"int":1.5}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "int", Message: "must be an integer"}},
		{"negative for uint", `{"uint":-1}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "uint", Message: "must be a non-negative integer"}},
		{"string for float", `{"float":"x"}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "float", Message: "must be a number"}},
		{"number for bool", `{"bool":1}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "bool", Message: "must be true or false"}},
		{"number for string", `{"str":1}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "str", Message: "must be a string"}},
		{"string for pointer", `{"ptr":"x"}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "ptr", Message: "must be an integer"}},
		{"object for list", `{"list":{}}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "list", Message: "must be an array"}},
		{"number in list", `{"list":["a",1]}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "list", Message: "must be a string"}},
		{"string for array", `{"arr":"x"}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "arr", Message: "must be an array"}},
		{"number for bytes", `{"bytes":1}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "bytes", Message: "must be a base64 string"}},
		{"list for map", `{"map":[]}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "map", Message: "must be an object"}},
		{"number in map", `{"map":{"k":1}}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "map", Message: "must be a string"}},
		{"string for struct", `{"obj":"x"}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "obj", Message: "must be an object"}},
		{"nested", `{"obj":{"A":"x"}}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "obj.A", Message: "must be an integer"}},
		{"in a list of objects", `{"items":[{"id":"x"}]}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "items.id", Message: "must be an integer"}},
		{"number for text type", `{"addr":1}`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "addr", Message: "must be a string"}},
		// Nothing names the value as a whole but "body".
		{"list for the body", `[1]`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "body", Message: "must be an object"}},
		{"string for the body", `"x"`, &typed{}, apperr.Error{Code: apperr.Invalid, Field: "body", Message: "must be an object"}},
		{"object for a list body", `{}`, &[]int{}, apperr.Error{Code: apperr.Invalid, Field: "body", Message: "must be an array"}},
		{"value in a map body", `{"a":"x"}`, &map[string]int{}, apperr.Error{Code: apperr.Invalid, Field: "body", Message: "must be an integer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := httpapi.DecodeBody([]byte(tt.body), tt.into)
			var e *apperr.Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeBody = %v, want an *apperr.Error", err)
			}
			if diff := cmp.Diff(tt.want, *e); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   string
	}{
		{"bearer", []string{"Bearer abc.def"}, "abc.def"},
		{"lower case", []string{"bearer abc"}, "abc"},
		{"upper case", []string{"BEARER abc"}, "abc"},
		{"mixed case", []string{"bEaReR abc"}, "abc"},
		{"surrounding spaces trimmed", []string{"Bearer   abc  "}, "abc"},
		{"missing", nil, ""},
		{"empty", []string{""}, ""},
		{"scheme only", []string{"Bearer"}, ""},
		{"scheme and space", []string{"Bearer "}, ""},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, ""},
		{"token scheme", []string{"Token abc"}, ""},
		{"no space", []string{"Bearerabc"}, ""},
		{"bearer inside", []string{"NotBearer abc"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			if diff := cmp.Diff(tt.want, httpapi.BearerToken(r)); diff != "" {
				t.Errorf("BearerToken (-want +got):\n%s", diff)
			}
		})
	}
}

// readAll reads a response body and closes it.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
