package analytics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/handoverd/handoverd/analytics"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// BenchmarkCompute measures a day's analytics of a Page with 10,000
// conversations (a quarter handed to the agents, who reply and hand back)
// in its history, on both databases.
func BenchmarkCompute(b *testing.B) {
	for _, bk := range []func(testing.TB) storetest.Backend{storetest.SQLite, storetest.Postgres} {
		be := bk(b)
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
			seed(b, db, day, 10000)
			s := analytics.New(analytics.Options{DB: db, Pages: []config.Page{{ID: "1001", ClientID: 1}}, Now: func() time.Time { return day.Add(48 * time.Hour) }})
			b.ResetTimer()
			for b.Loop() {
				rep, err := s.Compute(context.Background(), "1001", day, day)
				if err != nil || rep.Total.Conversations != 10000 {
					b.Fatalf("%+v %v", rep.Total, err)
				}
			}
		})
	}
}

// seed writes n conversations' transitions (and the agents' replies).
func seed(b *testing.B, db *store.DB, day time.Time, n int) {
	b.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *store.Tx) error {
		for i := range n {
			psid := fmt.Sprintf("%06d", i)
			at := store.Millis(day.Add(time.Duration(i) * 8 * time.Second))
			rows := [][]any{{"idle", "bot", "customer_message", at}}
			if i%4 == 0 {
				rows = append(rows, []any{"bot", "agent", "pass_thread_control", at + 60000}, []any{"agent", "bot", "pass_thread_control", at + 600000})
				if _, err := tx.ExecContext(ctx, `INSERT INTO agent_messages (page_id, psid, actor, message, status, created_at, deadline_at, finished_at)
					VALUES ('1001', $1, 'alice', '{}', 'sent', $2, $2, $2)`, psid, at+120000); err != nil {
					return err
				}
			}
			rows = append(rows, []any{"bot", "idle", "expired", at + 86400000})
			for _, r := range rows {
				if _, err := tx.ExecContext(ctx, `INSERT INTO thread_transitions (page_id, psid, at, from_owner, to_owner, cause, recorded_at)
					VALUES ('1001', $1, $2, $3, $4, $5, $2)`, psid, r[3], r[0], r[1], r[2]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
