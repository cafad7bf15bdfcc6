package messenger_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
)

const (
	ourApp, ourSecret, ourToken = "111", "our-secret", "our-token"
	botApp, botSecret, botToken = "222", "bot-secret", "bot-token"
	page, psid                  = "1001", "5001"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status, code, subcode int
		transient             bool
		want                  messenger.ErrorClass
	}{
		{400, 10, 2018300, false, messenger.ClassNotOwner},
		{400, 10, 2018278, false, messenger.ClassOutsideWindow},
		{400, 10, 0, false, messenger.ClassPermission},
		{400, 4, 0, false, messenger.ClassRateLimited},
		{400, 17, 0, false, messenger.ClassRateLimited},
		{400, 32, 0, false, messenger.ClassRateLimited},
		{400, 613, 0, false, messenger.ClassRateLimited},
		{400, 80006, 0, false, messenger.ClassRateLimited},
		{400, 190, 0, false, messenger.ClassBadToken},
		{400, 190, 0, true, messenger.ClassBadToken},
		{500, 1, 0, false, messenger.ClassTransient},
		{500, 2, 2018344, false, messenger.ClassTransient},
		{400, 1200, 0, false, messenger.ClassTransient},
		{400, 100, 0, true, messenger.ClassTransient},
		{400, 100, 2018001, false, messenger.ClassBadRequest},
		{400, 551, 0, false, messenger.ClassBadRequest},
		{400, 200, 0, false, messenger.ClassPermission},
		{502, 0, 0, false, messenger.ClassTransient},
		{0, 0, 0, false, messenger.ClassTransient},
	}
	for _, tt := range tests {
		if got := messenger.Classify(tt.status, tt.code, tt.subcode, tt.transient); got != tt.want {
			t.Errorf("Classify(%d, %d, %d, %v) = %s, want %s", tt.status, tt.code, tt.subcode, tt.transient, got, tt.want)
		}
	}
}

type graphFixture struct {
	sim      *simulator.Sim
	url      string
	our, bot *messenger.Graph
}

func newGraphFixture(t *testing.T, defaultApp string) *graphFixture {
	t.Helper()
	sim := simulator.New(simulator.Config{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { sim.Close(); srv.Close() })
	sim.AddApp(simulator.App{ID: ourApp, Secret: ourSecret})
	sim.AddApp(simulator.App{ID: botApp, Secret: botSecret})
	sim.AddPage(simulator.Page{ID: page, DefaultAppID: defaultApp, Tokens: map[string]string{ourToken: ourApp, botToken: botApp}})
	f := &graphFixture{sim: sim, url: srv.URL + "/"}
	f.our = f.client(ourApp, ourSecret)
	f.bot = f.client(botApp, botSecret)
	return f
}

func (f *graphFixture) client(app string, secret config.Secret) *messenger.Graph {
	return messenger.NewGraph(messenger.GraphOptions{BaseURL: f.url, Version: "v21.0", AppID: app, AppSecret: secret,
		Timeout: 2 * time.Second, Retry: messenger.Retry{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}})
}

func ourPage() messenger.PageRef { return messenger.PageRef{ID: page, Token: ourToken} }
func botPage() messenger.PageRef { return messenger.PageRef{ID: page, Token: botToken} }

func text(s string) messenger.SendRequest {
	return messenger.SendRequest{PSID: psid, Message: map[string]any{"text": s}}
}

func calls(sim *simulator.Sim) []string {
	var out []string
	for _, c := range sim.Calls() {
		out = append(out, c.AppID+" "+c.Op)
	}
	return out
}

func graphErr(t *testing.T, err error) *messenger.GraphError {
	t.Helper()
	var ge *messenger.GraphError
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v, want a *GraphError", err)
	}
	return ge
}

func TestGraphThreadControlAndSend(t *testing.T) {
	f := newGraphFixture(t, botApp)
	ctx := context.Background()
	if _, err := f.sim.CustomerSends(page, psid, simulator.CustomerMessage{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	// The bot owns the thread (default app): our send is refused as not-owner, once, not retried.
	_, err := f.our.Send(ctx, ourPage(), text("hello"))
	ge := graphErr(t, err)
	if ge.Class != messenger.ClassNotOwner || ge.Code != 10 || ge.Subcode != 2018300 || ge.Retryable() || ge.HTTPStatus != 400 {
		t.Errorf("send while bot owns: %+v", ge)
	}
	// The bot passes to us; we send; we release.
	if err := f.bot.PassThreadControl(ctx, botPage(), psid, ourApp, "over to you"); err != nil {
		t.Fatal(err)
	}
	owner, err := f.our.ThreadOwner(ctx, ourPage(), psid)
	if err != nil || owner.AppID != ourApp || owner.Expiration.IsZero() {
		t.Errorf("thread_owner = %+v, %v; want us with an expiration", owner, err)
	}
	res, err := f.our.Send(ctx, ourPage(), text("an agent here"))
	if err != nil || res.MessageID == "" || res.RecipientID != psid {
		t.Fatalf("send as owner = %+v, %v", res, err)
	}
	if err := f.our.ReleaseThreadControl(ctx, ourPage(), psid, ""); err != nil {
		t.Fatal(err)
	}
	if owner, err := f.our.ThreadOwner(ctx, ourPage(), psid); err != nil || !owner.Idle {
		t.Errorf("after release thread_owner = %+v, %v; want idle", owner, err)
	}
	// Idle thread: the default app (bot) may take... we request and get it.
	if err := f.our.RequestThreadControl(ctx, ourPage(), psid, ""); err != nil {
		t.Fatal(err)
	}
	if got := f.sim.Thread(page, psid).OwnerAppID; got != ourApp {
		t.Errorf("after request on idle thread owner = %q, want us", got)
	}
	if err := f.bot.TakeThreadControl(ctx, botPage(), psid, ""); err != nil {
		t.Fatalf("default app take: %v", err)
	}
	want := []string{"111 send", "222 pass_thread_control", "111 thread_owner", "111 send", "111 release_thread_control",
		"111 thread_owner", "111 request_thread_control", "222 take_thread_control"}
	if diff := cmp.Diff(want, calls(f.sim)); diff != "" {
		t.Errorf("graph calls (-want +got):\n%s", diff)
	}
}

func TestGraphRetries(t *testing.T) {
	tests := []struct {
		name      string
		fault     simulator.Fault
		wantCalls int
		wantClass messenger.ErrorClass // "" = success
	}{
		{"rate limited twice, then ok", simulator.Fault{Op: "send", Times: 2, Code: 613}, 3, ""},
		{"page rate limit 32 once", simulator.Fault{Op: "send", Times: 1, Code: 32}, 2, ""},
		{"BUC 80006 throughout", simulator.Fault{Op: "send", Times: 9, Code: 80006}, 3, messenger.ClassRateLimited},
		{"5xx throughout", simulator.Fault{Op: "send", Times: 9, HTTPStatus: 503, Code: 2}, 3, messenger.ClassTransient},
		{"bad token not retried", simulator.Fault{Op: "send", Times: 9, Code: 190}, 1, messenger.ClassBadToken},
		{"bad request not retried", simulator.Fault{Op: "send", Times: 9, Code: 100}, 1, messenger.ClassBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newGraphFixture(t, ourApp)
			if _, err := f.sim.CustomerSends(page, psid, simulator.CustomerMessage{Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			f.sim.ResetCalls()
			f.sim.InjectFault(tt.fault)
			_, err := f.our.Send(context.Background(), ourPage(), text("hello"))
			if got := len(f.sim.Calls()); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if tt.wantClass == "" {
				if err != nil {
					t.Errorf("err = %v, want success after retries", err)
				}
				return
			}
			if ge := graphErr(t, err); ge.Class != tt.wantClass {
				t.Errorf("class = %s, want %s (%v)", ge.Class, tt.wantClass, ge)
			}
		})
	}
}

func TestGraphOutsideWindow(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	sim := simulator.New(simulator.Config{Now: clock.Now})
	srv := httptest.NewServer(sim.Handler())
	defer func() { sim.Close(); srv.Close() }()
	sim.AddApp(simulator.App{ID: ourApp, Secret: ourSecret})
	sim.AddPage(simulator.Page{ID: page, DefaultAppID: ourApp, Tokens: map[string]string{ourToken: ourApp}})
	g := messenger.NewGraph(messenger.GraphOptions{BaseURL: srv.URL + "/", Version: "v21.0", AppID: ourApp, AppSecret: ourSecret})
	if _, err := sim.CustomerSends(page, psid, simulator.CustomerMessage{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * time.Hour)
	_, err := g.Send(context.Background(), ourPage(), text("late"))
	if ge := graphErr(t, err); ge.Class != messenger.ClassOutsideWindow || ge.Retryable() {
		t.Fatalf("class = %s, want outside_window, not retryable", ge.Class)
	}
	// A human agent's reply with the HUMAN_AGENT tag is allowed up to 7 days.
	req := text("late, but human")
	req.MessagingType, req.Tag = "MESSAGE_TAG", "HUMAN_AGENT"
	if _, err := g.Send(context.Background(), ourPage(), req); err != nil {
		t.Fatalf("HUMAN_AGENT send after 25 h: %v", err)
	}
	clock.Advance(7 * 24 * time.Hour)
	_, err = g.Send(context.Background(), ourPage(), req)
	if ge := graphErr(t, err); ge.Class != messenger.ClassOutsideWindow {
		t.Fatalf("HUMAN_AGENT after 8 days: class = %s, want outside_window", ge.Class)
	}
}

func TestGraphWrongAppSecretFailsProof(t *testing.T) {
	f := newGraphFixture(t, botApp)
	g := f.client(ourApp, "not-our-secret")
	err := g.ReleaseThreadControl(context.Background(), ourPage(), psid, "")
	if ge := graphErr(t, err); ge.Retryable() || ge.Code != 100 {
		t.Errorf("wrong appsecret_proof: %+v, want a non-retryable code 100", ge)
	}
}

func TestGraphTransportFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"HTML 502", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html>Bad Gateway</html>"))
		}},
		{"500 without an error body", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{}`))
		}},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(300 * time.Millisecond):
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); tt.handler(w, r) }))
			defer srv.Close()
			g := messenger.NewGraph(messenger.GraphOptions{BaseURL: srv.URL + "/", Version: "v21.0", AppID: ourApp, AppSecret: ourSecret,
				Timeout: 100 * time.Millisecond, Retry: messenger.Retry{Attempts: 2, Initial: time.Millisecond}})
			err := g.PassThreadControl(context.Background(), ourPage(), psid, botApp, "")
			ge := graphErr(t, err)
			if ge.Class != messenger.ClassTransient || !ge.Retryable() {
				t.Errorf("class = %s, want transient", ge.Class)
			}
			if got := n.Load(); got != 2 {
				t.Errorf("attempts = %d, want 2", got)
			}
		})
	}
}

// TestGraphUnansweredSendNotRetried: a send Facebook executed but answered
// after the client's timeout may have reached the customer; it is not
// sent again. An unanswered thread-control call is retried.
func TestGraphUnansweredSendNotRetried(t *testing.T) {
	f := newGraphFixture(t, ourApp)
	if _, err := f.sim.CustomerSends(page, psid, simulator.CustomerMessage{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	g := messenger.NewGraph(messenger.GraphOptions{BaseURL: f.url, Version: "v21.0", AppID: ourApp, AppSecret: ourSecret,
		Timeout: 50 * time.Millisecond, Retry: messenger.Retry{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}})
	f.sim.ResetCalls()
	f.sim.SetChaos(&simulator.Chaos{Seed: 1, Slow: 1, SlowFor: 200 * time.Millisecond})
	_, err := g.Send(context.Background(), ourPage(), text("once"))
	if !messenger.IsUnanswered(err) {
		t.Fatalf("err = %v, want unanswered", err)
	}
	if got := len(f.sim.Inbox(page, psid)); got != 1 {
		t.Errorf("the customer received %d copies, want 1", got)
	}
	f.sim.ResetCalls()
	_ = g.ReleaseThreadControl(context.Background(), ourPage(), psid, "")
	if got := len(f.sim.Calls()); got != 3 {
		t.Errorf("release calls = %d, want 3 (retried)", got)
	}
	f.sim.SetChaos(nil)
}
