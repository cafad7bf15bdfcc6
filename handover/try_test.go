package handover

import (
	"context"

	"github.com/handoverd/handoverd/jobs"
)

// sendOne claims and sends message id, as one pass of the sender would,
// and reports whether it was sent.
func (s *Service) sendOne(ctx context.Context, id int64) (bool, error) {
	result, err := jobs.Try(ctx, s.runner, s.sends, id)
	return result == jobs.ResultOK, err
}
