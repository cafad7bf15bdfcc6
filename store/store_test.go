package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

func TestDialectsHaveTheSameMigrations(t *testing.T) {
	names := func(d string) []string {
		ms, err := store.Migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	if diff := cmp.Diff(names("sqlite"), names("postgres")); diff != "" {
		t.Errorf("migrations differ between dialects (-sqlite +postgres):\n%s", diff)
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
