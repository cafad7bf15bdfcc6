package userlike

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/handoverd/handoverd/apperr"
)

// reader collects the first problem found while reading a JSON document
// field by field, as an Invalid error naming the field's path. Reading goes
// on after a problem (returning zero values) so callers need not check after
// every field.
type reader struct {
	err *apperr.Error
}

func (r *reader) fail(field, format string, args ...any) {
	if r.err == nil {
		r.err = apperr.Field(field, format, args...)
	}
}

// object is one JSON object being read.
type object struct {
	r    *reader
	path string
	m    map[string]json.RawMessage
}

// join appends key to path with a dot ("" stays "").
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// object reads raw, found at path, as a JSON object. Absent or null reads as
// an empty object, which is a problem when required.
func (r *reader) object(raw json.RawMessage, path string, required bool) *object {
	o := &object{r: r, path: path}
	if isNull(raw) {
		if required {
			r.fail(path, "is required")
		}
		return o
	}
	if t := bytes.TrimSpace(raw); t[0] != '{' || json.Unmarshal(t, &o.m) != nil {
		r.fail(path, "must be a JSON object")
		o.m = nil
	}
	return o
}

// key returns the path of the object's key k.
func (o *object) key(k string) string { return join(o.path, k) }

// raw returns the value of k, nil when absent or null.
func (o *object) raw(k string) json.RawMessage {
	v := o.m[k]
	if isNull(v) {
		return nil
	}
	return v
}

// has reports whether k is present and not null.
func (o *object) has(k string) bool { return o.raw(k) != nil }

// child reads k as a nested object.
func (o *object) child(k string, required bool) *object {
	return o.r.object(o.raw(k), o.key(k), required)
}

// str reads k as a string ("" when absent or null).
func (o *object) str(k string) string { return o.r.str(o.raw(k), o.key(k)) }

// str reads raw, found at path, as a string ("" when absent or null).
func (r *reader) str(raw json.RawMessage, path string) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		r.fail(path, "must be a string")
		return ""
	}
	return s
}

// text reads k as a string of at most limit characters; required means it
// must not be empty or blank.
func (o *object) text(k string, required bool, limit int) string {
	return o.r.text(o.raw(k), o.key(k), required, limit)
}

// text reads raw, found at path, as a string of at most limit characters.
func (r *reader) text(raw json.RawMessage, path string, required bool, limit int) string {
	s := r.str(raw, path)
	switch {
	case required && isBlank(s):
		r.fail(path, "is required")
	case utf8.RuneCountInString(s) > limit:
		r.fail(path, "must be at most %d characters, got %d", limit, utf8.RuneCountInString(s))
	}
	return s
}

// id reads k as an identifier given as a string or an integer.
func (o *object) id(k string) string { return o.r.id(o.raw(k), o.key(k)) }

// id reads raw, found at path, as an identifier given as a string or an
// integer.
func (r *reader) id(raw json.RawMessage, path string) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return n.String()
		}
	}
	r.fail(path, "must be a string or an integer")
	return ""
}

// number reads k as a JSON number; ok is false when absent.
func (o *object) number(k string) (v float64, ok bool) {
	raw := o.raw(k)
	if raw == nil {
		return 0, false
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		o.r.fail(o.key(k), "must be a number")
		return 0, false
	}
	return v, true
}

// boolean reads k as true or false; def when absent.
func (o *object) boolean(k string, def bool) bool {
	raw := o.raw(k)
	if raw == nil {
		return def
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		o.r.fail(o.key(k), "must be true or false")
		return def
	}
	return b
}

// list reads k as a JSON array.
func (o *object) list(k string) []json.RawMessage {
	raw := o.raw(k)
	if raw == nil {
		return nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		o.r.fail(o.key(k), "must be a list")
		return nil
	}
	return l
}

// rawObject reads k as any JSON object and returns it compacted (nil when
// absent, null or empty).
func (o *object) rawObject(k string) json.RawMessage {
	c := o.child(k, false)
	if len(c.m) == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, o.raw(k)); err != nil {
		o.r.fail(o.key(k), "must be a JSON object")
		return nil
	}
	return b.Bytes()
}

// link reads k as an absolute http(s) URL.
func (o *object) link(k string, required bool) string {
	s := o.str(k)
	switch {
	case s == "":
		if required {
			o.r.fail(o.key(k), "is required")
		}
	case !isWebURL(s):
		o.r.fail(o.key(k), "must be an absolute http(s) URL, got %q", truncate(s, 100))
	case utf8.RuneCountInString(s) > maxURL:
		o.r.fail(o.key(k), "must be at most %d characters", maxURL)
	}
	return s
}

// maxURL is the longest URL a bot may send.
const maxURL = 2000

// isWebURL reports whether s is an absolute http or https URL with a host.
func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// isBlank reports whether s has no characters other than white space.
func isBlank(s string) bool {
	for _, r := range s {
		if !isSpace(r) {
			return false
		}
	}
	return true
}

// truncate shortens s to at most n characters, for messages.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// index formats path[i].
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
