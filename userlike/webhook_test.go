package userlike

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readSeed reads a payload recorded from the seed.
func readSeed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode unmarshals JSON into generic values for comparison.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// keys returns an object's keys, sorted.
func keys(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestBuildMatchesSeed checks a start call against the seed's webhook
// example: the same keys in info and packet, the same shapes.
func TestBuildMatchesSeed(t *testing.T) {
	seed := decode(t, readSeed(t, "webhook_start.json")).(map[string]any)
	b, err := Build(Info{CID: "chatbot::258:a56785fb6fb84edd890905913b0c0821", ApproachMode: ApproachProactive}, StartPacket(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, b).(map[string]any)
	if diff := cmp.Diff(keys(seed), keys(got)); diff != "" {
		t.Errorf("top-level keys (-seed +got):\n%s", diff)
	}
	for _, k := range []string{"info", "packet"} {
		if diff := cmp.Diff(keys(seed[k]), keys(got[k])); diff != "" {
			t.Errorf("%s keys (-seed +got):\n%s", k, diff)
		}
	}
	info, seedInfo := got["info"].(map[string]any), seed["info"].(map[string]any)
	for _, k := range []string{"approach_mode", "cid", "context", "widget"} {
		if diff := cmp.Diff(seedInfo[k], info[k]); diff != "" {
			t.Errorf("info.%s (-seed +got):\n%s", k, diff)
		}
	}
	if diff := cmp.Diff(seed["packet"], got["packet"]); diff != "" {
		t.Errorf("packet (-seed +got):\n%s", diff)
	}

	// The channel is where the seed says to look for it.
	channel := decode(t, readSeed(t, "channel_start.json")).(map[string]any)
	seedCC := channel["info"].(map[string]any)["conversation"].(map[string]any)["contact_channel"]
	gotCC := info["conversation"].(map[string]any)["contact_channel"].(map[string]any)
	if gotCC["type"] != ChannelFacebook {
		t.Errorf("contact_channel.type = %v, want facebook", gotCC["type"])
	}
	for k := range gotCC {
		if !slices.Contains(keys(seedCC), k) {
			t.Errorf("contact_channel has key %q the seed does not show", k)
		}
	}
}

func TestBuild(t *testing.T) {
	text := MessagePacket("1234")
	tests := []struct {
		name   string
		info   Info
		packet Packet
		want   string
	}{
		{"defaults", Info{CID: "c1"}, StartPacket(&text), `{
			"info": {"approach_mode": "normal", "cid": "c1",
				"contact": {"custom_fields": {}, "email": null, "external_customer_id": null, "id": null, "mobile_number": null, "name": null},
				"context": {}, "conversation": {"contact_channel": {"type": "facebook"}}, "widget": {}},
			"packet": {"name": "start", "payload": {"body": "1234"}}}`},
		{"everything", Info{
			CID:     "c2",
			Contact: Contact{ID: "psid-1", Name: "Jane Doe", Email: "jane@example.com", MobileNumber: "+49 176", ExternalCustomerID: "crm-7", CustomFields: json.RawMessage(`{"tier":"gold"}`)},
			Context: json.RawMessage(`{"state":"email"}`),
			Conversation: Conversation{ContactChannel: ContactChannel{Type: ChannelFacebook, State: "valid"}, Subject: "Refund",
				Topics: []string{"billing"}, Locale: "de_DE", CustomFields: json.RawMessage(`{"order":42}`)},
		}, MessagePacket("jane@example.com"), `{
			"info": {"approach_mode": "normal", "cid": "c2",
				"contact": {"custom_fields": {"tier": "gold"}, "email": "jane@example.com", "external_customer_id": "crm-7", "id": "psid-1", "mobile_number": "+49 176", "name": "Jane Doe"},
				"context": {"state": "email"},
				"conversation": {"contact_channel": {"type": "facebook", "state": "valid"}, "subject": "Refund", "topics": ["billing"], "locale": "de_DE", "custom_fields": {"order": 42}},
				"widget": {}},
			"packet": {"name": "message", "payload": {"body": "jane@example.com"}}}`},
		{"forward_failed", Info{CID: "c3"}, ForwardFailedPacket(), `{
			"info": {"approach_mode": "normal", "cid": "c3",
				"contact": {"custom_fields": {}, "email": null, "external_customer_id": null, "id": null, "mobile_number": null, "name": null},
				"context": {}, "conversation": {"contact_channel": {"type": "facebook"}}, "widget": {}},
			"packet": {"name": "forward_failed", "payload": {}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Build(tt.info, tt.packet)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.want)), decode(t, b)); diff != "" {
				t.Errorf("call (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildForPythonSample checks that the seed's Python sample can read
// what handoverd sends: it indexes these keys without guarding them.
func TestBuildForPythonSample(t *testing.T) {
	b, err := Build(Info{CID: "c1", Context: json.RawMessage(`{"state":"name"}`)}, MessagePacket("Jane Doe"))
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, b)
	lookup := func(path ...string) (any, bool) {
		v := m
		for _, k := range path {
			o, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = o[k]; !ok {
				return nil, false
			}
		}
		return v, true
	}
	for _, path := range [][]string{{"info", "cid"}, {"packet", "name"}, {"info", "contact", "name"},
		{"info", "contact", "email"}, {"info", "context", "state"}, {"packet", "payload", "body"}} {
		if _, ok := lookup(path...); !ok {
			t.Errorf("message[%q] is missing", path)
		}
	}
	if v, _ := lookup("packet", "payload", "body"); v != "Jane Doe" {
		t.Errorf("body = %v", v)
	}
}

func TestBuildInvalid(t *testing.T) {
	tests := []struct {
		name   string
		info   Info
		packet Packet
		field  string
	}{
		{"no cid", Info{}, MessagePacket("x"), "info.cid"},
		{"approach mode", Info{CID: "c", ApproachMode: "sneaky"}, MessagePacket("x"), "info.approach_mode"},
		{"context a list", Info{CID: "c", Context: json.RawMessage(`[]`)}, MessagePacket("x"), "info.context"},
		{"widget a string", Info{CID: "c", Widget: json.RawMessage(`"w"`)}, MessagePacket("x"), "info.widget"},
		{"contact custom fields", Info{CID: "c", Contact: Contact{CustomFields: json.RawMessage(`1`)}}, MessagePacket("x"), "info.contact.custom_fields"},
		{"conversation custom fields", Info{CID: "c", Conversation: Conversation{CustomFields: json.RawMessage(`[1]`)}}, MessagePacket("x"), "info.conversation.custom_fields"},
		{"unknown packet", Info{CID: "c"}, Packet{Name: "bubbles"}, "packet.name"},
		{"payload a list", Info{CID: "c"}, Packet{Name: PacketMessage, Payload: json.RawMessage(`[]`)}, "packet.payload"},
		{"payload not JSON", Info{CID: "c"}, Packet{Name: PacketMessage, Payload: json.RawMessage(`{`)}, "packet.payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.info, tt.packet)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if field, _ := invalidField(t, err); field != tt.field {
				t.Errorf("field = %q, want %q", field, tt.field)
			}
		})
	}
}

func TestPackets(t *testing.T) {
	text := MessagePacket("hello")
	media := MediaPacket(MediaPayload{Link: "https://cdn.example/a.jpg", MimeType: "image/jpeg"})
	tests := []struct {
		name string
		got  Packet
		want string // name and payload
	}{
		{"message", text, `{"name":"message","payload":{"body":"hello"}}`},
		{"media", media, `{"name":"media","payload":{"link":"https://cdn.example/a.jpg","mime_type":"image/jpeg"}}`},
		{"media with filename", MediaPacket(MediaPayload{Link: "https://x.example/f", Filename: "f.bin"}), `{"name":"media","payload":{"link":"https://x.example/f","filename":"f.bin"}}`},
		{"click", ClickPacket(Option{Label: "Delivery status", Value: "delivery"}), `{"name":"click","payload":{"label":"Delivery status","value":"delivery"}}`},
		{"click value defaults to label", ClickPacket(Option{Label: "Returns"}), `{"name":"click","payload":{"label":"Returns","value":"Returns"}}`},
		{"location", LocationPacket(Location{Latitude: 52.52, Longitude: 13.405, Name: "Berlin"}), `{"name":"location","payload":{"latitude":52.52,"longitude":13.405,"name":"Berlin"}}`},
		{"forward_failed", ForwardFailedPacket(), `{"name":"forward_failed","payload":{}}`},
		{"start without message", StartPacket(nil), `{"name":"start","payload":{}}`},
		{"start with text", StartPacket(&text), `{"name":"start","payload":{"body":"hello"}}`},
		{"start with upload", StartPacket(&media), `{"name":"start","payload":{"link":"https://cdn.example/a.jpg","mime_type":"image/jpeg"}}`},
		{"late click as message", ClickAsMessage(ClickPacket(Option{Label: "Returns", Value: "r"})), `{"name":"message","payload":{"body":"Returns"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.want)), decode(t, b)); diff != "" {
				t.Errorf("packet (-want +got):\n%s", diff)
			}
		})
	}
	// StartPacket copies: changing the first message later does not change it.
	first := MessagePacket("x")
	start := StartPacket(&first)
	first.Payload[2] = 'X'
	if string(start.Payload) != `{"body":"x"}` {
		t.Errorf("start payload shares memory: %s", start.Payload)
	}
}

func TestAttachmentPacket(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		url     string
		payload string
		want    string // "" for not converted
	}{
		{"image", "image", "https://scontent.example/v/t1/12345_n.jpg?stp=dst&oh=1", `{"url":"…"}`,
			`{"name":"media","payload":{"link":"https://scontent.example/v/t1/12345_n.jpg?stp=dst&oh=1","mime_type":"image/jpeg","filename":"12345_n.jpg"}}`},
		{"video", "video", "https://cdn.example/clip.MP4", "",
			`{"name":"media","payload":{"link":"https://cdn.example/clip.MP4","mime_type":"video/mp4","filename":"clip.MP4"}}`},
		{"audio", "audio", "https://cdn.example/a/voice_clip", "",
			`{"name":"media","payload":{"link":"https://cdn.example/a/voice_clip"}}`},
		{"file", "file", "https://cdn.example/Invoice.pdf", "",
			`{"name":"media","payload":{"link":"https://cdn.example/Invoice.pdf","mime_type":"application/pdf","filename":"Invoice.pdf"}}`},
		{"location", "location", "", `{"title":"Pinned","coordinates":{"lat":52.52,"long":13.405}}`,
			`{"name":"location","payload":{"latitude":52.52,"longitude":13.405,"name":"Pinned"}}`},
		{"location at zero", "location", "", `{"coordinates":{"lat":0,"long":0}}`,
			`{"name":"location","payload":{"latitude":0,"longitude":0}}`},
		{"location without coordinates", "location", "", `{"title":"x"}`, ""},
		{"image without url", "image", "", `{}`, ""},
		{"template", "template", "", `{"template_type":"generic"}`, ""},
		{"fallback", "fallback", "https://example.com", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := AttachmentPacket(tt.typ, tt.url, json.RawMessage(tt.payload))
			if ok != (tt.want != "") {
				t.Fatalf("ok = %v, packet %+v", ok, p)
			}
			if !ok {
				return
			}
			b, _ := json.Marshal(p)
			if diff := cmp.Diff(decode(t, []byte(tt.want)), decode(t, b)); diff != "" {
				t.Errorf("packet (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContactApply(t *testing.T) {
	c := Contact{ID: "1", Name: "Old", Email: "old@example.com", CustomFields: json.RawMessage(`{"a":1,"b":2}`)}
	got, err := c.Apply(ContactUpdate{Name: "Jane", MobileNumber: "+1", CustomFields: json.RawMessage(`{"b":null,"c":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := Contact{ID: "1", Name: "Jane", Email: "old@example.com", MobileNumber: "+1", CustomFields: json.RawMessage(`{"a":1,"c":"x"}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contact (-want +got):\n%s", diff)
	}
	got, _ = got.Apply(ContactUpdate{ExternalCustomerID: "crm", CustomFields: json.RawMessage(`{"a":null,"c":null}`)})
	if got.ExternalCustomerID != "crm" || got.CustomFields != nil || got.Name != "Jane" {
		t.Errorf("second update: %+v", got)
	}
	if _, err := (Contact{CustomFields: json.RawMessage(`[1]`)}).Apply(ContactUpdate{CustomFields: json.RawMessage(`{"a":1}`)}); err == nil {
		t.Error("a broken stored custom_fields was merged")
	}
}

func TestConversationApply(t *testing.T) {
	c := Conversation{ContactChannel: ContactChannel{Type: ChannelFacebook}, Subject: "Old", Topics: []string{"a"}}
	got, err := c.Apply(ConversationUpdate{Locale: "de_DE", CustomFields: json.RawMessage(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := Conversation{ContactChannel: ContactChannel{Type: ChannelFacebook}, Subject: "Old", Topics: []string{"a"}, Locale: "de_DE", CustomFields: json.RawMessage(`{"x":1}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conversation (-want +got):\n%s", diff)
	}
	got, _ = got.Apply(ConversationUpdate{Subject: "New", Topics: []string{}})
	if got.Subject != "New" || got.Topics == nil || len(got.Topics) != 0 {
		t.Errorf("second update: %+v", got)
	}
}
