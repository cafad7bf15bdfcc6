// Package httpapi is handoverd's HTTP plumbing: the router (the only file
// that imports gorilla/mux), request ids, access logs, request metrics,
// panic recovery, JSON encoding, and the one table that maps apperr codes to
// HTTP statuses. Feature packages register thin handlers on a Router.
package httpapi

import (
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/internal/jsoncheck"
)

// statuses maps each error code to its HTTP status.
var statuses = map[apperr.Code]int{
	apperr.Invalid:       http.StatusBadRequest,
	apperr.Unauthorized:  http.StatusUnauthorized,
	apperr.Forbidden:     http.StatusForbidden,
	apperr.NotFound:      http.StatusNotFound,
	apperr.Conflict:      http.StatusConflict,
	apperr.Unprocessable: http.StatusUnprocessableEntity,
	apperr.TooLarge:      http.StatusRequestEntityTooLarge,
	apperr.RateLimited:   http.StatusTooManyRequests,
	apperr.Upstream:      http.StatusBadGateway,
	apperr.Unavailable:   http.StatusServiceUnavailable,
	apperr.Internal:      http.StatusInternalServerError,
}

// Status returns the HTTP status for err.
func Status(err error) int {
	if s, ok := statuses[apperr.CodeOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the default JSON error shape:
// {"error":{"code":"invalid","field":"psid","message":"..."}}.
type ErrorBody struct {
	// Error describes the failure.
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	// Code is the apperr code.
	Code string `json:"code"`
	// Field names the offending input, if any.
	Field string `json:"field,omitempty"`
	// Message is a human-readable explanation.
	Message string `json:"message"`
}

// WriteError logs err (with its cause, for server-side failures) and writes
// it in the default JSON shape.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e, status := Failure(r, err)
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: string(e.Code), Field: e.Field, Message: e.Message}})
}

// Failure classifies err for an adapter that writes its own error body
// (Engage Digital's, Lexer's): it returns the error as an apperr error and
// its status from the one table, and logs it as WriteError would.
func Failure(r *http.Request, err error) (*apperr.Error, int) {
	e := apperr.As(err)
	status := Status(e)
	LogError(r, e, status)
	return e, status
}

// LogError records err on the request's logger: server-side failures at
// error level with their cause, client errors at debug level.
func LogError(r *http.Request, e *apperr.Error, status int) {
	l := zerolog.Ctx(r.Context())
	if status >= 500 {
		l.Error().Err(e.Err).Str("code", string(e.Code)).Msg(e.Message)
	} else {
		l.Debug().Str("code", string(e.Code)).Str("field", e.Field).Msg(e.Message)
	}
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// DecodeJSON reads a JSON body of at most limit bytes into v. The body
// must be exactly one JSON value (nothing but whitespace after it) whose
// strings pass jsoncheck (valid UTF-8, no NUL, bounded lengths). Failures
// come back as apperr errors naming the offending field where known.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.New(apperr.TooLarge, "request body is over %d bytes", limit)
		}
		return apperr.Wrap(err, apperr.Invalid, "request body could not be read")
	}
	return DecodeBody(body, v)
}

// DecodeBody decodes a JSON request body already read into v, with
// DecodeJSON's checks.
func DecodeBody(body []byte, v any) error {
	if p := jsoncheck.Value(body, jsoncheck.Default); p != nil {
		return apperr.Field(p.Field, "%s", p.Message)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			field := typeErr.Field
			if field == "" { // the body as a whole, or a value in a map
				field = "body"
			}
			return apperr.Field(field, "must be %s", jsonType(typeErr.Type))
		}
		return apperr.Field("body", "is not valid JSON: %v", err)
	}
	return nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonType names the JSON value that decodes into t, for a client's
// message (Go's own names, such as api.createRequest, mean nothing to it).
func jsonType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// BearerToken returns the token of an "Authorization: Bearer" header, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
