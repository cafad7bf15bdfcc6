package jobs

import (
	"context"
	"time"

	"github.com/handoverd/handoverd/store"
)

// Delivered is the status, and the counters' result, of a webhook
// delivery that succeeded.
const Delivered = "delivered"

// DeliveryResult names a decision's result the way the delivery counters
// and tables do: delivered, retry or failed.
func DeliveryResult(d Decision) string {
	if d.Result == ResultOK {
		return Delivered
	}
	return d.Result
}

// RecordDelivery records decision d, at now, on row id of a webhook
// delivery table (one with next_attempt_at, last_status, last_error and
// finished_at columns), freeing its lease: rescheduled for d.Next on a
// retry, else finished as delivered or failed.
func RecordDelivery(ctx context.Context, db *store.DB, table string, id int64, d Decision, now time.Time) error {
	return db.InTx(ctx, func(tx *store.Tx) error {
		if d.Result == ResultRetry {
			_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET next_attempt_at = $2, last_status = $3, last_error = $4, lease_until = NULL WHERE id = $1`,
				id, store.Millis(d.Next), d.Status, d.Error)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET status = $2, last_status = $3, last_error = $4, finished_at = $5, lease_until = NULL WHERE id = $1`,
			id, DeliveryResult(d), d.Status, d.Error, store.Millis(now))
		return err
	})
}
