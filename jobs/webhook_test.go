package jobs_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/jobs"
)

// TestPostSignsWhatItSends: a webhook arrives with its body, its headers,
// the time it was signed and a signature the receiver can check over that
// time and the raw body; the answer's status comes back as it is.
func TestPostSignsWhatItSends(t *testing.T) {
	type seen struct {
		Body, Signature, Timestamp, Delivery, UserAgent, ContentType string
	}
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name   string
		status int
	}{
		{"accepted", http.StatusNoContent},
		{"refused", http.StatusGone},
		{"failing", http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seen{Body: string(b), Signature: r.Header.Get("X-Sig"), Timestamp: r.Header.Get("X-Ts"),
					Delivery: r.Header.Get("X-Delivery"), UserAgent: r.UserAgent(), ContentType: r.Header.Get("Content-Type")}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			body := []byte(`{"event":"message_created"}`)
			status, err := jobs.Post(context.Background(), srv.Client(), now, jobs.Webhook{URL: srv.URL, Secret: "s3cret", Body: body,
				UserAgent: "handoverd-test", SignatureHeader: "X-Sig", TimestampHeader: "X-Ts", Headers: map[string]string{"X-Delivery": "d-1"}})
			if err != nil || status != tc.status {
				t.Fatalf("Post = %d, %v; want %d", status, err, tc.status)
			}
			want := seen{Body: string(body), Signature: jobs.Signature("s3cret", now.Unix(), body), Timestamp: "1700000000",
				Delivery: "d-1", UserAgent: "handoverd-test", ContentType: "application/json"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the receiver saw (-want +got):\n%s", diff)
			}
		})
	}
	// The signature is HMAC-SHA256 over "timestamp.body", as receivers
	// following the documented recipe compute it.
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte("1700000000.{}"))
	if got, want := jobs.Signature("secret", 1700000000, []byte(`{}`)), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
	if _, err := jobs.Post(context.Background(), http.DefaultClient, now, jobs.Webhook{URL: "http://127.0.0.1:1/", Secret: "s"}); err == nil {
		t.Error("Post to a closed port: no error")
	}
}
