// Package metrics_test checks that docs/metrics.md, the alerting rules and the
// Grafana dashboard agree with the metrics metrics.New registers, and that
// the registry passes the Prometheus metric linter.
package metrics_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/metrics"
)

const docPath = "../docs/metrics.md"

// registeredElsewhere lists the handoverd_ metrics that are documented but
// not created by metrics.New: gauges the server registers with GaugeFunc
// from the shared database, and those the inbox release will add. Each maps
// to its type (and its label names), which docs/metrics.md must match.
var registeredElsewhere = map[string]docEntry{
	"handoverd_handover_requests_pending":         {Type: "gauge"},
	"handoverd_threads":                           {Type: "gauge", Labels: []string{"owner", "page_id"}},
	"handoverd_interventions_open":                {Type: "gauge"},
	"handoverd_agent_sends_waiting":               {Type: "gauge"},
	"handoverd_agent_send_oldest_waiting_seconds": {Type: "gauge"},
	"handoverd_outbox_pending":                    {Type: "gauge"},
	"handoverd_outbox_oldest_age_seconds":         {Type: "gauge"},
	"handoverd_conversations":                     {Type: "gauge", Labels: []string{"status"}},
	"handoverd_inbox_queue_unassigned":            {Type: "gauge"},
	"handoverd_claim_conversations":               {Type: "gauge", Labels: []string{"outcome"}},
	"handoverd_page_mode":                         {Type: "gauge", Labels: []string{"mode", "page_id"}},
	"handoverd_page_config_mismatch":              {Type: "gauge", Labels: []string{"page_id"}},
	"handoverd_reconcile_threads_due":             {Type: "gauge"},
	"handoverd_handoffs_today":                    {Type: "gauge", Labels: []string{"measure", "page_id"}},
	"handoverd_handoffs_today_by_reason":          {Type: "gauge", Labels: []string{"page_id", "reason"}},
	"handoverd_handoff_first_reply_today_seconds": {Type: "gauge", Labels: []string{"page_id", "quantile"}},
	"handoverd_handover_offers_open":              {Type: "gauge"},
	"handoverd_bot_events_pending":                {Type: "gauge"},
}

// labelValuesInDocs are handoverd_-prefixed strings the documentation and
// deploy files may mention that are label values, not metric names.
var labelValuesInDocs = map[string]bool{
	"handoverd_db_sqlite":   true,
	"handoverd_db_postgres": true,
}

// touchAll gives every vector of m one child with a representative label
// set, so that each family appears in Gather. It returns the label values
// used, by metric name and label name.
func touchAll(t *testing.T, m *metrics.Metrics) map[string]map[string]string {
	t.Helper()
	m.WebhookRequests.WithLabelValues("accepted").Inc()
	m.WebhookEvents.WithLabelValues("message", "applied").Inc()
	m.WebhookSignatureFailures.Inc()
	m.WebhookIngestDuration.Observe(0.01)
	m.PageLastWebhook.WithLabelValues("1001").Set(1.7e9)
	m.ThreadTransitions.WithLabelValues("bot", "agent", "pass_thread_control").Inc()
	m.GraphRequests.WithLabelValues("send", "ok").Inc()
	m.GraphDuration.WithLabelValues("send").Observe(0.2)
	m.Handovers.WithLabelValues("to_agent", "ok").Inc()
	m.HandoverControlWait.Observe(1.5)
	m.AgentSends.WithLabelValues("sent").Inc()
	m.InterventionsClosed.WithLabelValues("agent").Inc()
	m.RelayCalls.WithLabelValues("message", "ok").Inc()
	m.RelayLatency.Observe(0.3)
	m.RelayFallbacks.Inc()
	m.RelaySessions.WithLabelValues("started").Inc()
	m.RelayActions.WithLabelValues("message", "done").Inc()
	m.JobAttempts.WithLabelValues("outbox", "ok").Inc()
	m.JobsDue.WithLabelValues("outbox").Set(1)
	m.JobAttemptDuration.WithLabelValues("outbox").Observe(0.1)
	m.Reconciles.WithLabelValues("corrected").Inc()
	m.ReconcileDeferred.Inc()
	m.HTTPRequests.WithLabelValues("/webhooks/messenger", "POST", "200").Inc()
	m.HTTPDuration.WithLabelValues("/webhooks/messenger", "POST").Observe(0.01)

	got := map[string]map[string]string{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "handoverd_") {
			continue
		}
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range metric.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			got[mf.GetName()] = labels
		}
	}
	return got
}

// docEntry is what docs/metrics.md says about one metric.
type docEntry struct {
	Type   string
	Labels []string
	// Values holds, for labels documented with "one of", the allowed values.
	Values map[string][]string
}

var (
	headingRE = regexp.MustCompile("^### `(handoverd_[a-z0-9_]+)`")
	typeRE    = regexp.MustCompile(`^- Type: ([a-z]+)\s*$`)
	labelRE   = regexp.MustCompile("^  - `([a-z_][a-z0-9_]*)`: (.*)$")
	tickRE    = regexp.MustCompile("`([^`]+)`")
	mentionRE = regexp.MustCompile(`handoverd_[a-z0-9_]*[a-z0-9]`)
	fqNameRE  = regexp.MustCompile(`fqName: "([^"]+)"`)
)

// parseDoc reads the metric entries of docs/metrics.md: a "### `name`"
// heading followed by "- Type: t", "- Labels: none" or "- Labels:" with one
// "  - `label`: description" line per label.
func parseDoc(t *testing.T, text string) map[string]docEntry {
	t.Helper()
	entries := map[string]docEntry{}
	var name string
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			name = ""
			if m := headingRE.FindStringSubmatch(line); m != nil {
				name = m[1]
				if _, dup := entries[name]; dup {
					t.Errorf("%s:%d: %s is documented twice", docPath, i+1, name)
				}
				entries[name] = docEntry{Labels: []string{}, Values: map[string][]string{}}
			}
			continue
		}
		if name == "" {
			continue
		}
		e := entries[name]
		if m := typeRE.FindStringSubmatch(line); m != nil {
			e.Type = m[1]
		}
		if m := labelRE.FindStringSubmatch(line); m != nil {
			e.Labels = append(e.Labels, m[1])
			if rest, ok := strings.CutPrefix(m[2], "one of "); ok {
				for _, v := range tickRE.FindAllStringSubmatch(rest, -1) {
					e.Values[m[1]] = append(e.Values[m[1]], v[1])
				}
			}
		}
		entries[name] = e
	}
	for name, e := range entries {
		if e.Type == "" {
			t.Errorf("%s: %s has no \"- Type: ...\" line", docPath, name)
		}
		sort.Strings(e.Labels)
	}
	return entries
}

func readDoc(t *testing.T) map[string]docEntry {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("reading the metrics catalogue: %v", err)
	}
	return parseDoc(t, string(b))
}

// exported gathers m and returns the handoverd_ families with their type and
// sorted label names.
func exported(t *testing.T, m *metrics.Metrics) map[string]docEntry {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]docEntry{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "handoverd_") {
			continue
		}
		labels := []string{}
		if len(mf.GetMetric()) > 0 {
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		sort.Strings(labels)
		out[mf.GetName()] = docEntry{Type: strings.ToLower(mf.GetType().String()), Labels: labels}
	}
	return out
}

// described returns the handoverd_ metric names of every collector field of
// metrics.Metrics, exported or not yet, from their descriptors.
func described(t *testing.T, m *metrics.Metrics) []string {
	t.Helper()
	var names []string
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			sm := fqNameRE.FindStringSubmatch(d.String())
			if sm == nil {
				t.Fatalf("field %s: cannot read the metric name from %s", v.Type().Field(i).Name, d)
			}
			names = append(names, sm[1])
		}
	}
	sort.Strings(names)
	return names
}

// TestTouchCoversEveryMetric guards the other tests: a metric added to
// Metrics but not touched in touchAll would not be gathered, hence not
// checked against the documentation.
func TestTouchCoversEveryMetric(t *testing.T) {
	m := metrics.New()
	touchAll(t, m)
	var gathered []string
	for name := range exported(t, m) {
		gathered = append(gathered, name)
	}
	sort.Strings(gathered)
	want := described(t, m)
	if len(want) == 0 {
		t.Fatal("no handoverd_ collectors found on metrics.Metrics")
	}
	if diff := cmp.Diff(want, gathered); diff != "" {
		t.Errorf("metrics described by metrics.Metrics (-) vs gathered after touchAll (+); give new vectors a child in touchAll:\n%s", diff)
	}
}

// TestEveryMetricIsDocumented fails when a metric registered by metrics.New
// is missing from docs/metrics.md, or documented with another type or
// label set, or touched with a label value outside the documented set.
func TestEveryMetricIsDocumented(t *testing.T) {
	m := metrics.New()
	used := touchAll(t, m)
	doc := readDoc(t)
	got := exported(t, m)
	if len(got) == 0 {
		t.Fatal("no handoverd_ metric gathered")
	}
	for name, e := range got {
		d, ok := doc[name]
		if !ok {
			t.Errorf("%s (%s) is registered but not documented in %s", name, e.Type, docPath)
			continue
		}
		if d.Type != e.Type {
			t.Errorf("%s: documented as %s, registered as %s", name, d.Type, e.Type)
		}
		if diff := cmp.Diff(e.Labels, d.Labels); diff != "" {
			t.Errorf("%s: registered label names (-) vs documented (+):\n%s", name, diff)
		}
		for label, allowed := range d.Values {
			v := used[name][label]
			if !contains(allowed, v) {
				t.Errorf("%s: representative %s=%q is not among the documented values %q", name, label, v, allowed)
			}
		}
	}
}

// TestDocumentsOnlyRealMetrics fails when docs/metrics.md documents a
// handoverd_ metric that metrics.New does not register and that is not on
// the registeredElsewhere list, or documents a listed one wrongly.
func TestDocumentsOnlyRealMetrics(t *testing.T) {
	m := metrics.New()
	touchAll(t, m)
	doc := readDoc(t)
	got := exported(t, m)
	for _, name := range described(t, m) {
		if _, ok := got[name]; !ok {
			got[name] = docEntry{} // registered but not gathered: TestTouchCoversEveryMetric reports it
		}
	}
	for name, d := range doc {
		if _, ok := got[name]; ok {
			continue
		}
		want, ok := registeredElsewhere[name]
		if !ok {
			t.Errorf("%s documents %s, which metrics.New does not register and registeredElsewhere does not list", docPath, name)
			continue
		}
		if want.Labels == nil {
			want.Labels = []string{}
		}
		if diff := cmp.Diff(docEntry{Type: want.Type, Labels: want.Labels}, docEntry{Type: d.Type, Labels: d.Labels}); diff != "" {
			t.Errorf("%s: registeredElsewhere (-) vs documented (+):\n%s", name, diff)
		}
	}
	for name := range registeredElsewhere {
		if _, ok := doc[name]; !ok {
			t.Errorf("%s is in registeredElsewhere but not documented in %s", name, docPath)
		}
		if _, ok := got[name]; ok {
			t.Errorf("%s is registered by metrics.New now; remove it from registeredElsewhere", name)
		}
	}
}

// TestRegistryPassesLint runs the Prometheus metric linter (the one behind
// promtool check metrics) over everything the registry exports.
func TestRegistryPassesLint(t *testing.T) {
	m := metrics.New()
	touchAll(t, m)
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMentionsAreDocumented fails when the catalogue's prose, the alerting
// rules or their tests, or the dashboard name a handoverd_ metric that is
// not documented (e.g. a typo in an expression).
func TestMentionsAreDocumented(t *testing.T) {
	doc := readDoc(t)
	for _, path := range []string{docPath, "../deploy/prometheus/alerts.yml",
		"../deploy/prometheus/alerts_test.yml", "../deploy/grafana/handoverd.json"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		seen := map[string]bool{}
		for _, name := range mentionRE.FindAllString(string(b), -1) {
			if seen[name] || labelValuesInDocs[name] {
				continue
			}
			seen[name] = true
			if _, ok := doc[familyOf(name, doc)]; !ok {
				t.Errorf("%s mentions %s, which %s does not document", path, name, docPath)
			}
		}
	}
}

// familyOf maps a series name (e.g. a histogram's _bucket) to the documented
// family it belongs to, or returns it unchanged.
func familyOf(name string, doc map[string]docEntry) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && doc[base].Type == "histogram" {
			return base
		}
	}
	return name
}

// TestParseDoc pins the documentation format the other tests rely on.
func TestParseDoc(t *testing.T) {
	text := strings.Join([]string{
		"# title",
		"### `handoverd_a_total`",
		"- Type: counter",
		"- Labels:",
		"  - `z`: one of `x`, `y`",
		"  - `b`: free text with `code`",
		"### `handoverd_b` (from the inbox release)",
		"- Type: gauge",
		"- Labels: none",
		"## Alerts",
		"- Type: histogram",
	}, "\n")
	got := parseDoc(t, text)
	want := map[string]docEntry{
		"handoverd_a_total": {Type: "counter", Labels: []string{"b", "z"}, Values: map[string][]string{"z": {"x", "y"}}},
		"handoverd_b":       {Type: "gauge", Labels: []string{}, Values: map[string][]string{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseDoc (-want +got):\n%s", diff)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDashboardCoversEveryMetric fails when a documented handoverd_ metric
// family has no panel on the Grafana dashboard.
func TestDashboardCoversEveryMetric(t *testing.T) {
	doc := readDoc(t)
	b, err := os.ReadFile("../deploy/grafana/handoverd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range mentionRE.FindAllString(tg.Expr, -1) {
				used[familyOf(name, doc)] = true
			}
		}
	}
	var missing []string
	for name := range doc {
		if !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no dashboard panel queries %s", strings.Join(missing, ", "))
	}
}

// TestCountersExistAtZero: rate() and alerts see the closed-interventions
// counter before the first close.
func TestCountersExistAtZero(t *testing.T) {
	m := metrics.New()
	// Counted before anything touches the counter.
	n, err := testutil.GatherAndCount(m.Registry, "handoverd_interventions_closed_total")
	if err != nil || n != 2 {
		t.Errorf("handoverd_interventions_closed_total series at start = %d, %v; want 2 (agent, idle)", n, err)
	}
	for _, reason := range []string{"agent", "idle"} {
		if got := testutil.ToFloat64(m.InterventionsClosed.WithLabelValues(reason)); got != 0 {
			t.Errorf("interventions closed (%s) = %v", reason, got)
		}
	}
}
