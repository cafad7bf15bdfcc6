package jobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Signature is the value of a signed webhook's signature header:
// sha256=hex(HMAC-SHA256(secret, timestamp + "." + body)), timestamp in
// Unix seconds. The receiver recomputes it over the timestamp header and
// the raw body, and refuses an old timestamp to stop replays.
func Signature(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Webhook is one signed POST of a JSON body: the attempt of the queues
// that tell a receiver something (the inbox's outbox, bot events).
type Webhook struct {
	// URL is where it goes.
	URL string
	// Secret signs it.
	Secret string
	// Body is the JSON body, the same across retries.
	Body []byte
	// UserAgent names the sender.
	UserAgent string
	// SignatureHeader and TimestampHeader name the headers that carry the
	// signature and the time it was made.
	SignatureHeader, TimestampHeader string
	// Headers are set as well (the delivery's id, its type).
	Headers map[string]string
}

// Post signs w at now and sends it with client. It returns the answer's
// status, or an error when there was none (for HTTPResult); the answer's
// body is read (up to 64 KiB, so the connection is reused) and dropped.
func Post(ctx context.Context, client *http.Client, now time.Time, w Webhook) (int, error) {
	ts := now.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(w.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.UserAgent)
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(w.TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(w.SignatureHeader, Signature(w.Secret, ts, w.Body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
