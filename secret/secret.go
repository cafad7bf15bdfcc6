// Package secret holds the Secret type: a string that never prints, for app
// secrets, tokens and webhook keys in configuration.
package secret

import (
	"fmt"
	"io"
)

// Secret is a string that never prints: fmt, encoding/json, encoding/text and
// zerolog all see a redaction marker. Call Reveal to use the value.
//
// Two places the type cannot guard: encoding/json writes map keys of a
// string type as they are (so a Secret must not key a map that is
// encoded), and fmt prints unexported struct fields without calling their
// methods (so a struct that may be printed holds a Secret in an exported
// field).
type Secret string

const redacted = "<redacted>"

// Reveal returns the secret's value; only call sites that send it to its
// destination (HMAC keys, the Graph API) should call it.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer with a redaction marker.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer so %#v does not print the value either.
func (s Secret) GoString() string { return `secret.Secret("` + s.String() + `")` }

// Format implements fmt.Formatter so that every verb prints the marker,
// also verbs that do not apply to strings (%d would otherwise show the
// value in its error text).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalText implements encoding.TextMarshaler with the redaction marker.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler with the redaction marker.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }
