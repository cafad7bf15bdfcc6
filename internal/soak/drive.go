package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/handoverd/handoverd/messenger/simulator"
)

// accepted is an agent message handoverd answered 2xx for.
type accepted struct {
	text string
	via  string // engage or inbox
	psid string
}

// record is what the driver did and what handoverd accepted.
type record struct {
	mu        sync.Mutex
	wrote     map[string]bool // customers who wrote
	busy      map[string]bool // customers an agent works on
	customer  int             // customer messages the simulator took
	handovers int             // bot handovers accepted
	closes    int             // hand-backs and resolves accepted
	tries     int             // API requests made
	refused   int             // API requests answered non-2xx or not at all
	accepted  []accepted
	seq       int
}

func newRecord() *record {
	return &record{wrote: map[string]bool{}, busy: map[string]bool{}}
}

func (rc *record) next() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seq++
	return rc.seq
}

// drive runs the customers and the agents until ctx ends.
func (r *run) drive(ctx context.Context, urls []string) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.customers(ctx) }()
	for w := range r.o.Agents {
		wg.Add(1)
		go func() { defer wg.Done(); r.agent(ctx, w, urls) }()
	}
	wg.Wait()
}

// customers write at a steady rate, each message with a new mid and the
// current time.
func (r *run) customers(ctx context.Context) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.o.Rate))
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		psid := fmt.Sprintf("7%06d", r.rng.IntN(r.o.Customers))
		if _, err := r.sim.CustomerSends(pageID, psid, simulator.CustomerMessage{Text: fmt.Sprintf("customer says %d", n)}); err != nil {
			r.log("customer message: %v", err)
			continue
		}
		r.rec.mu.Lock()
		r.rec.customer++
		r.rec.wrote[psid] = true
		r.rec.mu.Unlock()
	}
}

// pick chooses a customer who wrote and no other agent works on.
func (r *run) pick() (string, bool) {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	var free []string
	for p := range r.rec.wrote {
		if !r.rec.busy[p] {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		return "", false
	}
	p := free[r.rng.IntN(len(free))]
	r.rec.busy[p] = true
	return p, true
}

func (r *run) release(psid string) {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	delete(r.rec.busy, psid)
}

// agent works conversations one after another: the bot hands the
// customer over (Engage's POST /1.0/bots/handover), the agent replies (by
// an intervention, or in the inbox) and hands the conversation back
// (closing the intervention, or resolving) — sometimes replying at the
// very moment of the hand-back.
func (r *run) agent(ctx context.Context, w int, urls []string) {
	c := &apiClient{r: r, urls: urls, http: &http.Client{Timeout: 15 * time.Second}}
	for ctx.Err() == nil {
		psid, ok := r.pick()
		if !ok {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		r.episode(ctx, c, psid)
		r.release(psid)
		sleep(ctx, r.rng.Between(50*time.Millisecond, 300*time.Millisecond))
	}
}

func (r *run) episode(ctx context.Context, c *apiClient, psid string) {
	q := url.Values{"identity_foreign_id": {psid}, "from": {"bot"}, "to": {"agent"}, "type": {"messenger"}}
	st, _ := c.do(ctx, http.MethodPost, "/1.0/bots/handover?"+q.Encode(), botToken, nil)
	if ok2xx(st) {
		r.rec.mu.Lock()
		r.rec.handovers++
		r.rec.mu.Unlock()
	}
	// The bot passes when asked; give the thread a moment to arrive.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if r.sim.Thread(pageID, psid).OwnerAppID == ourApp {
			break
		}
		sleep(ctx, 50*time.Millisecond)
	}
	replies := 1 + r.rng.IntN(3)
	racy := r.rng.IntN(3) == 0 // reply while handing back
	if r.rng.IntN(2) == 0 {
		r.engageEpisode(ctx, c, psid, replies, racy)
	} else {
		r.inboxEpisode(ctx, c, psid, replies, racy)
	}
}

func (r *run) engageEpisode(ctx context.Context, c *apiClient, psid string, replies int, racy bool) {
	st, body := c.do(ctx, http.MethodPost, "/1.0/interventions", agentToken, map[string]string{"identity_foreign_id": psid})
	var iv struct {
		ID int64 `json:"id"`
	}
	switch {
	case st == http.StatusCreated:
		_ = json.Unmarshal(body, &iv)
	case st == http.StatusConflict: // one is open (an earlier close did not get through): work in it
		_, body := c.do(ctx, http.MethodGet, "/1.0/interventions?identity_foreign_id="+psid, agentToken, nil)
		var ivs []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		}
		if json.Unmarshal(body, &ivs) == nil && len(ivs) > 0 && ivs[0].Status != "closed" {
			iv.ID = ivs[0].ID
		}
	}
	if iv.ID == 0 {
		return
	}
	reply := func() {
		text := fmt.Sprintf("soak reply %d", r.rec.next())
		st, _ := c.do(ctx, http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), agentToken, map[string]string{"text": text})
		r.accept(st, text, "engage", psid)
	}
	closeIt := func() {
		if st, _ := c.do(ctx, http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", iv.ID), agentToken, nil); ok2xx(st) {
			r.rec.mu.Lock()
			r.rec.closes++
			r.rec.mu.Unlock()
		}
	}
	for range replies {
		reply()
	}
	r.handBack(racy, reply, closeIt)
}

func (r *run) inboxEpisode(ctx context.Context, c *apiClient, psid string, replies int, racy bool) {
	const acct = "/api/v1/accounts/1"
	st, body := c.do(ctx, http.MethodGet, acct+"/contacts/search?q="+psid, agentToken, nil)
	var contacts struct {
		Payload []struct {
			ID         int64  `json:"id"`
			Identifier string `json:"identifier"`
		} `json:"payload"`
	}
	if !ok2xx(st) || json.Unmarshal(body, &contacts) != nil {
		return
	}
	var contactID int64
	for _, ct := range contacts.Payload {
		if ct.Identifier == psid {
			contactID = ct.ID
		}
	}
	if contactID == 0 {
		return
	}
	st, body = c.do(ctx, http.MethodGet, fmt.Sprintf("%s/contacts/%d/conversations", acct, contactID), agentToken, nil)
	var convs struct {
		Payload []struct {
			ID int64 `json:"id"`
		} `json:"payload"`
	}
	if !ok2xx(st) || json.Unmarshal(body, &convs) != nil || len(convs.Payload) == 0 {
		return
	}
	conv := fmt.Sprintf("%s/conversations/%d", acct, convs.Payload[0].ID)
	reply := func() {
		text := fmt.Sprintf("soak reply %d", r.rec.next())
		st, _ := c.do(ctx, http.MethodPost, conv+"/messages", agentToken, map[string]string{"content": text, "message_type": "outgoing"})
		r.accept(st, text, "inbox", psid)
	}
	resolve := func() {
		if st, _ := c.do(ctx, http.MethodPost, conv+"/toggle_status", agentToken, map[string]string{"status": "resolved"}); ok2xx(st) {
			r.rec.mu.Lock()
			r.rec.closes++
			r.rec.mu.Unlock()
		}
	}
	for range replies {
		reply()
	}
	r.handBack(racy, reply, resolve)
}

// handBack hands the conversation back; racy: with a reply sent at once.
func (r *run) handBack(racy bool, reply, back func()) {
	if !racy {
		back()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); back() }()
	go func() { defer wg.Done(); reply() }()
	wg.Wait()
}

func (r *run) accept(status int, text, via, psid string) {
	if !ok2xx(status) {
		return
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	r.rec.accepted = append(r.rec.accepted, accepted{text: text, via: via, psid: psid})
}

// apiClient calls handoverd's API on one replica or another.
type apiClient struct {
	r    *run
	urls []string
	http *http.Client
}

// do makes one request on a random replica and returns its status (0: no
// answer) and body. A request is never retried: it may have been applied.
func (c *apiClient) do(ctx context.Context, method, path, token string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	base := c.urls[c.r.rng.IntN(len(c.urls))]
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), method, base+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("api_access_token", token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.r.rec.mu.Lock()
	c.r.rec.tries++
	c.r.rec.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		c.r.rec.mu.Lock()
		c.r.rec.refused++
		c.r.rec.mu.Unlock()
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if !ok2xx(resp.StatusCode) {
		c.r.rec.mu.Lock()
		c.r.rec.refused++
		c.r.rec.mu.Unlock()
	}
	return resp.StatusCode, b
}

func ok2xx(status int) bool { return status >= 200 && status < 300 }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// killer SIGKILLs a random process at a random instant in each of Kills
// equal slots of the run, restarting it after a short pause; it returns
// how many kills it made.
func (r *run) killer(ctx context.Context) int {
	if r.o.Kills <= 0 {
		<-ctx.Done()
		return 0
	}
	slot := r.o.Duration / time.Duration(r.o.Kills)
	begin := time.Now()
	n := 0
	for i := range r.o.Kills {
		at := begin.Add(time.Duration(i)*slot + r.rng.Between(0, slot*3/4))
		sleep(ctx, time.Until(at))
		if ctx.Err() != nil {
			return n
		}
		p := r.procs[r.rng.IntN(len(r.procs))]
		if !p.running() {
			continue
		}
		p.kill()
		n++
		pause := r.rng.Between(200*time.Millisecond, 1500*time.Millisecond)
		r.log("kill %d: SIGKILL handoverd on %s; restart in %s", n, p.addr, pause.Round(time.Millisecond))
		sleep(ctx, pause)
		if err := p.start(); err != nil {
			r.log("restart: %v", err)
		}
	}
	<-ctx.Done()
	return n
}
