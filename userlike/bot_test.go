package userlike

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // time zones in tests do not depend on the machine

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

const botYAML = `
relay_bots:
  - name: rasa-support
    pages: ["1234567890", 2345678901]
    webhook_url: https://bot.example/userlike/webhook
    webhook_headers:
      X-Bot-Token: header-secret
    api_token: 0123456789abcdef0123
    mode: service_time
    schedule:
      time_zone: Europe/Berlin
      monday: ["09:00-12:00", "13:00-17:30"]
      friday: ["09:00-15:00", "22:00-02:00"]
    chat_slots: 20
    conversation_timeout: 15m
    timeout_action: unassign
  - name: night_owl
    pages: ["3456789012"]
    webhook_url: http://127.0.0.1:5005/webhook
    mode: backup
`

// validBot is the first bot of botYAML.
func validBot() Bot {
	return Bot{
		Name:           "rasa-support",
		Pages:          []string{"1234567890", "2345678901"},
		WebhookURL:     "https://bot.example/userlike/webhook",
		WebhookHeaders: map[string]Secret{"X-Bot-Token": "header-secret"},
		APIToken:       "0123456789abcdef0123",
		Mode:           ModeServiceTime,
		Schedule: Schedule{TimeZone: "Europe/Berlin", Monday: []string{"09:00-12:00", "13:00-17:30"},
			Friday: []string{"09:00-15:00", "22:00-02:00"}},
		ChatSlots:           20,
		ConversationTimeout: 15 * time.Minute,
		TimeoutAction:       TimeoutUnassign,
	}
}

func TestBotYAML(t *testing.T) {
	var doc struct {
		RelayBots []Bot `yaml:"relay_bots"`
	}
	dec := yaml.NewDecoder(strings.NewReader(botYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := []Bot{validBot(), {Name: "night_owl", Pages: []string{"3456789012"}, WebhookURL: "http://127.0.0.1:5005/webhook", Mode: ModeBackup}}
	if diff := cmp.Diff(want, doc.RelayBots); diff != "" {
		t.Errorf("bots (-want +got):\n%s", diff)
	}
	if err := ValidateBots(doc.RelayBots); err != nil {
		t.Errorf("ValidateBots: %v", err)
	}
	// A typo is caught by a strict decoder, as config.Parse uses.
	dec = yaml.NewDecoder(strings.NewReader("relay_bots:\n  - name: x\n    webhook_headres: {}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err == nil || !strings.Contains(err.Error(), "webhook_headres") {
		t.Errorf("typo: %v", err)
	}
}

func TestBotValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Bot)
		want   []string // parts of the error, "" entries not allowed
	}{
		{"no name", func(b *Bot) { b.Name = "" }, []string{"config: relay_bots[0].name: is required"}},
		{"name with space", func(b *Bot) { b.Name = "my bot" }, []string{"relay_bots[0].name:"}},
		{"no pages", func(b *Bot) { b.Pages = nil }, []string{"relay_bots[0].pages: at least one"}},
		{"page not numeric", func(b *Bot) { b.Pages = []string{"1", "page"} }, []string{"relay_bots[0].pages[1]: must be a numeric page id"}},
		{"page twice", func(b *Bot) { b.Pages = []string{"1", "1"} }, []string{"relay_bots[0].pages[1]: page 1 is listed twice"}},
		{"no webhook", func(b *Bot) { b.WebhookURL = "" }, []string{"relay_bots[0].webhook_url: is required"}},
		{"webhook not http", func(b *Bot) { b.WebhookURL = "ftp://bot.example/" }, []string{"relay_bots[0].webhook_url:"}},
		{"header name", func(b *Bot) { b.WebhookHeaders = map[string]Secret{"Bad Header": "x"} }, []string{"relay_bots[0].webhook_headers.Bad Header: is not a valid HTTP header name"}},
		{"header reserved", func(b *Bot) { b.WebhookHeaders = map[string]Secret{"Content-Type": "text/plain"} }, []string{"relay_bots[0].webhook_headers.Content-Type: is set by handoverd"}},
		{"header value line break", func(b *Bot) { b.WebhookHeaders = map[string]Secret{"X-A": "a\r\nX-B: b"} }, []string{"relay_bots[0].webhook_headers.X-A: must not contain line breaks"}},
		{"short token", func(b *Bot) { b.APIToken = "short" }, []string{"relay_bots[0].api_token: must be at least 16"}},
		{"no mode", func(b *Bot) { b.Mode = "" }, []string{"relay_bots[0].mode: must be one of service_time, backup, human, firewall"}},
		{"bad mode", func(b *Bot) { b.Mode = "always" }, []string{`relay_bots[0].mode: must be one of service_time, backup, human, firewall; got "always"`}},
		{"service_time without schedule", func(b *Bot) { b.Schedule = Schedule{TimeZone: "UTC"} }, []string{"relay_bots[0].schedule: is required with mode service_time"}},
		{"service_time without time zone", func(b *Bot) { b.Schedule.TimeZone = "" }, []string{"relay_bots[0].schedule.time_zone: is required"}},
		{"unknown time zone", func(b *Bot) { b.Schedule.TimeZone = "Mars/Olympus" }, []string{`relay_bots[0].schedule.time_zone: unknown time zone "Mars/Olympus"`}},
		{"schedule with backup", func(b *Bot) { b.Mode = ModeBackup }, []string{"relay_bots[0].schedule: is only used with mode service_time"}},
		{"range shape", func(b *Bot) { b.Schedule.Monday[1] = "9:00-17:00" }, []string{`relay_bots[0].schedule.monday[1]: must look like 09:00-17:30, got "9:00-17:00"`}},
		{"range hour", func(b *Bot) { b.Schedule.Friday = []string{"25:00-26:00"} }, []string{"relay_bots[0].schedule.friday[0]: has a time that does not exist"}},
		{"range minute", func(b *Bot) { b.Schedule.Sunday = []string{"10:60-11:00"} }, []string{"relay_bots[0].schedule.sunday[0]: has a time that does not exist"}},
		{"range starts at 24:00", func(b *Bot) { b.Schedule.Sunday = []string{"24:00-02:00"} }, []string{"relay_bots[0].schedule.sunday[0]: has a time that does not exist"}},
		{"empty range", func(b *Bot) { b.Schedule.Tuesday = []string{"10:00-10:00"} }, []string{"relay_bots[0].schedule.tuesday[0]: starts where it ends"}},
		{"negative slots", func(b *Bot) { b.ChatSlots = -1 }, []string{"relay_bots[0].chat_slots: must not be negative"}},
		{"negative timeout", func(b *Bot) { b.ConversationTimeout = -time.Minute }, []string{"relay_bots[0].conversation_timeout: must not be negative"}},
		{"tiny timeout", func(b *Bot) { b.ConversationTimeout = time.Second }, []string{"relay_bots[0].conversation_timeout: must be at least 1m"}},
		{"timeout without action", func(b *Bot) { b.TimeoutAction = "" }, []string{"relay_bots[0].timeout_action: is required with conversation_timeout"}},
		{"action without timeout", func(b *Bot) { b.ConversationTimeout = 0 }, []string{"relay_bots[0].timeout_action: is only used with conversation_timeout"}},
		{"bad action", func(b *Bot) { b.TimeoutAction = "close" }, []string{`relay_bots[0].timeout_action: must be one of end, unassign, forward; got "close"`}},
		{"several problems at once", func(b *Bot) { b.Name = ""; b.Schedule.Monday[0] = "x" }, []string{"relay_bots[0].name:", "relay_bots[0].schedule.monday[0]:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBot()
			b.Schedule.Monday = append([]string(nil), b.Schedule.Monday...)
			tt.mutate(&b)
			err := ValidateBots([]Bot{b})
			if err == nil {
				t.Fatal("ValidateBots passed")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Bot.Validate names the same keys relative to the bot.
			own := b.Validate()
			if own == nil || strings.Contains(own.Error(), "relay_bots") {
				t.Errorf("Validate() = %v", own)
			}
		})
	}
	if err := validBot().Validate(); err != nil {
		t.Errorf("valid bot: %v", err)
	}
	b := validBot()
	b.Schedule.Monday = []string{"x"}
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "config: schedule.monday[0]: must look like") {
		t.Errorf("Validate() = %v", err)
	}
}

func TestValidateBotsAcrossBots(t *testing.T) {
	a, b := validBot(), validBot()
	b.Pages = []string{"999", "2345678901"}
	err := ValidateBots([]Bot{a, b})
	for _, w := range []string{`config: relay_bots[1].name: bot "rasa-support" is already relay_bots[0]`,
		"config: relay_bots[1].pages[1]: page 2345678901 is already served by relay_bots[0]"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
	if err := ValidateBots(nil); err != nil {
		t.Errorf("no bots: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	b := validBot()
	var out bytes.Buffer
	fmt.Fprintf(&out, "%v %+v %#v %s", b, b, b, b.APIToken)
	j, _ := json.Marshal(b)
	out.Write(j)
	for _, secret := range []string{"0123456789abcdef0123", "header-secret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("secret %q printed: %s", secret, out.String())
		}
	}
	if b.APIToken.Reveal() != "0123456789abcdef0123" || Secret("").String() != "" {
		t.Error("Reveal or String wrong")
	}
}

// at is a wall-clock time in a time zone.
func at(t *testing.T, tz string, y int, mo time.Month, d, h, m int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(y, mo, d, h, m, 0, 0, loc)
}

func TestScheduleContains(t *testing.T) {
	berlin := Schedule{TimeZone: "Europe/Berlin",
		Monday: []string{"09:00-12:00", "13:00-17:30"},
		Friday: []string{"22:00-02:00"},
		Sunday: []string{"23:00-24:00", "00:00-01:00"},
	}
	// 2025-03-03 is a Monday (CET, UTC+1); 2025-07-07 is a Monday (CEST, UTC+2).
	tests := []struct {
		name string
		s    Schedule
		t    time.Time
		want bool
	}{
		{"start is inside", berlin, at(t, "Europe/Berlin", 2025, 3, 3, 9, 0), true},
		{"a minute before", berlin, at(t, "Europe/Berlin", 2025, 3, 3, 8, 59), false},
		{"end is outside", berlin, at(t, "Europe/Berlin", 2025, 3, 3, 12, 0), false},
		{"lunch break", berlin, at(t, "Europe/Berlin", 2025, 3, 3, 12, 30), false},
		{"second range", berlin, at(t, "Europe/Berlin", 2025, 3, 3, 17, 29), true},
		{"second range end", berlin, at(t, "Europe/Berlin", 2025, 3, 3, 17, 30), false},
		{"other day", berlin, at(t, "Europe/Berlin", 2025, 3, 4, 10, 0), false},
		{"winter: 08:30 UTC is 09:30 in Berlin", berlin, at(t, "UTC", 2025, 3, 3, 8, 30), true},
		{"winter: 07:30 UTC is 08:30 in Berlin", berlin, at(t, "UTC", 2025, 3, 3, 7, 30), false},
		{"summer: 07:30 UTC is 09:30 in Berlin", berlin, at(t, "UTC", 2025, 7, 7, 7, 30), true},
		{"summer: 15:29 UTC is 17:29 in Berlin", berlin, at(t, "UTC", 2025, 7, 7, 15, 29), true},
		{"summer: 15:30 UTC is 17:30 in Berlin", berlin, at(t, "UTC", 2025, 7, 7, 15, 30), false},
		{"New York Monday 03:30 is Berlin Monday 09:30", berlin, at(t, "America/New_York", 2025, 3, 3, 3, 30), true},
		{"Tokyo Monday 17:30 is Berlin Monday 09:30", berlin, at(t, "Asia/Tokyo", 2025, 3, 3, 17, 30), true},
		{"Tokyo Tuesday 00:30 is Berlin Monday 16:30", berlin, at(t, "Asia/Tokyo", 2025, 3, 4, 0, 30), true},
		{"Tokyo Monday 07:59 is Berlin Sunday 23:59", berlin, at(t, "Asia/Tokyo", 2025, 3, 3, 7, 59), true},
		{"Tokyo Monday 08:00 is Berlin Monday 00:00: Sunday's 23:00-24:00 has ended", berlin, at(t, "Asia/Tokyo", 2025, 3, 3, 8, 0), false},
		{"friday before midnight range", berlin, at(t, "Europe/Berlin", 2025, 3, 7, 21, 59), false},
		{"friday 22:00", berlin, at(t, "Europe/Berlin", 2025, 3, 7, 22, 0), true},
		{"friday 23:59", berlin, at(t, "Europe/Berlin", 2025, 3, 7, 23, 59), true},
		{"past midnight into saturday", berlin, at(t, "Europe/Berlin", 2025, 3, 8, 0, 0), true},
		{"saturday 01:59", berlin, at(t, "Europe/Berlin", 2025, 3, 8, 1, 59), true},
		{"saturday 02:00", berlin, at(t, "Europe/Berlin", 2025, 3, 8, 2, 0), false},
		{"thursday night is not friday's", berlin, at(t, "Europe/Berlin", 2025, 3, 7, 1, 0), false},
		{"sunday 23:30 (ends 24:00)", berlin, at(t, "Europe/Berlin", 2025, 3, 9, 23, 30), true},
		{"sunday 00:30", berlin, at(t, "Europe/Berlin", 2025, 3, 9, 0, 30), true},
		{"sunday 01:00", berlin, at(t, "Europe/Berlin", 2025, 3, 9, 1, 0), false},
		{"whole day", Schedule{TimeZone: "UTC", Wednesday: []string{"00:00-24:00"}}, at(t, "UTC", 2025, 3, 5, 23, 59), true},
		{"whole day ends", Schedule{TimeZone: "UTC", Wednesday: []string{"00:00-24:00"}}, at(t, "UTC", 2025, 3, 6, 0, 0), false},
		{"saturday night into sunday wraps the week", Schedule{TimeZone: "UTC", Saturday: []string{"20:00-06:00"}}, at(t, "UTC", 2025, 3, 9, 5, 59), true},
		{"sunday night into monday", Schedule{TimeZone: "UTC", Sunday: []string{"20:00-06:00"}}, at(t, "UTC", 2025, 3, 10, 5, 0), true},
		{"sunday night is not saturday's", Schedule{TimeZone: "UTC", Sunday: []string{"20:00-06:00"}}, at(t, "UTC", 2025, 3, 9, 5, 0), false},
		{"across a date line: Honolulu Sunday 20:00 is Auckland Monday 19:00", Schedule{TimeZone: "Pacific/Auckland", Monday: []string{"18:00-20:00"}},
			at(t, "Pacific/Honolulu", 2025, 3, 2, 20, 0), true},
		{"empty schedule", Schedule{TimeZone: "UTC"}, at(t, "UTC", 2025, 3, 3, 12, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Contains(tt.t); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.t.In(time.UTC), got, tt.want)
			}
		})
	}
}

func TestActive(t *testing.T) {
	service := validBot()                                     // Mondays 09:00-12:00 and 13:00-17:30 Berlin
	inService := at(t, "Europe/Berlin", 2025, 3, 3, 10, 0)    // Monday 10:00
	outOfService := at(t, "Europe/Berlin", 2025, 3, 3, 18, 0) // Monday 18:00
	bot := func(m Mode) Bot { return Bot{Mode: m} }
	tests := []struct {
		name   string
		bot    Bot
		now    time.Time
		agents bool
		want   bool
	}{
		{"service_time in service time, agents", service, inService, true, false},
		{"service_time in service time, no agents", service, inService, false, false},
		{"service_time outside, agents", service, outOfService, true, true},
		{"service_time outside, no agents", service, outOfService, false, true},
		{"backup with agents", bot(ModeBackup), inService, true, false},
		{"backup without agents", bot(ModeBackup), inService, false, true},
		{"human with agents", bot(ModeHuman), inService, true, true},
		{"human without agents", bot(ModeHuman), outOfService, false, true},
		{"firewall with agents", bot(ModeFirewall), inService, true, true},
		{"firewall without agents", bot(ModeFirewall), outOfService, false, true},
		{"no mode", bot(""), inService, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.bot.Active(tt.now, tt.agents); got != tt.want {
				t.Errorf("Active = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHasFreeSlot(t *testing.T) {
	tests := []struct {
		bot  Bot
		open int
		want bool
	}{
		{Bot{Mode: ModeHuman}, 1000, true},
		{Bot{Mode: ModeHuman, ChatSlots: 2}, 1, true},
		{Bot{Mode: ModeHuman, ChatSlots: 2}, 2, false},
		{Bot{Mode: ModeBackup, ChatSlots: 2}, 3, false},
		{Bot{Mode: ModeFirewall, ChatSlots: 2}, 5, true},
	}
	for _, tt := range tests {
		if got := tt.bot.HasFreeSlot(tt.open); got != tt.want {
			t.Errorf("%+v.HasFreeSlot(%d) = %v, want %v", tt.bot, tt.open, got, tt.want)
		}
	}
}
