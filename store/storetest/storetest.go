// Package storetest gives tests a fresh, migrated database of each dialect:
// a new SQLite file, and a new PostgreSQL schema in the database named by
// HANDOVERD_TEST_POSTGRES_URL (DefaultPostgresURL when unset). The database
// is created when the server has not got it yet, so a PostgreSQL with only
// its default databases is enough. Each test gets its own file or schema, so
// test runs (and parallel tests) cannot disturb each other.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/handoverd/handoverd/store"
)

// EnvPostgres names the environment variable holding the test PostgreSQL URL.
const EnvPostgres = "HANDOVERD_TEST_POSTGRES_URL"

// DefaultPostgresURL is the test database used when EnvPostgres is unset: a
// local server with user postgres and trust authentication (database test
// is created if missing).
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns the test PostgreSQL URL: EnvPostgres, else
// DefaultPostgresURL ("none" when PostgreSQL is left out on request).
func PostgresURL() string {
	if v := os.Getenv(EnvPostgres); v != "" {
		return v
	}
	return DefaultPostgresURL
}

var (
	pgOnce  sync.Once
	pgError error
)

// ensurePostgres checks once per test binary that the test database can be
// reached, creating it (from the server's postgres database) when the
// server has not got it. Its error is one line naming what is missing.
func ensurePostgres(base string) error {
	pgOnce.Do(func() {
		pgError = prepare(base)
		if pgError != nil {
			fmt.Fprintln(os.Stderr, "storetest:", pgError)
		}
	})
	return pgError
}

func prepare(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("%s=%q is not a URL: %v", EnvPostgres, base, err)
	}
	err = ping(ctx, base)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "3D000" { // invalid_catalog_name: the database does not exist
		name := strings.TrimPrefix(u.Path, "/")
		adm := *u
		adm.Path = "/postgres"
		db, oerr := sql.Open("pgx", adm.String())
		if oerr != nil {
			return oerr
		}
		defer db.Close()
		_, cerr := db.ExecContext(ctx, `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, `""`)+`"`)
		// duplicate_database, or the catalog's unique index when two test
		// binaries create it at the same moment: it exists now.
		if errors.As(cerr, &pe) && (pe.Code == "42P04" || pe.Code == "23505") {
			cerr = nil
		}
		if cerr != nil {
			return fmt.Errorf("PostgreSQL at %s has no database %q and it could not be created: %v", u.Host, name, cerr)
		}
		err = ping(ctx, base)
	}
	if err != nil {
		return fmt.Errorf("PostgreSQL is not reachable at %s (%s=%s): %v — start one (user postgres, trust auth), point %s at one, or set it to none to leave the PostgreSQL variants out",
			u.Host, EnvPostgres, u.Redacted(), err, EnvPostgres)
	}
	return nil
}

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

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
// PostgreSQL is required: HANDOVERD_TEST_POSTGRES_URL, or DefaultPostgresURL
// when unset. Setting it to "none" leaves PostgreSQL out explicitly and says so.
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
	base := PostgresURL()
	if base == "none" {
		t.Fatalf("%s=none, yet this test needs PostgreSQL", EnvPostgres)
	}
	if err := ensurePostgres(base); err != nil {
		t.Fatal(err)
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
