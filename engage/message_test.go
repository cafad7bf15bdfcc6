package engage

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
)

// TestMessage: a message about a parameter starts with the parameter's
// name, whether or not the name appears elsewhere in it.
func TestMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *apperr.Error
		want string
	}{
		{"no field", apperr.New(apperr.NotFound, "page 9 is not configured"), "page 9 is not configured"},
		{"field prefixed", apperr.Field("metadata", "must be a JSON object"), "metadata must be a JSON object"},
		{"already named", apperr.Field("to", "to is missing (bot or agent)"), "to is missing (bot or agent)"},
		{"name inside a word", apperr.Field("to", "must be agent (handovers to the bot are passes)"), "to must be agent (handovers to the bot are passes)"},
		{"name as a word later", apperr.Field("mode", "is wrong: the mode is for agents"), "mode is wrong: the mode is for agents"},
		{"name without a space", apperr.Field("to", "tomorrow"), "to tomorrow"},
		{"parameters quoted first", apperr.Field("mode", "mode=offer offers a conversation to the agents"), "mode=offer offers a conversation to the agents"},
		{"other parameters quoted first", apperr.Field("to", `from="bot" to="bot": handovers go from=bot&to=agent`), `from="bot" to="bot": handovers go from=bot&to=agent`},
		{"called unknown", apperr.Field("reason", `unknown reason "nope"`), `unknown reason "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, message(tt.err)); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}
