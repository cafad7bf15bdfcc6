package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxRows bounds the rows one multi-row statement carries, well inside
// both backends' limits on bound parameters (SQLite 32,766; PostgreSQL
// 65,535) for the widest table written this way.
const MaxRows = 256

// chunkSizes are the row counts of multi-row statements: a few, so that
// each statement's text recurs and is prepared once and reused like any
// other (parsing a long statement anew each time costs more than running
// it); powers of two, so n rows take one statement per bit of n (every
// statement is a round trip on PostgreSQL).
var chunkSizes = []int{MaxRows, 128, 64, 32, 16, 8, 4, 2, 1}

// Values returns the placeholders of a multi-row VALUES list: rows rows of
// len(casts) columns, numbered from $1. A non-empty casts[i] wraps column
// i's placeholder in CAST(… AS casts[i]), which PostgreSQL needs to type
// the columns of a VALUES list used as a table (SQLite ignores it).
func Values(rows int, casts ...string) string { return ValuesAt(1, rows, casts...) }

// ValuesAt is Values with placeholders numbered from $first (after the
// statement's other parameters).
func ValuesAt(first, rows int, casts ...string) string {
	n := first
	return valueRows(rows, casts, func() string {
		n++
		return "$" + strconv.Itoa(n-1)
	})
}

// In returns the placeholders of an IN list of n values numbered from
// $first: "($first, …)".
func In(first, n int) string { return ValuesAt(first, 1, Columns(n)...) }

// Values is the package's Values in the transaction's dialect. On SQLite
// the placeholders are plain "?", numbered by position: SQLite looks each
// "$N" name up in a list, which costs the square of their number in a
// statement of thousands. So in a statement built with it, every other
// parameter must come before the list, in the text as in the arguments.
func (tx *Tx) Values(rows int, casts ...string) string {
	if tx.Dialect.Name != "sqlite" {
		return Values(rows, casts...)
	}
	return positional(rows, casts)
}

// In is the package's In in the transaction's dialect (see Tx.Values).
func (tx *Tx) In(first, n int) string {
	if tx.Dialect.Name != "sqlite" {
		return In(first, n)
	}
	return positional(1, Columns(n))
}

// positional is Values with "?" placeholders.
func positional(rows int, casts []string) string {
	return valueRows(rows, casts, func() string { return "?" })
}

// valueRows writes rows rows of len(casts) placeholders, each the next
// one next gives, wrapped in its column's CAST if it has one.
func valueRows(rows int, casts []string, next func() string) string {
	var probe strings.Builder
	probe.WriteString(next())
	key := probe.String() + "|" + strconv.Itoa(rows) + "|" + strings.Join(casts, ",")
	if v, ok := valueRowsCache.Load(key); ok {
		return v.(string)
	}
	first := true
	out := buildValueRows(rows, casts, func() string {
		if first {
			first = false
			return probe.String()
		}
		return next()
	})
	if valueRowsCached.Add(1) <= 512 {
		valueRowsCache.Store(key, out)
	}
	return out
}

// valueRowsCache keeps built placeholder lists (at most 512): statements
// use a few shapes (Chunks' sizes), built again for every batch otherwise.
var (
	valueRowsCache  sync.Map
	valueRowsCached atomic.Int64
)

func buildValueRows(rows int, casts []string, next func() string) string {
	var b strings.Builder
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, cast := range casts {
			if c > 0 {
				b.WriteString(", ")
			}
			if cast != "" {
				b.WriteString("CAST(" + next() + " AS " + cast + ")")
			} else {
				b.WriteString(next())
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Columns returns casts for width uncast columns (for Values).
func Columns(width int) []string { return make([]string, width) }

// Chunks calls fn with consecutive [from, to) ranges covering [0, n),
// each of one of a few sizes (at most MaxRows), stopping at the first
// error.
func Chunks(n int, fn func(from, to int) error) error {
	for from := 0; from < n; {
		size := 1
		for _, s := range chunkSizes {
			if s <= n-from {
				size = s
				break
			}
		}
		if err := fn(from, from+size); err != nil {
			return err
		}
		from += size
	}
	return nil
}

// QueryBulk runs a multi-row query built with Chunks' sizes.
func (tx *Tx) QueryBulk(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.QueryContext(ctx, query, args...)
}

// ExecBulk runs a multi-row statement built with Chunks' sizes.
func (tx *Tx) ExecBulk(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.ExecContext(ctx, query, args...)
}

// IDsBulk runs a multi-row statement whose rows are one BIGINT id each
// (an INSERT … RETURNING id) and returns them.
func IDsBulk(ctx context.Context, tx *Tx, query string, args ...any) ([]int64, error) {
	return IDs(ctx, tx, query, args...)
}

// count counts a statement run outside the prepared-statement path.
func (tx *Tx) count() {
	if tx.db != nil {
		tx.db.executed.Add(1)
	}
}

// ReserveIDs hands out n new ids of table's identity column (id), in
// ascending order, as an insert would, so a batch can refer to rows it
// writes later in one statement: on PostgreSQL from the column's
// sequence, on SQLite by moving the table's AUTOINCREMENT counter past
// them (under the single writer), so no later insert reuses them. Ids
// reserved and never written are gaps, as a rolled-back insert leaves.
// table is a name of the caller's own, never input.
func (tx *Tx) ReserveIDs(ctx context.Context, table string, n int) ([]int64, error) {
	if n <= 0 {
		return nil, nil
	}
	if tx.Dialect.Name == "postgres" {
		ids, err := IDs(ctx, tx, `SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)`, table, n)
		if err == nil && len(ids) != n {
			err = fmt.Errorf("store: reserved %d ids of %s, wanted %d", len(ids), table, n)
		}
		slices.Sort(ids)
		return ids, err
	}
	var last int64
	err := tx.QueryRowContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, (SELECT coalesce(max(id), 0) FROM `+table+`)) + $2
		WHERE name = $1 RETURNING seq`, table, n).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) { // the table has never had a row
		err = tx.QueryRowContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2) RETURNING seq`, table, n).Scan(&last)
	}
	if err != nil {
		return nil, fmt.Errorf("store: reserve ids of %s: %w", table, err)
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = last - int64(n) + 1 + int64(i)
	}
	return ids, nil
}
