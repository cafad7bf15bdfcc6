package handover

import (
	"context"
	"strconv"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
)

// HandoverRequest asks for a bot ↔ agent handover (Engage Digital's
// POST /1.0/bots/handover reads one from its query). Who asks is the
// principal given with it, never a field of the request.
type HandoverRequest struct {
	// PSID is identity_foreign_id.
	PSID string
	// From and To are bot or agent.
	From, To string
	// Type is the channel type (messenger).
	Type string
	// AppID is the bot's app id for agent → bot.
	AppID string
	// PageID is the Page, when the caller's client has several.
	PageID string
	// Mode is pass (the default) or offer (bot → agent only).
	Mode string
	// Reason is a Reason ("" for the direction's default).
	Reason string
	// Metadata is a flat JSON object (as text), at most 4 KB.
	Metadata string
}

// Handover performs a bot ↔ agent handover for principal p.
func (s *Service) Handover(ctx context.Context, p auth.Principal, req HandoverRequest) (Outcome, error) {
	if err := req.Validate(); err != nil {
		return Outcome{}, err
	}
	page, err := s.PageFor(p, req.PageID)
	if err != nil {
		return Outcome{}, err
	}
	if req.To == "agent" {
		in := HandoffInput{PageID: page.ID, PSID: req.PSID, To: "agent", Mode: req.Mode, Reason: req.Reason, Metadata: []byte(req.Metadata)}
		mode, why, err := parseHandoff(in)
		if err != nil {
			return Outcome{}, err
		}
		if mode == ModePass && page.BotWebhook.URL == "" {
			// Nobody to tell how it went: no handover record is needed.
			return s.AcquireControl(withWhy(ctx, why), page.ID, req.PSID, p.Name)
		}
		_, out, err := s.CreateHandoff(ctx, p, in)
		return out, err
	}
	r, _ := ParseReason("reason", req.Reason)
	md, _ := ParseMetadata("metadata", []byte(req.Metadata))
	return s.PassToBot(WithReason(ctx, r, md), page.ID, req.PSID, req.AppID, p.Name)
}

// Validate checks the request's parameters (not who may make it).
func (req HandoverRequest) Validate() error {
	switch {
	case req.PSID == "":
		return apperr.Field("identity_foreign_id", "identity_foreign_id is missing")
	case req.From == "":
		return apperr.Field("from", "from is missing (bot or agent)")
	case req.To == "":
		return apperr.Field("to", "to is missing (bot or agent)")
	case req.Type != "" && req.Type != "messenger":
		return apperr.Field("type", "type must be messenger, got %q", req.Type)
	case !(req.From == "bot" && req.To == "agent") && !(req.From == "agent" && req.To == "bot"):
		return apperr.Field("to", "from=%q to=%q: handovers go from=bot&to=agent or from=agent&to=bot", req.From, req.To)
	case req.AppID != "" && !numeric(req.AppID):
		return apperr.Field("app_id", "app_id must be a numeric Facebook app id")
	case req.Mode != "" && req.Mode != ModePass && req.Mode != ModeOffer:
		return apperr.Field("mode", "mode must be pass or offer, got %q", req.Mode)
	case req.Mode == ModeOffer && req.To != "agent":
		return apperr.Field("mode", "mode=offer offers a conversation to the agents: from=bot&to=agent")
	}
	if _, err := ParseReason("reason", req.Reason); err != nil {
		return err
	}
	if _, err := ParseMetadata("metadata", []byte(req.Metadata)); err != nil {
		return err
	}
	return nil
}

func numeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
