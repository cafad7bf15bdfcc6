package api

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/handoverd/handoverd/analytics"
	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
)

// getAnalytics serves GET /1.0/analytics (agents and admins): page_id,
// from and to (see analytics.Service.ParseQuery), format json or csv (an
// Accept of text/csv also asks for CSV).
func (a *API) getAnalytics(w http.ResponseWriter, r *http.Request) {
	p, err := a.Users.Require(httpapi.BearerToken(r), config.RoleAgent, config.RoleAdmin)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v := r.URL.Query()
	q, err := a.Analytics.ParseQuery(p, v.Get("page_id"), v.Get("from"), v.Get("to"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	asCSV, err := wantsCSV(v.Get("format"), r.Header.Get("Accept"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rep, err := a.Analytics.Compute(r.Context(), q.PageID, q.From, q.To)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if !asCSV {
		httpapi.WriteJSON(w, http.StatusOK, rep)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="analytics-%s-%s-%s.csv"`, rep.PageID, rep.From, rep.To))
	w.WriteHeader(http.StatusOK)
	_ = WriteCSV(w, rep)
}

// wantsCSV reads the format parameter (json or csv; when absent, an Accept
// of text/csv asks for CSV).
func wantsCSV(format, accept string) (bool, error) {
	switch format {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return strings.Contains(accept, "text/csv"), nil
	}
	return false, apperr.Field("format", "format must be json or csv, got %q", format)
}

// WriteCSV writes a report as CSV: a header, one row per day and a
// "total" row; hand-offs by reason are columns handed_to_agents:<reason>,
// one per reason that occurs, sorted.
func WriteCSV(w io.Writer, rep analytics.Report) error {
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
	row := func(date string, c analytics.Counts) []string {
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
