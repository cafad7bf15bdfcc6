package soak

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the postgres driver, to create the run's database
)

// proc is one handoverd process, restartable on the same address.
type proc struct {
	bin, cfg, logPath, addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// newProc writes the process's configuration under dir.
func newProc(bin, dir, addr, dbURL, simURL string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	doc := fmt.Sprintf(`listen: %q
database: %q
graph: {url: %q, version: v21.0, timeout: 5s}
app: {id: %q, secret: %q, verify_token: soak-verify}
pages: [{id: %q, access_token: %q, default_app: bot, bot_app_id: %q, client_id: 1}]
users:
  - {name: alice, role: agent, token: %q, client_id: 1}
  - {name: soak-bot, role: bot, token: %q, client_id: 1}
threads: {sweep_every: 5s}
handover: {control_timeout: 20s, work_every: 200ms}
log: {level: warn}
`, addr, dbURL, simURL, ourApp, ourSecret, pageID, ourPageTok, botApp, agentToken, botToken)
	cfg := filepath.Join(dir, "handoverd.yaml")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		return nil, err
	}
	return &proc{bin: bin, cfg: cfg, logPath: filepath.Join(dir, "handoverd.log"), addr: addr}, nil
}

// start starts the process and waits until /readyz answers 200.
func (p *proc) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, "serve", "--config", p.cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("soak: handoverd on %s exited while starting (see %s)", p.addr, p.logPath)
		default:
		}
		if resp, err := client.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("soak: handoverd on %s not ready within a minute (see %s)", p.addr, p.logPath)
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL, 0)
}

// stop asks the process to shut down (SIGTERM), then kills it after 10 s.
func (p *proc) stop() {
	p.signal(syscall.SIGTERM, 10*time.Second)
}

func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// database returns the run's database URL, and for PostgreSQL a function
// dropping the fresh database it created.
func (r *run) database(ctx context.Context) (string, func(), error) {
	if r.o.Backend == "sqlite" {
		path := filepath.Join(r.o.Dir, "handoverd.db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
		return "sqlite://" + path, nil, nil
	}
	admin, err := sql.Open("pgx", r.o.PostgresURL)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	name := fmt.Sprintf("handoverd_soak_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("soak: create database on %s: %w", redact(r.o.PostgresURL), err)
	}
	u, err := url.Parse(r.o.PostgresURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		db, err := sql.Open("pgx", r.o.PostgresURL)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// redact drops a URL's password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
