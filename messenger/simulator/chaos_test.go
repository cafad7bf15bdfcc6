package simulator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger/simulator"
)

// TestChaosIsReproducible: the same seed injects the same faults into the
// same sequence of calls; another seed, others; off means none.
func TestChaosIsReproducible(t *testing.T) {
	run := func(c *simulator.Chaos) []int {
		sim := simulator.New(simulator.Config{})
		srv := httptest.NewServer(sim.Handler())
		defer func() { sim.Close(); srv.Close() }()
		sim.AddApp(simulator.App{ID: "111", Secret: "s"})
		sim.AddPage(simulator.Page{ID: "1", DefaultAppID: "111", Tokens: map[string]string{"tok": "111"}})
		sim.SetChaos(c)
		var out []int
		for range 40 {
			resp, err := srv.Client().Get(srv.URL + "/v21.0/1/thread_owner?recipient=5&access_token=tok")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			out = append(out, resp.StatusCode)
		}
		return out
	}
	c := simulator.Chaos{Seed: 7, ServerError: 0.2, StormLength: 2, RateLimit: 0.2}
	a, b := run(&c), run(&c)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults:\n%s", diff)
	}
	faults := 0
	for _, st := range a {
		if st != 200 {
			faults++
		}
	}
	if faults == 0 || faults == len(a) {
		t.Errorf("%d of %d calls failed, want some", faults, len(a))
	}
	other := c
	other.Seed = 8
	if cmp.Equal(a, run(&other)) {
		t.Error("another seed injected the same faults")
	}
	for _, st := range run(nil) {
		if st != 200 {
			t.Fatalf("status %d with chaos off", st)
		}
	}
}

// TestChaosRedelivers: with Redeliver, a webhook comes again after the
// next one (redelivered, out of order); Flush delivers what is held back.
func TestChaosRedelivers(t *testing.T) {
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Entry []struct {
				Messaging []struct {
					Message struct{ Text string } `json:"message"`
				} `json:"messaging"`
			} `json:"entry"`
		}
		_ = json.NewDecoder(r.Body).Decode(&env)
		mu.Lock()
		defer mu.Unlock()
		for _, e := range env.Entry {
			for _, m := range e.Messaging {
				got = append(got, m.Message.Text)
			}
		}
	}))
	defer hook.Close()
	sim := simulator.New(simulator.Config{RetryDelay: time.Millisecond})
	defer sim.Close()
	sim.AddApp(simulator.App{ID: "111", Secret: "s", WebhookURL: hook.URL})
	sim.AddPage(simulator.Page{ID: "1", DefaultAppID: "111", Tokens: map[string]string{"tok": "111"}})
	sim.SetChaos(&simulator.Chaos{Seed: 1, Redeliver: 1})
	for _, text := range []string{"one", "two"} {
		if _, err := sim.CustomerSends("1", "5", simulator.CustomerMessage{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// "one" again after "two": redelivered out of order; "two"'s copy at the flush.
	if diff := cmp.Diff([]string{"one", "two", "one", "two"}, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}
