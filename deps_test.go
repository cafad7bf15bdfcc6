package handoverd_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const module = "github.com/handoverd/handoverd"

// moduleImports maps every package of the module (by its path in the
// module, "." for the root) to the module packages its non-test files
// import.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	imports := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if _, ok := imports[pkg]; !ok {
			imports[pkg] = nil
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, module+"/"); ok {
				imports[pkg] = append(imports[pkg], rest)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imports
}

// deps is every module package pkg depends on, directly or not (what
// `go list -deps` lists of the module), sorted.
func deps(imports map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range imports[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// TestFactsFlowOneWay enforces the one-way flow: thread control (handover)
// produces facts, the relay bots consume them first and the inbox after
// them (handover.Consumers). No package depends on a package that
// consumes its facts: handover knows neither consumer, the relay bots do
// not need the inbox (to learn a conversation's status or anything else),
// and the inbox does not call the relay bots. The job runner and the
// clock, which every queue uses, depend on none of them.
func TestFactsFlowOneWay(t *testing.T) {
	imports := moduleImports(t)
	forbidden := map[string][]string{
		"handover": {"inbox", "relaybot"},
		"relaybot": {"inbox"},
		"inbox":    {"relaybot"},
		// The job runner and the clock serve every queue, so they know none.
		"jobs":  {"handover", "inbox", "relaybot"},
		"clock": {"handover", "inbox", "relaybot", "jobs", "store"},
	}
	// The walk sees through packages: the server wires all three.
	for _, want := range []string{"handover", "inbox", "relaybot"} {
		if !contains(deps(imports, "server"), want) {
			t.Fatalf("server does not depend on %s: the import walk is broken (server's deps: %v)", want, deps(imports, "server"))
		}
	}
	got := map[string][]string{}
	for pkg, bad := range forbidden {
		if _, ok := imports[pkg]; !ok {
			t.Fatalf("package %s not found", pkg)
		}
		got[pkg] = []string{}
		for _, d := range deps(imports, pkg) {
			if contains(bad, d) {
				got[pkg] = append(got[pkg], d)
			}
		}
	}
	want := map[string][]string{"handover": {}, "relaybot": {}, "inbox": {}, "jobs": {}, "clock": {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packages depending on a consumer of their facts (-want +got):\n%s", diff)
	}
}

// TestChatAdaptersOverServices: an adapter (the HTTP face of one external
// protocol) imports the service it is thin over and never the store (no
// SQL in a handler); no service depends on an adapter, and only the
// server wires them. The userlike package is both the protocol's wire
// format, which the relay runtime (relaybot) and the config's bot settings
// use, and its events endpoint, which runs over an interface relaybot
// satisfies: it depends on neither relaybot, the inbox, thread control nor
// the store.
func TestChatAdaptersOverServices(t *testing.T) {
	imports := moduleImports(t)
	noDeps := map[string][]string{ // not even through another package
		"handover": {"chatwoot"},
		"inbox":    {"chatwoot"},
		"relaybot": {"chatwoot"},
		"userlike": {"relaybot", "inbox", "handover", "store"},
	}
	noImports := map[string][]string{ // not directly
		"handover": {"userlike"},
		"inbox":    {"userlike"},
		"chatwoot": {"store", "relaybot", "userlike"},
	}
	got, want := map[string][]string{}, map[string][]string{}
	check := func(rule, pkg string, bad, have []string) {
		if _, ok := imports[pkg]; !ok {
			t.Fatalf("package %s not found", pkg)
		}
		key := pkg + " " + rule
		got[key], want[key] = []string{}, []string{}
		for _, d := range have {
			if contains(bad, d) {
				got[key] = append(got[key], d)
			}
		}
	}
	for pkg, bad := range noDeps {
		check("depends on", pkg, bad, deps(imports, pkg))
	}
	for pkg, bad := range noImports {
		check("imports", pkg, bad, imports[pkg])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packages depending on what they must not (-want +got):\n%s", diff)
	}
	if !contains(imports["chatwoot"], "inbox") {
		t.Errorf("chatwoot does not import the inbox it adapts: %v", imports["chatwoot"])
	}
	allowed := map[string][]string{"chatwoot": {"server"}, "userlike": {"server", "relaybot", "config"}}
	for adapter, ok := range allowed {
		var importers []string
		for pkg, ims := range imports {
			if contains(ims, adapter) && !contains(ok, pkg) {
				importers = append(importers, pkg)
			}
		}
		sort.Strings(importers)
		if diff := cmp.Diff([]string(nil), importers); diff != "" {
			t.Errorf("packages importing %s besides %v (-want +got):\n%s", adapter, ok, diff)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// adapters are the packages that speak one external protocol over HTTP,
// each thin over the services' methods.
var adapters = []string{"api", "chatwoot", "engage", "lexer"}

// TestAdaptersOverServices: adapters import services, never the other
// way round; an adapter imports no other adapter (each protocol stands
// alone) and not the store (no SQL and no transactions in a handler).
// Only the wiring (server, and what runs a whole process through it) puts
// them together.
func TestAdaptersOverServices(t *testing.T) {
	imports := moduleImports(t)
	for _, a := range adapters {
		if _, ok := imports[a]; !ok {
			t.Fatalf("adapter %s not found", a)
		}
		if !contains(imports["server"], a) {
			t.Errorf("server does not wire adapter %s", a)
		}
	}
	got := map[string][]string{}
	for pkg := range imports {
		all := deps(imports, pkg)
		if pkg == "server" || contains(all, "server") {
			continue // the wiring, and what runs whole processes
		}
		for _, d := range all {
			if contains(adapters, d) {
				got[pkg] = append(got[pkg], d)
			}
		}
	}
	for _, a := range adapters {
		for _, d := range imports[a] {
			if d == "store" || d == "server" {
				got[a] = append(got[a], d)
			}
		}
	}
	if diff := cmp.Diff(map[string][]string{}, got); diff != "" {
		t.Errorf("packages depending on an adapter, or adapters importing the store or the server (-want +got):\n%s", diff)
	}
}
