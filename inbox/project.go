package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Metadata prefixes handoverd puts on its own sends, so their echoes are
// recognised.
const (
	metaInbox        = "handoverd:inbox:"
	metaAgentMessage = "handoverd:agent_message:"
)

var _ handover.Observer = (*Service)(nil)

// ThreadChanged projects a thread change into the inbox, in the handover
// service's transaction.
func (s *Service) ThreadChanged(ctx context.Context, tx *store.Tx, ch handover.Change) error {
	ref, ok := s.pageInbox[ch.Thread.PageID]
	if !ok {
		return nil
	}
	switch {
	case ch.Event != nil:
		return s.onEvent(ctx, tx, ref, ch.Thread, *ch.Event)
	case len(ch.Transitions) > 0:
		return s.onTransitions(ctx, tx, ch.Thread, ch.Transitions)
	case ch.AgentMessage != nil:
		return s.onAgentMessage(ctx, tx, ch.Thread, *ch.AgentMessage)
	case ch.Relay != nil:
		return s.onRelay(ctx, tx, ch.Thread, *ch.Relay)
	case ch.Handoff != nil:
		return s.onHandoff(ctx, tx, ref, ch.Thread, *ch.Handoff)
	}
	return nil // a claim: the agent's own status change says it all
}

// onHandoff shows a bot's offer in the agents' queue: an open offer makes
// the conversation open (marked offered) while the bot keeps the thread;
// accepted, it is the agent's (assigned); declined or expired, it goes
// back to pending with the bot. Each step is an activity message.
func (s *Service) onHandoff(ctx context.Context, tx *store.Tx, ref inboxRef, th handover.Thread, h handover.Handoff) error {
	conv, _, err := s.conversationFor(ctx, tx, ref, th, h.Status == handover.HandoffOpen)
	if err != nil || conv.id == 0 {
		return err
	}
	prev := conv.status
	now := s.now()
	var text string
	switch h.Status {
	case handover.HandoffOpen:
		conv.offer = sql.NullInt64{Int64: h.ID, Valid: true}
		if conv.status != StatusOpen {
			conv.status = StatusOpen
			conv.waitingSince = sql.NullInt64{Int64: store.Millis(now), Valid: true}
		}
		text = fmt.Sprintf("Offered to the agents by %s (%s)", h.CreatedBy, h.Reason)
	case handover.HandoffAccepted:
		conv.offer = sql.NullInt64{}
		if id, ok := s.agentIDs[h.DecidedBy]; ok {
			conv.assignee = sql.NullInt64{Int64: id, Valid: true}
		}
		text = fmt.Sprintf("Offer accepted by %s", h.DecidedBy)
	case handover.HandoffDeclined, handover.HandoffExpired:
		if conv.offer.Int64 != h.ID {
			return nil // a newer offer replaced this one
		}
		conv.offer = sql.NullInt64{}
		if th.Owner != handover.OwnerAgent && conv.status == StatusOpen {
			conv.status = StatusPending
			conv.waitingSince = sql.NullInt64{}
		}
		text = "Offer expired (" + string(handover.ReasonOfferExpired) + ")"
		if h.Status == handover.HandoffDeclined {
			text = "Offer declined by " + h.DecidedBy
		}
	case handover.HandoffFailed:
		// Control could not be had: an accepted offer goes back to the bot.
		if h.Mode == handover.ModeOffer && th.Owner != handover.OwnerAgent && conv.status == StatusOpen {
			conv.status = StatusPending
			conv.waitingSince = sql.NullInt64{}
		}
		text = "Handover to the agents failed: " + h.Error
	default:
		return nil
	}
	if md := h.Metadata.JSON(); md != "" && h.Status == handover.HandoffOpen {
		text += " " + md
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = $2, offer_id = $3, assignee_id = $4, agent_waiting_since = $5, updated_at = $6
		WHERE id = $1`, conv.id, conv.status, conv.offer, conv.assignee, conv.waitingSince, store.Millis(now)); err != nil {
		return err
	}
	batchOf(tx).keep(conv)
	if err := s.addMessage(ctx, tx, conv, false, newMessage{convID: conv.id, messageType: Activity, content: text, at: now}); err != nil {
		return err
	}
	if err := s.conversationEvent(ctx, tx, EventConversationUpdated, conv, map[string]any{
		"handover": map[string]any{"id": h.ID, "status": h.Status, "reason": h.Reason, "metadata": h.Metadata, "by": h.DecidedBy},
	}); err != nil {
		return err
	}
	if prev != conv.status {
		return s.statusChanged(ctx, tx, conv, prev)
	}
	return nil
}

// botAnswers reports whether a bot inside handoverd's own app (a relay
// bot) answers the thread's customer now, as the bots said before the
// inbox saw the change: the conversation is then pending, with the bot.
func botAnswers(tx *store.Tx, th handover.Thread) bool {
	bot, _ := handover.BotAnswering(tx, th.PageID, th.PSID)
	return bot != ""
}

// statusFor is the conversation status a thread owner implies: the bot
// handles it (pending), or the agents do (open). Other owners leave the
// status alone ("" ), except that a new conversation on a Page with a bot
// starts pending.
func statusFor(owner handover.Owner) string {
	switch owner {
	case handover.OwnerAgent:
		return StatusOpen
	case handover.OwnerBot:
		return StatusPending
	}
	return ""
}

func (s *Service) onEvent(ctx context.Context, tx *store.Tx, ref inboxRef, th handover.Thread, ev messenger.Event) error {
	switch ev.Kind {
	case messenger.KindMessage, messenger.KindPostback:
		conv, created, err := s.conversationFor(ctx, tx, ref, th, true)
		if err != nil {
			return err
		}
		in := newMessage{convID: conv.id, messageType: Incoming, senderType: SenderContact, senderID: sql.NullInt64{Int64: conv.contactID, Valid: true}}
		name, ok := batchOf(tx).name(conv.contactID)
		if !ok {
			if err := tx.QueryRowContext(ctx, `SELECT name FROM contacts WHERE id = $1`, conv.contactID).Scan(&name); err != nil {
				return err
			}
		}
		in.senderName = name
		in.at = ev.Time
		if ev.Message != nil {
			in.sourceID, in.content = ev.Message.MID, ev.Message.Text
			attrs := map[string]any{}
			if ev.Message.QuickReplyPayload != "" {
				attrs["quick_reply_payload"] = ev.Message.QuickReplyPayload
			}
			if ev.Message.ReplyToMID != "" {
				attrs["in_reply_to_external_id"] = ev.Message.ReplyToMID
			}
			in.attrs = attrs
			for _, a := range ev.Message.Attachments {
				in.attachments = append(in.attachments, map[string]any{"file_type": a.Type, "data_url": a.URL, "payload": a.Payload})
			}
		} else {
			in.sourceID, in.content = ev.Postback.MID, ev.Postback.Title
			in.attrs = map[string]any{"postback_payload": ev.Postback.Payload}
		}
		in.fresh = in.sourceID != "" // deduplicated by mid with its event
		if in.sourceID == "" {
			in.sourceID = fmt.Sprintf("postback:%s:%d", ev.PSID, ev.Time.UnixMilli())
		}
		if err := s.lockObject(ctx, tx, th.PageID, in.sourceID); err != nil {
			return err
		}
		m, err := s.insertMessage(ctx, tx, conv, in)
		if err != nil || m.ID == 0 {
			return err
		}
		if err := s.markForSurfacing(ctx, tx, ref, conv, m.ID); err != nil {
			return err
		}
		if err := s.announce(ctx, tx, conv, created, m); err != nil {
			return err
		}
		return s.applyBotObjects(ctx, tx, th.PageID, m.ID, in.sourceID)
	case messenger.KindEcho:
		return s.onEcho(ctx, tx, ref, th, ev)
	case messenger.KindDelivery, messenger.KindRead:
		return s.onReceipt(ctx, tx, ref, th, ev)
	}
	return nil
}

// onEcho records what an app sent: our own sends update the message they
// came from; the bot's and the Page Inbox's become outgoing messages.
func (s *Service) onEcho(ctx context.Context, tx *store.Tx, ref inboxRef, th handover.Thread, ev messenger.Event) error {
	msg := ev.Message
	if err := s.lockObject(ctx, tx, th.PageID, msg.MID); err != nil {
		return err
	}
	var dup int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox_messages WHERE inbox_id = $1 AND source_id = $2`, ref.id, msg.MID).Scan(&dup); err != nil || dup > 0 {
		return err
	}
	if id, ok := strings.CutPrefix(msg.Metadata, metaInbox); ok {
		n, _ := strconv.ParseInt(id, 10, 64)
		res, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET source_id = $2, status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END, updated_at = $3
			WHERE id = $1 AND inbox_id = $4 AND source_id IS NULL`, n, msg.MID, store.Millis(s.now()), ref.id)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k > 0 {
			return nil
		}
		// A further part of a message we sent (an attachment after its text).
		var ours int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox_messages WHERE id = $1 AND inbox_id = $2`, n, ref.id).Scan(&ours); err != nil || ours > 0 {
			return err
		}
	}
	out := newMessage{messageType: Outgoing, sourceID: msg.MID, content: msg.Text, at: ev.Time, status: MsgSent}
	for _, a := range msg.Attachments {
		out.attachments = append(out.attachments, map[string]any{"file_type": a.Type, "data_url": a.URL, "payload": a.Payload})
	}
	sender, agentMsg, err := s.echoSender(ctx, tx, th.PageID, msg)
	if err != nil {
		return err
	}
	out.agentMessageID = sql.NullInt64{Int64: agentMsg, Valid: agentMsg != 0}
	out.senderName = sender.Name
	switch sender.Kind {
	case handover.SenderAgent:
		out.senderType = SenderAgent
		s.setAgentSender(&out)
	case handover.SenderPageInbox:
		out.senderType = SenderAgent
	default:
		out.senderType = SenderBot
	}
	conv, created, err := s.conversationFor(ctx, tx, ref, th, true)
	if err != nil {
		return err
	}
	out.convID = conv.id
	m, err := s.insertMessage(ctx, tx, conv, out)
	if err != nil || m.ID == 0 {
		return err
	}
	if err := s.announce(ctx, tx, conv, created, m); err != nil {
		return err
	}
	return s.applyBotObjects(ctx, tx, th.PageID, m.ID, msg.MID)
}

// echoSender is who sent an echoed message: for one of handoverd's agent
// messages (its id is in the echo's metadata, the only thing Meta hands
// back) the sender stored with it, and the message's id (agentMsg);
// otherwise the app that sent it (agentMsg 0).
func (s *Service) echoSender(ctx context.Context, tx *store.Tx, pageID string, msg *messenger.Message) (sender handover.Sender, agentMsg int64, err error) {
	if id, ok := agentMessageID(msg.Metadata); ok {
		var name, kind string
		err := tx.QueryRowContext(ctx, `SELECT actor, sender_kind FROM agent_messages WHERE id = $1 AND page_id = $2`, id, pageID).Scan(&name, &kind)
		if err == nil {
			return handover.Sender{Kind: handover.SenderKind(kind), Name: name}, id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return sender, 0, err
		}
		// Not one of ours after all: the app says who sent it.
	}
	switch app := msg.AppID; {
	case app == config.PageInboxAppID || app == "":
		return handover.Sender{Kind: handover.SenderPageInbox, Name: "Page Inbox"}, 0, nil
	case app == s.pages[pageID].BotAppID:
		return handover.Sender{Kind: handover.SenderBotApp, Name: "bot"}, 0, nil
	default:
		return handover.Sender{Kind: handover.SenderBotApp, Name: "app " + app}, 0, nil
	}
}

// agentMessageID is the agent message id handoverd put in a send's
// metadata (ok false when the metadata is not such an id).
func agentMessageID(metadata string) (int64, bool) {
	text, ok := strings.CutPrefix(metadata, metaAgentMessage)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(text, 10, 64)
	return id, err == nil && id > 0
}

func (s *Service) setAgentSender(m *newMessage) {
	if id, ok := s.agentIDs[m.senderName]; ok {
		m.senderID = sql.NullInt64{Int64: id, Valid: true}
	}
}

// onReceipt moves the current conversation's outgoing messages to
// delivered or read up to the receipt's watermark.
func (s *Service) onReceipt(ctx context.Context, tx *store.Tx, ref inboxRef, th handover.Thread, ev messenger.Event) error {
	conv, _, err := s.conversationFor(ctx, tx, ref, th, false)
	if err != nil || conv.id == 0 {
		return err
	}
	from, to := []string{MsgSent}, MsgDelivered
	if ev.Kind == messenger.KindRead {
		from, to = []string{MsgSent, MsgDelivered}, MsgRead
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, status FROM inbox_messages WHERE conversation_id = $1 AND message_type = 'outgoing'
		AND private = 0 AND created_at <= $2 ORDER BY id DESC LIMIT 50`, conv.id, store.Millis(ev.Watermark))
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var st string
		if err := rows.Scan(&id, &st); err != nil {
			rows.Close()
			return err
		}
		if st == from[0] || (len(from) > 1 && st == from[1]) {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET status = $2, updated_at = $3 WHERE id = $1`, id, to, store.Millis(s.now())); err != nil {
			return err
		}
		if err := s.messageEvent(ctx, tx, EventMessageUpdated, conv, id); err != nil {
			return err
		}
	}
	return nil
}

// onTransitions makes the conversation's status follow the thread's owner
// and records the change as an activity message.
func (s *Service) onTransitions(ctx context.Context, tx *store.Tx, th handover.Thread, trs []handover.Transition) error {
	ref := s.pageInbox[th.PageID]
	conv, _, err := s.conversationFor(ctx, tx, ref, th, false)
	if err != nil || conv.id == 0 {
		return err
	}
	now := s.now()
	for _, t := range trs {
		prev := conv.status
		next := statusFor(t.To)
		if botAnswers(tx, th) {
			next = StatusPending
		}
		if next == "" || prev == StatusResolved {
			next = prev
		}
		if next == StatusOpen && prev != StatusOpen {
			conv.waitingSince = sql.NullInt64{Int64: store.Millis(now), Valid: true}
		}
		before := conv
		conv.status, conv.threadOwner = next, string(t.To)
		if conv != before { // a conversation just created with this owner is already so
			if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = $2, thread_owner = $3, agent_waiting_since = $4, updated_at = $5
				WHERE id = $1`, conv.id, conv.status, conv.threadOwner, conv.waitingSince, store.Millis(now)); err != nil {
				return err
			}
			batchOf(tx).keep(conv)
		}
		text := fmt.Sprintf("Thread control: %s → %s (%s)", ownerName(t.From), ownerName(t.To), t.Cause)
		if t.Actor != "" {
			text += " by " + t.Actor
		}
		if t.Reason != "" {
			text += ", reason " + string(t.Reason)
		}
		if md := t.Metadata.JSON(); md != "" {
			text += " " + md
		}
		if err := s.addMessage(ctx, tx, conv, false, newMessage{convID: conv.id, messageType: Activity, content: text, at: now}); err != nil {
			return err
		}
		if err := s.conversationEvent(ctx, tx, EventConversationOwner, conv, map[string]any{
			"owner": map[string]any{"previous": t.From, "current": t.To, "app_id": t.ToAppID, "cause": t.Cause, "actor": t.Actor, "at": t.At,
				"reason": t.Reason, "metadata": t.Metadata},
		}); err != nil {
			return err
		}
		if prev != next {
			if err := s.statusChanged(ctx, tx, conv, prev); err != nil {
				return err
			}
		}
	}
	return nil
}

func ownerName(o handover.Owner) string {
	switch o {
	case handover.OwnerAgent:
		return "agents"
	case handover.OwnerPageInbox:
		return "Page Inbox"
	}
	return string(o)
}

func (s *Service) statusChanged(ctx context.Context, tx *store.Tx, conv conversation, prev string) error {
	return s.conversationEvent(ctx, tx, EventConversationStatus, conv, map[string]any{
		"changed_attributes": []map[string]any{{"status": map[string]string{"previous_value": prev, "current_value": conv.status}}},
	})
}

// onAgentMessage records that an agent's message went out (or failed).
func (s *Service) onAgentMessage(ctx context.Context, tx *store.Tx, th handover.Thread, m handover.AgentMessage) error {
	var body struct {
		Metadata string `json:"metadata"`
	}
	_ = json.Unmarshal(m.Message, &body)
	idText, ok := strings.CutPrefix(body.Metadata, metaInbox)
	if !ok {
		return nil
	}
	id, _ := strconv.ParseInt(idText, 10, 64)
	var convID int64
	err := tx.QueryRowContext(ctx, `SELECT conversation_id FROM inbox_messages WHERE id = $1`, id).Scan(&convID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	now := store.Millis(s.now())
	switch m.Status {
	case handover.SendSent:
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,
			source_id = coalesce(source_id, $2), agent_message_id = $3, updated_at = $4 WHERE id = $1`, id, m.MID, m.ID, now); err != nil {
			return err
		}
	case handover.SendFailed:
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET status = 'failed', error = $2, agent_message_id = $3, updated_at = $4 WHERE id = $1`,
			id, m.Error, m.ID, now); err != nil {
			return err
		}
	default:
		return nil
	}
	conv, err := lockConversation(ctx, tx, convID)
	if err != nil {
		return err
	}
	if m.Status == handover.SendSent && conv.waitingSince.Valid {
		s.metrics.InboxFirstReply.Observe(s.now().Sub(store.Time(conv.waitingSince.Int64)).Seconds())
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET agent_waiting_since = NULL WHERE id = $1`, conv.id); err != nil {
			return err
		}
	}
	return s.messageEvent(ctx, tx, EventMessageUpdated, conv, id)
}

// conversationFor returns the thread's current (not resolved) conversation,
// creating its contact, contact inbox and conversation if create is set.
// A zero conversation means none exists and create was not set.
func (s *Service) conversationFor(ctx context.Context, tx *store.Tx, ref inboxRef, th handover.Thread, create bool) (conversation, bool, error) {
	conv, found, err := currentConversation(ctx, tx, ref, th.PageID, th.PSID)
	if err != nil || found || !create {
		return conv, false, err
	}
	contactID, ciID, err := s.contactInboxFor(ctx, tx, ref, th.PageID, th.PSID)
	if err != nil {
		return conversation{}, false, err
	}
	now := store.Millis(s.now())
	status := newConversationStatus(th.Owner, botAnswers(tx, th), s.pages[th.PageID].BotAppID != "")
	var waiting sql.NullInt64
	if status == StatusOpen {
		waiting = sql.NullInt64{Int64: now, Valid: true}
	}
	conv, err = insertConversation(ctx, tx, conversation{accountID: ref.accountID, inboxID: ref.id, contactID: contactID,
		contactInboxID: ciID, status: status, pageID: th.PageID, psid: th.PSID, threadOwner: string(th.Owner),
		additional: "{}", custom: "{}", waitingSince: waiting, lastActivity: now, created: now, updated: now})
	return conv, err == nil, err
}

// currentConversation returns the thread's current (not resolved)
// conversation in ref's inbox, locked for the transaction (found false
// when there is none): the batch's, when the batch has looked.
func currentConversation(ctx context.Context, tx *store.Tx, ref inboxRef, pageID, psid string) (conversation, bool, error) {
	if c, known := batchOf(tx).conversation(pageID, psid); known {
		if c == nil {
			return conversation{}, false, nil
		}
		return *c, true, nil
	}
	conv, err := scanConversation(tx.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE inbox_id = $1 AND psid = $2 AND status <> 'resolved' ORDER BY id DESC LIMIT 1`+tx.Dialect.ForUpdate, ref.id, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return conversation{}, false, nil
	}
	return conv, err == nil, err
}

// newConversationStatus is a new Messenger conversation's status: pending
// while a bot answers or the bot owns the thread, open when the agents own
// it; with no owner who implies one, pending on a Page with a bot app (it
// answers first), else open.
func newConversationStatus(owner handover.Owner, botAnswers, pageHasBot bool) string {
	status := statusFor(owner)
	if botAnswers {
		status = StatusPending
	}
	if status == "" {
		status = StatusOpen
		if pageHasBot {
			status = StatusPending
		}
	}
	return status
}

// contactInboxFor returns the contact and contact inbox of the customer
// psid in ref's inbox, creating both when the customer is new.
func (s *Service) contactInboxFor(ctx context.Context, tx *store.Tx, ref inboxRef, pageID, psid string) (contactID, ciID int64, err error) {
	b := batchOf(tx)
	if ci, ok := b.contactInbox(pageID, psid); ok {
		return ci.contactID, ci.id, nil
	}
	err = tx.QueryRowContext(ctx, `SELECT contact_id, id FROM contact_inboxes WHERE inbox_id = $1 AND source_id = $2`, ref.id, psid).Scan(&contactID, &ciID)
	if !errors.Is(err, sql.ErrNoRows) {
		return contactID, ciID, err
	}
	name := contactName(psid)
	attrs, err := contactAttributes(psid)
	if err != nil {
		return 0, 0, err
	}
	now := store.Millis(s.now())
	if err := tx.QueryRowContext(ctx, `INSERT INTO contacts (account_id, name, identifier, additional_attributes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`, ref.accountID, name, psid, string(attrs), now).Scan(&contactID); err != nil {
		return 0, 0, err
	}
	if b != nil {
		b.names[contactID] = name
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		contactID, ref.id, psid, now).Scan(&ciID)
	return contactID, ciID, err
}

// insertConversation stores the new conversation c: deferred to the end
// of the batch when there is one, else now.
func insertConversation(ctx context.Context, tx *store.Tx, c conversation) (conversation, error) {
	if b := batchOf(tx); b != nil {
		conv, err := b.deferConversation(ctx, tx, c)
		if err != nil {
			return conv, err
		}
		b.keep(conv)
		return conv, nil
	}
	conv, err := scanConversation(tx.QueryRowContext(ctx, `INSERT INTO conversations
		(account_id, inbox_id, contact_id, contact_inbox_id, status, page_id, psid, thread_owner, agent_waiting_since, last_activity_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10) RETURNING `+conversationColumns,
		c.accountID, c.inboxID, c.contactID, c.contactInboxID, c.status, c.pageID, c.psid, c.threadOwner, c.waitingSince, c.lastActivity))
	return conv, err
}

// contactName is a new Messenger contact's name.
func contactName(psid string) string { return "Messenger user " + psid }

// contactAttributes are a new Messenger contact's additional attributes.
func contactAttributes(psid string) ([]byte, error) {
	return json.Marshal(map[string]any{"social_profiles": map[string]string{"facebook": psid}})
}

// lockObject takes a message's lock (see objectLock) unless the batch
// being projected already holds it.
func (s *Service) lockObject(ctx context.Context, tx *store.Tx, pageID, mid string) error {
	if b := batchOf(tx); b != nil && b.locked[objectLock(pageID, mid)] {
		return nil
	}
	return tx.LockKey(ctx, objectLock(pageID, mid))
}
