// Package handoverd_test holds repository-wide checks.
package handoverd_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageAndExportedNameIsDocumented enforces the house style: a
// package comment for every package and a doc comment for every exported
// top-level name.
func TestEveryPackageAndExportedNameIsDocumented(t *testing.T) {
	pkgs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if _, seen := pkgs[dir]; !seen {
			pkgs[dir] = false
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name) || (f.Name.Name == "main" && f.Doc != nil) {
			pkgs[dir] = true
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && d.Doc == nil && (d.Recv == nil || exportedRecv(d.Recv)) {
					t.Errorf("%s: exported func %s has no doc comment", path, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
							t.Errorf("%s: exported type %s has no doc comment", path, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
								t.Errorf("%s: exported %s has no doc comment", path, n.Name)
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, ok := range pkgs {
		if !ok {
			t.Errorf("package in %s has no package comment", dir)
		}
	}
}

func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	typ := fl.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

// TestDockerignoreKeepsTheContextSmall: the build context leaves out the
// repository's history, built binaries and SQLite files, and keeps
// everything the image's build compiles or embeds.
func TestDockerignoreKeepsTheContextSmall(t *testing.T) {
	b, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatalf("no .dockerignore: %v", err)
	}
	rules := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules[l] = true
		}
	}
	for _, want := range []string{".git", "bin/", "*.db", "*.db-wal", "*.db-shm"} {
		if !rules[want] {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
	for rule := range rules {
		for _, needed := range []string{"go.mod", "go.sum", "main.go", "store/migrations/0001_threads.sql", "openapi/openapi.yaml"} {
			if ok, _ := filepath.Match(rule, needed); ok || strings.HasPrefix(needed, strings.TrimSuffix(rule, "/")+"/") {
				t.Errorf(".dockerignore rule %q leaves out %s, which the build needs", rule, needed)
			}
		}
	}
}
