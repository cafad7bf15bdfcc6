package userlike

import (
	"bytes"
	"encoding/json"

	"github.com/handoverd/handoverd/apperr"
)

// MaxContextBytes is the largest context object a bot may set: the seed's
// "not bigger than 10 KB", counted as 10,240 bytes of compact JSON.
const MaxContextBytes = 10 * 1024

// MergeContext applies a bot's context update to the stored context and
// returns the context to store and echo in later webhook calls. Per the seed a
// new context replaces the old one completely, and an empty one (absent,
// null or {}) is ignored, so old is returned. The update must be a JSON object
// of at most MaxContextBytes (compacted); otherwise the error is Invalid and
// names "context". The result is compact JSON.
func MergeContext(old, update json.RawMessage) (json.RawMessage, error) {
	ctx, err := normalizeContext(update, "context")
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		return old, nil
	}
	return ctx, nil
}

// normalizeContext checks a context found at field and returns it compacted,
// or nil when it is absent, null or an empty object.
func normalizeContext(raw json.RawMessage, field string) (json.RawMessage, *apperr.Error) {
	if isNull(raw) {
		return nil, nil
	}
	t := bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if t[0] != '{' || json.Unmarshal(t, &m) != nil {
		return nil, apperr.Field(field, "must be a JSON object")
	}
	if len(m) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, t); err != nil {
		return nil, apperr.Field(field, "must be a JSON object")
	}
	if b.Len() > MaxContextBytes {
		return nil, apperr.Field(field, "must not be bigger than 10 KB (%d bytes of compact JSON), got %d bytes", MaxContextBytes, b.Len())
	}
	return b.Bytes(), nil
}
