package apperr_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
)

func TestErrorText(t *testing.T) {
	cause := errors.New("disk full")
	tests := []struct {
		name string
		err  *apperr.Error
		want string
	}{
		{"code only", &apperr.Error{Code: apperr.NotFound}, "not_found"},
		{"field", &apperr.Error{Code: apperr.Invalid, Field: "psid"}, "invalid psid"},
		{"message", &apperr.Error{Code: apperr.Conflict, Message: "thread is taken"}, "conflict: thread is taken"},
		{"cause", &apperr.Error{Code: apperr.Internal, Err: cause}, "internal: disk full"},
		{"field and message", &apperr.Error{Code: apperr.Invalid, Field: "text", Message: "is empty"}, "invalid text: is empty"},
		{"all", &apperr.Error{Code: apperr.Unavailable, Field: "db", Message: "try later", Err: cause}, "unavailable db: try later: disk full"},
		{"New", apperr.New(apperr.RateLimited, "slow down, %d requests", 3), "rate_limited: slow down, 3 requests"},
		{"Field", apperr.Field("page_id", "must be %s", "digits"), "invalid page_id: must be digits"},
		{"Wrap", apperr.Wrap(cause, apperr.Upstream, "graph said %q", "no"), `upstream: graph said "no": disk full`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.err.Error()); diff != "" {
				t.Errorf("Error() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	tests := []struct {
		name string
		got  *apperr.Error
		want apperr.Error
	}{
		{"New", apperr.New(apperr.Forbidden, "no %s", "right"), apperr.Error{Code: apperr.Forbidden, Message: "no right"}},
		{"Field", apperr.Field("psid", "is %d bytes", 5), apperr.Error{Code: apperr.Invalid, Field: "psid", Message: "is 5 bytes"}},
		{"Wrap", apperr.Wrap(cause, apperr.Unavailable, "store"), apperr.Error{Code: apperr.Unavailable, Message: "store", Err: cause}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, *tt.got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnwrapAndChains(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	e := apperr.Wrap(cause, apperr.Upstream, "graph")
	if got := e.Unwrap(); got != cause {
		t.Errorf("Unwrap() = %v, want %v", got, cause)
	}
	if got := apperr.New(apperr.NotFound, "x").Unwrap(); got != nil {
		t.Errorf("Unwrap() of an error without cause = %v, want nil", got)
	}

	wrapped := fmt.Errorf("sending: %w", e)
	if !errors.Is(wrapped, cause) {
		t.Error("errors.Is(wrapped, cause) = false, want true through *Error")
	}
	if errors.Is(wrapped, io.EOF) {
		t.Error("errors.Is(wrapped, io.EOF) = true, want false")
	}
	var got *apperr.Error
	if !errors.As(wrapped, &got) {
		t.Fatal("errors.As(wrapped, *apperr.Error) = false")
	}
	if got != e {
		t.Errorf("errors.As found %p, want %p", got, e)
	}
	// An *Error inside an *Error: the outer one is found first.
	outer := apperr.Wrap(fmt.Errorf("inner: %w", apperr.New(apperr.NotFound, "gone")), apperr.Conflict, "outer")
	if diff := cmp.Diff(apperr.Conflict, apperr.CodeOf(fmt.Errorf("x: %w", outer))); diff != "" {
		t.Errorf("CodeOf nested (-want +got):\n%s", diff)
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want apperr.Code
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), apperr.Internal},
		{"plain wrapped", fmt.Errorf("a: %w", io.EOF), apperr.Internal},
		{"Error", apperr.New(apperr.NotFound, "x"), apperr.NotFound},
		{"wrapped Error", fmt.Errorf("a: %w", apperr.Field("psid", "bad")), apperr.Invalid},
		{"twice wrapped Error", fmt.Errorf("a: %w", fmt.Errorf("b: %w", apperr.New(apperr.TooLarge, "big"))), apperr.TooLarge},
		{"joined", errors.Join(io.EOF, apperr.New(apperr.RateLimited, "slow")), apperr.RateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, apperr.CodeOf(tt.err)); diff != "" {
				t.Errorf("CodeOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAs(t *testing.T) {
	t.Run("plain error is hidden", func(t *testing.T) {
		plain := errors.New("password=hunter2 leaked in a driver message")
		got := apperr.As(plain)
		if got.Code != apperr.Internal || got.Message != "internal error" || got.Field != "" {
			t.Errorf("As(plain) = {%q %q %q}, want {internal \"\" \"internal error\"}", got.Code, got.Field, got.Message)
		}
		if got.Err != plain {
			t.Errorf("As(plain).Err = %v, want the plain error kept for logs", got.Err)
		}
		if !errors.Is(got, plain) {
			t.Error("errors.Is(As(plain), plain) = false")
		}
	})
	t.Run("Error in chain is returned as is", func(t *testing.T) {
		e := apperr.Field("psid", "bad")
		if got := apperr.As(fmt.Errorf("ctx: %w", e)); got != e {
			t.Errorf("As(wrapped) = %p (%v), want %p", got, got, e)
		}
	})
}
