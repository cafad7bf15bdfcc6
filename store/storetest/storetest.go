// Package storetest gives tests a fresh, migrated database of each dialect:
// a new SQLite file, and a new PostgreSQL schema in the database named by
// HANDOVERD_TEST_POSTGRES_URL. Each test gets its own file or schema, so test
// runs (and parallel tests) cannot disturb each other.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/handoverd/handoverd/store"
)

// EnvPostgres names the environment variable holding the test PostgreSQL URL.
const EnvPostgres = "HANDOVERD_TEST_POSTGRES_URL"

// Backend is one database a contract test runs against.
type Backend struct {
	// Name is "sqlite" or "postgres".
	Name string
	// URL is the database setting a handoverd config would carry for it.
	URL string
	// Open opens another migrated connection to the same database (as a
	// second handoverd process would).
	Open func(t testing.TB) *store.DB
	// OpenUnmigrated opens a connection without migrating.
	OpenUnmigrated func(t testing.TB) *store.DB
}

// Each runs fn as a subtest against a fresh database of every dialect.
// PostgreSQL is required: set HANDOVERD_TEST_POSTGRES_URL (the Makefile and
// CI do). Setting it to "none" leaves PostgreSQL out explicitly and says so.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(EnvPostgres) == "none" {
			t.Skip(EnvPostgres + "=none: PostgreSQL variant left out on request")
		}
		fn(t, Postgres(t))
	})
}

// SQLite returns a backend on a new SQLite file in the test's temp dir.
func SQLite(t testing.TB) Backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "handoverd.db")
	b := Backend{Name: "sqlite", URL: "sqlite://" + path}
	b.Open = func(t testing.TB) *store.DB { return open(t, "sqlite", path, true) }
	b.OpenUnmigrated = func(t testing.TB) *store.DB { return open(t, "sqlite", path, false) }
	return b
}

// Postgres returns a backend on a new schema of the test database.
func Postgres(t testing.TB) Backend {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" || base == "none" {
		t.Fatalf("%s is not set: PostgreSQL tests need it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); `make test` sets it", EnvPostgres)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "t_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	b := Backend{Name: "postgres", URL: u.String()}
	b.Open = func(t testing.TB) *store.DB { return open(t, "postgres", u.String(), true) }
	b.OpenUnmigrated = func(t testing.TB) *store.DB { return open(t, "postgres", u.String(), false) }
	return b
}

func open(t testing.TB, driver, dsn string, migrate bool) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	t.Cleanup(func() { db.Close() })
	if !migrate {
		return db
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", driver, err)
	}
	return db
}
