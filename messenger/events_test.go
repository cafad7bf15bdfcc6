package messenger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/handoverd/handoverd/messenger"
)

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestParseWebhookRecordedPayloads(t *testing.T) {
	ts := ms(1458692752478)
	tests := []struct {
		file string
		want []messenger.Event
	}{
		{"message.json", []messenger.Event{{
			Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			Message: &messenger.Message{MID: "m_text1", Text: "hello, world!", QuickReplyPayload: "DEVELOPER_DEFINED_PAYLOAD", ReplyToMID: "m_prev"},
		}}},
		{"attachments.json", []messenger.Event{{
			Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			Message: &messenger.Message{MID: "m_att1", Attachments: []messenger.Attachment{
				{Type: "image", URL: "https://scontent.example/img.jpg"}, {Type: "location"}}},
		}}},
		{"echo_standby.json", []messenger.Event{{
			// A string timestamp in seconds, a numeric app id, PSID taken from the recipient.
			Kind: messenger.KindEcho, Channel: messenger.ChannelStandby, PageID: "1001", PSID: "5001", Time: ms(1458692752000),
			Message: &messenger.Message{MID: "m_echo1", Text: "an agent typed this in the Page Inbox", IsEcho: true, AppID: "263902037430900"},
		}}},
		{"pass_thread_control.json", []messenger.Event{{
			Kind: messenger.KindPass, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			Handover: &messenger.Handover{NewOwnerAppID: "123456789", Metadata: "Additional content that the caller wants to set"},
		}}},
		{"take_thread_control.json", []messenger.Event{{
			Kind: messenger.KindTake, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			Handover: &messenger.Handover{PreviousOwnerAppID: "123456789", NewOwnerAppID: "263902037430900", Metadata: "taken"},
		}}},
		{"request_thread_control.json", []messenger.Event{{
			Kind: messenger.KindRequest, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			Handover: &messenger.Handover{RequestedOwnerAppID: "123456789", Metadata: "please"},
		}}},
		{"app_roles.json", []messenger.Event{{
			Kind: messenger.KindAppRoles, Channel: messenger.ChannelMessaging, PageID: "1001", Time: ts,
			AppRoles: map[string][]string{"123456789": {"primary_receiver"}, "222": {"secondary_receiver"}},
		}}},
		{"postback_standby.json", []messenger.Event{{
			Kind: messenger.KindPostback, Channel: messenger.ChannelStandby, PageID: "1001", PSID: "5001", Time: ts,
			Postback: &messenger.Postback{MID: "m_pb1", Title: "Talk to a human"},
			Referral: &messenger.Referral{Ref: "promo", Source: "SHORTLINK", Type: "OPEN_THREAD"},
		}}},
		{"referral.json", []messenger.Event{{
			Kind: messenger.KindReferral, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			Referral: &messenger.Referral{Ref: "summer", Source: "ADS", Type: "OPEN_THREAD"},
		}}},
		{"delivery_read.json", []messenger.Event{
			{Kind: messenger.KindDelivery, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ms(1458692752500),
				MIDs: []string{"m_a", "m_b"}, Watermark: ms(1458668856253)},
			{Kind: messenger.KindRead, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ms(1458692752600),
				Watermark: ms(1458668856000)},
		}},
		{"unknown_kind.json", []messenger.Event{{
			Kind: messenger.KindUnknown, Channel: messenger.ChannelMessaging, PageID: "1001", PSID: "5001", Time: ts,
			UnknownKeys: []string{"reaction"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := messenger.ParseWebhook(body)
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if b.Object != "page" {
				t.Errorf("object = %q, want page", b.Object)
			}
			opts := cmp.Options{
				cmpopts.IgnoreFields(messenger.Event{}, "Raw"),
				cmpopts.IgnoreFields(messenger.Attachment{}, "Payload"),
			}
			if diff := cmp.Diff(tt.want, b.Events, opts); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			for i, ev := range b.Events {
				if !json.Valid(ev.Raw) {
					t.Errorf("event %d: Raw is not the item's JSON: %q", i, ev.Raw)
				}
			}
		})
	}
}

func TestParseWebhookReadsEveryEntryAndItem(t *testing.T) {
	body, err := os.ReadFile("testdata/batch_2x3.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := messenger.ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range b.Events {
		got = append(got, string(ev.Channel)+":"+ev.PSID+":"+ev.Message.MID)
	}
	want := []string{"messaging:5001:m_b1", "messaging:5002:m_b2", "messaging:5003:m_b3",
		"standby:5004:m_b4", "standby:5005:m_b5", "standby:5006:m_b6"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseWebhookTimestamps(t *testing.T) {
	tests := []struct {
		name, ts string
		want     time.Time
	}{
		{"ms number", `1700000000123`, ms(1700000000123)},
		{"ms string", `"1700000000123"`, ms(1700000000123)},
		{"s number", `1700000000`, ms(1700000000000)},
		{"s string", `"1700000000"`, ms(1700000000000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":` + tt.ts + `,"message":{"mid":"m"}}]}]}`
			b, err := messenger.ParseWebhook([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if got := b.Events[0].Time; !got.Equal(tt.want) {
				t.Errorf("time = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseWebhookRejectsMalformedEnvelope(t *testing.T) {
	tests := map[string]string{
		"not json":         `{"object":`,
		"no entry":         `{"object":"page"}`,
		"entry without id": `{"object":"page","entry":[{"messaging":[]}]}`,
		"second object":    `{"object":"page","entry":[]}{"object":"page","entry":[]}`,
		"trailing garbage": `{"object":"page","entry":[]}garbage`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := messenger.ParseWebhook([]byte(body))
			if !errors.Is(err, messenger.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestParseWebhookKeepsGoodItemsBesideBadOnes: an unreadable item is
// reported, and the other items of the same webhook are still read.
func TestParseWebhookKeepsGoodItemsBesideBadOnes(t *testing.T) {
	bad := map[string]string{
		"message without id": `{"sender":{"id":"2"},"timestamp":1,"message":{"text":"x"}}`,
		"no timestamp":       `{"sender":{"id":"2"},"message":{"mid":"m"}}`,
		"bad timestamp":      `{"sender":{"id":"2"},"timestamp":"soon","message":{"mid":"m"}}`,
		"no sender":          `{"timestamp":1,"message":{"mid":"m"}}`,
		"app id of bad type": `{"sender":{"id":"2"},"timestamp":1,"pass_thread_control":{"new_owner_app_id":{}}}`,
		"guest user_ref":     `{"sender":{"user_ref":"abc"},"recipient":{"id":"1"},"timestamp":1,"referral":{"ref":"x","source":"CUSTOMER_CHAT_PLUGIN"}}`,
		// Times out of range (year 10000, 1e16, 1e30, NaN, Inf, before 2004).
		"year 10000":     `{"sender":{"id":"2"},"timestamp":253402300801000,"message":{"mid":"m"}}`,
		"1e16":           `{"sender":{"id":"2"},"timestamp":1e16,"message":{"mid":"m"}}`,
		"1e30":           `{"sender":{"id":"2"},"timestamp":1e30,"message":{"mid":"m"}}`,
		"NaN":            `{"sender":{"id":"2"},"timestamp":"NaN","message":{"mid":"m"}}`,
		"Inf":            `{"sender":{"id":"2"},"timestamp":"+Inf","message":{"mid":"m"}}`,
		"1970":           `{"sender":{"id":"2"},"timestamp":1000,"message":{"mid":"m"}}`,
		"watermark 1e30": `{"sender":{"id":"2"},"timestamp":1700000000000,"read":{"watermark":1e30}}`,
		// What a store cannot hold.
		"NUL in text":   `{"sender":{"id":"2"},"timestamp":1700000000000,"message":{"mid":"m","text":"a\u0000b"}}`,
		"NUL in psid":   `{"sender":{"id":"2\u0000"},"timestamp":1700000000000,"message":{"mid":"m"}}`,
		"invalid UTF-8": "{\"sender\":{\"id\":\"2\"},\"timestamp\":1700000000000,\"message\":{\"mid\":\"m\",\"text\":\"\xff\xfe\"}}",
		"500 KB mid":    `{"sender":{"id":"2"},"timestamp":1700000000000,"message":{"mid":"` + strings.Repeat("m", 500<<10) + `"}}`,
		"2 KB psid":     `{"sender":{"id":"` + strings.Repeat("7", 2048) + `"},"timestamp":1700000000000,"message":{"mid":"m"}}`,
	}
	good := `{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1700000000000,"message":{"mid":"m_good","text":"ok"}}`
	for name, item := range bad {
		t.Run(name, func(t *testing.T) {
			body := `{"object":"page","entry":[{"id":"1","messaging":[` + item + `,` + good + `]}]}`
			b, err := messenger.ParseWebhook([]byte(body))
			if err != nil {
				t.Fatalf("err = %v, want the batch read", err)
			}
			if len(b.Events) != 1 || b.Events[0].Message.MID != "m_good" {
				t.Errorf("events = %+v, want the good message", b.Events)
			}
			if len(b.Malformed) != 1 || b.Malformed[0].Where != "entry[0].messaging[0]" || !errors.Is(b.Malformed[0].Err, messenger.ErrMalformed) {
				t.Errorf("malformed = %+v, want entry[0].messaging[0]", b.Malformed)
			}
		})
	}
}

// TestParseWebhookDropsEntryWithUnstorableID: an entry whose id cannot be
// stored drops its own items only.
func TestParseWebhookDropsEntryWithUnstorableID(t *testing.T) {
	item := `{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1700000000000,"message":{"mid":"m_%s"}}`
	body := `{"object":"page","entry":[{"id":"1\u0000","messaging":[` + fmt.Sprintf(item, "a") + `]},{"id":"` + strings.Repeat("9", 2048) + `","standby":[` +
		fmt.Sprintf(item, "b") + `]},{"id":"1","messaging":[` + fmt.Sprintf(item, "c") + `]}]}`
	b, err := messenger.ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || b.Events[0].Message.MID != "m_c" {
		t.Errorf("events = %+v, want m_c only", b.Events)
	}
	var where []string
	for _, m := range b.Malformed {
		where = append(where, m.Where)
		if m.PageID != "" {
			t.Errorf("malformed %s keeps the unstorable page id", m.Where)
		}
	}
	if diff := cmp.Diff([]string{"entry[0].messaging[0]", "entry[1].standby[0]"}, where); diff != "" {
		t.Errorf("malformed (-want +got):\n%s", diff)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"object":"page","entry":[{"id":"1","messaging":[{"text":"\u00e4\u00f6\u00e5"}]}]}`)
	good := messenger.SignatureHeader("s3cret", body)
	tests := []struct {
		name, header string
		ok           bool
	}{
		{"valid", good, true},
		{"missing", "", false},
		{"sha1 prefix", "sha1=" + good[7:], false},
		{"not hex", "sha256=zz", false},
		{"wrong secret", messenger.SignatureHeader("other", body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := messenger.VerifySignature("s3cret", body, tt.header)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	// The signature covers the raw bytes: re-encoding the JSON breaks it.
	var v any
	_ = json.Unmarshal(body, &v)
	reencoded, _ := json.Marshal(v)
	if messenger.VerifySignature("s3cret", reencoded, good) == nil {
		t.Error("signature verified over re-encoded JSON; it must cover the raw bytes")
	}
}

// TestEventTimeFallsBack: Meta documents delivery receipts without a
// timestamp; such an event happened at its watermark. An item without a
// timestamp otherwise takes the entry's time.
func TestEventTimeFallsBack(t *testing.T) {
	body := `{"object":"page","entry":[{"id":"1","time":1700000009000,"messaging":[
		{"sender":{"id":"2"},"recipient":{"id":"1"},"delivery":{"mids":["m_1"],"watermark":1700000005000}},
		{"sender":{"id":"2"},"recipient":{"id":"1"},"delivery":{"watermark":1700000006000,"seq":37}},
		{"sender":{"id":"2"},"recipient":{"id":"1"},"message":{"mid":"m_2","text":"no timestamp"}}]}]}`
	b, err := messenger.ParseWebhook([]byte(body))
	if err != nil || len(b.Malformed) != 0 {
		t.Fatalf("err = %v, malformed = %+v", err, b.Malformed)
	}
	var got []time.Time
	for _, ev := range b.Events {
		got = append(got, ev.Time)
	}
	if diff := cmp.Diff([]time.Time{ms(1700000005000), ms(1700000006000), ms(1700000009000)}, got); diff != "" {
		t.Errorf("event times (-want +got):\n%s", diff)
	}
}
