package sandbox_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/sandbox"
)

// TestWalkthroughStartsWithTheConsole checks the sandbox prints the
// console's URL and a token first, and that the token signs in there.
func TestWalkthroughStartsWithTheConsole(t *testing.T) {
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
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 2 || !strings.HasSuffix(lines[0], " "+sb.URL+"/") || !strings.HasSuffix(lines[1], " "+sandbox.AgentToken) {
		t.Fatalf("the walkthrough does not start with the console's URL and token:\n%s", out.String())
	}
	resp, err := http.Get(sb.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`id="signin-form"`)) {
		t.Errorf("GET / = %d, not the console's sign-in page", resp.StatusCode)
	}
	resp, err = http.Post(sb.URL+"/console/session", "application/json", strings.NewReader(`{"token":"`+sandbox.AgentToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signing in with the printed token = %d", resp.StatusCode)
	}
}
