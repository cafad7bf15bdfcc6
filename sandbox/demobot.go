package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
)

// DemoBot is the sandbox's bot: a Facebook app of its own that answers
// customers, hands them to the agents when they ask for a human (through
// handoverd's Engage Digital compatible POST /1.0/bots/handover), and passes
// thread control to whoever requests it.
type DemoBot struct {
	// Graph calls the (simulated) Graph API as the bot app.
	Graph *messenger.Graph
	// Page is the bot's Page and token.
	Page messenger.PageRef
	// Secret verifies the simulator's webhook signatures.
	Secret config.Secret
	// BrokerURL is handoverd's base URL.
	BrokerURL string
	// Token is the bot's handoverd API token.
	Token string
	// Log logs what the bot does.
	Log zerolog.Logger
}

// ServeHTTP receives the bot app's webhooks.
func (b *DemoBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, messenger.MaxWebhookBytes))
	if err != nil || messenger.VerifySignature(b.Secret.Reveal(), body, r.Header.Get("X-Hub-Signature-256")) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	batch, err := messenger.ParseWebhook(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	// A demo bot acts before it answers: its replies and handovers are
	// quick, and the simulator then knows the bot's reaction is part of the
	// delivery (so ?wait=true on the simulator settles after it). A real bot
	// answers Meta first and acts afterwards.
	for _, ev := range batch.Events {
		b.handle(r.Context(), ev)
	}
	w.WriteHeader(http.StatusOK)
}

func (b *DemoBot) handle(ctx context.Context, ev messenger.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	switch {
	case ev.Kind == messenger.KindRequest && ev.Channel == messenger.ChannelMessaging:
		// Someone (handoverd, for the agents) asks for the thread: pass it.
		if err := b.Graph.PassThreadControl(ctx, b.Page, ev.PSID, ev.Handover.RequestedOwnerAppID, "demo bot passes"); err != nil {
			b.Log.Warn().Err(err).Msg("pass_thread_control failed")
		}
	case ev.Kind == messenger.KindMessage && ev.Channel == messenger.ChannelMessaging:
		text := strings.ToLower(ev.Message.Text)
		if strings.Contains(text, "human") || strings.Contains(text, "agent") {
			b.say(ctx, ev.PSID, "Sure, I'm handing you to a human agent now.")
			b.handover(ctx, ev.PSID)
			return
		}
		b.say(ctx, ev.PSID, "🤖 You said: \""+ev.Message.Text+"\". Ask for a human any time.")
	}
}

func (b *DemoBot) say(ctx context.Context, psid, text string) {
	if _, err := b.Graph.Send(ctx, b.Page, messenger.SendRequest{PSID: psid, Message: map[string]any{"text": text}}); err != nil {
		b.Log.Warn().Err(err).Msg("send failed")
	}
}

// handoverRetry is how long the bot keeps retrying a handover of a customer
// handoverd has not seen yet.
const handoverRetry = 10 * time.Second

// handover asks handoverd to hand the customer to the agents. The bot and
// handoverd receive the customer's first message independently (messaging
// and standby), so the bot can ask before handoverd has recorded the
// thread: 404 "unknown identity" then means "not yet", and the bot retries.
func (b *DemoBot) handover(ctx context.Context, psid string) {
	q := url.Values{"identity_foreign_id": {psid}, "from": {"bot"}, "to": {"agent"}, "type": {"messenger"}}
	deadline := time.Now().Add(handoverRetry)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		status, msg, err := b.callHandover(ctx, q)
		switch {
		case err != nil:
			b.Log.Warn().Err(err).Str("psid", psid).Msg("handover call failed")
			return
		case status == http.StatusNotFound && time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		case status >= 300:
			b.Log.Warn().Int("status", status).Str("message", msg).Str("psid", psid).Msg("handover refused")
			return
		}
		b.Log.Info().Int("status", status).Str("message", msg).Str("psid", psid).Msg("handed over to the agents")
		return
	}
}

func (b *DemoBot) callHandover(ctx context.Context, q url.Values) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.BrokerURL+"/1.0/bots/handover?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+b.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var out struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if out.Message == "" {
		out.Message = out.Error.Message
	}
	return resp.StatusCode, out.Message, nil
}
