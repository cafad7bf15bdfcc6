package inbox

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/httpapi"
)

// FuzzAPIDecoders: every JSON request body of the inbox API goes through
// the shared decoder without a panic; an accepted body decodes again,
// from its own encoding, into the same value, and the field checks that
// need no store do not panic on it.
func FuzzAPIDecoders(f *testing.F) {
	seeds := []string{
		`{"name":"API","channel":{"type":"api","webhook_url":"https://example.com/h"}}`,
		`{"inbox_id":1,"name":"Ann","email":"a@b.c","custom_attributes":{"plan":"gold"}}`,
		`{"source_id":"abc","inbox_id":"1","contact_id":2,"additional_attributes":{},"status":"open","assignee_id":1}`,
		`{"content":"hi","message_type":"outgoing","private":false,"content_type":"text","content_attributes":{}}`,
		`{"content":"hi","message_type":1}`,
		`{"assignee_id":"3"}`,
		`{"status":"resolved"}`,
		`{"name":"a\u0000"}{}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		switch which % 6 {
		case 0:
			var in struct {
				Name    string `json:"name"`
				Channel struct {
					Type       string `json:"type"`
					WebhookURL string `json:"webhook_url"`
				} `json:"channel"`
			}
			roundTrip(t, body, &in)
		case 1:
			var in ContactInput
			if roundTrip(t, body, &in) {
				_, _ = jsonObject("custom_attributes", in.CustomAttributes)
			}
		case 2:
			var in ConversationInput
			if roundTrip(t, body, &in) {
				_, _ = jsonObject("additional_attributes", in.AdditionalAttributes)
				_, _ = jsonObject("custom_attributes", in.CustomAttributes)
			}
		case 3:
			var in MessageInput
			if roundTrip(t, body, &in) {
				_, _ = parseMessageType(in.MessageType)
				_, _ = jsonObject("content_attributes", in.ContentAttributes)
			}
		case 4:
			var in struct {
				AssigneeID FlexID `json:"assignee_id"`
			}
			roundTrip(t, body, &in)
		case 5:
			var in struct {
				Status string `json:"status"`
			}
			roundTrip(t, body, &in)
		}
	})
}

// roundTrip decodes body into v; when accepted, v's encoding must decode
// (with the same checks) into an equal value. It reports acceptance.
func roundTrip(t *testing.T, body []byte, v any) bool {
	t.Helper()
	if httpapi.DecodeBody(body, v) != nil {
		return false
	}
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		t.Fatalf("an accepted value does not encode: %v", err)
	}
	first := cloneJSON(t, v)
	again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := httpapi.DecodeBody(enc.Bytes(), again); err != nil {
		t.Fatalf("the accepted value's encoding %s is refused: %v", enc.Bytes(), err)
	}
	if diff := cmp.Diff(first, cloneJSON(t, again)); diff != "" {
		t.Fatalf("round trip (-accepted +again):\n%s", diff)
	}
	return true
}

// cloneJSON is v's generic JSON form, for comparing values semantically.
func cloneJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
