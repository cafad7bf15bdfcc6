// Package config loads and validates handoverd's YAML configuration file.
//
// Any scalar value may be written as ${ENV_VAR} (or contain such references)
// so that secrets stay out of the file. Validation fails at start with a
// message that names the offending key, e.g. "pages[0].default_app".
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/handoverd/handoverd/userlike"
)

// PageInboxAppID is the app id Meta gives the Page Inbox (Meta Business Suite).
const PageInboxAppID = "263902037430900"

// Default values used when the file leaves a key out.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultDatabase         = "sqlite://handoverd.db"
	DefaultGraphURL         = "https://graph.facebook.com/"
	DefaultGraphVersion     = "v21.0"
	DefaultGraphTimeout     = 10 * time.Second
	DefaultIdleAfter        = 24 * time.Hour
	DefaultSweepEvery       = 30 * time.Second
	DefaultControlWait      = 2 * time.Minute
	DefaultInterventionIdle = time.Hour
	DefaultWorkEvery        = time.Second
	DefaultReconcileRate    = 5.0
	DefaultReconcileEvery   = time.Minute
	DefaultOfferTimeout     = 5 * time.Minute
)

// Default-app values a page may name.
const (
	DefaultAppBot       = "bot"
	DefaultAppAgent     = "agent"
	DefaultAppPageInbox = "page_inbox"
	DefaultAppNone      = "none"
)

// Roles a user may hold.
const (
	RoleBot   = "bot"
	RoleAgent = "agent"
	RoleAdmin = "admin"
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the address of the public HTTP listener.
	Listen string `yaml:"listen"`
	// AdminListen, when set, serves /metrics and pprof on a second,
	// private listener (keep it off the public network).
	AdminListen string `yaml:"admin_listen"`
	// Database is a sqlite:// path or a postgres:// URL.
	Database string `yaml:"database"`
	// Graph says where the Graph API is and how to call it.
	Graph Graph `yaml:"graph"`
	// App is handoverd's own Facebook app (the agents' app).
	App App `yaml:"app"`
	// Pages are the Facebook Pages handoverd serves.
	Pages []Page `yaml:"pages"`
	// Users are the API clients: bots, agents and admins.
	Users []User `yaml:"users"`
	// Threads tunes thread-control bookkeeping.
	Threads Threads `yaml:"threads"`
	// Handover tunes handovers, interventions and agent sends.
	Handover Handover `yaml:"handover"`
	// Reconcile tunes the checks of doubtful threads against Graph's thread_owner.
	Reconcile Reconcile `yaml:"reconcile"`
	// Inbox tunes the agents' inbox and its outbound webhooks.
	Inbox Inbox `yaml:"inbox"`
	// Webhooks are account-level outbound webhooks.
	Webhooks []Webhook `yaml:"webhooks"`
	// Claims tunes the Lexer-compatible Chatbot User API.
	Claims Claims `yaml:"claims"`
	// RelayBots are chatbots without a Facebook app of their own, run behind
	// handoverd's app over the Userlike-compatible chatbot protocol.
	RelayBots []userlike.Bot `yaml:"relay_bots"`
	// Log sets the log level.
	Log Log `yaml:"log"`
}

// Graph configures the Graph API client.
type Graph struct {
	// URL is the base URL; it must end with a slash (one is added if missing).
	URL string `yaml:"url"`
	// Version is the Graph API version inserted as the first path segment.
	Version string `yaml:"version"`
	// Timeout bounds every Graph call.
	Timeout time.Duration `yaml:"timeout"`
}

// App is handoverd's own Facebook app.
type App struct {
	// ID is the app id; echoes carrying it are handoverd's own sends.
	ID string `yaml:"id"`
	// Secret signs webhooks and appsecret_proof.
	Secret Secret `yaml:"secret"`
	// VerifyToken answers Meta's webhook verification request.
	VerifyToken Secret `yaml:"verify_token"`
}

// Page is one Facebook Page handoverd serves.
type Page struct {
	// ID is the Page id.
	ID string `yaml:"id"`
	// AccessToken is handoverd's Page access token.
	AccessToken Secret `yaml:"access_token"`
	// DefaultApp is the Page's default app in Conversation Routing:
	// bot, agent (handoverd), page_inbox or none (zero-config).
	DefaultApp string `yaml:"default_app"`
	// BotAppID is the bot's Facebook app id on this Page.
	BotAppID string `yaml:"bot_app_id"`
	// ClientID is the tenant (account) this Page belongs to.
	ClientID int64 `yaml:"client_id"`
	// BotWebhook, when set, receives the handover events of this Page's
	// bot (handover.offered, .accepted, .declined, .expired, .failed,
	// .returned), signed and retried.
	BotWebhook BotWebhook `yaml:"bot_webhook"`
}

// BotWebhook is where a Page's bot learns of hand-offs beyond what Meta
// tells it.
type BotWebhook struct {
	// URL receives the events (POST, JSON).
	URL string `yaml:"url"`
	// Secret keys the X-Handoverd-Signature HMAC.
	Secret Secret `yaml:"secret"`
}

// DefaultAppID returns the app id of the Page's default app, or "" when the
// Page has none. ourAppID is handoverd's own app id.
func (p Page) DefaultAppID(ourAppID string) string {
	switch p.DefaultApp {
	case DefaultAppBot:
		return p.BotAppID
	case DefaultAppAgent:
		return ourAppID
	case DefaultAppPageInbox:
		return PageInboxAppID
	}
	return ""
}

// User is an API client.
type User struct {
	// Name identifies the user in logs and history.
	Name string `yaml:"name"`
	// Role is bot, agent or admin.
	Role string `yaml:"role"`
	// Token is the plain API token (prefer ${ENV_VAR}); alternatively
	// TokenSHA256 holds its lowercase hex SHA-256.
	Token Secret `yaml:"token"`
	// TokenSHA256 is the hex SHA-256 of the token.
	TokenSHA256 string `yaml:"token_sha256"`
	// ClientID is the tenant whose Pages the user may act on.
	ClientID int64 `yaml:"client_id"`
}

// Threads tunes thread-control bookkeeping.
type Threads struct {
	// IdleAfter is how long a thread stays owned without activity (Meta: 24 h).
	IdleAfter time.Duration `yaml:"idle_after"`
	// SweepEvery is how often expired threads are moved to idle.
	SweepEvery time.Duration `yaml:"sweep_every"`
}

// Handover tunes how handoverd acquires and gives back thread control.
type Handover struct {
	// ControlTimeout is how long an agent message waits for thread control
	// before it fails, and how long a pending request counts as pending.
	ControlTimeout time.Duration `yaml:"control_timeout"`
	// InterventionIdle closes an intervention after this long without agent
	// activity (0 never).
	InterventionIdle time.Duration `yaml:"intervention_idle"`
	// WorkEvery is how often the background worker looks for due work.
	WorkEvery time.Duration `yaml:"work_every"`
	// OfferTimeout is how long a bot's offer of a conversation waits for
	// an agent to accept it before it expires.
	OfferTimeout time.Duration `yaml:"offer_timeout"`
}

// Reconcile tunes reconciliation: threads whose state is doubtful (a
// request for control pending past its timeout, an agent send refused as
// not the owner, a handover that failed) are checked with Graph's
// thread_owner and corrected.
type Reconcile struct {
	// Rate is how many thread_owner calls per second reconciliation may make
	// per Page, shared by every process on the database.
	Rate float64 `yaml:"rate"`
	// Interval is how often doubtful threads are looked for (and once at start).
	Interval time.Duration `yaml:"interval"`
}

// Inbox tunes the agents' inbox.
type Inbox struct {
	// GiveUpAfter stops retrying a webhook delivery this long after the event.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
	// DeliveryTimeout bounds one webhook delivery attempt.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// Teams are the accounts' teams (Chatwoot's teams), which conversations
	// can be assigned to.
	Teams []Team `yaml:"teams"`
	// PublicURL is handoverd's base URL as Messenger reaches it, for the
	// attachments agents send (default: the scheme and host of the request
	// that sent them).
	PublicURL string `yaml:"public_url"`
}

// Team is a group of agents in an account.
type Team struct {
	// ID is the team's id in the API (positive, unique).
	ID int64 `yaml:"id"`
	// Name is shown to agents.
	Name string `yaml:"name"`
	// Description says what the team does.
	Description string `yaml:"description"`
	// AccountID is the account (client_id) the team belongs to.
	AccountID int64 `yaml:"account_id"`
	// Members are the names of the users in the team.
	Members []string `yaml:"members"`
}

// Claims tunes bot claims (the Lexer-compatible Chatbot User API).
type Claims struct {
	// Grace is how long a new customer message in a conversation the bot
	// handles waits for the bot's claim before it surfaces to the agents.
	Grace time.Duration `yaml:"grace"`
	// RatePerSecond limits claim and echo calls per bot token.
	RatePerSecond float64 `yaml:"rate_per_second"`
	// Burst is how many calls a token may make at once.
	Burst int `yaml:"burst"`
}

// Webhook is an account-level outbound webhook.
type Webhook struct {
	// URL receives the events (POST, JSON).
	URL string `yaml:"url"`
	// Secret keys the X-Chatwoot-Signature HMAC.
	Secret Secret `yaml:"secret"`
	// AccountID is the account (client_id) whose events it gets.
	AccountID int64 `yaml:"account_id"`
	// Events limits the events sent (empty: all).
	Events []string `yaml:"events"`
}

// WebhookEvents are the events an outbound webhook may subscribe to.
var WebhookEvents = []string{"message_created", "message_updated", "conversation_created",
	"conversation_status_changed", "conversation_owner_changed", "assignee_changed", "conversation_updated"}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
}

// Load reads, expands and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, os.LookupEnv)
}

// Parse decodes a configuration document, expanding ${VAR} references with
// lookup, applying defaults and validating the result.
func Parse(doc []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if missing := expand(&root, "", lookup); len(missing) > 0 {
		return nil, fmt.Errorf("config: environment variables not set: %s", strings.Join(missing, "; "))
	}
	var c Config
	if len(root.Content) > 0 {
		// Check the expanded tree itself (it keeps the file's line
		// numbers) so every typo or misshapen value is reported with its
		// line and key path, then decode it.
		if problems := checkTree(&root, reflect.TypeOf(c), ""); len(problems) > 0 {
			return nil, fmt.Errorf("config: %s", strings.Join(problems, "; "))
		}
		if err := root.Decode(&c); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in every scalar value of the tree and returns
// every reference to a variable that is not set, as "key path needs NAME
// (line N)".
func expand(n *yaml.Node, path string, lookup func(string) (string, bool)) []string {
	var missing []string
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			missing = append(missing, expand(c, path, lookup)...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			missing = append(missing, expand(n.Content[i+1], p, lookup)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			missing = append(missing, expand(c, fmt.Sprintf("%s[%d]", path, i), lookup)...)
		}
	case yaml.ScalarNode:
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := ref[2 : len(ref)-1]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, fmt.Sprintf("%s needs %s (line %d)", path, name, n.Line))
			}
			return v
		})
		if n.Tag == "!!null" && n.Value != "" {
			n.Tag = "!!str"
		}
	}
	return missing
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Graph.URL == "" {
		c.Graph.URL = DefaultGraphURL
	}
	if !strings.HasSuffix(c.Graph.URL, "/") {
		c.Graph.URL += "/"
	}
	if c.Graph.Version == "" {
		c.Graph.Version = DefaultGraphVersion
	}
	if c.Graph.Timeout == 0 {
		c.Graph.Timeout = DefaultGraphTimeout
	}
	if c.Threads.IdleAfter == 0 {
		c.Threads.IdleAfter = DefaultIdleAfter
	}
	if c.Threads.SweepEvery == 0 {
		c.Threads.SweepEvery = DefaultSweepEvery
	}
	if c.Handover.ControlTimeout == 0 {
		c.Handover.ControlTimeout = DefaultControlWait
	}
	if c.Handover.InterventionIdle == 0 {
		c.Handover.InterventionIdle = DefaultInterventionIdle
	}
	if c.Handover.WorkEvery == 0 {
		c.Handover.WorkEvery = DefaultWorkEvery
	}
	if c.Reconcile.Rate == 0 {
		c.Reconcile.Rate = DefaultReconcileRate
	}
	if c.Reconcile.Interval == 0 {
		c.Reconcile.Interval = DefaultReconcileEvery
	}
	if c.Handover.OfferTimeout == 0 {
		c.Handover.OfferTimeout = DefaultOfferTimeout
	}
	if c.Inbox.GiveUpAfter == 0 {
		c.Inbox.GiveUpAfter = 24 * time.Hour
	}
	if c.Inbox.DeliveryTimeout == 0 {
		c.Inbox.DeliveryTimeout = 10 * time.Second
	}
	if c.Claims.Grace == 0 {
		c.Claims.Grace = 5 * time.Second
	}
	if c.Claims.RatePerSecond == 0 {
		c.Claims.RatePerSecond = 20
	}
	if c.Claims.Burst == 0 {
		c.Claims.Burst = 40
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	for i := range c.Pages {
		if c.Pages[i].DefaultApp == "" {
			c.Pages[i].DefaultApp = DefaultAppNone
		}
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks the configuration and names the first offending key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, err := ParseDatabase(c.Database); err != nil {
		bad("database", "%v", err)
	}
	if u, err := url.Parse(c.Graph.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("graph.url", "must be an http(s) URL, got %q", c.Graph.URL)
	}
	if !regexp.MustCompile(`^v\d+\.\d+$`).MatchString(c.Graph.Version) {
		bad("graph.version", "must look like v21.0, got %q", c.Graph.Version)
	}
	if c.Graph.Timeout < 0 {
		bad("graph.timeout", "must be positive")
	}
	if !isNumericID(c.App.ID) {
		bad("app.id", "is required and must be a numeric app id")
	}
	if c.App.Secret == "" {
		bad("app.secret", "is required")
	}
	if c.App.VerifyToken == "" {
		bad("app.verify_token", "is required")
	}
	if len(c.Pages) == 0 {
		bad("pages", "at least one page is required")
	}
	seenPage := map[string]bool{}
	for i, p := range c.Pages {
		k := fmt.Sprintf("pages[%d]", i)
		if !isNumericID(p.ID) {
			bad(k+".id", "is required and must be a numeric page id")
		} else if seenPage[p.ID] {
			bad(k+".id", "page %s is listed twice", p.ID)
		}
		seenPage[p.ID] = true
		if p.AccessToken == "" {
			bad(k+".access_token", "is required")
		}
		switch p.DefaultApp {
		case DefaultAppBot, DefaultAppAgent, DefaultAppPageInbox, DefaultAppNone:
		default:
			bad(k+".default_app", "must be one of bot, agent, page_inbox, none; got %q", p.DefaultApp)
		}
		if p.BotAppID != "" && !isNumericID(p.BotAppID) {
			bad(k+".bot_app_id", "must be a numeric app id")
		}
		if p.DefaultApp == DefaultAppBot && p.BotAppID == "" {
			bad(k+".bot_app_id", "is required when default_app is bot")
		}
		if p.BotAppID != "" && p.BotAppID == c.App.ID {
			bad(k+".bot_app_id", "must differ from app.id")
		}
		if p.ClientID <= 0 {
			bad(k+".client_id", "is required and must be positive")
		}
	}
	seenUser := map[string]bool{}
	for i, u := range c.Users {
		k := fmt.Sprintf("users[%d]", i)
		if u.Name == "" {
			bad(k+".name", "is required")
		} else if seenUser[u.Name] {
			bad(k+".name", "user %q is listed twice", u.Name)
		}
		seenUser[u.Name] = true
		switch u.Role {
		case RoleBot, RoleAgent, RoleAdmin:
		default:
			bad(k+".role", "must be one of bot, agent, admin; got %q", u.Role)
		}
		switch {
		case u.Token == "" && u.TokenSHA256 == "":
			bad(k+".token", "token or token_sha256 is required")
		case u.Token != "" && u.TokenSHA256 != "":
			bad(k+".token", "give token or token_sha256, not both")
		case u.TokenSHA256 != "" && !hex64.MatchString(u.TokenSHA256):
			bad(k+".token_sha256", "must be 64 lowercase hex digits")
		case u.Token != "" && len(u.Token) < 16:
			bad(k+".token", "must be at least 16 characters")
		}
		if u.ClientID <= 0 && u.Role != RoleAdmin {
			bad(k+".client_id", "is required and must be positive")
		}
	}
	if c.Threads.IdleAfter < 0 {
		bad("threads.idle_after", "must be positive")
	}
	if c.Threads.SweepEvery < 0 {
		bad("threads.sweep_every", "must be positive")
	}
	if c.Handover.ControlTimeout < 0 {
		bad("handover.control_timeout", "must be positive")
	}
	if c.Handover.InterventionIdle < 0 {
		bad("handover.intervention_idle", "must be positive (or left out for the default)")
	}
	if c.Handover.WorkEvery < 0 {
		bad("handover.work_every", "must be positive")
	}
	if c.Reconcile.Rate < 0 {
		bad("reconcile.rate", "must be positive (calls per second per Page)")
	}
	if c.Reconcile.Interval < 0 {
		bad("reconcile.interval", "must be positive")
	}
	if c.Handover.OfferTimeout < 0 {
		bad("handover.offer_timeout", "must be positive")
	}
	for i, p := range c.Pages {
		w := p.BotWebhook
		if w.URL == "" && w.Secret == "" {
			continue
		}
		k := fmt.Sprintf("pages[%d].bot_webhook", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(k+".url", "must be an http(s) URL")
		}
		if w.Secret == "" {
			bad(k+".secret", "is required (deliveries are signed)")
		}
	}
	seenTeam := map[int64]bool{}
	for i, t := range c.Inbox.Teams {
		k := fmt.Sprintf("inbox.teams[%d]", i)
		if t.ID <= 0 {
			bad(k+".id", "is required and must be positive")
		} else if seenTeam[t.ID] {
			bad(k+".id", "team %d is listed twice", t.ID)
		}
		seenTeam[t.ID] = true
		if strings.TrimSpace(t.Name) == "" {
			bad(k+".name", "is required")
		}
		if t.AccountID <= 0 {
			bad(k+".account_id", "is required and must be positive")
		}
		for j, m := range t.Members {
			if !seenUser[m] {
				bad(fmt.Sprintf("%s.members[%d]", k, j), "user %q is not configured", m)
			}
		}
	}
	if u := c.Inbox.PublicURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		bad("inbox.public_url", "must be an http(s) URL")
	}
	if c.Inbox.GiveUpAfter != 0 && c.Inbox.GiveUpAfter < 15*time.Minute {
		bad("inbox.give_up_after", "must be at least 15m")
	}
	if c.Inbox.DeliveryTimeout < 0 {
		bad("inbox.delivery_timeout", "must be positive")
	}
	for i, w := range c.Webhooks {
		k := fmt.Sprintf("webhooks[%d]", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(k+".url", "must be an http(s) URL")
		}
		if w.Secret == "" {
			bad(k+".secret", "is required (deliveries are signed)")
		}
		if w.AccountID <= 0 {
			bad(k+".account_id", "is required and must be positive")
		}
		for j, e := range w.Events {
			if !slices.Contains(WebhookEvents, e) {
				bad(fmt.Sprintf("%s.events[%d]", k, j), "unknown event %q (want one of %s)", e, strings.Join(WebhookEvents, ", "))
			}
		}
	}
	if c.Claims.Grace < 0 {
		bad("claims.grace", "must be positive")
	}
	if c.Claims.RatePerSecond < 0 {
		bad("claims.rate_per_second", "must be positive")
	}
	if c.Claims.Burst < 0 {
		bad("claims.burst", "must be positive")
	}
	if err := userlike.ValidateBots(c.RelayBots); err != nil {
		errs = append(errs, err)
	}
	for i, b := range c.RelayBots {
		for j, id := range b.Pages {
			p, ok := c.Page(id)
			k := fmt.Sprintf("relay_bots[%d].pages[%d]", i, j)
			switch {
			case !ok:
				bad(k, "page %s is not configured under pages", id)
			case p.DefaultApp != DefaultAppAgent && p.DefaultApp != DefaultAppNone:
				bad(k, "page %s must have default_app agent (or none): a relay bot speaks through handoverd's app, which must hold the thread", id)
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	return errors.Join(errs...)
}

// Page returns the configured page with the given id.
func (c *Config) Page(id string) (Page, bool) {
	for _, p := range c.Pages {
		if p.ID == id {
			return p, true
		}
	}
	return Page{}, false
}

func isNumericID(s string) bool {
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

// Database is a parsed database setting.
type Database struct {
	// Driver is "sqlite" or "postgres".
	Driver string
	// DSN is what the driver opens: a file path for sqlite, the URL for postgres.
	DSN string
}

// ParseDatabase interprets sqlite://PATH and postgres:// URLs.
func ParseDatabase(s string) (Database, error) {
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		p := strings.TrimPrefix(s, "sqlite://")
		if p == "" {
			return Database{}, errors.New("sqlite:// needs a file path, e.g. sqlite://handoverd.db")
		}
		return Database{Driver: "sqlite", DSN: p}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return Database{}, errors.New("not a valid postgres URL")
		}
		return Database{Driver: "postgres", DSN: s}, nil
	}
	return Database{}, fmt.Errorf("must start with sqlite:// or postgres://")
}

// HashToken returns the lowercase hex SHA-256 used for token_sha256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
