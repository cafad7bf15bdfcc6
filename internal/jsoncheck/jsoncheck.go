// Package jsoncheck validates JSON text once, at the edge, the same way for
// both stores: exactly one value (nothing but whitespace after it), every
// string and key valid UTF-8 without NUL (PostgreSQL's text cannot hold
// it), identifiers short enough for an index, other strings bounded. A
// problem names the offending field by its path (e.g. "message.mid",
// "entry[0].messaging[2]").
package jsoncheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bounds string lengths, in bytes.
type Limits struct {
	// MaxID bounds identifiers: values of keys named id, mid, cid,
	// identifier, mids, *_id and *_ids.
	MaxID int
	// MaxString bounds every other string.
	MaxString int
}

// Default are the limits the webhook edge and the APIs apply: ids are
// kept well inside PostgreSQL's b-tree row limit (about 2,700 bytes).
var Default = Limits{MaxID: 1024, MaxString: 64 << 10}

// Problem is what is wrong with JSON text, and where.
type Problem struct {
	// Field is the offending value's path ("body" for the text as a whole).
	Field string
	// Message says what is wrong with it.
	Message string
}

// Error implements error.
func (p *Problem) Error() string { return p.Field + " " + p.Message }

// ErrTrailing is the message for data after the JSON value.
const ErrTrailing = "has data after the JSON value"

type frame struct {
	object    bool
	expectKey bool
	key       string
	index     int
}

// Value checks b; it returns nil when b is one acceptable JSON value.
func Value(b []byte, l Limits) *Problem {
	// Fast path: text no longer than an id, valid UTF-8, without a \u0000
	// escape and valid JSON holds no string over a limit and no NUL.
	if len(b) <= l.MaxID && len(b) <= l.MaxString && utf8.Valid(b) && !bytes.Contains(b, []byte(`\u0000`)) && json.Valid(b) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	prev := int64(0)
	done := false
	for {
		tok, err := dec.Token()
		if done {
			if err == io.EOF {
				return nil
			}
			return &Problem{Field: "body", Message: ErrTrailing}
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("unexpected end of JSON input")
			}
			return &Problem{Field: "body", Message: "is not valid JSON: " + err.Error()}
		}
		raw := b[prev:dec.InputOffset()]
		prev = dec.InputOffset()
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				f := &frame{object: d == '{', expectKey: d == '{'}
				if d == '[' && top != nil && top.object {
					f.key = top.key // a list of ids is checked as ids
				}
				stack = append(stack, f)
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					done = true
				} else {
					valueDone(stack[len(stack)-1])
				}
				continue
			}
		}
		if top != nil && top.object && top.expectKey {
			key, _ := tok.(string)
			if msg := problem(key, raw, l.MaxString); msg != "" {
				return &Problem{Field: orBody(path(stack, false)), Message: msg}
			}
			top.key, top.expectKey = key, false
			continue
		}
		if s, ok := tok.(string); ok {
			limit := l.MaxString
			if top != nil && isIDKey(top.key) {
				limit = l.MaxID
			}
			if msg := problem(s, raw, limit); msg != "" {
				return &Problem{Field: orBody(path(stack, true)), Message: msg}
			}
		}
		if top == nil {
			done = true
		} else {
			valueDone(top)
		}
	}
}

// valueDone advances a container past one value.
func valueDone(f *frame) {
	if f.object {
		f.expectKey = true
	} else {
		f.index++
	}
}

// problem says what is wrong with a string (raw: its JSON text), or "".
func problem(s string, raw []byte, limit int) string {
	switch {
	case !utf8.Valid(raw):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL character"
	case len(s) > limit:
		return fmt.Sprintf("is over %d bytes", limit)
	}
	return ""
}

func orBody(field string) string {
	if field == "" {
		return "body"
	}
	return field
}

// path names the value being read: keys joined by dots, array elements
// as [i]. leaf includes the innermost container's current key or index.
func path(stack []*frame, leaf bool) string {
	var b strings.Builder
	for i, f := range stack {
		if i == len(stack)-1 && !leaf {
			break
		}
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return b.String()
}

// isIDKey reports whether a key names an identifier (or a list of them).
func isIDKey(k string) bool {
	switch k {
	case "id", "mid", "cid", "identifier", "mids", "ids":
		return true
	}
	return strings.HasSuffix(k, "_id") || strings.HasSuffix(k, "_ids")
}

// String checks one string (a path variable or query parameter): valid
// UTF-8, no NUL, at most limit bytes. It returns "" or what is wrong.
func String(s string, limit int) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	return problem(s, nil, limit)
}
