package simulator

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Chaos makes Graph calls fail at random, reproducibly from Seed (for a
// given order of calls): 5xx storms, rate limits and slow answers. Unlike
// a Fault, which scripts one failure, Chaos is a standing condition a test
// switches on (SetChaos) and off (SetChaos(nil)).
type Chaos struct {
	// Seed seeds the choices.
	Seed uint64
	// AppID limits the chaos to one app's calls ("" every app).
	AppID string
	// Ops limits it to these ops (empty: every op).
	Ops []string
	// ServerError is the probability that a call starts a 5xx storm: it
	// and the next StormLength-1 matching calls answer HTTP 500 (code 2,
	// is_transient) without being executed.
	ServerError float64
	// StormLength is the length of a storm (0 → 1).
	StormLength int
	// RateLimit is the probability that a call is refused with one of
	// Meta's rate-limit codes (4, 17, 32, 613), not executed.
	RateLimit float64
	// Slow is the probability that a call is executed but answered only
	// after SlowFor — past the client's timeout, the client cannot know
	// whether it happened.
	Slow float64
	// SlowFor is how long a slow answer waits.
	SlowFor time.Duration
	// Redeliver is the probability that a webhook to the app (AppID, if
	// set) is delivered a second time, after the next one: redelivered
	// and out of order, as Meta may. Flush delivers the copies held back.
	Redeliver float64
}

// chaos is the running state of a Chaos.
type chaos struct {
	cfg   Chaos
	rng   *rand.Rand
	storm int // calls left in the current storm
	// held is, per app, a webhook body to deliver again after the next.
	held map[string][]byte
	// Injected counts the faults injected, by kind.
	injected map[string]int
}

// rateLimitCodes are Meta's rate-limit error codes.
var rateLimitCodes = []int{4, 17, 32, 613}

// SetChaos switches random faults on (c) or off (nil).
func (s *Sim) SetChaos(c *Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseHeld() // copies held back are still delivered
	if c == nil {
		s.chaos = nil
		return
	}
	if c.StormLength <= 0 {
		c.StormLength = 1
	}
	s.chaos = &chaos{cfg: *c, rng: rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)), injected: map[string]int{}, held: map[string][]byte{}}
}

// ChaosInjected returns how many faults of each kind (server_error,
// rate_limit, slow, redelivered) the current chaos injected.
func (s *Sim) ChaosInjected() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	if s.chaos != nil {
		for k, v := range s.chaos.injected {
			out[k] = v
		}
	}
	return out
}

// chaosFor decides the chaos for one call of op by app: an error to answer
// instead of executing it, or a delay to add after executing it. Called
// with mu held.
func (s *Sim) chaosFor(op, app string) (*graphError, time.Duration) {
	c := s.chaos
	if c == nil || (c.cfg.AppID != "" && c.cfg.AppID != app) || (len(c.cfg.Ops) > 0 && !slices.Contains(c.cfg.Ops, op)) {
		return nil, 0
	}
	if c.storm == 0 && c.rng.Float64() < c.cfg.ServerError {
		c.storm = c.cfg.StormLength
	}
	if c.storm > 0 {
		c.storm--
		c.injected["server_error"]++
		return &graphError{status: http.StatusInternalServerError, code: 2, msg: "An unexpected error has occurred. Please retry your request later."}, 0
	}
	if c.rng.Float64() < c.cfg.RateLimit {
		c.injected["rate_limit"]++
		code := rateLimitCodes[c.rng.IntN(len(rateLimitCodes))]
		return &graphError{status: http.StatusBadRequest, code: code, msg: "(#" + strconv.Itoa(code) + ") Application request limit reached"}, 0
	}
	if c.rng.Float64() < c.cfg.Slow {
		c.injected["slow"]++
		return nil, c.cfg.SlowFor
	}
	return nil, 0
}
