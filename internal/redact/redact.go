// Package redact strips what may carry secrets from text bound for logs
// and for people: the user information, query string and fragment of
// webhook URLs, where passwords and tokens often travel.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// Error is err's text with the secrets of any URL in it removed (see URL).
func Error(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		c := *ue
		c.URL = URL(c.URL)
		return c.Error()
	}
	return err.Error()
}

// URL keeps scheme, host and path: user information
// (https://user:password@host/) and query strings may carry secrets.
func URL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if scheme, rest, ok := strings.Cut(u, "://"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(host, "@"); at >= 0 {
			u = scheme + "://" + host[at+1:]
			if path != "" || strings.Contains(rest, "/") {
				u += "/" + path
			}
		}
	}
	return u
}
