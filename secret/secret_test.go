package secret_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/secret"
)

const value = "hunter2-app-secret"

// holder is how configuration holds secrets: exported fields of a struct.
type holder struct {
	Name  string
	Token secret.Secret
	Ptr   *secret.Secret
	List  []secret.Secret
}

func newHolder(s secret.Secret) holder {
	return holder{Name: "page", Token: s, Ptr: &s, List: []secret.Secret{s, s}}
}

func TestFmt(t *testing.T) {
	s := secret.Secret(value)
	h := newHolder(s)
	m := map[string]secret.Secret{"app": s}
	wrong := func(verb string, v any) string { return fmt.Sprintf(verb, v) } // vet rejects a constant wrong verb
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"%v", fmt.Sprintf("%v", s), "<redacted>"},
		{"%s", fmt.Sprintf("%s", s), "<redacted>"},
		{"%+v", fmt.Sprintf("%+v", s), "<redacted>"},
		{"%#v", fmt.Sprintf("%#v", s), `secret.Secret("<redacted>")`},
		{"%q", fmt.Sprintf("%q", s), `"<redacted>"`},
		{"%x", fmt.Sprintf("%x", s), fmt.Sprintf("%x", "<redacted>")},
		{"%12s", fmt.Sprintf("%12s", s), "  <redacted>"},
		{"%-12v|", fmt.Sprintf("%-12v|", s), "<redacted>  |"},
		{"%.3s", fmt.Sprintf("%.3s", s), "<re"},
		{"%d (wrong verb)", wrong("%d", s), "%!d(string=<redacted>)"},
		{"%c (wrong verb)", wrong("%c", s), "%!c(string=<redacted>)"},
		{"%t (wrong verb)", wrong("%t", s), "%!t(string=<redacted>)"},
		{"%T", fmt.Sprintf("%T", s), "secret.Secret"},
		{"struct %d", wrong("%d", struct{ T secret.Secret }{s}), "{%!d(string=<redacted>)}"},
		{"Sprint", fmt.Sprint(s), "<redacted>"},
		{"Sprintln", fmt.Sprintln("token", s), "token <redacted>\n"},
		{"Errorf", fmt.Errorf("bad token %v", s).Error(), "bad token <redacted>"},
		{"pointer %v", fmt.Sprintf("%v", &s), "<redacted>"},
		{"slice %v", fmt.Sprintf("%v", h.List), "[<redacted> <redacted>]"},
		{"any slice %s", fmt.Sprintf("%s", []any{s}), "[<redacted>]"},
		{"struct %v", fmt.Sprintf("%v", struct{ T secret.Secret }{s}), "{<redacted>}"},
		{"struct %+v", fmt.Sprintf("%+v", struct{ T secret.Secret }{s}), "{T:<redacted>}"},
		{"struct %#v", fmt.Sprintf("%#v", struct{ T secret.Secret }{s}), `struct { T secret.Secret }{T:secret.Secret("<redacted>")}`},
		{"map %v", fmt.Sprintf("%v", m), "map[app:<redacted>]"},
		{"map %+v", fmt.Sprintf("%+v", m), "map[app:<redacted>]"},
		{"map %#v", fmt.Sprintf("%#v", m), `map[string]secret.Secret{"app":secret.Secret("<redacted>")}`},
		{"map key %v", fmt.Sprintf("%v", map[secret.Secret]int{s: 1}), "map[<redacted>:1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// The holder prints a pointer address, so only check it holds no value.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, h); strings.Contains(got, value) {
			t.Errorf("Sprintf(%s, holder) = %s, shows the secret", verb, got)
		}
		if got := fmt.Sprintf(verb, &h); strings.Contains(got, value) {
			t.Errorf("Sprintf(%s, &holder) = %s, shows the secret", verb, got)
		}
	}
}

func TestEncoders(t *testing.T) {
	s := secret.Secret(value)
	// marshal encodes as httpapi does, without HTML escaping, so the
	// marker reads as itself.
	marshal := func(v any) string {
		t.Helper()
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatalf("encoding %T: %v", v, err)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	plain, err := json.Marshal(map[string]any{"k": s})
	if err != nil {
		t.Fatal(err)
	}
	text, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	xmlText, err := xml.Marshal(struct {
		XMLName xml.Name      `xml:"c"`
		T       secret.Secret `xml:"t"`
		A       secret.Secret `xml:"a,attr"`
	}{T: s, A: s})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"json.Marshal", string(plain), `{"k":"\u003credacted\u003e"}`},
		{"json value", marshal(s), `"<redacted>"`},
		{"json struct", marshal(struct{ T secret.Secret }{s}), `{"T":"<redacted>"}`},
		{"json holder", marshal(newHolder(s)), `{"Name":"page","Token":"<redacted>","Ptr":"<redacted>","List":["<redacted>","<redacted>"]}`},
		{"json map value", marshal(map[string]secret.Secret{"app": s}), `{"app":"<redacted>"}`},
		{"json any", marshal([]any{s}), `["<redacted>"]`},
		{"MarshalText", string(text), "<redacted>"},
		{"xml", string(xmlText), `<c a="&lt;redacted&gt;"><t>&lt;redacted&gt;</t></c>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestZerolog(t *testing.T) {
	s := secret.Secret(value)
	tests := []struct {
		name string
		log  func(zerolog.Logger)
		want string
	}{
		{"Interface", func(l zerolog.Logger) { l.Log().Interface("k", s).Send() }, `{"k":"<redacted>"}`},
		{"Any", func(l zerolog.Logger) { l.Log().Any("k", s).Send() }, `{"k":"<redacted>"}`},
		{"Stringer", func(l zerolog.Logger) { l.Log().Stringer("k", s).Send() }, `{"k":"<redacted>"}`},
		{"Stringer pointer", func(l zerolog.Logger) { l.Log().Stringer("k", &s).Send() }, `{"k":"<redacted>"}`},
		{"struct", func(l zerolog.Logger) { l.Log().Interface("k", struct{ T secret.Secret }{s}).Send() }, `{"k":{"T":"<redacted>"}}`},
		{"holder", func(l zerolog.Logger) { l.Log().Any("k", newHolder(s)).Send() }, `{"k":{"Name":"page","Token":"<redacted>","Ptr":"<redacted>","List":["<redacted>","<redacted>"]}}`},
		{"Fields map", func(l zerolog.Logger) { l.Log().Fields(map[string]any{"k": s}).Send() }, `{"k":"<redacted>"}`},
		{"Fields list", func(l zerolog.Logger) { l.Log().Fields([]any{"k", s}).Send() }, `{"k":"<redacted>"}`},
		{"Msgf", func(l zerolog.Logger) { l.Log().Msgf("token %v", s) }, `{"message":"token <redacted>"}`},
		{"context", func(l zerolog.Logger) { c := l.With().Interface("a", s).Stringer("b", s).Logger(); c.Log().Send() }, `{"a":"<redacted>","b":"<redacted>"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(zerolog.New(&buf))
			if diff := cmp.Diff(tt.want, strings.TrimSpace(buf.String())); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlog(t *testing.T) {
	s := secret.Secret(value)
	for _, tt := range []struct {
		name string
		h    func(*bytes.Buffer) slog.Handler
		want string
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }, "k=<redacted>"},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }, `"k":"<redacted>"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(tt.h(&buf)).Info("m", "k", s, "h", newHolder(s))
			got := buf.String()
			if strings.Contains(got, value) || !strings.Contains(got, tt.want) {
				t.Errorf("log line %s: want %s and no secret", got, tt.want)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	var s secret.Secret
	text, _ := s.MarshalText()
	js, _ := json.Marshal(s)
	got := []string{fmt.Sprintf("%v", s), fmt.Sprintf("%q", s), fmt.Sprintf("%#v", s), s.String(), string(text), string(js), s.Reveal()}
	want := []string{"", `""`, `secret.Secret("")`, "", "", `""`, ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("empty secret (-want +got):\n%s", diff)
	}
}

func TestRevealRoundTrip(t *testing.T) {
	for _, v := range []string{value, "x", "<redacted>", `a"b\c`, "ünï"} {
		if got := secret.Secret(v).Reveal(); got != v {
			t.Errorf("Reveal() = %q, want %q", got, v)
		}
	}
}
