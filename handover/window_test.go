package handover

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger"
)

func TestReplyWindow(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	type answer struct {
		Reply  Reply
		Reason string
		OK     bool
	}
	response := answer{Reply: Reply{MessagingType: "RESPONSE"}, OK: true}
	humanAgent := answer{Reply: Reply{MessagingType: "MESSAGE_TAG", Tag: "HUMAN_AGENT"}, OK: true}
	tests := []struct {
		name      string
		last      *time.Time
		automated bool
		want      answer
	}{
		{"never wrote", nil, false, answer{Reason: "the customer has not written yet; Messenger allows no reply"}},
		{"never wrote, automated", nil, true, answer{Reason: "the customer has not written yet; Messenger allows no reply"}},
		{"a minute ago", ago(time.Minute), false, response},
		{"exactly 24 h ago", ago(24 * time.Hour), false, response},
		{"exactly 24 h ago, automated", ago(24 * time.Hour), true, response},
		{"25 h ago: the agents' tag", ago(25 * time.Hour), false, humanAgent},
		{"25 h ago, automated", ago(25 * time.Hour), true,
			answer{Reason: "outside Messenger's 24-hour window; automated messages cannot use the HUMAN_AGENT tag"}},
		{"exactly 7 days ago", ago(7 * 24 * time.Hour), false, humanAgent},
		{"8 days ago", ago(8 * 24 * time.Hour), false,
			answer{Reason: "outside Messenger's 7-day human agent window (the customer last wrote 2026-03-02T12:00:00Z)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, reason, ok := ReplyWindow(tt.last, now, tt.automated)
			if diff := cmp.Diff(tt.want, answer{r, reason, ok}); diff != "" {
				t.Errorf("ReplyWindow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudgeSend(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	graph := func(c messenger.ErrorClass, status int) error {
		return &messenger.GraphError{Op: messenger.OpSend, Class: c, HTTPStatus: status}
	}
	unanswered := &messenger.GraphError{Op: messenger.OpSend, Class: messenger.ClassTransient, Err: errors.New("timeout")}
	tests := []struct {
		name       string
		err        error
		reacquired bool
		deadline   time.Time
		want       sendOutcome
	}{
		{"sent", nil, false, now.Add(time.Minute), sendDone},
		{"not the owner: check and act again", graph(messenger.ClassNotOwner, 400), false, now.Add(time.Minute), sendReacquire},
		{"not the owner after re-acquiring", graph(messenger.ClassNotOwner, 400), true, now.Add(time.Minute), sendNotOwner},
		{"no answer: maybe delivered", unanswered, false, now.Add(time.Minute), sendUnanswered},
		{"transient before the deadline", graph(messenger.ClassTransient, 500), false, now.Add(time.Minute), sendRetry},
		{"rate limited before the deadline", graph(messenger.ClassRateLimited, 400), false, now.Add(time.Minute), sendRetry},
		{"transient past the deadline", graph(messenger.ClassTransient, 500), false, now, sendRefused},
		{"outside the window", graph(messenger.ClassOutsideWindow, 400), false, now.Add(time.Minute), sendRefused},
		{"bad request", graph(messenger.ClassBadRequest, 400), false, now.Add(time.Minute), sendRefused},
		{"not a Graph error", errors.New("boom"), false, now.Add(time.Minute), sendRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, judgeSend(tt.err, tt.reacquired, now, tt.deadline)); diff != "" {
				t.Errorf("judgeSend (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSendRequest(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	recent, old := now.Add(-time.Hour), now.Add(-48*time.Hour)
	job := func(msg string, last *time.Time, kind SenderKind) sendJob {
		return sendJob{m: AgentMessage{ID: 7, PSID: "p1", Message: json.RawMessage(msg), Sender: Sender{Kind: kind, Name: "x"}},
			th: Thread{LastCustomerAt: last}}
	}
	type answer struct {
		Req messenger.SendRequest
		Why string
	}
	tests := []struct {
		name string
		job  sendJob
		want answer
	}{
		{"an agent's reply within 24 h", job(`{"text":"hi"}`, &recent, SenderAgent), answer{Req: messenger.SendRequest{PSID: "p1",
			MessagingType: "RESPONSE", Message: map[string]any{"text": "hi", "metadata": "handoverd:agent_message:7"}}}},
		{"its own metadata is kept", job(`{"text":"hi","metadata":"m"}`, &old, SenderAgent), answer{Req: messenger.SendRequest{PSID: "p1",
			MessagingType: "MESSAGE_TAG", Tag: "HUMAN_AGENT", Message: map[string]any{"text": "hi", "metadata": "m"}}}},
		{"a relay bot's after 24 h", job(`{"text":"hi"}`, &old, SenderRelayBot), answer{
			Req: messenger.SendRequest{PSID: "p1", Message: map[string]any{"text": "hi", "metadata": "handoverd:agent_message:7"}},
			Why: "outside Messenger's 24-hour window; automated messages cannot use the HUMAN_AGENT tag"}},
		{"not an object", job(`[1]`, &recent, SenderAgent), answer{Req: messenger.SendRequest{PSID: "p1"}, Why: "message is not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, why := sendRequest(tt.job, now)
			if diff := cmp.Diff(tt.want, answer{req, why}); diff != "" {
				t.Errorf("sendRequest (-want +got):\n%s", diff)
			}
		})
	}
}
