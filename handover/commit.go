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
// webhook at fault, which gets its own answer. Within the transaction threads are locked in (page,
// PSID) order across the whole batch, so processes sharing PostgreSQL
// cannot deadlock on each other's batches.

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
	done   chan error // receives exactly once
}

// committer queues webhooks for group commit.
type committer struct {
	mu      sync.Mutex
	pending []*ingestReq
	running bool
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
	req := &ingestReq{events: events, done: make(chan error, 1)}
	s.commit.mu.Lock()
	s.commit.pending = append(s.commit.pending, req)
	lead := !s.commit.running
	s.commit.running = true
	s.commit.mu.Unlock()
	if lead {
		s.commitNext()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitNext commits one batch of what is waiting, then hands the next
// batch to a new goroutine (so the caller's own answer is not held up by
// later webhooks) or, with nothing waiting, stops.
func (s *Service) commitNext() {
	s.commit.mu.Lock()
	batch := takeBatch(&s.commit.pending)
	s.commit.mu.Unlock()

	s.applyBatch(batch)

	s.commit.mu.Lock()
	more := len(s.commit.pending) > 0
	s.commit.running = more
	s.commit.mu.Unlock()
	if more {
		go s.commitNext()
	}
}

// takeBatch removes from the front of pending the webhooks of the next
// batch: at least one, then as many as fit the bounds.
func takeBatch(pending *[]*ingestReq) []*ingestReq {
	q := *pending
	n, events := 1, len(q[0].events)
	for n < len(q) && n < maxBatchWebhooks && events+len(q[n].events) <= maxBatchEvents {
		events += len(q[n].events)
		n++
	}
	batch := q[:n:n]
	*pending = append([]*ingestReq(nil), q[n:]...)
	return batch
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
