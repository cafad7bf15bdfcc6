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
	w.WriteHeader(http.StatusOK)
	for _, ev := range batch.Events {
		go b.handle(ev) // answer Meta fast; act afterwards
	}
}

func (b *DemoBot) handle(ev messenger.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

func (b *DemoBot) handover(ctx context.Context, psid string) {
	q := url.Values{"identity_foreign_id": {psid}, "from": {"bot"}, "to": {"agent"}, "type": {"messenger"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.BrokerURL+"/1.0/bots/handover?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+b.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Log.Warn().Err(err).Msg("handover call failed")
		return
	}
	defer resp.Body.Close()
	var out struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	b.Log.Info().Int("status", out.Status).Str("message", out.Message).Msg("handed over to the agents")
}
