package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/handoverd/handoverd/openapi"
)

// load parses the embedded document with the validator library.
func load(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Spec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPIDocumentValidates: the document is a valid OpenAPI 3.0
// document, examples included.
func TestOpenAPIDocumentValidates(t *testing.T) {
	doc := load(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	err := doc.Validate(context.Background(),
		openapi3.EnableExamplesValidation(),
		openapi3.EnableSchemaFormatValidation(),
		openapi3.EnableSchemaPatternValidation(),
		openapi3.EnableSchemaDefaultsValidation(),
		openapi3.EnableMultiError())
	if err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document:\n%v", err)
	}
	if len(doc.Servers) == 0 || doc.Servers[0].URL != "http://127.0.0.1:8080" {
		t.Errorf("servers = %+v, want http://127.0.0.1:8080 first", doc.Servers)
	}
	for _, name := range []string{"bearerAuth", "accessToken", "metaSignature"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s is missing", name)
		}
	}
	for _, name := range []string{"ThreadView", "TransitionView", "InterventionView", "AgentMessageView", "EngageStatus", "ErrorBody", "WebhookEnvelope"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("schema %s is missing", name)
		}
	}
}

// operation is one operation of the document with its name.
type operation struct {
	name string // "METHOD /path"
	op   *openapi3.Operation
}

func operations(doc *openapi3.T) []operation {
	var out []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			out = append(out, operation{method + " " + path, op})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// examples returns a media type's or parameter's examples by name.
func examples(example any, named openapi3.Examples) map[string]any {
	out := map[string]any{}
	if example != nil {
		out["example"] = example
	}
	for name, ref := range named {
		if ref != nil && ref.Value != nil {
			out[name] = ref.Value.Value
		}
	}
	return out
}

// formats makes VisitJSON check the string formats the document uses.
var formats = []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()}

// TestOpenAPIExamplesValidate checks every example in the document against
// its schema — parameters, request bodies, responses and component schemas
// — independently of the loader's own example validation, and that every
// request body and every JSON response has at least one.
func TestOpenAPIExamplesValidate(t *testing.T) {
	doc := load(t)
	checked := 0
	check := func(where string, schema *openapi3.SchemaRef, value any, opts ...openapi3.SchemaValidationOption) {
		t.Helper()
		if schema == nil || schema.Value == nil {
			t.Errorf("%s: example without a schema", where)
			return
		}
		checked++
		if err := schema.Value.VisitJSON(value, append(opts, formats...)...); err != nil {
			b, _ := json.Marshal(value)
			t.Errorf("%s: example does not match its schema: %v\nexample: %s", where, err, b)
		}
	}
	for _, o := range operations(doc) {
		for _, p := range o.op.Parameters {
			for name, v := range examples(p.Value.Example, p.Value.Examples) {
				check(fmt.Sprintf("%s parameter %s (%s)", o.name, p.Value.Name, name), p.Value.Schema, v, openapi3.VisitAsRequest())
			}
		}
		if rb := o.op.RequestBody; rb != nil {
			for ct, mt := range rb.Value.Content {
				ex := examples(mt.Example, mt.Examples)
				if len(ex) == 0 {
					t.Errorf("%s request body %s has no example", o.name, ct)
				}
				for name, v := range ex {
					check(fmt.Sprintf("%s request body %s (%s)", o.name, ct, name), mt.Schema, v, openapi3.VisitAsRequest())
				}
			}
		}
		for status, resp := range o.op.Responses.Map() {
			for ct, mt := range resp.Value.Content {
				ex := examples(mt.Example, mt.Examples)
				if len(ex) == 0 && (strings.HasSuffix(ct, "json") || strings.HasPrefix(status, "2")) {
					t.Errorf("%s response %s %s has no example", o.name, status, ct)
				}
				for name, v := range ex {
					check(fmt.Sprintf("%s response %s %s (%s)", o.name, status, ct, name), mt.Schema, v, openapi3.VisitAsResponse())
				}
			}
		}
	}
	for name, s := range doc.Components.Schemas {
		if s.Value.Example != nil {
			check("schema "+name, s, s.Value.Example)
		}
		for prop, ps := range s.Value.Properties {
			if ps.Value != nil && ps.Value.Example != nil {
				check("schema "+name+"."+prop, ps, ps.Value.Example)
			}
		}
	}
	// A sanity floor: the walk must have found the document's examples.
	if checked < 60 {
		t.Errorf("checked %d examples; the walk is missing some", checked)
	}
}

// TestOpenAPIExamplesCatchMistakes shows the example check is not vacuous:
// a wrong example fails against the same schemas.
func TestOpenAPIExamplesCatchMistakes(t *testing.T) {
	doc := load(t)
	bad := map[string]any{
		"ThreadView":          map[string]any{"page_id": "1001", "psid": "1", "owner": "robot", "owner_app_id": "", "expires_at": nil, "updated_at": "2026-11-02T08:00:00Z", "history": []any{}},
		"EngageStatus":        map[string]any{"status": "200", "message": "Success"},
		"ErrorBody":           map[string]any{"error": map[string]any{"message": "no code"}},
		"AgentMessageView":    map[string]any{"id": 1, "intervention_id": 1, "status": "sent", "message": "text", "created_at": "2026-11-02T08:00:00Z", "deadline_at": "2026-11-02T08:00:00Z", "finished_at": nil},
		"InterventionView":    map[string]any{"id": 1, "page_id": "1001", "identity_foreign_id": "7", "status": "open", "opened_by": "a", "opened_at": "yesterday", "last_activity_at": "2026-11-02T08:00:00Z", "closed_at": nil},
		"AgentMessageRequest": map[string]any{"text": "both", "message": map[string]any{"text": "both"}},
		"WebhookEnvelope":     map[string]any{"object": "page", "entry": []any{map[string]any{"time": 1}}},
	}
	for name, v := range bad {
		s := doc.Components.Schemas[name]
		if s == nil {
			t.Errorf("schema %s is missing", name)
			continue
		}
		if err := s.Value.VisitJSON(v, formats...); err == nil {
			t.Errorf("schema %s accepts the wrong value %v", name, v)
		}
	}
}

// TestOpenAPIOperations: Operations lists exactly the operations the
// validator library sees, and every operation is described: an
// operationId, a summary, a declared tag, a 2xx response.
func TestOpenAPIOperations(t *testing.T) {
	doc := load(t)
	got, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	ids := map[string]string{}
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
	}
	for _, o := range operations(doc) {
		want = append(want, o.name)
		op := o.op
		if op.OperationID == "" {
			t.Errorf("%s has no operationId", o.name)
		} else if prev, dup := ids[op.OperationID]; dup {
			t.Errorf("%s and %s share operationId %s", prev, o.name, op.OperationID)
		}
		ids[op.OperationID] = o.name
		if op.Summary == "" {
			t.Errorf("%s has no summary", o.name)
		}
		if len(op.Tags) == 0 {
			t.Errorf("%s has no tag", o.name)
		}
		for _, tag := range op.Tags {
			if !declared[tag] {
				t.Errorf("%s: tag %s is not declared", o.name, tag)
			}
		}
		ok := false
		for status := range op.Responses.Map() {
			ok = ok || strings.HasPrefix(status, "2")
		}
		if !ok {
			t.Errorf("%s has no 2xx response", o.name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Operations() = %q\nthe document has %q", got, want)
	}
	for _, must := range []string{"GET /openapi.yaml", "GET /metrics", "POST /webhooks/messenger", "GET /1.0/threads/{page_id}/{psid}"} {
		if !slices.Contains(got, must) {
			t.Errorf("Operations() lacks %s", must)
		}
	}
}

// TestOpenAPIHandler serves the document as YAML with an ETag.
func TestOpenAPIHandler(t *testing.T) {
	srv := httptest.NewServer(openapi.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body != string(openapi.Spec()) {
		t.Error("GET body is not the embedded document")
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/openapi.yaml", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", resp.StatusCode)
	}

	resp, err = http.Post(srv.URL+"/openapi.yaml", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b := readAll(t, resp)
	var e struct {
		Error struct{ Code, Message string }
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || json.Unmarshal([]byte(b), &e) != nil || e.Error.Code != "method_not_allowed" {
		t.Errorf("POST = %d %s, want 405 in the error shape", resp.StatusCode, b)
	}

	// Spec returns a copy: changing it changes nothing served.
	s := openapi.Spec()
	s[0] = '#'
	if openapi.Spec()[0] == '#' {
		t.Error("Spec returns the embedded bytes themselves")
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
