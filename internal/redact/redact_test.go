package redact_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/internal/redact"
)

func TestError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"a URL's query string goes", &url.Error{Op: "Post", URL: "https://bot.example/hook?token=s3cret#x", Err: errors.New("refused")},
			`Post "https://bot.example/hook": refused`},
		{"a URL without one stays", &url.Error{Op: "Post", URL: "https://bot.example/hook", Err: errors.New("refused")},
			`Post "https://bot.example/hook": refused`},
		{"a URL's user and password go", &url.Error{Op: "Post", URL: "https://hook:s3cret@bot.example/hook?x=1", Err: errors.New("refused")},
			`Post "https://bot.example/hook": refused`},
		{"and without a path", &url.Error{Op: "Post", URL: "http://hook:s3cret@bot.example", Err: errors.New("refused")},
			`Post "http://bot.example": refused`},
		{"other errors are left alone", errors.New("HTTP 503"), "HTTP 503"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, redact.Error(c.err)); diff != "" {
				t.Errorf("Error (-want +got):\n%s", diff)
			}
		})
	}
}
