package handover

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoverd/handoverd/store"
)

// SenderKind is who is behind a message sent to a customer. It is stored
// with every agent message (agent_messages.sender_kind), so nobody has to
// tell a relay bot from an agent by the shape of a name.
type SenderKind string

// Sender kinds. An agent message is sent by an agent or a relay bot; an
// echo of a message handoverd did not send is the Page Inbox's or a bot
// app's.
const (
	SenderAgent     SenderKind = "agent"      // a person, through handoverd
	SenderRelayBot  SenderKind = "relay_bot"  // a relay bot inside handoverd's app
	SenderPageInbox SenderKind = "page_inbox" // a person in Meta's Page Inbox
	SenderBotApp    SenderKind = "bot_app"    // another Facebook app (the Page's bot)
)

// Sender is who sends a message: its kind and its name (the agent's name,
// the relay bot's name).
type Sender struct {
	// Kind says what sort of sender it is.
	Kind SenderKind
	// Name is the agent's or the bot's name.
	Name string
}

// Automated reports whether the sender is not a person (its messages may
// not use Messenger's HUMAN_AGENT tag).
func (s Sender) Automated() bool { return s.Kind == SenderRelayBot || s.Kind == SenderBotApp }

// Label is the sender as thread history shows it ("relay bot sample").
func (s Sender) Label() string {
	if s.Kind == SenderRelayBot {
		return "relay bot " + s.Name
	}
	return s.Name
}

// Claim is the agents taking a customer's conversation into their own
// hands (Holding), or leaving it again to whoever answers by default, as
// an agent said in the inbox. Relay bots stay out of a held conversation.
type Claim struct {
	// Holding is true when the agents take the conversation.
	Holding bool
	// Actor is the agent.
	Actor string
	// At is when.
	At time.Time
}

// RelayKind is what a relay bot's session did.
type RelayKind string

// Relay facts.
const (
	// RelayStarted: a bot took the conversation (a session started).
	RelayStarted RelayKind = "started"
	// RelayForwarded: the bot handed the conversation to the agents (a
	// forward, a step back, a time-out, or the bot being down).
	RelayForwarded RelayKind = "forwarded"
	// RelayEnded: the bot ended the conversation (it is over).
	RelayEnded RelayKind = "ended"
	// RelayTakenOver: a person took over from the bot; the conversation
	// is already where that person put it.
	RelayTakenOver RelayKind = "taken_over"
	// RelayNote: the bot left the agents a note.
	RelayNote RelayKind = "note"
	// RelayContact: the bot learned the customer's contact details.
	RelayContact RelayKind = "contact"
)

// Relay is a fact about a relay bot's session on a thread, for the
// consumers after the bots (the inbox).
type Relay struct {
	// Kind is what happened.
	Kind RelayKind
	// Bot is the relay bot's name.
	Bot string
	// Why says it in a sentence for the agents (ends of sessions).
	Why string
	// Note is a note's text (RelayNote).
	Note string
	// Contact holds the details learned (RelayContact); empty fields are
	// unknown.
	Contact Contact
}

// Contact is what is known of a customer.
type Contact struct {
	// Name, Email, PhoneNumber and Identifier; empty when unknown.
	Name, Email, PhoneNumber, Identifier string
}

// ClaimByAgents tells every consumer, in the caller's transaction, that
// the agents took the thread's conversation (holding) or let it go.
func (s *Service) ClaimByAgents(ctx context.Context, tx *store.Tx, pageID, psid, actor string, holding bool) error {
	th, err := s.threadIn(ctx, tx, pageID, psid)
	if err != nil {
		return err
	}
	return s.observe(ctx, tx, Change{Thread: th, Claim: &Claim{Holding: holding, Actor: actor, At: s.now()}})
}

// Relayed tells the consumers after the bots (Consumers), in the caller's
// transaction, what a relay bot's session did on a thread.
func (s *Service) Relayed(ctx context.Context, tx *store.Tx, pageID, psid string, r Relay) error {
	th, err := s.threadIn(ctx, tx, pageID, psid)
	if err != nil {
		return err
	}
	ch := Change{Thread: th, Relay: &r}
	for _, o := range s.afterBots {
		if err := o.ThreadChanged(ctx, tx, ch); err != nil {
			return err
		}
	}
	return nil
}

// threadIn reads a thread in tx (idle when handoverd has not seen it).
func (s *Service) threadIn(ctx context.Context, tx *store.Tx, pageID, psid string) (Thread, error) {
	th, err := scanThread(tx.QueryRowContext(ctx, `SELECT `+threadColumns+` FROM threads WHERE page_id = $1 AND psid = $2`, pageID, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return Thread{PageID: pageID, PSID: psid, Owner: OwnerIdle}, nil
	}
	return th, err
}
