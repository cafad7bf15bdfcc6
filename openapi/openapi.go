// Package openapi holds handoverd's OpenAPI 3 description of every HTTP
// endpoint (openapi.yaml, embedded in the binary), serves it at
// /openapi.yaml, and lists its operations so tests can hold the document
// and the router to each other.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/handoverd/handoverd/httpapi"
)

//go:embed openapi.yaml
var spec []byte

// etag is a strong validator of the embedded document.
var etag = func() string {
	sum := sha256.Sum256(spec)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// ContentType is the media type the document is served with.
const ContentType = "application/yaml"

// Spec returns a copy of the OpenAPI document (YAML).
func Spec() []byte { return bytes.Clone(spec) }

// Handler serves the document for GET (and HEAD) with an ETag, so clients
// can revalidate cheaply; other methods get 405 in the API's error shape.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpapi.WriteJSON(w, http.StatusMethodNotAllowed, httpapi.ErrorBody{Error: httpapi.ErrorDetail{
				Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path}})
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "openapi.yaml", time.Time{}, bytes.NewReader(spec))
	})
}

// methods are the operation keys of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operations lists every operation in the document as "METHOD /path/{template}"
// (e.g. "GET /1.0/threads/{page_id}/{psid}"), sorted.
func Operations() ([]string, error) {
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("openapi: parse openapi.yaml: %w", err)
	}
	if len(doc.Paths) == 0 {
		return nil, fmt.Errorf("openapi: openapi.yaml has no paths")
	}
	var out []string
	for path, item := range doc.Paths {
		if _, ok := item["$ref"]; ok {
			return nil, fmt.Errorf("openapi: path %s: path item $ref is not supported", path)
		}
		for key := range item {
			if slices.Contains(methods, key) {
				out = append(out, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
