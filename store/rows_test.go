package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		rows  int
		casts []string
		want  string
	}{
		{1, Columns(2), "($1, $2)"},
		{2, Columns(3), "($1, $2, $3), ($4, $5, $6)"},
		{2, []string{"", "BIGINT"}, "($1, CAST($2 AS BIGINT)), ($3, CAST($4 AS BIGINT))"},
	} {
		if diff := cmp.Diff(tc.want, Values(tc.rows, tc.casts...)); diff != "" {
			t.Errorf("Values(%d, %q) (-want +got):\n%s", tc.rows, tc.casts, diff)
		}
	}
}

func TestIn(t *testing.T) {
	if diff := cmp.Diff("($2, $3, $4)", In(2, 3)); diff != "" {
		t.Errorf("In(2, 3) (-want +got):\n%s", diff)
	}
}

func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want [][2]int
	}{
		{0, nil},
		{1, [][2]int{{0, 1}}},
		{6, [][2]int{{0, 4}, {4, 6}}},
		{37, [][2]int{{0, 32}, {32, 36}, {36, 37}}},
		{MaxRows + 1, [][2]int{{0, MaxRows}, {MaxRows, MaxRows + 1}}},
	} {
		var got [][2]int
		_ = Chunks(tc.n, func(from, to int) error { got = append(got, [2]int{from, to}); return nil })
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Chunks(%d) (-want +got):\n%s", tc.n, diff)
		}
	}
}

func TestTxValuesByDialect(t *testing.T) {
	sqlite, pg := &Tx{Dialect: sqliteDialect}, &Tx{Dialect: postgresDialect}
	for _, tc := range []struct {
		got, want string
	}{
		{sqlite.Values(2, "", "BIGINT"), "(?, CAST(? AS BIGINT)), (?, CAST(? AS BIGINT))"},
		{pg.Values(2, "", "BIGINT"), "($1, CAST($2 AS BIGINT)), ($3, CAST($4 AS BIGINT))"},
		{sqlite.In(2, 3), "(?, ?, ?)"},
		{pg.In(2, 3), "($2, $3, $4)"},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}
