package inbox

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/google/uuid"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/store"
)

// This file holds the parts of Chatwoot's application API that have no
// counterpart in the seed's API channel document: agents, the caller's
// profile, teams and team assignment, labels, read marks, and the extra
// conversation fields Chatwoot clients read.

// EventConversationUpdated is emitted when a conversation's labels or team change.
const EventConversationUpdated = "conversation_updated"

// conversationNamespace derives conversations' UUIDs from their ids.
var conversationNamespace = uuid.MustParse("6f1c2a52-8a3e-4d2b-9a55-0b7e6c1d2f40")

// conversationUUID is a conversation's stable UUID.
func conversationUUID(id int64) string {
	return uuid.NewSHA1(conversationNamespace, []byte("conversation:"+strconv.FormatInt(id, 10))).String()
}

// chatwootFields fills in the conversation fields Chatwoot's views have
// beyond the seed's: uuid, labels, team, unread count, can_reply and the
// messages a conversation list shows.
func (s *Service) chatwootFields(ctx context.Context, q querier, c conversation, iv InboxView, v *ConversationView, withMessages bool) error {
	v.UUID, v.UpdatedAt = conversationUUID(c.id), store.Time(c.updated).Unix()
	labels, err := conversationLabels(ctx, q, c.id)
	if err != nil {
		return err
	}
	v.Labels = labels
	if c.team.Valid {
		id := c.team.Int64
		v.TeamID = &id
		if t, ok := s.teams[id]; ok {
			tv := teamView(t, "")
			v.Meta.Team = &tv
		}
	}
	if c.waitingSince.Valid {
		v.WaitingSince = store.Time(c.waitingSince.Int64).Unix()
	}
	var seen int64
	if c.agentLastSeen.Valid {
		seen = c.agentLastSeen.Int64
		v.AgentLastSeenAt = store.Time(seen).Unix()
	}
	var lastIncoming int64
	if err := q.QueryRowContext(ctx, `SELECT count(CASE WHEN created_at > $2 THEN 1 END), coalesce(max(created_at), 0)
		FROM inbox_messages WHERE conversation_id = $1 AND message_type = 'incoming'`, c.id, seen).Scan(&v.UnreadCount, &lastIncoming); err != nil {
		return err
	}
	v.CanReply = iv.ChannelType != channelType("facebook") ||
		(lastIncoming > 0 && s.now().Sub(store.Time(lastIncoming)) <= handover.HumanAgentWindow)
	if !withMessages {
		return nil
	}
	query := `SELECT ` + messageColumns + ` FROM inbox_messages WHERE conversation_id = $1 ORDER BY id DESC LIMIT 1`
	args := []any{c.id}
	if v.UnreadCount > 0 {
		query = `SELECT ` + messageColumns + ` FROM inbox_messages WHERE conversation_id = $1 AND message_type = 'incoming' AND created_at > $2
			ORDER BY id DESC LIMIT 10`
		args = append(args, seen)
	}
	msgs, err := queryMessages(ctx, q, query, args...)
	if err != nil {
		return err
	}
	slices.Reverse(msgs)
	v.Messages = &msgs
	if v.UnreadCount == 0 && len(msgs) == 1 && msgs[0].MessageType != messageTypeCodes[Activity] {
		v.LastNonActivityMessage = &msgs[0] // the newest message is one
		return nil
	}
	last, err := queryMessages(ctx, q, `SELECT `+messageColumns+` FROM inbox_messages WHERE conversation_id = $1 AND message_type <> 'activity'
		ORDER BY id DESC LIMIT 1`, c.id)
	if err != nil {
		return err
	}
	if len(last) == 1 {
		v.LastNonActivityMessage = &last[0]
	}
	return nil
}

func queryMessages(ctx context.Context, q querier, query string, args ...any) ([]MessageView, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []MessageView{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func conversationLabels(ctx context.Context, q querier, id int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT label FROM conversation_labels WHERE conversation_id = $1 ORDER BY label`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

var validLabel = regexp.MustCompile(`^[\p{L}\p{N}_-]{1,255}$`)

// MaxLabels is how many labels a conversation may carry.
const MaxLabels = 50

// Labels returns a conversation's labels.
func (s *Service) Labels(ctx context.Context, accountID, conversationID int64) ([]string, error) {
	c, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return nil, err
	}
	return conversationLabels(ctx, s.db.Reader(), c.id)
}

// SetLabels replaces a conversation's labels (Chatwoot's POST …/labels)
// and returns them sorted.
func (s *Service) SetLabels(ctx context.Context, accountID, conversationID int64, labels []string) ([]string, error) {
	set := map[string]bool{}
	for i, l := range labels {
		if !validLabel.MatchString(l) {
			return nil, apperr.Field("labels["+strconv.Itoa(i)+"]", "a label is 1 to 255 letters, digits, - or _")
		}
		set[l] = true
	}
	if len(set) > MaxLabels {
		return nil, apperr.Field("labels", "at most %d labels", MaxLabels)
	}
	want := make([]string, 0, len(set))
	for l := range set {
		want = append(want, l)
	}
	sort.Strings(want)
	conv, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		c, err := lockConversation(ctx, tx, conv.id)
		if err != nil {
			return err
		}
		prev, err := conversationLabels(ctx, tx, c.id)
		if err != nil || slices.Equal(prev, want) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM conversation_labels WHERE conversation_id = $1`, c.id); err != nil {
			return err
		}
		now := store.Millis(s.now())
		for _, l := range want {
			if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_labels (conversation_id, label, created_at) VALUES ($1, $2, $3)`, c.id, l, now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET updated_at = $2 WHERE id = $1`, c.id, now); err != nil {
			return err
		}
		return s.conversationEvent(ctx, tx, EventConversationUpdated, c, map[string]any{
			"changed_attributes": []map[string]any{{"label_list": map[string]any{"previous_value": prev, "current_value": want}}},
		})
	})
	return want, err
}

// MarkSeen records that the agents read a conversation up to now, which
// zeroes its unread count.
func (s *Service) MarkSeen(ctx context.Context, accountID, conversationID int64) (ConversationView, error) {
	conv, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return ConversationView{}, err
	}
	now := store.Millis(s.now())
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE conversations SET agent_last_seen_at = $2 WHERE id = $1`, conv.id, now)
		return err
	})
	if err != nil {
		return ConversationView{}, err
	}
	conv.agentLastSeen = sql.NullInt64{Int64: now, Valid: true}
	return s.conversationView(ctx, s.db.Reader(), conv)
}

// UserView is an agent (Chatwoot's user) as the agents and profile
// endpoints show it.
type UserView struct {
	ID                 int64  `json:"id"`
	AccountID          int64  `json:"account_id"`
	AvailabilityStatus string `json:"availability_status"`
	AutoOffline        bool   `json:"auto_offline"`
	Confirmed          bool   `json:"confirmed"`
	Email              string `json:"email"`
	AvailableName      string `json:"available_name"`
	DisplayName        string `json:"display_name"`
	Name               string `json:"name"`
	// Role is Chatwoot's: agent or administrator.
	Role      string `json:"role"`
	Thumbnail string `json:"thumbnail"`
	Type      string `json:"type"`
}

// ProfileView is the caller as GET /api/v1/profile shows it.
type ProfileView struct {
	UserView
	// Accounts are the accounts the caller may act on.
	Accounts []ProfileAccount `json:"accounts"`
}

// ProfileAccount is one account of a profile.
type ProfileAccount struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Status string `json:"status"`
}

func chatwootRole(role string) string {
	if role == config.RoleAdmin {
		return "administrator"
	}
	return "agent"
}

func (s *Service) userView(u config.User, accountID int64) UserView {
	return UserView{ID: s.agentIDs[u.Name], AccountID: accountID, AvailabilityStatus: "online", AutoOffline: true, Confirmed: true,
		AvailableName: u.Name, DisplayName: u.Name, Name: u.Name, Role: chatwootRole(u.Role), Type: "user"}
}

// Agents lists the account's agents: its agents and admins, and the
// global admins, by id.
func (s *Service) Agents(accountID int64) []UserView {
	out := []UserView{}
	for _, u := range s.users {
		if u.ClientID == accountID || (u.Role == config.RoleAdmin && u.ClientID == 0) {
			out = append(out, s.userView(u, accountID))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Profile returns the caller's profile.
func (s *Service) Profile(p auth.Principal) (ProfileView, error) {
	u, ok := s.users[p.Name]
	if !ok {
		return ProfileView{}, apperr.New(apperr.Forbidden, "only agents and admins have a profile")
	}
	var accounts []int64
	if p.ClientID != 0 {
		accounts = []int64{p.ClientID}
	} else {
		for _, pg := range s.pages {
			if !slices.Contains(accounts, pg.ClientID) {
				accounts = append(accounts, pg.ClientID)
			}
		}
		slices.Sort(accounts)
	}
	var first int64
	if len(accounts) > 0 {
		first = accounts[0]
	}
	v := ProfileView{UserView: s.userView(u, first), Accounts: []ProfileAccount{}}
	for _, a := range accounts {
		v.Accounts = append(v.Accounts, ProfileAccount{ID: a, Name: "Account " + strconv.FormatInt(a, 10), Role: v.Role, Status: "active"})
	}
	return v, nil
}

func teamView(t config.Team, member string) TeamView {
	return TeamView{ID: t.ID, Name: t.Name, Description: t.Description, AccountID: t.AccountID, IsMember: slices.Contains(t.Members, member)}
}

// Teams lists the account's teams (from the config), by id.
func (s *Service) Teams(p auth.Principal, accountID int64) []TeamView {
	out := []TeamView{}
	for _, t := range s.teams {
		if t.AccountID == accountID {
			out = append(out, teamView(t, p.Name))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Team returns one of the account's teams.
func (s *Service) Team(p auth.Principal, accountID, id int64) (TeamView, error) {
	t, ok := s.teams[id]
	if !ok || t.AccountID != accountID {
		return TeamView{}, apperr.New(apperr.NotFound, "team %d does not exist", id)
	}
	return teamView(t, p.Name), nil
}

// AssignTeam sets (or, with 0, clears) a conversation's team; the assignee
// stays as it is.
func (s *Service) AssignTeam(ctx context.Context, p auth.Principal, accountID, conversationID, teamID int64) (*TeamView, error) {
	var team sql.NullInt64
	if teamID != 0 {
		if t, ok := s.teams[teamID]; !ok || t.AccountID != accountID {
			return nil, apperr.Field("team_id", "team %d does not exist in account %d", teamID, accountID)
		}
		team = sql.NullInt64{Int64: teamID, Valid: true}
	}
	conv, err := s.accountConversation(ctx, accountID, conversationID)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		c, err := lockConversation(ctx, tx, conv.id)
		if err != nil || c.team == team {
			return err
		}
		prev := c.team
		c.team = team
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET team_id = $2, updated_at = $3 WHERE id = $1`, c.id, team, store.Millis(s.now())); err != nil {
			return err
		}
		return s.conversationEvent(ctx, tx, EventConversationUpdated, c, map[string]any{
			"changed_attributes": []map[string]any{{"team_id": map[string]any{"previous_value": nullID(prev), "current_value": nullID(team)}}},
		})
	})
	if err != nil || teamID == 0 {
		return nil, err
	}
	v := teamView(s.teams[teamID], p.Name)
	return &v, nil
}

func nullID(n sql.NullInt64) any {
	if n.Valid {
		return n.Int64
	}
	return nil
}

// errNoRows reports a missing row.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
