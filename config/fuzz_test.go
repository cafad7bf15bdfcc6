package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
)

// fuzzSecret is what every ${VAR} expands to.
const fuzzSecret = "Zq8-env-secret-value-9xK"

// FuzzParse: Parse never panics; an accepted document is valid, parses
// the same way twice, and none of its secrets prints.
func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	if ex, err := os.ReadFile("../handoverd.example.yaml"); err == nil {
		f.Add(ex)
	}
	f.Add([]byte("app: {id: \"1\", secret: ${S}}\nlisten: ':0'\n"))
	lookup := func(string) (string, bool) { return fuzzSecret, true }
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := config.Parse(doc, lookup)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a configuration that does not validate: %v", err)
		}
		again, err := config.Parse(doc, lookup)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		if diff := cmp.Diff(c, again, cmp.Comparer(func(a, b config.Secret) bool { return a.Reveal() == b.Reveal() })); diff != "" {
			t.Fatalf("parsed differently twice:\n%s", diff)
		}
		secrets := []config.Secret{c.App.Secret, c.App.VerifyToken}
		for _, p := range c.Pages {
			secrets = append(secrets, p.AccessToken)
		}
		for _, u := range c.Users {
			secrets = append(secrets, u.Token)
		}
		for _, s := range secrets {
			if v := s.Reveal(); len(v) >= 4 {
				for _, shown := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%q", s)} {
					if strings.Contains(shown, v) {
						t.Fatalf("a secret prints: %s", shown)
					}
				}
			}
		}
	})
}
