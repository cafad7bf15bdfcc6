package analytics

import (
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
)

// Query is a validated analytics request.
type Query struct {
	// PageID is the Page.
	PageID string
	// From and To are the first and last day (UTC).
	From, To time.Time
}

// ParseQuery checks an analytics request for p: pageID (page_id:
// required, a Page of p's client), from and to (YYYY-MM-DD, UTC,
// inclusive; default the last 7 days up to today).
func (s *Service) ParseQuery(p auth.Principal, pageID, from, to string) (Query, error) {
	var out Query
	out.PageID = pageID
	if out.PageID == "" {
		return Query{}, apperr.Field("page_id", "page_id is required")
	}
	if _, err := p.Page(s.pages, out.PageID); err != nil {
		return Query{}, err
	}
	today := s.now().UTC()
	out.To = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	if v := to; v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return Query{}, apperr.Field("to", "to must be a date (YYYY-MM-DD), got %q", v)
		}
		out.To = t
	}
	out.From = out.To.AddDate(0, 0, -6)
	if v := from; v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return Query{}, apperr.Field("from", "from must be a date (YYYY-MM-DD), got %q", v)
		}
		out.From = t
	}
	switch {
	case out.To.Before(out.From):
		return Query{}, apperr.Field("to", "to (%s) is before from (%s)", out.To.Format(time.DateOnly), out.From.Format(time.DateOnly))
	case out.To.Sub(out.From) >= MaxDays*24*time.Hour:
		return Query{}, apperr.Field("to", "a range covers at most %d days", MaxDays)
	}
	return out, nil
}
