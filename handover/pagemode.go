package handover

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/store"
)

// PageMode is how Meta routes a Page's conversations, as handoverd learnt it.
type PageMode string

// Page modes.
const (
	// ModeHandoverProtocol: app_roles name a primary receiver (the app that
	// gets new conversations) and secondary receivers.
	ModeHandoverProtocol PageMode = "handover_protocol"
	// ModeConversationRouting: Graph's answers show a default app.
	ModeConversationRouting PageMode = "conversation_routing"
	// ModeZeroConfig: app_roles name no primary receiver: no default app,
	// every app gets every message and take is blocked.
	ModeZeroConfig PageMode = "zero_config"
	// ModeUnknown: Meta has shown nothing of the Page's routing yet.
	ModeUnknown PageMode = "unknown"
)

// PageModes lists every mode (for metrics initialisation).
var PageModes = []PageMode{ModeHandoverProtocol, ModeConversationRouting, ModeZeroConfig, ModeUnknown}

// Evidence sources of a Page's mode.
const (
	sourceAppRoles    = "app_roles"
	sourceThreadOwner = "thread_owner"
)

// MetaRouting is what Meta has shown of a Page's routing.
type MetaRouting struct {
	// Mode is the routing mode.
	Mode PageMode
	// DefaultAppID is the app that gets new conversations (the primary
	// receiver or the default app); "" when there is none or it is unknown.
	DefaultAppID string
	// Roles are the app roles of the newest app_roles event (nil if none).
	Roles map[string][]string
	// Source says which evidence decided: app_roles, thread_owner, or "".
	Source string
	// LearnedAt is when that evidence was seen.
	LearnedAt *time.Time
}

// detectMode decides a Page's mode from its newest app_roles (roles, seen
// at rolesAt) and from what Graph showed (graphApp is the default app
// thread_owner implied, at graphAt); the newer evidence wins.
func detectMode(roles map[string][]string, rolesAt *time.Time, graphApp string, graphAt *time.Time) MetaRouting {
	m := MetaRouting{Mode: ModeUnknown, Roles: roles}
	if graphAt != nil && (rolesAt == nil || graphAt.After(*rolesAt)) {
		m.Mode, m.DefaultAppID, m.Source, m.LearnedAt = ModeConversationRouting, graphApp, sourceThreadOwner, graphAt
		return m
	}
	if rolesAt == nil {
		return m
	}
	m.Source, m.LearnedAt = sourceAppRoles, rolesAt
	var primaries []string
	for app, rs := range roles {
		if slices.Contains(rs, "primary_receiver") {
			primaries = append(primaries, app)
		}
	}
	slices.Sort(primaries)
	if len(primaries) == 0 {
		m.Mode = ModeZeroConfig
		return m
	}
	m.Mode, m.DefaultAppID = ModeHandoverProtocol, primaries[0]
	return m
}

// appName describes an app id on page: "the bot (app 222)".
func (s *Service) appName(appID string, page config.Page) string {
	switch ownerOf(appID, s.appID, page) {
	case OwnerIdle:
		return "no app"
	case OwnerAgent:
		return "handoverd (app " + appID + ")"
	case OwnerBot:
		return "the bot (app " + appID + ")"
	case OwnerPageInbox:
		return "the Page Inbox (app " + appID + ")"
	}
	return "app " + appID
}

// disagreement says how the configured default app differs from what Meta
// shows ("" when they agree or Meta has shown nothing).
func (s *Service) disagreement(page config.Page, m MetaRouting) string {
	if m.Mode == ModeUnknown {
		return ""
	}
	want := page.DefaultAppID(s.appID)
	if m.DefaultAppID == want {
		return ""
	}
	cfg := fmt.Sprintf("config says default_app: %s", page.DefaultApp)
	if want != "" {
		cfg += " (" + s.appName(want, page) + ")"
	}
	var meta string
	switch m.Mode {
	case ModeZeroConfig:
		meta = "Meta's app_roles name no primary receiver (no default app: zero-config)"
	case ModeHandoverProtocol:
		meta = "Meta's app_roles make " + s.appName(m.DefaultAppID, page) + " the primary receiver"
	case ModeConversationRouting:
		meta = "Graph's thread_owner answers show " + s.appName(m.DefaultAppID, page) + " is the default app"
	}
	return fmt.Sprintf("page %s: %s, but %s", page.ID, cfg, meta)
}

// routing reads what Meta has shown of a Page's routing.
func (s *Service) routing(ctx context.Context, q querier, pageID string) (MetaRouting, error) {
	var rolesJSON string
	var rolesAt int64
	var roles map[string][]string
	var rolesSeen *time.Time
	err := q.QueryRowContext(ctx, `SELECT app_roles, event_at FROM page_app_roles WHERE page_id = $1`, pageID).Scan(&rolesJSON, &rolesAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return MetaRouting{}, err
	default:
		if err := json.Unmarshal([]byte(rolesJSON), &roles); err != nil {
			return MetaRouting{}, fmt.Errorf("handover: app roles of page %s: %w", pageID, err)
		}
		t := store.Time(rolesAt)
		rolesSeen = &t
	}
	var graphApp string
	var graphAt int64
	var graphSeen *time.Time
	err = q.QueryRowContext(ctx, `SELECT default_app_id, observed_at FROM page_graph_evidence WHERE page_id = $1`, pageID).Scan(&graphApp, &graphAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return MetaRouting{}, err
	default:
		t := store.Time(graphAt)
		graphSeen = &t
	}
	return detectMode(roles, rolesSeen, graphApp, graphSeen), nil
}

// noteGraphDefault records, in tx, that Graph's answer showed appID is the
// Page's default app.
func noteGraphDefault(ctx context.Context, tx *store.Tx, pageID, appID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO page_graph_evidence (page_id, default_app_id, source, observed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (page_id) DO UPDATE SET default_app_id = excluded.default_app_id, source = excluded.source, observed_at = excluded.observed_at
		WHERE page_graph_evidence.observed_at <= excluded.observed_at`, pageID, appID, sourceThreadOwner, store.Millis(now))
	return err
}

// PageWarning is a Page whose configuration and Meta disagree.
type PageWarning struct {
	// PageID is the Page.
	PageID string `json:"page_id"`
	// Warning says how they disagree.
	Warning string `json:"warning"`
}

// PageStatus is one configured Page's mode as Meta shows it, compared
// with the configuration.
type PageStatus struct {
	// Page is the configured Page.
	Page config.Page
	// Meta is what Meta has shown.
	Meta MetaRouting
	// Warning says how the config and Meta disagree ("" when they do not).
	Warning string
}

// PageStatuses returns every configured Page's mode, in config order.
func (s *Service) PageStatuses(ctx context.Context) ([]PageStatus, error) {
	var out []PageStatus
	for _, page := range s.pageList {
		m, err := s.routing(ctx, s.db.Reader(), page.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, PageStatus{Page: page, Meta: m, Warning: s.disagreement(page, m)})
	}
	return out, nil
}

// PageWarnings returns the Pages whose configuration and Meta disagree.
func (s *Service) PageWarnings(ctx context.Context) ([]PageWarning, error) {
	sts, err := s.PageStatuses(ctx)
	if err != nil {
		return nil, err
	}
	out := []PageWarning{}
	for _, st := range sts {
		if st.Warning != "" {
			out = append(out, PageWarning{PageID: st.Page.ID, Warning: st.Warning})
		}
	}
	return out, nil
}

// CheckPageModes logs a warning for every Page whose configuration and
// Meta disagree (at start; ingest warns as app_roles arrive).
func (s *Service) CheckPageModes(ctx context.Context) error {
	ws, err := s.PageWarnings(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		s.log.Warn().Str("page_id", w.PageID).Msg("page mode: " + w.Warning)
	}
	return nil
}

// PageView is the admin API's view of a Page.
type PageView struct {
	PageID   string `json:"page_id"`
	ClientID int64  `json:"client_id"`
	// Config is the Page's configured routing.
	Config PageConfigView `json:"config"`
	// Meta is what Meta has shown of it.
	Meta PageMetaView `json:"meta"`
	// Agrees is false when the config and Meta disagree (see Warning).
	Agrees  bool   `json:"agrees"`
	Warning string `json:"warning,omitempty"`
	// LastWebhookAt is when the newest webhook event for the Page was received.
	LastWebhookAt *time.Time `json:"last_webhook_at"`
	// Threads counts the Page's threads by current owner.
	Threads map[Owner]int `json:"threads"`
}

// PageConfigView is a Page's configured default app.
type PageConfigView struct {
	DefaultApp   string `json:"default_app"`
	DefaultAppID string `json:"default_app_id"`
	BotAppID     string `json:"bot_app_id,omitempty"`
}

// PageMetaView is what Meta has shown of a Page's routing.
type PageMetaView struct {
	Mode         PageMode            `json:"mode"`
	DefaultAppID string              `json:"default_app_id"`
	DefaultApp   Owner               `json:"default_app,omitempty"`
	Roles        map[string][]string `json:"roles"`
	Source       string              `json:"source,omitempty"`
	LearnedAt    *time.Time          `json:"learned_at"`
}

// PagesForPrincipal returns the Pages p may see (admins of their client,
// or every Page for an admin without one), in config order.
func (s *Service) PagesForPrincipal(ctx context.Context, p auth.Principal) ([]PageView, error) {
	sts, err := s.PageStatuses(ctx)
	if err != nil {
		return nil, err
	}
	out := []PageView{}
	for _, st := range sts {
		if !p.CanActOnClient(st.Page.ClientID) {
			continue
		}
		v := PageView{PageID: st.Page.ID, ClientID: st.Page.ClientID, Agrees: st.Warning == "", Warning: st.Warning,
			Config: PageConfigView{DefaultApp: st.Page.DefaultApp, DefaultAppID: st.Page.DefaultAppID(s.appID), BotAppID: st.Page.BotAppID},
			Meta: PageMetaView{Mode: st.Meta.Mode, DefaultAppID: st.Meta.DefaultAppID, Roles: st.Meta.Roles, Source: st.Meta.Source,
				LearnedAt: st.Meta.LearnedAt},
			Threads: map[Owner]int{},
		}
		if v.Meta.Roles == nil {
			v.Meta.Roles = map[string][]string{}
		}
		if st.Meta.DefaultAppID != "" {
			v.Meta.DefaultApp = ownerOf(st.Meta.DefaultAppID, s.appID, st.Page)
		}
		var last sql.NullInt64
		if err := s.db.Reader().QueryRowContext(ctx, `SELECT max(received_at) FROM webhook_events WHERE page_id = $1`, st.Page.ID).Scan(&last); err != nil {
			return nil, err
		}
		v.LastWebhookAt = store.TimePtr(last)
		for _, o := range Owners {
			v.Threads[o] = 0
		}
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT owner, count(*) FROM threads WHERE page_id = $1 GROUP BY owner`, st.Page.ID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var o string
			var n int
			if err := rows.Scan(&o, &n); err != nil {
				rows.Close()
				return nil, err
			}
			v.Threads[Owner(o)] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
