package inbox

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/store/storetest"
)

// TestEventsStreamInCommitOrder: on PostgreSQL an event can get a smaller
// id yet commit later. The stream must still show it, after the ones that
// committed first, and never skip it.
func TestEventsStreamInCommitOrder(t *testing.T) {
	db := storetest.Postgres(t).Open(t)
	s := &Service{db: db}
	ctx := context.Background()
	insert := `INSERT INTO inbox_events (account_id, event, payload, created_at) VALUES (1, $1, '{}', 0)`
	early, err := db.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := early.ExecContext(ctx, insert, "first id, committed last"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Writer().ExecContext(ctx, insert, "second id, committed first"); err != nil {
		t.Fatal(err)
	}
	read := func(after int64) []string {
		t.Helper()
		if _, err := s.Sequence(ctx); err != nil {
			t.Fatal(err)
		}
		evs, err := s.EventsAfter(ctx, 1, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Event)
		}
		return out
	}
	if diff := cmp.Diff([]string{"second id, committed first"}, read(0)); diff != "" {
		t.Fatalf("before the late commit (-want +got):\n%s", diff)
	}
	if err := early.Commit(); err != nil {
		t.Fatal(err)
	}
	// A client that saw seq 1 resumes after it and gets the late event.
	if diff := cmp.Diff([]string{"first id, committed last"}, read(1)); diff != "" {
		t.Errorf("after the late commit (-want +got):\n%s", diff)
	}
}
