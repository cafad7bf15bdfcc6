package userlike

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/handoverd/handoverd/secret"
)

// Mode is a relay bot's behaviour mode: when it takes new conversations.
type Mode string

// Behaviour modes, after the seed's table. How this package reads each one:
const (
	// ModeServiceTime: "The bot is online only outside of the service time
	// defined on the Widget. During service time, all chats go to your human
	// operators." The bot's schedule is that service time (the humans'
	// hours); outside it the bot takes every new conversation, inside it
	// none, whether or not an agent is available.
	ModeServiceTime Mode = "service_time"
	// ModeBackup: "always online but only takes chats when no other
	// operators are available." The bot takes a new conversation only when
	// no agent is available; the schedule is not used.
	ModeBackup Mode = "backup"
	// ModeHuman: "always online and takes chats exactly like a normal human
	// operator." The bot is always a candidate; sharing conversations
	// between it and the agents (by free chat slots) is the router's job.
	ModeHuman Mode = "human"
	// ModeFirewall: "always online and receives all conversations (e.g. to
	// categorize and forward them)." The bot takes every new conversation,
	// and chat_slots do not limit it.
	ModeFirewall Mode = "firewall"
)

// Modes lists the behaviour modes.
var Modes = []Mode{ModeServiceTime, ModeBackup, ModeHuman, ModeFirewall}

// TimeoutAction is what happens when a bot conversation times out (the
// seed's "Bot conversation timeout").
type TimeoutAction string

// Timeout actions.
const (
	// TimeoutEnd ends the conversation.
	TimeoutEnd TimeoutAction = "end"
	// TimeoutUnassign unassigns it, to the agents' inbox.
	TimeoutUnassign TimeoutAction = "unassign"
	// TimeoutForward forwards it to an available agent.
	TimeoutForward TimeoutAction = "forward"
)

// Secret is a string that never prints (see package secret).
type Secret = secret.Secret

// Bot is one relay bot: a chatbot behind handoverd's Facebook app, reached
// over the chatbot webhook protocol. It is meant to be a list under the
// configuration key relay_bots.
type Bot struct {
	// Name identifies the bot in URLs, logs and history: letters, digits,
	// "-" and "_", at most 64.
	Name string `yaml:"name"`
	// Pages are the ids of the Facebook Pages the bot serves.
	Pages []string `yaml:"pages"`
	// WebhookURL receives the webhook calls (POST, JSON).
	WebhookURL string `yaml:"webhook_url"`
	// WebhookHeaders are sent with every webhook call, e.g. a token the bot
	// checks (the seed's "Webhook headers").
	WebhookHeaders map[string]Secret `yaml:"webhook_headers"`
	// APIToken authenticates the bot's own calls to handoverd's API URL (the
	// seed's SECURITY-TOKEN header); empty means the bot can only answer
	// webhook calls. At least 16 characters.
	APIToken Secret `yaml:"api_token"`
	// Mode is the behaviour mode.
	Mode Mode `yaml:"mode"`
	// Schedule is the service time; used, and required, with service_time.
	Schedule Schedule `yaml:"schedule"`
	// ChatSlots is how many conversations the bot handles at once (0: no
	// limit).
	ChatSlots int `yaml:"chat_slots"`
	// ConversationTimeout is how long a bot conversation may pass without a
	// message from either side before TimeoutAction (0: never).
	ConversationTimeout time.Duration `yaml:"conversation_timeout"`
	// TimeoutAction is end, unassign or forward; required with
	// ConversationTimeout.
	TimeoutAction TimeoutAction `yaml:"timeout_action"`
}

// Schedule is a weekly schedule: per weekday a list of "HH:MM-HH:MM" ranges
// in TimeZone. A range includes its start and excludes its end; "24:00" may
// end a range; a range whose end is before its start runs past midnight into
// the next day (friday "22:00-02:00" covers Saturday until 02:00).
type Schedule struct {
	// TimeZone is an IANA time zone name, e.g. Europe/Berlin.
	TimeZone string `yaml:"time_zone"`
	// Monday lists Monday's ranges.
	Monday []string `yaml:"monday"`
	// Tuesday lists Tuesday's ranges.
	Tuesday []string `yaml:"tuesday"`
	// Wednesday lists Wednesday's ranges.
	Wednesday []string `yaml:"wednesday"`
	// Thursday lists Thursday's ranges.
	Thursday []string `yaml:"thursday"`
	// Friday lists Friday's ranges.
	Friday []string `yaml:"friday"`
	// Saturday lists Saturday's ranges.
	Saturday []string `yaml:"saturday"`
	// Sunday lists Sunday's ranges.
	Sunday []string `yaml:"sunday"`
}

// Day returns the ranges of weekday d.
func (s Schedule) Day(d time.Weekday) []string {
	return [...][]string{s.Sunday, s.Monday, s.Tuesday, s.Wednesday, s.Thursday, s.Friday, s.Saturday}[d]
}

// IsEmpty reports whether the schedule has no ranges.
func (s Schedule) IsEmpty() bool {
	for d := range time.Weekday(7) {
		if len(s.Day(d)) > 0 {
			return false
		}
	}
	return true
}

// dayKeys are the YAML keys of the weekdays, by time.Weekday.
var dayKeys = [...]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

var rangeRE = regexp.MustCompile(`^(\d{2}):(\d{2})-(\d{2}):(\d{2})$`)

// parseRange reads "HH:MM-HH:MM" into minutes since midnight.
func parseRange(s string) (start, end int, err error) {
	m := rangeRE.FindStringSubmatch(strings.ReplaceAll(s, " ", ""))
	if m == nil {
		return 0, 0, fmt.Errorf("must look like 09:00-17:30, got %q", s)
	}
	num := func(a, b string) int { return (int(a[0]-'0')*10+int(a[1]-'0'))*60 + int(b[0]-'0')*10 + int(b[1]-'0') }
	start, end = num(m[1], m[2]), num(m[3], m[4])
	switch {
	case m[2] > "59" || m[4] > "59" || start >= 24*60 || end > 24*60:
		return 0, 0, fmt.Errorf("has a time that does not exist: %q (00:00 to 23:59, or 24:00 as an end)", s)
	case start == end:
		return 0, 0, fmt.Errorf("starts where it ends: %q", s)
	}
	return start, end, nil
}

// locations caches loaded time zones by name.
var locations sync.Map // string → *time.Location

// loadLocation loads an IANA time zone, cached.
func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

// Location returns the schedule's time zone.
func (s Schedule) Location() (*time.Location, error) {
	if s.TimeZone == "" {
		return nil, errors.New("no time zone")
	}
	return loadLocation(s.TimeZone)
}

// Contains reports whether t falls in one of the schedule's ranges, read in
// its time zone (so daylight saving time is followed). It assumes Validate
// passed: ranges that do not parse are skipped, and an unknown time zone
// reads as UTC.
func (s Schedule) Contains(t time.Time) bool {
	loc, err := s.Location()
	if err != nil {
		loc = time.UTC
	}
	t = t.In(loc)
	day, minute := t.Weekday(), t.Hour()*60+t.Minute()
	for _, r := range s.Day(day) {
		start, end, err := parseRange(r)
		if err != nil {
			continue
		}
		if (start < end && minute >= start && minute < end) || (end < start && minute >= start) {
			return true
		}
	}
	for _, r := range s.Day((day + 6) % 7) { // yesterday's ranges that run past midnight
		start, end, err := parseRange(r)
		if err == nil && end < start && minute < end {
			return true
		}
	}
	return false
}

// Active reports whether the bot takes a new conversation that starts at
// now, per its mode (see the Mode constants for how the seed's modes are
// read). agentsAvailable says whether a human agent could take it. Chat
// slots are not considered here; see HasFreeSlot.
func (b Bot) Active(now time.Time, agentsAvailable bool) bool {
	switch b.Mode {
	case ModeServiceTime:
		return !b.Schedule.Contains(now)
	case ModeBackup:
		return !agentsAvailable
	case ModeHuman, ModeFirewall:
		return true
	}
	return false
}

// HasFreeSlot reports whether the bot can take another conversation while
// it has open ones: always with no chat_slots limit or in firewall mode
// (which receives all conversations).
func (b Bot) HasFreeSlot(open int) bool {
	return b.ChatSlots == 0 || b.Mode == ModeFirewall || open < b.ChatSlots
}

var botNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// headerNameRE matches an HTTP header name (an RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders are set by handoverd on webhook calls.
var reservedHeaders = []string{"content-type", "content-length", "host", "transfer-encoding", "connection"}

// Validate checks the bot and names the offending keys relative to the bot,
// e.g. "schedule.monday[1]"; ValidateBots names them under relay_bots.
func (b Bot) Validate() error { return errors.Join(b.validate("")...) }

// ValidateBots checks the relay_bots list: each bot, names unique, and each
// Page served by at most one relay bot. Errors name keys like
// "relay_bots[0].schedule.monday[1]", in the style of config.Validate.
func ValidateBots(bots []Bot) error {
	var errs []error
	names := map[string]int{}
	pages := map[string]int{}
	for i, b := range bots {
		k := index("relay_bots", i)
		errs = append(errs, b.validate(k)...)
		if j, dup := names[b.Name]; dup && b.Name != "" {
			errs = append(errs, fmt.Errorf("config: %s.name: bot %q is already relay_bots[%d]", k, b.Name, j))
		} else {
			names[b.Name] = i
		}
		for pi, p := range b.Pages {
			if j, dup := pages[p]; dup && j != i && p != "" {
				errs = append(errs, fmt.Errorf("config: %s: page %s is already served by relay_bots[%d]", index(k+".pages", pi), p, j))
			} else {
				pages[p] = i
			}
		}
	}
	return errors.Join(errs...)
}

// validate returns the bot's problems, keys prefixed with prefix.
func (b Bot) validate(prefix string) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", join(prefix, key), fmt.Sprintf(format, args...)))
	}
	if !botNameRE.MatchString(b.Name) {
		bad("name", "is required: 1 to 64 letters, digits, - or _; got %q", b.Name)
	}
	if len(b.Pages) == 0 {
		bad("pages", "at least one page id is required")
	}
	seen := map[string]bool{}
	for i, p := range b.Pages {
		switch {
		case !isNumeric(p):
			bad(index("pages", i), "must be a numeric page id, got %q", p)
		case seen[p]:
			bad(index("pages", i), "page %s is listed twice", p)
		}
		seen[p] = true
	}
	if !isWebURL(b.WebhookURL) {
		bad("webhook_url", "is required and must be an http(s) URL")
	}
	headerNames := make([]string, 0, len(b.WebhookHeaders))
	for name := range b.WebhookHeaders {
		headerNames = append(headerNames, name)
	}
	slices.Sort(headerNames)
	for _, name := range headerNames {
		v := b.WebhookHeaders[name].Reveal()
		switch {
		case !headerNameRE.MatchString(name):
			bad("webhook_headers."+name, "is not a valid HTTP header name")
		case slices.Contains(reservedHeaders, strings.ToLower(name)):
			bad("webhook_headers."+name, "is set by handoverd")
		case strings.ContainsAny(v, "\r\n\x00"):
			bad("webhook_headers."+name, "must not contain line breaks")
		}
	}
	if b.APIToken != "" && len(b.APIToken) < 16 {
		bad("api_token", "must be at least 16 characters")
	}
	if !slices.Contains(Modes, b.Mode) {
		bad("mode", "must be one of service_time, backup, human, firewall; got %q", b.Mode)
	}
	switch {
	case b.Mode == ModeServiceTime:
		if b.Schedule.IsEmpty() {
			bad("schedule", "is required with mode service_time: the bot answers outside these hours")
		}
		if b.Schedule.TimeZone == "" {
			bad("schedule.time_zone", "is required (an IANA name such as Europe/Berlin)")
		}
	case !b.Schedule.IsEmpty() || b.Schedule.TimeZone != "":
		bad("schedule", "is only used with mode service_time")
	}
	if b.Schedule.TimeZone != "" {
		if _, err := loadLocation(b.Schedule.TimeZone); err != nil {
			bad("schedule.time_zone", "unknown time zone %q (want an IANA name such as Europe/Berlin)", b.Schedule.TimeZone)
		}
	}
	for d := range time.Weekday(7) {
		for i, r := range b.Schedule.Day(d) {
			if _, _, err := parseRange(r); err != nil {
				bad(index("schedule."+dayKeys[d], i), "%v", err)
			}
		}
	}
	if b.ChatSlots < 0 {
		bad("chat_slots", "must not be negative (0 means no limit)")
	}
	switch {
	case b.ConversationTimeout < 0:
		bad("conversation_timeout", "must not be negative (0 means never)")
	case b.ConversationTimeout > 0 && b.ConversationTimeout < time.Minute:
		bad("conversation_timeout", "must be at least 1m")
	}
	switch b.TimeoutAction {
	case TimeoutEnd, TimeoutUnassign, TimeoutForward:
		if b.ConversationTimeout == 0 {
			bad("timeout_action", "is only used with conversation_timeout")
		}
	case "":
		if b.ConversationTimeout > 0 {
			bad("timeout_action", "is required with conversation_timeout: end, unassign or forward")
		}
	default:
		bad("timeout_action", "must be one of end, unassign, forward; got %q", b.TimeoutAction)
	}
	return errs
}

// isNumeric reports whether s is a non-empty string of at most 32 digits.
func isNumeric(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
