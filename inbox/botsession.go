package inbox

import (
	"context"
	"database/sql"
	"errors"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/store"
)

// onRelay shows the agents what a relay bot's session did (a fact the bots
// hand on through thread control): a forward opens the conversation, an end
// resolves it, a takeover only says so; notes and contact details land
// where the agents see them.
func (s *Service) onRelay(ctx context.Context, tx *store.Tx, th handover.Thread, r handover.Relay) error {
	switch r.Kind {
	case handover.RelayForwarded:
		return s.setStatus(ctx, tx, th.PageID, th.PSID, StatusOpen, r.Why)
	case handover.RelayEnded:
		return s.setStatus(ctx, tx, th.PageID, th.PSID, StatusResolved, r.Why)
	case handover.RelayTakenOver:
		return s.setStatus(ctx, tx, th.PageID, th.PSID, "", r.Why)
	case handover.RelayNote:
		return s.addNote(ctx, tx, th.PageID, th.PSID, r.Bot, r.Note)
	case handover.RelayContact:
		return s.updateContact(ctx, tx, th.PageID, th.PSID, r.Contact)
	}
	return nil // started: the bots said who answers (handover.SetBotAnswering)
}

// setStatus moves the thread's current conversation to status ("" keeps
// it), recording why as an activity message, and emits
// conversation_status_changed.
func (s *Service) setStatus(ctx context.Context, tx *store.Tx, pageID, psid, status, why string) error {
	conv, err := s.current(ctx, tx, pageID, psid)
	if err != nil || conv.id == 0 {
		return err
	}
	now := s.now()
	if why != "" {
		if err := s.addMessage(ctx, tx, conv, false, newMessage{convID: conv.id, messageType: Activity, content: why, at: now}); err != nil {
			return err
		}
	}
	if status == "" || conv.status == status {
		return nil
	}
	prev := conv.status
	conv.status = status
	var waiting sql.NullInt64
	if status == StatusOpen {
		waiting = sql.NullInt64{Int64: store.Millis(now), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = $2, agent_waiting_since = $3, updated_at = $4 WHERE id = $1`,
		conv.id, status, waiting, store.Millis(now)); err != nil {
		return err
	}
	conv.waitingSince = waiting
	batchOf(tx).keep(conv)
	return s.statusChanged(ctx, tx, conv, prev)
}

// updateContact sets the non-empty fields of the thread's contact.
func (s *Service) updateContact(ctx context.Context, tx *store.Tx, pageID, psid string, f handover.Contact) error {
	conv, err := s.current(ctx, tx, pageID, psid)
	if err != nil || conv.id == 0 {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE contacts SET
		name = CASE WHEN $2 = '' THEN name ELSE $2 END,
		email = CASE WHEN $3 = '' THEN email ELSE $3 END,
		phone_number = CASE WHEN $4 = '' THEN phone_number ELSE $4 END,
		identifier = CASE WHEN $5 = '' THEN identifier ELSE $5 END,
		updated_at = $6 WHERE id = $1`, conv.contactID, f.Name, f.Email, f.PhoneNumber, f.Identifier, store.Millis(s.now()))
	if b := batchOf(tx); b != nil && err == nil && f.Name != "" {
		b.names[conv.contactID] = f.Name
	}
	return err
}

// ContactOf returns what the agents' inbox knows of the thread's contact
// (ok false when nothing yet). It only reads.
func (s *Service) ContactOf(ctx context.Context, pageID, psid string) (handover.Contact, bool, error) {
	var f handover.Contact
	ref, ok := s.pageInbox[pageID]
	if !ok {
		return f, false, nil
	}
	err := s.db.Reader().QueryRowContext(ctx, `SELECT c.name, c.email, c.phone_number, c.identifier FROM contact_inboxes ci
		JOIN contacts c ON c.id = ci.contact_id WHERE ci.inbox_id = $1 AND ci.source_id = $2`, ref.id, psid).
		Scan(&f.Name, &f.Email, &f.PhoneNumber, &f.Identifier)
	if errors.Is(err, sql.ErrNoRows) {
		return f, false, nil
	}
	return f, err == nil, err
}

// addNote adds a private note to the thread's current conversation.
func (s *Service) addNote(ctx context.Context, tx *store.Tx, pageID, psid, author, text string) error {
	conv, err := s.current(ctx, tx, pageID, psid)
	if err != nil || conv.id == 0 {
		return err
	}
	return s.addMessage(ctx, tx, conv, false, newMessage{convID: conv.id, messageType: Outgoing, private: true, content: text,
		senderType: SenderBot, senderName: author, at: s.now()})
}

// current returns the thread's current conversation (zero when none).
func (s *Service) current(ctx context.Context, tx *store.Tx, pageID, psid string) (conversation, error) {
	ref, ok := s.pageInbox[pageID]
	if !ok {
		return conversation{}, nil
	}
	conv, _, err := currentConversation(ctx, tx, ref, pageID, psid)
	return conv, err
}
