package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// MaxRows bounds the rows one multi-row statement carries, well inside
// both backends' limits on bound parameters (SQLite 32,766; PostgreSQL
// 65,535) for the widest table written this way.
const MaxRows = 500

// Values returns the placeholders of a multi-row VALUES list: rows rows of
// len(casts) columns, numbered from $1. A non-empty casts[i] wraps column
// i's placeholder in CAST(… AS casts[i]), which PostgreSQL needs to type
// the columns of a VALUES list used as a table (SQLite ignores it).
func Values(rows int, casts ...string) string { return ValuesAt(1, rows, casts...) }

// ValuesAt is Values with placeholders numbered from $first (after the
// statement's other parameters).
func ValuesAt(first, rows int, casts ...string) string {
	var b strings.Builder
	n := first
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, cast := range casts {
			if c > 0 {
				b.WriteString(", ")
			}
			p := "$" + strconv.Itoa(n)
			n++
			if cast != "" {
				p = "CAST(" + p + " AS " + cast + ")"
			}
			b.WriteString(p)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// In returns the placeholders of an IN list of n values numbered from
// $first: "($first, …)".
func In(first, n int) string { return ValuesAt(first, 1, Columns(n)...) }

// Columns returns casts for width uncast columns (for Values).
func Columns(width int) []string { return make([]string, width) }

// Chunks calls fn with consecutive [from, to) ranges of at most MaxRows
// covering [0, n), stopping at the first error.
func Chunks(n int, fn func(from, to int) error) error {
	for from := 0; from < n; from += MaxRows {
		if err := fn(from, min(n, from+MaxRows)); err != nil {
			return err
		}
	}
	return nil
}

// QueryBulk runs a multi-row query. Its text varies with the row count, so
// it is not prepared and cached the way single-row statements are.
func (tx *Tx) QueryBulk(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	tx.count()
	return tx.Tx.QueryContext(ctx, query, args...)
}

// ExecBulk runs a multi-row statement, unprepared (see QueryBulk).
func (tx *Tx) ExecBulk(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tx.count()
	return tx.Tx.ExecContext(ctx, query, args...)
}

func (tx *Tx) count() {
	if tx.db != nil {
		tx.db.executed.Add(1)
	}
}

// IDsBulk runs a multi-row statement whose rows are one BIGINT id each
// (an INSERT … RETURNING id) and returns them.
func IDsBulk(ctx context.Context, tx *Tx, query string, args ...any) ([]int64, error) {
	tx.count()
	return IDs(ctx, tx.Tx, query, args...)
}
