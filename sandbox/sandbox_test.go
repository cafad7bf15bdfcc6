package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/sandbox"
)

// TestWalkthroughWorksAsPrinted starts the sandbox, takes the walkthrough it
// prints, and runs every curl line in a shell, as a newcomer would; at each
// step it checks what the newcomer should see.
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
	var env, cmds []string
	for _, line := range joinContinuations(out.String()) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "AGENT="):
			env = append(env, line)
		case strings.HasPrefix(line, "curl ") && !strings.Contains(line, " -N "):
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 12 || len(env) != 1 {
		t.Fatalf("walkthrough has %d curl lines and %d variables, want 12 and 1:\n%s", len(cmds), len(env), out.String())
	}
	run := func(cmd string) string {
		t.Helper()
		b, err := exec.Command("bash", "-c", env[0]+"; "+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, b)
		}
		return string(b)
	}
	// eventually re-runs cmd until its output contains want.
	eventually := func(cmd, want string) string {
		t.Helper()
		var got string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = run(cmd); strings.Contains(got, want) {
				return got
			}
		}
		t.Fatalf("%s\nnever showed %q; last output: %s", cmd, want, got)
		return ""
	}
	owner := func(out string) string {
		var v struct{ Owner string }
		_ = json.Unmarshal([]byte(out), &v)
		return v.Owner
	}

	// 1. The customer writes; the bot answers; the bot owns the thread.
	run(cmds[0])
	eventually(cmds[1], "You said")
	if o := owner(eventually(cmds[2], `"owner"`)); o != "bot" {
		t.Errorf("step 1 owner = %q, want bot", o)
	}
	// 2. The customer asks for a human: handed over to the agents.
	run(cmds[3])
	eventually(cmds[4], `"owner":"agent"`)
	// 3. The agent sees the conversation, replies, and the customer gets it.
	eventually(cmds[5], `"status":"open"`)
	if reply := run(cmds[6]); !strings.Contains(reply, `"message_type":1`) {
		t.Errorf("agent reply answer: %s", reply)
	}
	eventually(cmds[7], "Alice here")
	// 4. Resolving hands the thread back to the bot.
	if res := run(cmds[8]); !strings.Contains(res, `"current_status":"resolved"`) {
		t.Errorf("resolve: %s", res)
	}
	eventually(cmds[9], `"owner":"bot"`)
	// 5. The customer writes again: the bot answers.
	run(cmds[10])
	eventually(cmds[11], `You said: \"Thanks!\"`)
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
