package inbox

import (
	"testing"
	"time"
)

func TestParsePublishedAt(t *testing.T) {
	tests := []struct {
		in   any
		want time.Time // zero: refused
	}{
		{1458692752478.0, time.UnixMilli(1458692752478).UTC()},
		{"1458692752", time.Unix(1458692752, 0).UTC()},
		{"2017-08-01t05:29:44Z", time.Date(2017, 8, 1, 5, 29, 44, 0, time.UTC)},
		{"1e30", time.Time{}},
		{1e30, time.Time{}},
		{"NaN", time.Time{}},
		{"+Inf", time.Time{}},
		{"253402300801000", time.Time{}},
		{"9999-12-31", time.Time{}},
		{"1990-01-01", time.Time{}},
		{0.0, time.Time{}},
		{true, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := ParsePublishedAt(tt.in)
		if ok != !tt.want.IsZero() || (ok && !got.Equal(tt.want)) {
			t.Errorf("ParsePublishedAt(%v) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
}
