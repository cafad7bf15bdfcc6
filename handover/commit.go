package handover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Group commit.
//
// Every webhook POST hands its parsed events to Ingest and waits. Waiting
// webhooks are applied together, in arrival order, in one transaction with
// one commit (one fsync), and then each is answered. Nobody sleeps to let a
// batch fill: the first webhook to find no commit under way starts one with
// whatever is waiting; webhooks that arrive while it runs form the next
// batch. So a batch is one webhook at low load and grows with load, up to
// maxBatchWebhooks webhooks or maxBatchEvents events.
//
// A webhook whose events cannot be applied (an error that is not a
// conflict the database resolves by retrying) does not fail the others:
// the batch is split and its halves applied on their own, down to the
// webhook at fault, which gets its own answer. Within the transaction
// threads are locked in (page, PSID) order across the whole batch, so
// processes sharing PostgreSQL cannot deadlock on each other's batches.
//
// SQLite has one writer, so one batch commits at a time. PostgreSQL
// commits several batches at once (committers), each waiting on its own
// round trips and fsync; a thread's webhooks are still applied in arrival
// order, because a webhook that names a thread of a batch in flight, or of
// an earlier webhook left waiting, waits for a later batch.

const (
	// maxBatchWebhooks bounds the webhooks one transaction applies.
	maxBatchWebhooks = 256
	// maxBatchEvents bounds the events one transaction applies (a webhook
	// bigger than this is applied alone).
	maxBatchEvents = 2000
)

// ingestReq is one webhook waiting for its events to commit.
type ingestReq struct {
	events []messenger.Event
	keys   []threadKey // the threads it names (page-level events: PSID "")
	done   chan error  // receives exactly once
}

// committer queues webhooks for group commit.
type committer struct {
	mu      sync.Mutex
	pending []*ingestReq
	// running counts the batches being applied, at most max.
	running, max int
	// inFlight holds the threads of the batches being applied.
	inFlight map[threadKey]int
}

// committers is how many batches may commit at once on a dialect.
func committers(dialect string) int {
	if dialect == "postgres" {
		return 4
	}
	return 1
}

// threadKeys are the threads (page-level events: PSID "") events name.
func threadKeys(events []messenger.Event) []threadKey {
	ks := make([]threadKey, 0, 1)
	for _, ev := range events {
		k := threadKey{ev.PageID, ev.PSID}
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// Ingest durably applies one webhook's events, in a transaction shared
// with the other webhooks waiting at the same time. It returns nil only
// when every event is committed (or already was). If ctx ends first the
// events may still commit; the error then only means "not acknowledged",
// and Meta's redelivery is deduplicated.
func (s *Service) Ingest(ctx context.Context, events []messenger.Event) error {
	if len(events) == 0 {
		return nil
	}
	req := &ingestReq{events: events, keys: threadKeys(events), done: make(chan error, 1)}
	c := &s.commit
	c.mu.Lock()
	c.pending = append(c.pending, req)
	batch := c.next()
	c.mu.Unlock()
	if batch != nil {
		s.commitFrom(batch)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitFrom commits batch, then, while webhooks wait that may be
// applied, the next batch, each from a new goroutine (so the caller's own
// answer is not held up by later webhooks).
func (s *Service) commitFrom(batch []*ingestReq) {
	s.applyBatch(batch)
	c := &s.commit
	c.mu.Lock()
	c.done(batch)
	next := c.next()
	c.mu.Unlock()
	if next != nil {
		go s.commitFrom(next)
	}
}

// next takes, when a committer is free, the next batch from the front of
// pending (mu held): the webhooks, in order, that fit the bounds and name
// no thread in flight or of an earlier webhook left waiting. It returns
// nil when nothing may start now.
func (c *committer) next() []*ingestReq {
	if c.running >= max(c.max, 1) || len(c.pending) == 0 {
		return nil
	}
	if c.inFlight == nil {
		c.inFlight = map[threadKey]int{}
	}
	var (
		batch, left []*ingestReq
		blocked     map[threadKey]bool
		events      int
	)
	for i, r := range c.pending {
		if len(batch) == maxBatchWebhooks || (len(batch) > 0 && events+len(r.events) > maxBatchEvents) {
			left = append(left, c.pending[i:]...)
			break
		}
		ks := r.keys
		wait := false
		for _, k := range ks {
			if c.inFlight[k] > 0 || blocked[k] {
				wait = true
			}
		}
		if wait {
			if blocked == nil {
				blocked = map[threadKey]bool{}
			}
			for _, k := range ks {
				blocked[k] = true
			}
			left = append(left, r)
			continue
		}
		batch = append(batch, r)
		events += len(r.events)
	}
	if len(batch) == 0 {
		return nil
	}
	for _, r := range batch {
		for _, k := range r.keys {
			c.inFlight[k]++
		}
	}
	c.pending = left
	c.running++
	return batch
}

// done notes that batch is applied (mu held).
func (c *committer) done(batch []*ingestReq) {
	c.running--
	for _, r := range batch {
		for _, k := range r.keys {
			if c.inFlight[k]--; c.inFlight[k] <= 0 {
				delete(c.inFlight, k)
			}
		}
	}
}

// applyBatch applies the webhooks in one transaction and answers each. If
// the batch fails for a reason other than a conflict (which InTx retries),
// its halves are applied on their own, down to single webhooks: one bad
// webhook gets its error, the others still commit, at the cost of a few
// more transactions only when something is wrong.
func (s *Service) applyBatch(batch []*ingestReq) {
	c, err := s.ingestTx(context.Background(), batch) // the batch outlives any one request
	if err != nil && len(batch) > 1 && !store.Retryable(err) {
		half := len(batch) / 2
		s.applyBatch(batch[:half])
		s.applyBatch(batch[half:])
		return
	}
	if err != nil {
		err = fmt.Errorf("handover: ingest: %w", err)
	} else {
		s.metrics.IngestBatchWebhooks.Observe(float64(len(batch)))
		s.record(c)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// ingestTx applies the batch's events in one transaction: Page-level
// events per Page, then every thread's events (see applyThreads).
func (s *Service) ingestTx(ctx context.Context, batch []*ingestReq) (committed, error) {
	groups := map[threadKey][]messenger.Event{}
	var keys, pages []threadKey
	for _, r := range batch {
		for _, ev := range r.events {
			k := threadKey{ev.PageID, ev.PSID}
			if _, ok := groups[k]; !ok {
				if k.psid == "" {
					pages = append(pages, k)
				} else {
					keys = append(keys, k)
				}
			}
			groups[k] = append(groups[k], ev)
		}
	}
	less := func(a, b threadKey) int {
		if c := strings.Compare(a.page, b.page); c != 0 {
			return c
		}
		return strings.Compare(a.psid, b.psid)
	}
	slices.SortFunc(keys, less)
	slices.SortFunc(pages, less)
	for _, g := range groups {
		slices.SortStableFunc(g, func(a, b messenger.Event) int { return a.Time.Compare(b.Time) })
	}
	var c committed
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		c = committed{}
		for _, k := range pages {
			if err := s.applyPageEvents(ctx, tx, k.page, groups[k], &c); err != nil {
				return fmt.Errorf("page %s: %w", k.page, err)
			}
		}
		return s.applyThreads(ctx, tx, keys, groups, &c)
	})
	return c, err
}
