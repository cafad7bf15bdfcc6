package inbox

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Projecting a batch.
//
// Webhook ingest hands the inbox a whole batch of thread changes at once
// (handover.BatchObserver). Before the first, BeginChanges loads in a few
// statements what the batch's changes share: each thread's current
// conversation (locked for update on PostgreSQL), its contact's name, and
// whether any bot claim or echo waits for the batch's messages (under the
// messages' locks, so a claim racing the message cannot be missed). The
// changes then read these from memory and keep them current as they
// write. EndChanges writes the batch's events to the log, in the order
// they were emitted, and each conversation's newest activity once, however
// many of its messages the batch holds.

// batchKey keys a batch's state in its transaction's memo.
type batchKey struct{}

type threadKey struct{ page, psid string }

// batch is the state one batch of changes shares.
type batch struct {
	convs    map[threadKey]*conversation // current conversation; nil: none
	names    map[int64]string            // contact names
	objects  map[string]bool             // page+mid → unapplied bot objects wait for it
	locked   map[string]bool             // message locks taken
	activity map[int64]int64             // conversation → newest message time to store
	events   []pendingEvent              // emitted, in order, to write at the end
	sessions map[threadKey]contactInbox  // contact and contact inbox of threads that need a conversation
	claims   map[int64]sql.NullInt64     // inbox → since when its bot claims messages

	// Rows written later (see deferMessage), and ids reserved for them.
	conversations                       []conversation
	messages                            []pendingMessage
	pendingIndex                        map[int64]int // message id → index in messages
	holding                             bool          // a write of them is deferred
	messageIDs, conversationIDs         []int64
	expectMessages, expectConversations int
}

// contactInbox is a contact's session in an inbox.
type contactInbox struct{ id, contactID int64 }

func batchOf(tx *store.Tx) *batch {
	b, _ := tx.Memo(batchKey{}).(*batch)
	return b
}

var _ handover.BatchObserver = (*Service)(nil)

// BeginChanges loads what a batch of changes shares (see above).
func (s *Service) BeginChanges(ctx context.Context, tx *store.Tx, chs []handover.Change) error {
	b := &batch{convs: map[threadKey]*conversation{}, names: map[int64]string{}, objects: map[string]bool{},
		locked: map[string]bool{}, activity: map[int64]int64{}, sessions: map[threadKey]contactInbox{},
		claims: map[int64]sql.NullInt64{}, pendingIndex: map[int64]int{}}
	creates := map[threadKey]bool{} // threads whose messages open a conversation if they have none
	psids := map[int64][]string{}   // inbox → PSIDs
	mids := map[string][]string{}   // page → mids
	var locks []string
	for _, ch := range chs {
		ref, ok := s.pageInbox[ch.Thread.PageID]
		if !ok {
			continue
		}
		k := threadKey{ch.Thread.PageID, ch.Thread.PSID}
		if _, seen := b.convs[k]; !seen {
			b.convs[k] = nil
			psids[ref.id] = append(psids[ref.id], k.psid)
		}
		b.expectMessages += len(ch.Transitions) // an activity message each
		if ev := ch.Event; ev != nil {
			switch ev.Kind {
			case messenger.KindMessage, messenger.KindPostback, messenger.KindEcho:
				creates[k] = true
				b.expectMessages++
			}
			if mid := eventMID(ev); mid != "" {
				mids[ev.PageID] = append(mids[ev.PageID], mid)
				lock := objectLock(ev.PageID, mid)
				if !b.locked[lock] {
					b.locked[lock] = true
					locks = append(locks, lock)
				}
			}
		}
	}
	if err := tx.LockKeys(ctx, locks); err != nil {
		return err
	}
	for inboxID, ps := range psids {
		if err := b.loadConversations(ctx, tx, inboxID, ps); err != nil {
			return err
		}
	}
	if err := s.prepareContacts(ctx, tx, b, creates); err != nil {
		return err
	}
	for page, ms := range mids {
		if err := b.loadObjects(ctx, tx, page, ms); err != nil {
			return err
		}
	}
	tx.SetMemo(batchKey{}, b)
	return nil
}

// EndChanges writes the batch's conversation activity and forgets the batch.
func (s *Service) EndChanges(ctx context.Context, tx *store.Tx) error {
	b := batchOf(tx)
	if b == nil {
		return nil
	}
	tx.SetMemo(batchKey{}, nil)
	if err := s.writeEvents(ctx, tx, b.events); err != nil {
		return err
	}
	if err := tx.Flush(ctx); err != nil { // the held rows, with their activity (see write)
		return err
	}
	if len(b.activity) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(b.activity))
	for id := range b.activity {
		ids = append(ids, id)
	}
	now := store.Millis(s.now())
	return store.Chunks(len(ids), func(from, to int) error {
		args := make([]any, 0, 3*(to-from))
		for _, id := range ids[from:to] {
			args = append(args, id, b.activity[id], now)
		}
		_, err := tx.ExecBulk(ctx, `UPDATE conversations SET last_activity_at = v.column2, updated_at = v.column3
			FROM (VALUES `+tx.Values(to-from, "BIGINT", "BIGINT", "BIGINT")+`) AS v
			WHERE conversations.id = v.column1 AND conversations.last_activity_at < v.column2`, args...)
		return err
	})
}

// eventMID is the mid of an event's message, postback or echo ("" if none).
func eventMID(ev *messenger.Event) string {
	switch {
	case ev.Message != nil:
		return ev.Message.MID
	case ev.Postback != nil:
		return ev.Postback.MID
	}
	return ""
}

// loadConversations loads the current conversation of each PSID of an inbox.
func (b *batch) loadConversations(ctx context.Context, tx *store.Tx, inboxID int64, psids []string) error {
	return store.Chunks(len(psids), func(from, to int) error {
		args := []any{inboxID}
		for _, p := range psids[from:to] {
			args = append(args, p)
		}
		rows, err := tx.QueryBulk(ctx, `SELECT `+conversationColumns+`,
			(SELECT name FROM contacts WHERE contacts.id = conversations.contact_id) FROM conversations
			WHERE inbox_id = $1 AND psid IN `+tx.In(2, to-from)+` AND status <> 'resolved' ORDER BY id DESC`+tx.Dialect.ForUpdate, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			c, err := scanConversation(alsoScan{rows, &name})
			if err != nil {
				return err
			}
			b.names[c.contactID] = name
			k := threadKey{c.pageID, c.psid}
			if b.convs[k] == nil { // newest first: keep the first seen
				b.convs[k] = &c
			}
		}
		return rows.Err()
	})
}

// alsoScan scans a row's columns into a scanner's destinations and
// then the columns after them into more.
type alsoScan struct {
	row  interface{ Scan(...any) error }
	more any
}

func (a alsoScan) Scan(dest ...any) error { return a.row.Scan(append(dest, a.more)...) }

// loadObjects notes which of a Page's mids have bot claims or echoes waiting.
func (b *batch) loadObjects(ctx context.Context, tx *store.Tx, pageID string, mids []string) error {
	return store.Chunks(len(mids), func(from, to int) error {
		args := []any{pageID}
		for _, m := range mids[from:to] {
			args = append(args, m)
		}
		rows, err := tx.QueryBulk(ctx, `SELECT DISTINCT object_id FROM bot_objects WHERE page_id = $1 AND object_id IN `+
			tx.In(2, to-from)+` AND applied_at IS NULL`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var mid string
			if err := rows.Scan(&mid); err != nil {
				return err
			}
			b.objects[pageID+"\x00"+mid] = true
		}
		return rows.Err()
	})
}

// prepareContacts finds or creates, in a few statements, the contact and
// contact inbox of every thread of the batch that has no conversation and
// whose messages will open one.
func (s *Service) prepareContacts(ctx context.Context, tx *store.Tx, b *batch, creates map[threadKey]bool) error {
	byInbox := map[inboxRef][]threadKey{}
	for k := range creates {
		if b.convs[k] == nil {
			ref := s.pageInbox[k.page]
			byInbox[ref] = append(byInbox[ref], k)
		}
	}
	for _, keys := range byInbox {
		b.expectConversations += len(keys)
	}
	now := store.Millis(s.now())
	for ref, keys := range byInbox {
		slices.SortFunc(keys, func(a, b threadKey) int { return strings.Compare(a.psid, b.psid) })
		if err := store.Chunks(len(keys), func(from, to int) error {
			args := []any{ref.id}
			for _, k := range keys[from:to] {
				args = append(args, k.psid)
			}
			rows, err := tx.QueryBulk(ctx, `SELECT source_id, contact_id, id FROM contact_inboxes WHERE inbox_id = $1 AND source_id IN `+
				tx.In(2, to-from), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var psid string
				var ci contactInbox
				if err := rows.Scan(&psid, &ci.contactID, &ci.id); err != nil {
					return err
				}
				b.sessions[threadKey{keys[0].page, psid}] = ci
			}
			return rows.Err()
		}); err != nil {
			return err
		}
		var missing []threadKey
		for _, k := range keys {
			if _, ok := b.sessions[k]; !ok {
				missing = append(missing, k)
			}
		}
		if err := s.createContacts(ctx, tx, b, ref, missing, now); err != nil {
			return err
		}
	}
	return nil
}

// createContacts creates a contact and a contact inbox for each thread.
func (s *Service) createContacts(ctx context.Context, tx *store.Tx, b *batch, ref inboxRef, keys []threadKey, now int64) error {
	return store.Chunks(len(keys), func(from, to int) error {
		args := make([]any, 0, 5*(to-from))
		for _, k := range keys[from:to] {
			attrs, err := contactAttributes(k.psid)
			if err != nil {
				return err
			}
			args = append(args, ref.accountID, contactName(k.psid), k.psid, string(attrs), now)
		}
		rows, err := tx.QueryBulk(ctx, `INSERT INTO contacts (account_id, name, identifier, additional_attributes, created_at, updated_at)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column5 FROM (VALUES `+
			tx.Values(to-from, "BIGINT", "", "", "", "BIGINT")+`) AS v RETURNING id, identifier`, args...)
		if err != nil {
			return err
		}
		contacts := map[string]int64{}
		for rows.Next() {
			var id int64
			var psid string
			if err := rows.Scan(&id, &psid); err != nil {
				rows.Close()
				return err
			}
			contacts[psid] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		args = args[:0]
		for _, k := range keys[from:to] {
			id, ok := contacts[k.psid]
			if !ok {
				return fmt.Errorf("inbox: contact for %s not created", k.psid)
			}
			b.names[id] = contactName(k.psid)
			args = append(args, id, ref.id, k.psid, now)
		}
		rows, err = tx.QueryBulk(ctx, `INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, created_at)
			SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES `+
			tx.Values(to-from, "BIGINT", "BIGINT", "", "BIGINT")+`) AS v RETURNING id, contact_id, source_id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ci contactInbox
			var psid string
			if err := rows.Scan(&ci.id, &ci.contactID, &psid); err != nil {
				return err
			}
			b.sessions[threadKey{keys[from].page, psid}] = ci
		}
		return rows.Err()
	})
}

// contactInbox returns the thread's contact inbox the batch prepared.
func (b *batch) contactInbox(pageID, psid string) (contactInbox, bool) {
	if b == nil {
		return contactInbox{}, false
	}
	ci, ok := b.sessions[threadKey{pageID, psid}]
	return ci, ok
}

// conversation returns the batch's knowledge of a thread's current
// conversation: known reports whether the batch loaded the thread.
func (b *batch) conversation(pageID, psid string) (c *conversation, known bool) {
	if b == nil {
		return nil, false
	}
	c, known = b.convs[threadKey{pageID, psid}]
	return c, known
}

// keep records a thread's current conversation as it now is.
func (b *batch) keep(c conversation) {
	if b == nil {
		return
	}
	k := threadKey{c.pageID, c.psid}
	if _, known := b.convs[k]; !known {
		return
	}
	if c.status == StatusResolved {
		b.convs[k] = nil
		return
	}
	b.convs[k] = &c
}

// touch defers a conversation's newest-activity update to EndChanges.
func (b *batch) touch(convID, at int64) {
	if at > b.activity[convID] {
		b.activity[convID] = at
	}
}

// waitingObjects reports whether bot objects may wait for a mid: false only
// when the batch looked and found none.
func (b *batch) waitingObjects(pageID, mid string) bool {
	if b == nil || !b.locked[objectLock(pageID, mid)] {
		return true
	}
	return b.objects[pageID+"\x00"+mid]
}

// name is a contact name from the batch, if it has it.
func (b *batch) name(contactID int64) (string, bool) {
	if b == nil {
		return "", false
	}
	n, ok := b.names[contactID]
	return n, ok
}

// Deferred rows.
//
// The batch writes the messages and conversations its changes create in
// one multi-row statement each instead of one statement per row: it hands
// them ids reserved up front (store.Tx.ReserveIDs), keeps the rows, and
// writes them when the transaction next names their tables, or at the end
// (store.Tx.Defer), conversations first. Only rows that cannot conflict
// are deferred: activity messages (no source id) and customer messages,
// whose mids the webhook's dedupe already made unique.

// pendingMessage is a message row the batch writes later.
type pendingMessage struct {
	row            messageRow
	agentMessageID sql.NullInt64
	surfaceAt      sql.NullInt64
	updated        int64
}

// deferMessage gives r a reserved id, keeps it for the batch's next write
// and returns it as stored.
func (b *batch) deferMessage(ctx context.Context, tx *store.Tx, r messageRow, agentMessageID sql.NullInt64, now int64) (MessageView, error) {
	id, err := b.reserve(ctx, tx, &b.messageIDs, "inbox_messages", b.expectMessages)
	if err != nil {
		return MessageView{}, err
	}
	r.id = id
	b.pendingIndex[id] = len(b.messages)
	b.messages = append(b.messages, pendingMessage{row: r, agentMessageID: agentMessageID, updated: now})
	b.hold(tx)
	return r.view(), nil
}

// deferConversation gives c a reserved id and keeps it for the batch's
// next write.
func (b *batch) deferConversation(ctx context.Context, tx *store.Tx, c conversation) (conversation, error) {
	id, err := b.reserve(ctx, tx, &b.conversationIDs, "conversations", b.expectConversations)
	if err != nil {
		return c, err
	}
	c.id = id
	b.conversations = append(b.conversations, c)
	b.hold(tx)
	return c, nil
}

// surface sets when a message the batch holds surfaces to agents, and
// reports whether it held it.
func (b *batch) surface(id, at int64) bool {
	i, ok := b.pendingIndex[id]
	if ok {
		b.messages[i].surfaceAt = sql.NullInt64{Int64: at, Valid: true}
	}
	return ok
}

// reserve returns the next of the ids reserved for table, reserving
// expect more (at least a few) when none are left.
func (b *batch) reserve(ctx context.Context, tx *store.Tx, ids *[]int64, table string, expect int) (int64, error) {
	if len(*ids) == 0 {
		got, err := tx.ReserveIDs(ctx, table, max(expect, 8))
		if err != nil {
			return 0, err
		}
		*ids = got
	}
	id := (*ids)[0]
	*ids = (*ids)[1:]
	return id, nil
}

// hold has the transaction write the held rows before it next names
// their tables.
func (b *batch) hold(tx *store.Tx) {
	if b.holding {
		return
	}
	b.holding = true
	tx.Defer([]string{"inbox_messages", "conversations"}, func(ctx context.Context) error { return b.write(ctx, tx) })
}

// write writes the held conversations, then the held messages.
func (b *batch) write(ctx context.Context, tx *store.Tx) error {
	convs, msgs := b.conversations, b.messages
	b.conversations, b.messages, b.holding = nil, nil, false
	clear(b.pendingIndex)
	for i := range convs { // a new conversation's newest activity goes in with it
		c := &convs[i]
		if at, ok := b.activity[c.id]; ok {
			c.lastActivity = max(c.lastActivity, at)
			delete(b.activity, c.id)
		}
	}
	if err := store.Chunks(len(convs), func(from, to int) error {
		args := make([]any, 0, 13*(to-from))
		for _, c := range convs[from:to] {
			args = append(args, c.id, c.accountID, c.inboxID, c.contactID, c.contactInboxID, c.status, c.pageID, c.psid, c.threadOwner,
				c.waitingSince, c.lastActivity, c.created, c.updated)
		}
		_, err := tx.ExecBulk(ctx, `INSERT INTO conversations (id, account_id, inbox_id, contact_id, contact_inbox_id, status, page_id, psid,
			thread_owner, agent_waiting_since, last_activity_at, created_at, updated_at) VALUES `+tx.Values(to-from, store.Columns(13)...), args...)
		return err
	}); err != nil {
		return err
	}
	return store.Chunks(len(msgs), func(from, to int) error {
		args := make([]any, 0, 19*(to-from))
		for _, m := range msgs[from:to] {
			r := m.row
			args = append(args, r.id, r.accountID, r.inboxID, r.convID, r.mtype, r.private, r.content, r.contentType, r.attrs, r.atts,
				r.senderType, r.senderID, r.senderName, r.source, r.status, m.agentMessageID, r.created, m.updated, m.surfaceAt)
		}
		_, err := tx.ExecBulk(ctx, `INSERT INTO inbox_messages (id, account_id, inbox_id, conversation_id, message_type, private, content,
			content_type, content_attributes, attachments, sender_type, sender_id, sender_name, source_id, status, agent_message_id,
			created_at, updated_at, surface_at) VALUES `+tx.Values(to-from, store.Columns(19)...), args...)
		return err
	})
}
