// Package store opens handoverd's database — the embedded SQLite default or
// PostgreSQL — applies its forward-only migrations, and runs transactions.
//
// Every package writes one set of SQL in PostgreSQL style ($1 placeholders,
// ON CONFLICT, RETURNING), which modernc.org/sqlite accepts unchanged; the few
// differences live in Dialect. Instants are stored as BIGINT Unix
// milliseconds supplied by the caller's injected clock, never by the database.
//
// SQLite uses one writer connection (BEGIN IMMEDIATE, WAL, synchronous=FULL so
// a committed transaction survives power loss) and a small read-only pool.
// PostgreSQL uses one pool; per-row serialisation comes from SELECT … FOR
// UPDATE, so several handoverd processes can share one database.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect holds the statements that differ between SQLite and PostgreSQL.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// ForUpdate is appended to a SELECT that must lock its rows
	// (" FOR UPDATE" on PostgreSQL; SQLite's single writer needs nothing).
	ForUpdate string
}

var (
	sqliteDialect   = Dialect{Name: "sqlite"}
	postgresDialect = Dialect{Name: "postgres", ForUpdate: " FOR UPDATE"}
)

// DB is an open database.
type DB struct {
	// Dialect describes the backend.
	Dialect Dialect
	write   *sql.DB
	read    *sql.DB

	// On SQLite, statements that transactions run are prepared once on the
	// writer connection and reused (preparing dominated the cost of small
	// transactions). pgx caches prepared statements itself.
	stmts     sync.Map // query → *sql.Stmt
	mu        sync.Mutex
	toPrepare map[string]bool // seen in a transaction, prepared after it
}

// Open connects to the database. driver is "sqlite" (dsn is a file path) or
// "postgres" (dsn is a postgres:// URL). It does not migrate; call Migrate.
func Open(ctx context.Context, driver, dsn string) (*DB, error) {
	switch driver {
	case "sqlite":
		return openSQLite(ctx, dsn)
	case "postgres":
		return openPostgres(ctx, dsn)
	}
	return nil, fmt.Errorf("store: unknown driver %q", driver)
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)
	return &DB{Dialect: sqliteDialect, write: w, read: r}, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("store: postgres URL does not parse")
	}
	q := u.Query()
	if q.Get("application_name") == "" {
		q.Set("application_name", "handoverd")
		u.RawQuery = q.Encode()
	}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect postgres %s: %w", redactURL(u), err)
	}
	return &DB{Dialect: postgresDialect, write: db, read: db}, nil
}

// redactURL drops the password from a URL for error messages.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	c.RawQuery = ""
	return c.String()
}

// Close closes every connection.
func (db *DB) Close() error {
	db.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.write.PingContext(ctx)
}

// Reader returns the pool for read-only queries.
func (db *DB) Reader() *sql.DB { return db.read }

// Writer returns the pool transactions run on (for collectors and tests).
func (db *DB) Writer() *sql.DB { return db.write }

// Tx is a transaction with the backend's dialect at hand.
type Tx struct {
	*sql.Tx
	// Dialect describes the backend.
	Dialect Dialect
	db      *DB
}

// maxAttempts bounds how often InTx retries a transaction the database
// aborted to resolve a conflict (serialization failure, deadlock, busy).
const maxAttempts = 8

// InTx runs fn in a read-write transaction, commits if it returns nil and
// rolls back otherwise. Transactions aborted by the database to resolve a
// conflict are retried from the start, so fn must not have side effects
// outside the transaction.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = db.inTxOnce(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt*attempt) * time.Millisecond):
		}
	}
	return err
}

func (db *DB) inTxOnce(ctx context.Context, fn func(*Tx) error) error {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{Tx: sqlTx, Dialect: db.Dialect, db: db}
	err = fn(tx)
	if err != nil {
		_ = sqlTx.Rollback()
	} else if err = sqlTx.Commit(); err != nil {
		err = fmt.Errorf("store: commit: %w", err)
	}
	db.prepareSeen(ctx)
	return err
}

// prepareSeen prepares, on the now free writer, the statements the last
// transaction ran unprepared.
func (db *DB) prepareSeen(ctx context.Context) {
	if db.Dialect.Name != "sqlite" {
		return
	}
	db.mu.Lock()
	queries := db.toPrepare
	db.toPrepare = nil
	db.mu.Unlock()
	for q := range queries {
		if _, ok := db.stmts.Load(q); ok {
			continue
		}
		if st, err := db.write.PrepareContext(context.WithoutCancel(ctx), q); err == nil {
			if _, loaded := db.stmts.LoadOrStore(q, st); loaded {
				st.Close()
			}
		}
	}
}

// stmt returns the transaction's handle on the prepared statement for
// query, or nil (and notes the query, to prepare it after the transaction).
func (tx *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if tx.db == nil || tx.Dialect.Name != "sqlite" {
		return nil
	}
	if st, ok := tx.db.stmts.Load(query); ok {
		return tx.Tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	tx.db.mu.Lock()
	if tx.db.toPrepare == nil {
		tx.db.toPrepare = map[string]bool{}
	}
	if len(tx.db.toPrepare) < 256 && len(query) < 4096 && !strings.Contains(query, ";") { // not scripts (migrations)
		tx.db.toPrepare[query] = true
	}
	tx.db.mu.Unlock()
	return nil
}

// LockKey takes a lock named key until the transaction ends, so that two
// transactions about the same thing (e.g. a message and a bot's claim on
// it, which may come in either order) run one after the other and the
// second sees the first's writes. On SQLite the single writer already
// serialises every transaction.
func (tx *Tx) LockKey(ctx context.Context, key string) error {
	if tx.Dialect.Name != "postgres" {
		return nil
	}
	_, err := tx.Tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 7215))`, key)
	return err
}

// ExecContext runs a statement in the transaction (prepared once, on SQLite).
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction (prepared once, on SQLite).
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a one-row query in the transaction (prepared once, on SQLite).
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, query, args...)
}

// retryable reports whether err is a conflict the database resolved by
// aborting the transaction.
func retryable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Millis converts t to the BIGINT milliseconds the schema stores.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Time converts stored milliseconds back to a UTC time.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// NullMillis converts an optional instant for storage.
func NullMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// TimePtr converts a nullable stored instant.
func TimePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := Time(n.Int64)
	return &t
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
