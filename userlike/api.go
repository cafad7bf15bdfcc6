package userlike

import (
	"context"
	"io"
	"net/http"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
)

// Runtime is what the events endpoint needs of the relay runtime (package
// relaybot's Service): who a token belongs to, and a place for the events.
type Runtime interface {
	// BotForToken returns the name of the bot whose API token is token,
	// or an Unauthorized error.
	BotForToken(token string) (string, error)
	// PostEvents stores the events bot posted for its sessions, all or
	// none, or returns why not as an apperr error.
	PostEvents(ctx context.Context, bot string, events []Event) error
}

// MaxEventsBody bounds a body posted to the events endpoint, in bytes.
const MaxEventsBody = 256 << 10

// API serves the bots' event endpoint: POST /api/chatbot/v1/events (also
// unversioned), authenticated by the bot's SECURITY-TOKEN header. The body
// is one event or a list of them (ParseEvents).
type API struct {
	// Service runs the events: the relay runtime (relaybot.Service).
	Service Runtime
}

// Routes registers the endpoints.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodPost, "/api/chatbot/v1/events", a.events)
	r.HandleFunc(http.MethodPost, "/api/chatbot/events", a.events)
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	err := a.post(r.Context(), w, r)
	if err == nil {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	if apperr.CodeOf(err) == apperr.RateLimited {
		w.Header().Set("Retry-After", "60")
	}
	httpapi.WriteError(w, r, err)
}

func (a *API) post(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	bot, err := a.Service.BotForToken(r.Header.Get("SECURITY-TOKEN"))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventsBody))
	if err != nil {
		return apperr.New(apperr.TooLarge, "request body is over %d KiB", MaxEventsBody>>10)
	}
	events, err := ParseEvents(raw)
	if err != nil {
		return err
	}
	return a.Service.PostEvents(ctx, bot, events)
}
