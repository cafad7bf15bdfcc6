package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

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
