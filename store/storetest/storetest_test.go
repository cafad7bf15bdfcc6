package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

// A server with only its default databases is enough: the test database is
// created from the server's postgres database; a server that is not there
// gives one line naming what is missing.
func TestPrepareCreatesMissingDatabase(t *testing.T) {
	base := PostgresURL()
	if base == "none" {
		t.Fatalf("%s=none, yet this test needs PostgreSQL", EnvPostgres)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "storetest_" + hex.EncodeToString(rnd[:])
	fresh := *u
	fresh.Path = "/" + name
	adm := *u
	adm.Path = "/postgres"
	db, err := sql.Open("pgx", adm.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Cleanup(func() { _, _ = db.Exec(`DROP DATABASE IF EXISTS ` + name) })

	if err := prepare(fresh.String()); err != nil {
		t.Fatalf("prepare on a missing database: %v", err)
	}
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("database %s after prepare: count %d, %v", name, n, err)
	}
	if err := prepare(fresh.String()); err != nil { // already there
		t.Fatalf("prepare again: %v", err)
	}

	gone := *u
	gone.Host = "127.0.0.1:1"
	err = prepare(gone.String())
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL is not reachable at 127.0.0.1:1") || strings.Contains(err.Error(), "\n") {
		t.Errorf("prepare on no server = %v, want one line naming the address", err)
	}
}
