// Package redact strips what may carry secrets from text bound for logs
// and for people: the query string (and fragment) of webhook URLs, where
// tokens often travel.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// Error is err's text with the query string of any URL in it removed.
func Error(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		c := *ue
		c.URL = URL(c.URL)
		return c.Error()
	}
	return err.Error()
}

// URL keeps scheme, host and path: query strings may carry tokens.
func URL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
