package inbox

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/store"
)

// ContactCreated is the answer of POST …/contacts: the seed's shape (the
// contact's fields at the top level, with contact_inboxes) and Chatwoot's
// (payload.contact and payload.contact_inbox) in one object.
type ContactCreated struct {
	ContactView
	Payload struct {
		Contact      ContactView      `json:"contact"`
		ContactInbox ContactInboxView `json:"contact_inbox"`
	} `json:"payload"`
}

// ContactShown is the answer of GET …/contacts/{id}: the contact's fields
// at the top level and, as Chatwoot answers, under payload.
type ContactShown struct {
	ContactView
	Payload ContactView `json:"payload"`
}

// ContactList is Chatwoot's answer of GET …/contacts, …/contacts/search
// and POST …/contacts/filter.
type ContactList struct {
	Meta struct {
		Count       int `json:"count"`
		CurrentPage int `json:"current_page"`
	} `json:"meta"`
	Payload []ContactView `json:"payload"`
}

// ContactPageSize is how many contacts a page lists (Chatwoot's 15).
const ContactPageSize = 15

// ContactFilter selects contacts.
type ContactFilter struct {
	// Q matches name, email, phone number or identifier (search).
	Q string
	// Rules are a Chatwoot filter payload.
	Rules []FilterRule
	// Sort is name, email, phone_number, created_at or id, "-" first for
	// descending (default id).
	Sort string
	// Page is 1-based.
	Page int
}

var contactSorts = map[string]string{"name": "lower(name)", "email": "lower(email)", "phone_number": "phone_number",
	"created_at": "created_at", "id": "id", "last_activity_at": "updated_at"}

// Contacts lists, searches or filters an account's contacts.
func (s *Service) Contacts(ctx context.Context, accountID int64, f ContactFilter) (ContactList, error) {
	var out ContactList
	w := &sqlWhere{}
	w.add("account_id = ?", accountID)
	if q := strings.TrimSpace(f.Q); q != "" {
		p := likePattern(q)
		w.add(`(lower(name) LIKE ? ESCAPE '\' OR lower(email) LIKE ? ESCAPE '\' OR lower(phone_number) LIKE ? ESCAPE '\' OR lower(identifier) LIKE ? ESCAPE '\')`, p, p, p, p)
	}
	if len(f.Rules) > 0 {
		cond, args, err := buildFilter(f.Rules, contactAttrs, "id")
		if err != nil {
			return out, err
		}
		w.add(cond, args...)
	}
	order := "id"
	if f.Sort != "" {
		col, ok := contactSorts[strings.TrimPrefix(f.Sort, "-")]
		if !ok {
			return out, apperr.Field("sort", "must be one of name, email, phone_number, created_at, last_activity_at, id (- first for descending)")
		}
		order = col
		if strings.HasPrefix(f.Sort, "-") {
			order += " DESC"
		}
	}
	if f.Page < 1 {
		f.Page = 1
	}
	out.Meta.CurrentPage = f.Page
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE `+w.String(), w.args...).Scan(&out.Meta.Count); err != nil {
		return out, err
	}
	n := len(w.args)
	ids, err := store.IDs(ctx, s.db.Reader(), `SELECT id FROM contacts WHERE `+w.String()+` ORDER BY `+order+`, id LIMIT $`+strconv.Itoa(n+1)+
		` OFFSET $`+strconv.Itoa(n+2), append(w.args, ContactPageSize, (f.Page-1)*ContactPageSize)...)
	if err != nil {
		return out, err
	}
	out.Payload = []ContactView{}
	for _, id := range ids {
		v, err := s.contactView(ctx, s.db.Reader(), id)
		if err != nil {
			return out, err
		}
		out.Payload = append(out.Payload, v)
	}
	return out, nil
}

// ContactConversations lists a contact's conversations, newest first.
func (s *Service) ContactConversations(ctx context.Context, accountID, contactID int64) ([]ConversationView, error) {
	if _, err := s.Contact(ctx, accountID, contactID); err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE contact_id = $1 AND account_id = $2
		ORDER BY last_activity_at DESC, id DESC LIMIT 100`, contactID, accountID)
	if err != nil {
		return nil, err
	}
	var convs []conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		convs = append(convs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []ConversationView{}
	for _, c := range convs {
		v, err := s.conversationView(ctx, s.db.Reader(), c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ContactInboxCreated is the answer of POST …/contacts/{id}/contact_inboxes.
type ContactInboxCreated struct {
	ContactInboxView
	ContactID int64 `json:"contact_id"`
	InboxID   int64 `json:"inbox_id"`
}

// CreateContactInbox opens a contact's session in an API inbox, with the
// given source id or a new one.
func (s *Service) CreateContactInbox(ctx context.Context, accountID, contactID, inboxID int64, sourceID string) (ContactInboxCreated, error) {
	if inboxID == 0 {
		return ContactInboxCreated{}, apperr.Field("inbox_id", "is required")
	}
	if len(sourceID) > 255 {
		return ContactInboxCreated{}, apperr.Field("source_id", "is over 255 characters")
	}
	if _, err := s.Contact(ctx, accountID, contactID); err != nil {
		return ContactInboxCreated{}, err
	}
	iv, err := s.inboxView(ctx, s.db.Reader(), inboxID)
	if err != nil || iv.AccountID != accountID {
		return ContactInboxCreated{}, apperr.Field("inbox_id", "inbox %d does not exist in account %d", inboxID, accountID)
	}
	if iv.ChannelType != channelType("api") {
		return ContactInboxCreated{}, &apperr.Error{Code: apperr.Unprocessable, Field: "inbox_id", Message: "inbox is a Messenger inbox: its contacts come from Messenger"}
	}
	if sourceID == "" {
		sourceID = uuid.NewString()
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var owner int64
		err := tx.QueryRowContext(ctx, `SELECT contact_id FROM contact_inboxes WHERE inbox_id = $1 AND source_id = $2`, inboxID, sourceID).Scan(&owner)
		switch {
		case err == nil && owner == contactID:
			return nil // already there
		case err == nil:
			return &apperr.Error{Code: apperr.Conflict, Field: "source_id", Message: "source_id is another contact's in this inbox"}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, created_at) VALUES ($1, $2, $3, $4)`,
			contactID, inboxID, sourceID, store.Millis(s.now()))
		return err
	})
	if store.IsUniqueViolation(err) {
		err = &apperr.Error{Code: apperr.Conflict, Field: "source_id", Message: "source_id is already taken in this inbox"}
	}
	if err != nil {
		return ContactInboxCreated{}, err
	}
	return ContactInboxCreated{ContactInboxView: ContactInboxView{SourceID: sourceID, Inbox: iv}, ContactID: contactID, InboxID: inboxID}, nil
}

// ContactInboxes lists a contact's sessions.
func (s *Service) ContactInboxes(ctx context.Context, accountID, contactID int64) ([]ContactInboxView, error) {
	v, err := s.Contact(ctx, accountID, contactID)
	return v.ContactInboxes, err
}

// ContactableInboxes lists the inboxes a contact can be reached through:
// every API inbox of the account (with the contact's first session there,
// or an empty source_id when it has none yet) and the Messenger inboxes where it
// has a session.
func (s *Service) ContactableInboxes(ctx context.Context, accountID, contactID int64) ([]ContactInboxView, error) {
	c, err := s.Contact(ctx, accountID, contactID)
	if err != nil {
		return nil, err
	}
	have := map[int64]string{}
	for _, ci := range c.ContactInboxes { // the oldest session of each inbox
		if _, ok := have[ci.Inbox.ID]; !ok {
			have[ci.Inbox.ID] = ci.SourceID
		}
	}
	ivs, err := s.Inboxes(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := []ContactInboxView{}
	for _, iv := range ivs {
		source, ok := have[iv.ID]
		if ok || iv.ChannelType == channelType("api") {
			out = append(out, ContactInboxView{SourceID: source, Inbox: iv})
		}
	}
	return out, nil
}
