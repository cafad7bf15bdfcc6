// Package apperr defines the one error type handoverd's services return to
// their HTTP adapters. A Code says what kind of failure it is; httpapi maps
// codes to HTTP statuses in one table. Message is safe to show a client; Err
// (the cause) goes to logs only.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error.
type Code string

// Error codes.
const (
	Invalid       Code = "invalid"       // bad input; Field names it
	Unauthorized  Code = "unauthorized"  // no or unknown credentials
	Forbidden     Code = "forbidden"     // credentials lack the right
	NotFound      Code = "not_found"     // the resource does not exist
	Conflict      Code = "conflict"      // the request clashes with current state
	Unprocessable Code = "unprocessable" // well-formed, but cannot be done (e.g. outside Messenger's window)
	TooLarge      Code = "too_large"     // the body is over the limit
	RateLimited   Code = "rate_limited"  // slow down
	Upstream      Code = "upstream"      // Facebook (or another peer) refused
	Unavailable   Code = "unavailable"   // a dependency is down; retry later
	Internal      Code = "internal"      // a bug or an unexpected failure
)

// Error is a classified failure.
type Error struct {
	// Code classifies the failure.
	Code Code
	// Field names the offending input field, if any.
	Field string
	// Message is safe to return to the client.
	Message string
	// Err is the underlying cause, for logs.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := string(e.Code)
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a code and a formatted client message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns an Invalid error naming field.
func Field(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with a code and message whose cause is err.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns err's code: the Code of the first *Error in its chain, or
// Internal for anything else (nil has no code).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the first *Error in err's chain, or an Internal error that
// hides err's text from clients.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}
