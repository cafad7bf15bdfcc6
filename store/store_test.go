package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

func TestMigrationsExpandForEachDialect(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		ms, err := store.Migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s: no migrations", d)
		}
		for i, m := range ms {
			if m.Version != i+1 {
				t.Errorf("%s: migration %s has version %d, want %d (no gaps)", d, m.Name, m.Version, i+1)
			}
			if strings.Contains(m.SQL, "{{") {
				t.Errorf("%s: %s keeps a placeholder", d, m.Name)
			}
		}
	}
	if _, err := store.Migrations("mysql"); err == nil {
		t.Error("an unknown dialect has migrations")
	}
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t) // migrated once
		again, err := db.Migrate(context.Background())
		if err != nil || len(again) != 0 {
			t.Fatalf("second Migrate applied %v, %v; want nothing", again, err)
		}
		// Several processes starting at once on a fresh schema.
		fresh := storetestFresh(t, b)
		var wg sync.WaitGroup
		applied := make([][]string, 3)
		errs := make([]error, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				applied[i], errs[i] = fresh[i].Migrate(context.Background())
			}()
		}
		wg.Wait()
		total := 0
		for i := range 3 {
			if errs[i] != nil {
				t.Fatalf("concurrent Migrate: %v", errs[i])
			}
			total += len(applied[i])
		}
		ms, _ := store.Migrations(b.Name)
		if total != len(ms) {
			t.Errorf("migrations applied %d times in all, want %d (each once)", total, len(ms))
		}
	})
}

// storetestFresh opens three unmigrated connections to a fresh database of b's kind.
func storetestFresh(t *testing.T, b storetest.Backend) []*store.DB {
	t.Helper()
	nb := storetest.SQLite(t)
	if b.Name == "postgres" {
		nb = storetest.Postgres(t)
	}
	return []*store.DB{nb.OpenUnmigrated(t), nb.OpenUnmigrated(t), nb.OpenUnmigrated(t)}
}

func TestTxRollsBackOnError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		boom := context.Canceled
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO page_app_roles (page_id, app_roles, event_at, updated_at) VALUES ('1', '{}', 1, 1)`); err != nil {
				return err
			}
			return boom
		})
		if err != boom {
			t.Fatalf("InTx = %v, want the callback's error", err)
		}
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM page_app_roles`).Scan(&n); err != nil || n != 0 {
			t.Errorf("rows after rollback = %d, %v; want 0", n, err)
		}
	})
}

func TestReserveIDsAreNeverHandedOutAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		insert := func(tx *store.Tx, id any) (int64, error) {
			var got int64
			err := tx.QueryRowContext(ctx, `INSERT INTO agents (id, name) VALUES (coalesce($1, `+nextAgentID(b.Name)+`), $2) RETURNING id`,
				id, fmt.Sprintf("agent-%v-%d", id, time.Now().UnixNano())).Scan(&got)
			return got, err
		}
		var first, reserved []int64
		var after int64
		err := db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if first, err = tx.ReserveIDs(ctx, "agents", 3); err != nil { // a table without rows yet
				return err
			}
			if reserved, err = tx.ReserveIDs(ctx, "agents", 4); err != nil {
				return err
			}
			if after, err = insert(tx, nil); err != nil { // an ordinary insert skips the reserved ids
				return err
			}
			for _, id := range reserved { // the reserved ids can be written
				if _, err := insert(tx, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 3 || len(reserved) != 4 {
			t.Fatalf("reserved %v and %v, want 3 and 4 ids", first, reserved)
		}
		all := append(append([]int64{}, first...), reserved...)
		for i := 1; i < len(all); i++ {
			if all[i] <= all[i-1] {
				t.Errorf("reserved ids %v are not ascending", all)
			}
		}
		if after <= all[len(all)-1] {
			t.Errorf("an insert after reserving got id %d, want one above the reserved %v", after, all)
		}
	})
}

// nextAgentID is the agents table's own next id, in b's dialect.
func nextAgentID(dialect string) string {
	if dialect == "postgres" {
		return `nextval(pg_get_serial_sequence('agents', 'id'))`
	}
	return `NULL`
}

func TestDeferredWritesRunBeforeTheirTablesAreNamedAndAtCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		var seen []int
		err := db.InTx(ctx, func(tx *store.Tx) error {
			tx.Defer([]string{"page_app_roles"}, func(ctx context.Context) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO page_app_roles (page_id, app_roles, event_at, updated_at) VALUES ('1', '{}', 1, 1)`)
				return err
			})
			var n int
			// A statement that does not name the table leaves the write held.
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM agents`).Scan(&n); err != nil {
				return err
			}
			// One that does sees it.
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM page_app_roles`).Scan(&n); err != nil {
				return err
			}
			seen = append(seen, n)
			tx.Defer([]string{"page_app_roles"}, func(ctx context.Context) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO page_app_roles (page_id, app_roles, event_at, updated_at) VALUES ('2', '{}', 1, 1)`)
				return err
			})
			return nil // the second is written at commit
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM page_app_roles`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{1}, seen); diff != "" || n != 2 {
			t.Errorf("rows seen in the transaction (-want +got):\n%s; rows after commit = %d, want 2", diff, n)
		}

		// A deferred write that fails fails the transaction, and nothing commits.
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO page_app_roles (page_id, app_roles, event_at, updated_at) VALUES ('3', '{}', 1, 1)`); err != nil {
				return err
			}
			tx.Defer([]string{"page_app_roles"}, func(context.Context) error { return boom })
			var k int
			_ = tx.QueryRowContext(ctx, `SELECT count(*) FROM page_app_roles`).Scan(&k)
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want the deferred write's error", err)
		}
		if err := db.Reader().QueryRow(`SELECT count(*) FROM page_app_roles`).Scan(&n); err != nil || n != 2 {
			t.Errorf("rows after the failed transaction = %d, %v; want 2", n, err)
		}
	})
}
