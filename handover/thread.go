// Package handover keeps thread control: for every person on every Page
// (page id + PSID) who owns the Messenger thread now — the bot, the agents
// (handoverd's own app), the Page Inbox, another app, or nobody (idle) — with
// a history of every change and its cause.
//
// Meta is the source of truth and tells us only part of it: handover events,
// the channel (messaging or standby) a customer's message arrives on, and
// echoes of what each app sent. Service.Ingest turns that evidence into
// state, in event-time order per thread, durably and exactly once; see
// DESIGN notes in ingest.go for the rules.
package handover

import (
	"time"

	"github.com/handoverd/handoverd/config"
)

// Owner is who controls a thread.
type Owner string

// Owners.
const (
	OwnerBot       Owner = "bot"        // the Page's bot app
	OwnerAgent     Owner = "agent"      // handoverd's own app: the human agents
	OwnerPageInbox Owner = "page_inbox" // Meta's Page Inbox (app 263902037430900)
	OwnerIdle      Owner = "idle"       // nobody
	OwnerOther     Owner = "other"      // another app, or an app we cannot name
)

// Owners lists every owner (for metrics initialisation and validation).
var Owners = []Owner{OwnerBot, OwnerAgent, OwnerPageInbox, OwnerIdle, OwnerOther}

// Cause is why a thread changed owner.
type Cause string

// Causes.
const (
	// CausePass: a pass_thread_control event.
	CausePass Cause = "pass_thread_control"
	// CauseTake: a take_thread_control event.
	CauseTake Cause = "take_thread_control"
	// CauseCustomerMessage: a customer's message arrived on messaging (we
	// own the thread) or on standby (another app does).
	CauseCustomerMessage Cause = "customer_message"
	// CauseEcho: an echo showed which app sent a message, hence owned the
	// thread (exclusive sending); Page Inbox echoes are human activity.
	CauseEcho Cause = "echo"
	// CauseExpired: no activity for the idle timeout (Meta: 24 h).
	CauseExpired Cause = "expired"
	// CauseReconciled: reconciliation corrected the owner from Graph's
	// thread_owner after handoverd's state was in doubt.
	CauseReconciled Cause = "reconciled"
)

// Thread is one conversation's control state.
type Thread struct {
	// PageID is the Page.
	PageID string
	// PSID is the customer's page-scoped id.
	PSID string
	// Owner is who controls the thread.
	Owner Owner
	// OwnerAppID is the owner's app id ("" when idle or unknown).
	OwnerAppID string
	// StateAt is the event time of the newest ownership evidence applied;
	// older evidence never rolls the state back.
	StateAt time.Time
	// ActivityAt is the newest customer message or control change.
	ActivityAt *time.Time
	// ExpiresAt is when an owned thread falls idle (nil when idle).
	ExpiresAt *time.Time
	// LastCustomerAt is the customer's newest message: the messaging window.
	LastCustomerAt *time.Time
	// PendingAppID is an app that asked for control and has not got it.
	PendingAppID string
	// PendingAt is when it asked.
	PendingAt *time.Time
	// DeliveredWatermark is the newest delivery receipt.
	DeliveredWatermark *time.Time
	// ReadWatermark is the newest read receipt.
	ReadWatermark *time.Time
	// Version counts writes to the row.
	Version int64
	// CreatedAt is when handoverd first saw the thread.
	CreatedAt time.Time
	// UpdatedAt is when the row last changed.
	UpdatedAt time.Time

	// granted is set (in memory) when a request of ours was granted: how
	// long it took.
	granted time.Duration
}

// Transition is one owner change.
type Transition struct {
	// At is when it happened (event time).
	At time.Time
	// From is the previous owner.
	From Owner
	// FromAppID is the previous owner's app id.
	FromAppID string
	// To is the new owner.
	To Owner
	// ToAppID is the new owner's app id.
	ToAppID string
	// Cause is why.
	Cause Cause
	// Actor is the API user behind it, if any.
	Actor string
	// EventID is the webhook event behind it, if any.
	EventID int64
	// Reason is why (see Reason); Metadata the caller's context, if any.
	Reason Reason
	// Metadata is the flat JSON the operation carried.
	Metadata Metadata
}

// ownerOf names the owner an app id stands for on page.
func ownerOf(appID, ourAppID string, page config.Page) Owner {
	switch appID {
	case "":
		return OwnerIdle
	case ourAppID:
		return OwnerAgent
	case config.PageInboxAppID:
		return OwnerPageInbox
	}
	if page.BotAppID != "" && appID == page.BotAppID {
		return OwnerBot
	}
	return OwnerOther
}

func maxTime(a *time.Time, b time.Time) *time.Time {
	if a == nil || b.After(*a) {
		return &b
	}
	return a
}
