package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// TestMigration0011KeepsWhatWasThere upgrades a database holding agent
// messages and conversations from before 0011: a relay bot's messages get
// their sender kind and lose the "relay:" prefix on their name (an agent
// whose name merely starts so keeps it), and the conversations the agents
// hold (open, snoozed) become the relay bots' holds.
func TestMigration0011KeepsWhatWasThere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		db := b.OpenUnmigrated(t)
		w := db.Writer()
		ms, err := store.Migrations(db.Dialect.Name)
		if err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := w.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`)
		for _, m := range ms {
			if m.Version >= 11 {
				continue
			}
			exec(m.SQL)
			exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)`, m.Version, m.Name)
		}
		id := func(q string, args ...any) int64 {
			t.Helper()
			var n int64
			if err := w.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}
		inbox := id(`INSERT INTO inboxes (account_id, name, channel_type, page_id, created_at) VALUES (1, 'Page', 'facebook', '1001', 0) RETURNING id`)
		n := 0
		conversation := func(psid, status string) {
			n++
			c := id(`INSERT INTO contacts (account_id, name, created_at, updated_at) VALUES (1, $1, 0, 0) RETURNING id`, "contact "+psid)
			ci := id(`INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, created_at) VALUES ($1, $2, $3, 0) RETURNING id`, c, inbox, fmt.Sprintf("%s.%d", psid, n))
			exec(`INSERT INTO conversations (account_id, inbox_id, contact_id, contact_inbox_id, status, page_id, psid, last_activity_at, created_at, updated_at)
				VALUES (1, $1, $2, $3, $4, $5, $6, 0, 0, 0)`, inbox, c, ci, status, map[bool]string{true: "", false: "1001"}[psid == ""], psid)
		}
		conversation("a", "open")
		conversation("a", "open") // two of one person's: one hold
		conversation("b", "snoozed")
		conversation("c", "resolved")
		conversation("d", "pending")
		conversation("", "open") // an API conversation, nobody on Messenger
		for _, m := range []struct {
			actor     string
			automated int
		}{{"relay:sample", 1}, {"alice", 0}, {"relay:x", 0}} {
			exec(`INSERT INTO agent_messages (page_id, psid, actor, message, status, created_at, deadline_at, automated)
				VALUES ('1001', 'a', $1, '{"text":"hi"}', 'sent', 0, 0, $2)`, m.actor, m.automated)
		}

		applied, err := db.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) == 0 || applied[0] != "0011_one_way.sql" {
			t.Errorf("applied %v, want 0011_one_way.sql first", applied)
		}
		rows := func(q string) [][2]string {
			t.Helper()
			rs, err := db.Reader().QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var out [][2]string
			for rs.Next() {
				var a, b string
				if err := rs.Scan(&a, &b); err != nil {
					t.Fatal(err)
				}
				out = append(out, [2]string{a, b})
			}
			return out
		}
		if diff := cmp.Diff([][2]string{{"sample", "relay_bot"}, {"alice", "agent"}, {"relay:x", "agent"}},
			rows(`SELECT actor, sender_kind FROM agent_messages ORDER BY id`)); diff != "" {
			t.Errorf("agent messages (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][2]string{{"1001/a", "agent"}, {"1001/b", "agent"}},
			rows(`SELECT page_id || '/' || psid, reason FROM relay_holds ORDER BY psid`)); diff != "" {
			t.Errorf("relay holds (-want +got):\n%s", diff)
		}
	})
}
