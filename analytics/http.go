package analytics

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// API serves GET /1.0/analytics.
type API struct {
	// Service computes the analytics.
	Service *Service
	// Users authenticates callers.
	Users *auth.Users
}

// Routes registers GET /1.0/analytics.
func (a *API) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, "/1.0/analytics", a.get)
}

// Query is a validated analytics request.
type Query struct {
	// PageID is the Page.
	PageID string
	// From and To are the first and last day (UTC).
	From, To time.Time
	// CSV asks for text/csv instead of JSON.
	CSV bool
}

// ParseQuery checks an analytics request for p: page_id (required, a Page
// of p's client), from and to (YYYY-MM-DD, UTC, inclusive; default the
// last 7 days up to today), format (json or csv; an Accept of text/csv
// also asks for CSV).
func (s *Service) ParseQuery(p auth.Principal, r *http.Request) (Query, error) {
	q := r.URL.Query()
	var out Query
	out.PageID = q.Get("page_id")
	if out.PageID == "" {
		return Query{}, apperr.Field("page_id", "page_id is required")
	}
	page, ok := s.pages[out.PageID]
	if !ok {
		return Query{}, apperr.New(apperr.NotFound, "page %s is not configured", out.PageID)
	}
	if !p.CanActOnClient(page.ClientID) {
		return Query{}, apperr.New(apperr.Forbidden, "page %s belongs to another client", out.PageID)
	}
	today := s.now().UTC()
	out.To = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return Query{}, apperr.Field("to", "to must be a date (YYYY-MM-DD), got %q", v)
		}
		out.To = t
	}
	out.From = out.To.AddDate(0, 0, -6)
	if v := q.Get("from"); v != "" {
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
	switch f := q.Get("format"); f {
	case "csv":
		out.CSV = true
	case "json":
	case "":
		out.CSV = strings.Contains(r.Header.Get("Accept"), "text/csv")
	default:
		return Query{}, apperr.Field("format", "format must be json or csv, got %q", f)
	}
	return out, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	p, err := a.Users.Require(httpapi.BearerToken(r), config.RoleAgent, config.RoleAdmin)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	q, err := a.Service.ParseQuery(p, r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rep, err := a.Service.Compute(r.Context(), q.PageID, q.From, q.To)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if !q.CSV {
		httpapi.WriteJSON(w, http.StatusOK, rep)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="analytics-%s-%s-%s.csv"`, rep.PageID, rep.From, rep.To))
	w.WriteHeader(http.StatusOK)
	_ = WriteCSV(w, rep)
}

// WriteCSV writes a report as CSV: a header, one row per day and a
// "total" row; hand-offs by reason are columns handed_to_agents:<reason>,
// one per reason that occurs, sorted.
func WriteCSV(w interface{ Write([]byte) (int, error) }, rep Report) error {
	var reasons []string
	for k := range rep.Total.HandedToAgentsByReason {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	cw := csv.NewWriter(w)
	head := []string{"date", "conversations", "contained_by_bot", "handed_to_agents"}
	for _, r := range reasons {
		head = append(head, "handed_to_agents:"+r)
	}
	head = append(head, "first_replies", "first_reply_seconds_p50", "first_reply_seconds_p90", "resolved_by_agents", "handed_back_to_bot", "offers_expired")
	if err := cw.Write(head); err != nil {
		return err
	}
	row := func(date string, c Counts) []string {
		out := []string{date, strconv.Itoa(c.Conversations), strconv.Itoa(c.ContainedByBot), strconv.Itoa(c.HandedToAgents)}
		for _, r := range reasons {
			out = append(out, strconv.Itoa(c.HandedToAgentsByReason[r]))
		}
		f := func(v *float64) string {
			if v == nil {
				return ""
			}
			return strconv.FormatFloat(*v, 'f', -1, 64)
		}
		return append(out, strconv.Itoa(c.FirstReplies), f(c.FirstReplySecondsP50), f(c.FirstReplySecondsP90),
			strconv.Itoa(c.ResolvedByAgents), strconv.Itoa(c.HandedBackToBot), strconv.Itoa(c.OffersExpired))
	}
	for _, d := range rep.Days {
		if err := cw.Write(row(d.Date, d.Counts)); err != nil {
			return err
		}
	}
	if err := cw.Write(row("total", rep.Total)); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
