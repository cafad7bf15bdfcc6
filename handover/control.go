package handover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Direction is where a handover moves a thread.
type Direction string

// Directions.
const (
	ToAgent  Direction = "to_agent"  // the agents (handoverd's app) get control
	ToBot    Direction = "to_bot"    // the bot app gets control
	GiveBack Direction = "give_back" // an intervention ends: release, or pass to a default bot
)

// More causes, for transitions handoverd makes itself.
const (
	// CauseRelease: handoverd released the thread to idle.
	CauseRelease Cause = "release_thread_control"
	// CauseThreadOwner: Graph's thread_owner corrected a stale state.
	CauseThreadOwner Cause = "thread_owner"
)

// Graph operation names as stored in control_ops.
const (
	opNone    = "none"
	opRequest = messenger.OpRequest
	opTake    = messenger.OpTake
	opPass    = messenger.OpPass
	opRelease = messenger.OpRelease
)

// Outcome says what a control operation did.
type Outcome struct {
	// Op is the Graph call made ("none" when nothing was needed).
	Op string
	// Noop is true when no Graph call was needed (already owned, already
	// pending) or another caller's identical call answered for this one.
	Noop bool
	// Owner is the thread's owner afterwards as far as handoverd knows.
	Owner Owner
	// Pending is true when control was requested and not granted yet.
	Pending bool
}

// controlPlan is what a decision asks for.
type controlPlan struct {
	op     string // opNone when nothing is needed
	target string // target app for pass
}

// staleOpAfter: an in-flight operation older than this was abandoned by a
// crashed process and no longer blocks the thread.
const staleOpAfter = 2 * time.Minute

// controlRequest is one thread-control operation on (page, psid): which
// way it moves the thread, who asks, and how it decides.
type controlRequest struct {
	pageID, psid string
	dir          Direction
	actor        string
	// load reads, under the thread's lock, what plan needs beyond the
	// thread and the operation in flight (nil: nothing).
	load func(ctx context.Context, tx *store.Tx, f *controlFacts) error
	// plan decides the Graph call from the facts, without I/O.
	plan func(f controlFacts) (controlPlan, error)
}

// controlFacts is what a control decision reads under the thread's lock.
type controlFacts struct {
	// Thread is the thread's state.
	Thread Thread
	// Now is when the decision is made.
	Now time.Time
	// InFlight is another caller's operation still in flight on the
	// thread (0: none); InFlightDir is its direction.
	InFlight    int64
	InFlightDir Direction
	// Intervention is the identity's open or closing intervention (loaded
	// for a pass to the bot; nil when none).
	Intervention *Intervention
	// MessageWaiting is true when the queued agent message control is
	// asked for is still waiting and its intervention open (loaded for
	// acquireControlFor).
	MessageWaiting bool
}

// controlStep is what a decision has control do next.
type controlStep struct {
	// Wait is an identical operation in flight to wait for (0: none).
	Wait int64
	// Plan is the Graph call to make (op none: none).
	Plan controlPlan
	// SettleQueued is true when the agents give the thread up: their
	// queued messages are settled in the same transaction as the decision.
	SettleQueued bool
}

// handsBack reports whether an operation in direction dir gives the
// thread up for the agents.
func handsBack(dir Direction) bool { return dir == GiveBack || dir == ToBot }

// decideControl is the policy of a control operation, without I/O: an
// identical operation in flight is waited for and another is a Conflict;
// otherwise plan decides, and a hand-back settles the agents' queued
// messages.
func decideControl(dir Direction, f controlFacts, plan func(controlFacts) (controlPlan, error)) (controlStep, error) {
	switch {
	case f.InFlight != 0 && f.InFlightDir != dir:
		return controlStep{}, apperr.New(apperr.Conflict, "a handover %s is already in flight for this identity", f.InFlightDir)
	case f.InFlight != 0:
		return controlStep{Wait: f.InFlight}, nil
	}
	p, err := plan(f)
	if err != nil {
		return controlStep{}, err
	}
	return controlStep{Plan: p, SettleQueued: handsBack(dir)}, nil
}

// askOwnerAfter reports whether a failed Graph call of an operation in
// direction dir leaves the thread's owner in doubt, to be asked of Graph:
// a hand-back refused as not the owner, or not answered (the call may
// have happened), may be done already.
func askOwnerAfter(dir Direction, gerr error) bool {
	return handsBack(dir) && (messenger.IsClass(gerr, messenger.ClassNotOwner) || messenger.IsClass(gerr, messenger.ClassTransient))
}

// control runs one thread-control operation: under the thread's row lock
// it loads the facts, decides what is needed and records an in-flight
// operation (so concurrent callers, in any process, wait for it instead of
// calling Graph twice), calls Graph outside the transaction, then records
// the result and its effect on the thread.
func (s *Service) control(ctx context.Context, req controlRequest) (Outcome, error) {
	if s.graph == nil {
		return Outcome{}, apperr.New(apperr.Unavailable, "no Graph client configured")
	}
	page, ok := s.pages[req.pageID]
	if !ok {
		return Outcome{}, apperr.New(apperr.NotFound, "page %s is not configured", req.pageID)
	}
	why := whyFrom(ctx, directionReason(req.dir))
	step, th, opID, err := s.beginControl(ctx, req, why)
	if store.IsUniqueViolation(err) { // another process inserted first: wait for it
		return s.control(ctx, req)
	}
	switch {
	case err != nil:
		return Outcome{}, err
	case step.Wait != 0:
		return s.awaitOp(ctx, step.Wait)
	case step.Plan.op == opNone:
		return Outcome{Op: opNone, Noop: true, Owner: th.Owner, Pending: th.PendingAppID == s.appID}, nil
	}
	finish := func(gerr error) (Outcome, error) {
		return s.finishOp(context.WithoutCancel(ctx), page, req.psid, opID, step.Plan, req.actor, why, gerr)
	}
	if handsBack(req.dir) {
		if err := s.awaitSends(ctx, req.pageID, req.psid); err != nil {
			_, ferr := finish(err)
			return Outcome{}, errors.Join(err, ferr)
		}
	}
	gerr := s.callGraph(ctx, page, req.psid, step.Plan, metaMetadata(req.dir, why))
	out, ferr := finish(gerr)
	switch {
	case ferr != nil:
		return Outcome{}, ferr
	case gerr == nil:
		return out, nil
	case askOwnerAfter(req.dir, gerr):
		if out, ok := s.handedBack(ctx, req.pageID, req.psid, req.dir, step.Plan); ok {
			return out, nil
		}
	}
	return Outcome{}, graphFailure(step.Plan.op, gerr)
}

// beginControl is control's first transaction: under the thread's row
// lock it loads the facts, decides, settles a hand-back's queued agent
// messages and records the operation in flight (its id; 0 when no Graph
// call is needed).
func (s *Service) beginControl(ctx context.Context, req controlRequest, why Why) (controlStep, Thread, int64, error) {
	var (
		step      controlStep
		f         controlFacts
		opID      int64
		cancelled []int64 // queued messages a hand-back settled with its decision
	)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		step, opID, cancelled = controlStep{}, 0, nil
		var err error
		if f, err = s.loadControl(ctx, tx, req); err != nil {
			return err
		}
		if step, err = decideControl(req.dir, f, req.plan); err != nil || step.Wait != 0 {
			return err
		}
		if step.SettleQueued {
			if cancelled, err = s.cancelQueued(ctx, tx, req.pageID, req.psid, cancelHandedBack); err != nil {
				return err
			}
		}
		if step.Plan.op == opNone {
			return nil
		}
		return tx.QueryRowContext(ctx, `INSERT INTO control_ops (page_id, psid, direction, op, target_app_id, actor, status, created_at, reason, metadata)
			VALUES ($1, $2, $3, $4, $5, $6, 'in_flight', $7, $8, $9) RETURNING id`,
			req.pageID, req.psid, string(req.dir), step.Plan.op, step.Plan.target, req.actor, store.Millis(f.Now),
			string(why.Reason), why.Metadata.JSON()).Scan(&opID)
	})
	if err != nil {
		return controlStep{}, Thread{}, 0, err
	}
	for _, id := range cancelled {
		s.failed(id, cancelHandedBack)
	}
	return step, f.Thread, opID, nil
}

// loadControl reads, in tx, what a control decision needs: the thread
// (locked), the operation in flight on it (one a crashed process abandoned
// no longer counts), and, when none is, what req.load adds.
func (s *Service) loadControl(ctx context.Context, tx *store.Tx, req controlRequest) (controlFacts, error) {
	th, err := lockExistingThread(ctx, tx, req.pageID, req.psid)
	if err != nil {
		return controlFacts{}, err
	}
	f := controlFacts{Thread: th, Now: s.now()}
	if _, err := tx.ExecContext(ctx, `UPDATE control_ops SET status = 'failed', error = 'abandoned', finished_at = $3
		WHERE page_id = $1 AND psid = $2 AND status = 'in_flight' AND created_at < $4`,
		req.pageID, req.psid, store.Millis(f.Now), store.Millis(f.Now.Add(-staleOpAfter))); err != nil {
		return f, err
	}
	var dir string
	err = tx.QueryRowContext(ctx, `SELECT id, direction FROM control_ops WHERE page_id = $1 AND psid = $2 AND status = 'in_flight'`,
		req.pageID, req.psid).Scan(&f.InFlight, &dir)
	switch {
	case err == nil: // the decision waits for it, or refuses
		f.InFlightDir = Direction(dir)
		return f, nil
	case !errors.Is(err, sql.ErrNoRows):
		return f, err
	case req.load == nil:
		return f, nil
	}
	return f, req.load(ctx, tx, &f)
}

// callGraph makes the Graph call plan asks for.
func (s *Service) callGraph(ctx context.Context, page config.Page, psid string, plan controlPlan, metadata string) error {
	ref := messenger.PageRef{ID: page.ID, Token: page.AccessToken}
	switch plan.op {
	case opRequest:
		return s.graph.RequestThreadControl(ctx, ref, psid, metadata)
	case opTake:
		return s.graph.TakeThreadControl(ctx, ref, psid, metadata)
	case opPass:
		return s.graph.PassThreadControl(ctx, ref, psid, plan.target, metadata)
	case opRelease:
		return s.graph.ReleaseThreadControl(ctx, ref, psid, metadata)
	}
	return nil
}

// handedBack asks Graph who owns the thread, corrects handoverd's state,
// and reports whether the hand-back is done as far as Facebook shows: the
// agents no longer hold the thread (give back), or the target app does
// (to the bot).
func (s *Service) handedBack(ctx context.Context, pageID, psid string, dir Direction, plan controlPlan) (Outcome, bool) {
	ctx = context.WithoutCancel(ctx)
	owner, err := s.Reconcile(ctx, pageID, psid)
	if err != nil || owner == OwnerAgent {
		return Outcome{}, false
	}
	th, _, err := s.Get(ctx, pageID, psid)
	if err != nil || (dir == ToBot && th.OwnerAppID != plan.target) {
		return Outcome{}, false
	}
	return Outcome{Op: plan.op, Noop: true, Owner: th.Owner}, true
}

// finishOp records an operation's result and, on success, its effect.
// Its transitions record why's reason and metadata.
func (s *Service) finishOp(ctx context.Context, page config.Page, psid string, opID int64, plan controlPlan, actor string,
	why Why, gerr error) (Outcome, error) {
	var out Outcome
	var c committed
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		c, out = committed{}, Outcome{Op: plan.op}
		now := s.now()
		th, err := lockExistingThread(ctx, tx, page.ID, psid)
		if err != nil {
			return err
		}
		status, msg, code, sub := "succeeded", "", 0, 0
		if gerr != nil {
			status, msg = "failed", gerr.Error()
			var ge *messenger.GraphError
			if errors.As(gerr, &ge) {
				code, sub = ge.Code, ge.Subcode
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE control_ops SET status = $2, error = $3, graph_code = $4, graph_subcode = $5, finished_at = $6
			WHERE id = $1`, opID, status, msg, code, sub, store.Millis(now)); err != nil {
			return err
		}
		if gerr != nil {
			out.Owner = th.Owner
			return nil
		}
		var trs []Transition
		switch plan.op {
		case opTake:
			if th.Owner != OwnerAgent {
				th.PendingAppID, th.PendingAt = s.appID, &now // for the wait histogram
				s.transition(&th, OwnerAgent, s.appID, now, CauseTake, actor, &trs)
			}
		case opRequest:
			if th.Owner != OwnerAgent {
				th.PendingAppID, th.PendingAt = s.appID, &now
				out.Pending = true
			}
		case opPass:
			if th.OwnerAppID != plan.target {
				s.transition(&th, ownerOf(plan.target, s.appID, page), plan.target, now, CausePass, actor, &trs)
			}
		case opRelease:
			if th.Owner != OwnerIdle {
				s.transition(&th, OwnerIdle, "", now, CauseRelease, actor, &trs)
			}
		}
		for i := range trs {
			trs[i].Reason, trs[i].Metadata = why.Reason, why.Metadata
		}
		s.refreshExpiry(&th)
		if err := writeThread(ctx, tx, &th, now); err != nil {
			return err
		}
		out.Owner = th.Owner
		return s.saveTransitions(ctx, tx, &th, trs, store.Millis(now), &c)
	})
	if err == nil {
		s.record(c)
	}
	return out, err
}

// awaitOp waits for another caller's in-flight operation and answers as it did.
func (s *Service) awaitOp(ctx context.Context, id int64) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, staleOpAfter)
	defer cancel()
	for {
		var status, op, errText string
		var code, sub int
		var pageID, psid string
		err := s.db.Reader().QueryRowContext(ctx, `SELECT status, op, error, graph_code, graph_subcode, page_id, psid FROM control_ops WHERE id = $1`, id).
			Scan(&status, &op, &errText, &code, &sub, &pageID, &psid)
		if err != nil {
			return Outcome{}, err
		}
		switch status {
		case "succeeded":
			th, _, err := s.Get(ctx, pageID, psid)
			if err != nil {
				return Outcome{}, err
			}
			return Outcome{Op: op, Noop: true, Owner: th.Owner, Pending: th.PendingAppID == s.appID}, nil
		case "failed":
			if code == 0 { // no Graph error code: say what did fail
				return Outcome{}, &apperr.Error{Code: apperr.Upstream, Message: fmt.Sprintf("%s failed: %s", op, errText)}
			}
			return Outcome{}, &apperr.Error{Code: apperr.Upstream, Message: fmt.Sprintf("Facebook refused %s (code %d, subcode %d)", op, code, sub)}
		}
		if err := clock.Sleep(ctx, s.clock, 20*time.Millisecond); err != nil {
			return Outcome{}, apperr.Wrap(err, apperr.Unavailable, "waiting for a concurrent handover timed out")
		}
	}
}

// directionReason is the reason a control operation records when its
// caller gave none.
func directionReason(dir Direction) Reason {
	if dir == ToAgent {
		return ReasonAgentTookOver
	}
	return ReasonAgentResolved
}

// graphFailure turns a Graph error into the API error: 502 with Graph's
// code and subcode in the message.
func graphFailure(op string, err error) error {
	var ge *messenger.GraphError
	if errors.As(err, &ge) {
		msg := fmt.Sprintf("Facebook refused %s: %s (code %d, subcode %d)", op, ge.Message, ge.Code, ge.Subcode)
		switch {
		case ge.Code == 0 && ge.HTTPStatus == 0 && ge.Err != nil:
			// No answer at all (DNS, connection, timeout): Facebook refused nothing.
			msg = fmt.Sprintf("could not reach Facebook for %s: %v", op, ge.Err)
		case ge.Code == 0 && ge.HTTPStatus != 0:
			msg = fmt.Sprintf("Facebook failed %s: HTTP %d (%s)", op, ge.HTTPStatus, ge.Class)
		case ge.Code == 0:
			msg = fmt.Sprintf("Facebook refused %s: %s", op, ge.Class)
		}
		return &apperr.Error{Code: apperr.Upstream, Message: msg, Err: err}
	}
	return apperr.Wrap(err, apperr.Upstream, "%s failed: %v", op, err)
}

// lockExistingThread locks a thread's row; an unknown identity is NotFound.
func lockExistingThread(ctx context.Context, tx *store.Tx, pageID, psid string) (Thread, error) {
	th, err := scanThread(tx.QueryRowContext(ctx, `SELECT `+threadColumns+` FROM threads
		WHERE page_id = $1 AND psid = $2`+tx.Dialect.ForUpdate, pageID, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return Thread{}, apperr.New(apperr.NotFound, "unknown identity %s on page %s", psid, pageID)
	}
	return th, err
}

// AcquireControl gets thread control for the agents: nothing when they own
// the thread or a request of ours is pending; take when handoverd is the
// Page's default app; otherwise request it (the owner must pass).
func (s *Service) AcquireControl(ctx context.Context, pageID, psid, actor string) (Outcome, error) {
	return s.control(ctx, controlRequest{pageID: pageID, psid: psid, dir: ToAgent, actor: actor,
		plan: func(f controlFacts) (controlPlan, error) { return s.acquirePlan(pageID, f), nil }})
}

// acquireControlFor is AcquireControl for a queued agent message m: it
// asks for nothing once m is no longer waiting (a hand-back settled it, or
// it went out) or its intervention is no longer open (closing or closed),
// so a message of a closed intervention never asks for control back. The
// check is made under the thread's lock, as a hand-back decides.
func (s *Service) acquireControlFor(ctx context.Context, m AgentMessage) (Outcome, error) {
	return s.control(ctx, controlRequest{pageID: m.PageID, psid: m.PSID, dir: ToAgent, actor: m.Sender.Label(),
		load: func(ctx context.Context, tx *store.Tx, f *controlFacts) error {
			var status string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM agent_messages WHERE id = $1`, m.ID).Scan(&status); err != nil {
				return err
			}
			if status != SendWaiting {
				return nil
			}
			var err error
			f.MessageWaiting, err = interventionOpen(ctx, tx, m.InterventionID)
			return err
		},
		plan: func(f controlFacts) (controlPlan, error) { return s.acquireForPlan(m.PageID, f), nil }})
}

// acquirePlan is what getting control for the agents needs: nothing when
// they own the thread or a request of ours is pending; take when handoverd
// is the Page's default app; otherwise request it.
func (s *Service) acquirePlan(pageID string, f controlFacts) controlPlan {
	th := f.Thread
	switch {
	case th.Owner == OwnerAgent:
		return controlPlan{op: opNone}
	case th.PendingAppID == s.appID && th.PendingAt != nil && f.Now.Sub(*th.PendingAt) < s.hcfg.ControlTimeout:
		return controlPlan{op: opNone}
	case s.pages[pageID].DefaultApp == config.DefaultAppAgent:
		return controlPlan{op: opTake}
	}
	return controlPlan{op: opRequest}
}

// acquireForPlan is acquirePlan for a queued agent message: nothing once
// the message no longer waits in an open intervention.
func (s *Service) acquireForPlan(pageID string, f controlFacts) controlPlan {
	if !f.MessageWaiting {
		return controlPlan{op: opNone}
	}
	return s.acquirePlan(pageID, f)
}

// PassToBot passes the thread to the bot app (botAppID, or the Page's
// bot_app_id). It refuses while an intervention is open.
func (s *Service) PassToBot(ctx context.Context, pageID, psid, botAppID, actor string) (Outcome, error) {
	page := s.pages[pageID]
	if botAppID == "" {
		botAppID = page.BotAppID
	}
	if botAppID == "" {
		return Outcome{}, apperr.Field("app_id", "app_id is required: page %s has no bot_app_id", pageID)
	}
	return s.control(ctx, controlRequest{pageID: pageID, psid: psid, dir: ToBot, actor: actor,
		load: func(ctx context.Context, tx *store.Tx, f *controlFacts) error {
			var err error
			f.Intervention, err = s.openIntervention(ctx, tx, pageID, psid)
			return err
		},
		plan: func(f controlFacts) (controlPlan, error) { return s.toBotPlan(botAppID, f) }})
}

// toBotPlan is what passing the thread to the bot app botAppID needs:
// nothing when it owns the thread, else a pass; refused while an
// intervention is open or a request of ours for control is pending.
func (s *Service) toBotPlan(botAppID string, f controlFacts) (controlPlan, error) {
	th := f.Thread
	switch {
	case f.Intervention != nil:
		return controlPlan{}, apperr.New(apperr.Conflict, "intervention %d is open on this identity; close it first", f.Intervention.ID)
	case th.OwnerAppID == botAppID:
		return controlPlan{op: opNone}, nil
	case th.PendingAppID == s.appID && th.Owner != OwnerAgent && th.PendingAt != nil && f.Now.Sub(*th.PendingAt) < s.hcfg.ControlTimeout:
		return controlPlan{}, apperr.New(apperr.Conflict, "a handover to the agents is pending for this identity")
	}
	return controlPlan{op: opPass, target: botAppID}, nil
}

// GiveBack ends the agents' hold on a thread: pass to the bot when the bot
// is the Page's default app, otherwise release to idle.
func (s *Service) GiveBack(ctx context.Context, pageID, psid, actor string) (Outcome, error) {
	page := s.pages[pageID]
	return s.control(ctx, controlRequest{pageID: pageID, psid: psid, dir: GiveBack, actor: actor,
		plan: func(f controlFacts) (controlPlan, error) { return giveBackPlan(page, f), nil }})
}

// giveBackPlan is what ending the agents' hold on a thread of page needs:
// nothing when they do not hold it; a pass to the bot when it is the
// Page's default app; otherwise a release.
func giveBackPlan(page config.Page, f controlFacts) controlPlan {
	switch {
	case f.Thread.Owner != OwnerAgent:
		return controlPlan{op: opNone}
	case page.DefaultApp == config.DefaultAppBot && page.BotAppID != "":
		return controlPlan{op: opPass, target: page.BotAppID}
	}
	return controlPlan{op: opRelease}
}

// Reconcile asks Graph who owns the thread and corrects handoverd's state.
// Under Conversation Routing only the owner and the default app see the
// owner's id; otherwise a non-idle thread is known only to be someone else's.
func (s *Service) Reconcile(ctx context.Context, pageID, psid string) (Owner, error) {
	return s.reconcileAs(ctx, pageID, psid, CauseThreadOwner)
}

// reconcileAs is Reconcile recording a correction with cause.
func (s *Service) reconcileAs(ctx context.Context, pageID, psid string, cause Cause) (Owner, error) {
	if s.graph == nil {
		return "", apperr.New(apperr.Unavailable, "no Graph client configured")
	}
	page, ok := s.pages[pageID]
	if !ok {
		return "", apperr.New(apperr.NotFound, "page %s is not configured", pageID)
	}
	to, err := s.graph.ThreadOwner(ctx, s.pageRef(pageID), psid)
	if err != nil {
		return "", graphFailure(messenger.OpThreadOwner, err)
	}
	var owner Owner
	var c committed
	var modeWarning string
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		c, modeWarning = committed{}, ""
		now := s.now()
		th, err := lockExistingThread(ctx, tx, pageID, psid)
		if err != nil {
			return err
		}
		app := to.AppID
		newOwner := ownerOf(app, s.appID, page)
		switch {
		case to.Idle:
			newOwner, app = OwnerIdle, ""
		case app == "" && th.Owner != OwnerAgent && th.Owner != OwnerIdle:
			newOwner, app = th.Owner, th.OwnerAppID // hidden, and not ours: keep what we know
		case app == "":
			newOwner = OwnerOther
		}
		if to.AppID != "" && to.AppID != s.appID {
			// Conversation Routing shows the owner's id only to the owner
			// and the default app: handoverd is the default app.
			before, err := s.routing(ctx, tx, pageID)
			if err != nil {
				return err
			}
			if err := noteGraphDefault(ctx, tx, pageID, s.appID, now); err != nil {
				return err
			}
			if before.Mode != ModeConversationRouting || before.DefaultAppID != s.appID {
				// Newly learnt: say so if the config disagrees.
				after, err := s.routing(ctx, tx, pageID)
				if err != nil {
					return err
				}
				modeWarning = s.disagreement(page, after)
			}
		}
		var trs []Transition
		if newOwner != th.Owner || app != th.OwnerAppID {
			s.transition(&th, newOwner, app, now, cause, "", &trs)
		}
		if !to.Expiration.IsZero() && newOwner != OwnerIdle {
			act := to.Expiration.Add(-s.idleAfter)
			th.ActivityAt = maxTime(th.ActivityAt, act)
		}
		s.refreshExpiry(&th)
		if err := writeThread(ctx, tx, &th, now); err != nil {
			return err
		}
		owner = th.Owner
		return s.saveTransitions(ctx, tx, &th, trs, store.Millis(now), &c)
	})
	if err == nil {
		s.record(c)
		if modeWarning != "" {
			s.log.Warn().Str("page_id", pageID).Msg("page mode: " + modeWarning)
		}
	}
	return owner, err
}
