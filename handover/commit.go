package handover

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
// the batch is applied again without it, and it is tried on its own, so it
// gets its own answer. Within the transaction threads are locked in (page,
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

// batchError is an error applying one webhook of a batch.
type batchError struct {
	req int // index in the batch
	err error
}

func (e *batchError) Error() string { return e.err.Error() }
func (e *batchError) Unwrap() error { return e.err }

// applyBatch applies the webhooks in one transaction and answers each. A
// webhook whose events fail is taken out and tried alone.
func (s *Service) applyBatch(batch []*ingestReq) {
	ctx := context.Background() // the batch outlives any one request
	for len(batch) > 0 {
		c, err := s.ingestTx(ctx, batch)
		var be *batchError
		if err != nil && len(batch) > 1 && errors.As(err, &be) && !store.Retryable(be.err) {
			bad := batch[be.req]
			rest := append(append([]*ingestReq(nil), batch[:be.req]...), batch[be.req+1:]...)
			s.applyBatch([]*ingestReq{bad})
			batch = rest
			continue
		}
		if err != nil {
			err = fmt.Errorf("handover: ingest: %w", err)
		} else {
			s.record(c)
		}
		for _, r := range batch {
			r.done <- err
		}
		return
	}
}

// ingestTx applies the batch's events in one transaction.
func (s *Service) ingestTx(ctx context.Context, batch []*ingestReq) (committed, error) {
	type key struct{ page, psid string }
	type tagged struct {
		ev  messenger.Event
		req int
	}
	groups := map[key][]tagged{}
	var keys []key
	for i, r := range batch {
		for _, ev := range r.events {
			k := key{ev.PageID, ev.PSID}
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], tagged{ev, i})
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].page != keys[j].page {
			return keys[i].page < keys[j].page
		}
		return keys[i].psid < keys[j].psid
	})
	for _, g := range groups {
		sort.SliceStable(g, func(i, j int) bool { return g[i].ev.Time.Before(g[j].ev.Time) })
	}
	var c committed
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		c = committed{}
		for _, k := range keys {
			g := groups[k]
			evs := make([]messenger.Event, len(g))
			for i, t := range g {
				evs[i] = t.ev
			}
			var failed int
			var err error
			if k.psid == "" {
				failed, err = s.applyPageEvents(ctx, tx, k.page, evs, &c)
			} else {
				failed, err = s.applyThreadEvents(ctx, tx, k.page, k.psid, evs, &c)
			}
			if err != nil {
				return &batchError{req: g[failed].req, err: fmt.Errorf("page %s: %w", k.page, err)}
			}
		}
		return nil
	})
	return c, err
}
