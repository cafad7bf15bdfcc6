package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/sandbox"
)

// TestWalkthroughWorksAsPrinted starts the sandbox, takes the walkthrough it
// prints, and runs every line in a shell, as a newcomer would, once each and
// without retrying: every line must give its answer the first time. Then it
// runs the whole walkthrough again on the same sandbox, as a newcomer trying
// it twice would, and every line must give the same answer again.
func TestWalkthroughWorksAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the walkthrough as printed (apt-get install curl)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Listen: "127.0.0.1:0", SimListen: "127.0.0.1:0", Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var out bytes.Buffer
	if err := sb.Walkthrough(&out); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range joinContinuations(out.String()) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "AGENT=") || strings.HasPrefix(line, "CONV=") || (strings.HasPrefix(line, "curl ") && !strings.Contains(line, " -N ")) {
			lines = append(lines, line)
		}
	}
	if len(lines) != 15 {
		t.Fatalf("walkthrough has %d lines to run, want 15:\n%s", len(lines), out.String())
	}
	// Each line runs in its own shell, as if typed; the variables it sets
	// (AGENT, CONV) carry over to the next lines through a state file.
	state := filepath.Join(t.TempDir(), "vars.sh")
	run := func(line string) string {
		t.Helper()
		script := "[ -f " + state + " ] && . " + state + "\n" + line + "\nrc=$?\n{ declare -p AGENT; declare -p CONV; } > " + state + " 2>/dev/null\nexit $rc\n"
		b, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", line, err, b)
		}
		return string(b)
	}

	first := walk(t, lines, run)
	want := []string{
		"", // AGENT=
		"customer message accepted",
		`customer received "🤖 You said: \"Hi, where is my order?\". Ask for a human any time."`,
		"owner bot",
		"customer message accepted",
		"owner agent",
		"open conversations: 1 (open, thread agent)",
		"", // CONV=
		"outgoing message: Hi, Alice here. Let me look.",
		`customer received "Hi, Alice here. Let me look."`,
		"conversation resolved",
		"settled",
		"owner bot",
		"customer message accepted",
		`customer received "🤖 You said: \"Thanks!\". Ask for a human any time."`,
	}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first run, answers (-want +got):\n%s", diff)
	}
	second := walk(t, lines, run)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second run on the same sandbox answers differently (-first +second):\n%s", diff)
	}
}

// walk runs every line once and returns what each answered, in words.
func walk(t *testing.T, lines []string, run func(string) string) []string {
	t.Helper()
	var answers []string
	for _, line := range lines {
		answers = append(answers, answer(t, line, run(line)))
	}
	return answers
}

// answer reduces a line's output to what the newcomer should read in it.
func answer(t *testing.T, line, out string) string {
	t.Helper()
	var v map[string]any
	_ = json.Unmarshal([]byte(out), &v)
	switch {
	case strings.HasPrefix(line, "AGENT=") || strings.HasPrefix(line, "CONV="):
		return strings.TrimSpace(out)
	case strings.Contains(line, "/customers/42/messages"):
		if mid, _ := v["mid"].(string); mid != "" {
			return "customer message accepted"
		}
	case strings.Contains(line, "/inbox"):
		var msgs []struct{ Text string }
		if err := json.Unmarshal([]byte(out), &msgs); err == nil && len(msgs) == 1 {
			return fmt.Sprintf("customer received %q", msgs[0].Text)
		}
	case strings.Contains(line, "/1.0/threads/"):
		return fmt.Sprintf("owner %v", v["owner"])
	case strings.Contains(line, "conversations?status=open"):
		data, _ := v["data"].(map[string]any)
		list, _ := data["payload"].([]any)
		var parts []string
		for _, c := range list {
			c, _ := c.(map[string]any)
			parts = append(parts, fmt.Sprintf("%v, thread %v", c["status"], c["thread_owner"]))
		}
		return fmt.Sprintf("open conversations: %d (%s)", len(list), strings.Join(parts, "; "))
	case strings.Contains(line, "/messages -d"):
		if v["message_type"] == float64(1) {
			return fmt.Sprintf("outgoing message: %v", v["content"])
		}
	case strings.Contains(line, "toggle_status"):
		payload, _ := v["payload"].(map[string]any)
		if payload["current_status"] == "resolved" {
			return "conversation resolved"
		}
	case strings.Contains(line, "/_sim/settle"):
		if strings.TrimSpace(out) == "{}" {
			return "settled"
		}
	}
	return "unexpected: " + strings.TrimSpace(out)
}

// joinContinuations joins shell lines ending in a backslash.
func joinContinuations(text string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " "), "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// TestDemoBotHandsOverABrandNewCustomer: a customer whose very first message
// asks for a human reaches the agents every time, although the bot's
// handover call can arrive before handoverd has recorded the customer.
func TestDemoBotHandsOverABrandNewCustomer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Listen: "127.0.0.1:0", SimListen: "127.0.0.1:0", Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for i := 0; i < 8; i++ {
		psid := fmt.Sprintf("77%02d", i)
		resp, err := http.Post(sb.SimURL+"/_sim/pages/"+sandbox.PageID+"/customers/"+psid+"/messages?wait=true", "application/json",
			strings.NewReader(`{"text":"I want to talk to a human"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodGet, sb.URL+"/1.0/threads/"+sandbox.PageID+"/"+psid, nil)
		req.Header.Set("Authorization", "Bearer "+sandbox.AgentToken)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Owner string }
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if v.Owner != "agent" {
			t.Errorf("customer %s: owner after asking for a human = %q, want agent", psid, v.Owner)
		}
	}
}

// TestTemporarySandboxLeavesNothingBehind: a sandbox without --dir keeps
// its SQLite file in a temporary folder, removed when it stops (Ctrl-C).
func TestTemporarySandboxLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Listen: "127.0.0.1:0", SimListen: "127.0.0.1:0", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := sb.Walkthrough(&out); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(out.String(), "(SQLite: ")
	dbPath, _, _ := strings.Cut(rest, ")")
	dir := filepath.Dir(dbPath)
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("sandbox folder %q while running: %v", dir, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("sandbox folder %s still there after stopping (%v)", dir, err)
		_ = os.RemoveAll(dir)
	}
}
