package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/handoverd/handoverd/clock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey serialises migrations across PostgreSQL processes.
const migrationLockKey = 7215049102

// Migration is one embedded, forward-only schema change.
type Migration struct {
	// Version is the file's numeric prefix.
	Version int
	// Name is the file name.
	Name string
	// SQL is the file's content.
	SQL string
}

// identityPlaceholder in a migration stands for the dialect's
// auto-incrementing primary key column type: one set of files serves both.
const identityPlaceholder = "{{identity}}"

// Migrations returns the dialect's migrations in order.
func Migrations(dialect string) ([]Migration, error) {
	d, ok := dialects[dialect]
	if !ok {
		return nil, fmt.Errorf("store: unknown dialect %q", dialect)
	}
	dir := "migrations"
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", dialect, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration %s: name must start with a number and _", e.Name())
		}
		b, err := fs.ReadFile(migrations, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: strings.ReplaceAll(string(b), identityPlaceholder, d.Identity)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("store: migrations %s and %s share a version", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Migrate applies every migration not yet applied, each in its own
// transaction together with its bookkeeping row. It is safe to run from
// several processes at once: on PostgreSQL a transaction-scoped advisory
// lock serialises them; on SQLite BEGIN IMMEDIATE does. It returns the names
// of the migrations it applied. The applied_at stamps come from the
// system clock (MigrateWith takes another).
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	return db.MigrateWith(ctx, clock.Real{})
}

// MigrateWith is Migrate with the clock that stamps applied_at.
func (db *DB) MigrateWith(ctx context.Context, clk clock.Clock) ([]string, error) {
	ms, err := Migrations(db.Dialect.Name)
	if err != nil {
		return nil, err
	}
	if err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.lockMigrations(ctx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return nil, fmt.Errorf("store: create schema_migrations: %w", err)
	}
	var applied []string
	for _, m := range ms {
		done := false
		err := db.InTx(ctx, func(tx *Tx) error {
			if err := tx.lockMigrations(ctx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, Millis(clk.Now()))
			done = err == nil
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
		if done {
			applied = append(applied, m.Name)
		}
	}
	return applied, nil
}

func (tx *Tx) lockMigrations(ctx context.Context) error {
	if tx.Dialect.Name != "postgres" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey))
	return err
}
