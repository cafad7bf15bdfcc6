package chatwoot_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
)

// TestAttachments: a multipart message stores its files, which are served
// back by their token with a safe disposition.
func TestAttachments(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, conv := e.apiConversation("Ada")
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("content", "see attached")
		_ = mw.WriteField("private", "true")
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="attachments[]"; filename="../notes.txt"`)
		h.Set("Content-Type", "text/plain")
		fw, _ := mw.CreatePart(h)
		_, _ = fw.Write([]byte("the notes"))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", e.url+path("1/conversations/%d/messages", conv), &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("api_access_token", aliceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("multipart message: %d %s", resp.StatusCode, raw)
		}
		var m struct {
			Content     string                 `json:"content"`
			Private     bool                   `json:"private"`
			Attachments []inbox.AttachmentView `json:"attachments"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Attachments) != 1 {
			t.Fatalf("attachments: %s", raw)
		}
		a := m.Attachments[0]
		if d := cmp.Diff([]any{"see attached", true, "file", "notes.txt", int64(9)}, []any{m.Content, m.Private, a.FileType, a.Filename, a.FileSize}); d != "" {
			t.Errorf("message (-want +got):\n%s", d)
		}
		u, err := url.Parse(a.DataURL)
		if err != nil || !strings.HasPrefix(u.Path, inbox.AttachmentPath+"/") {
			t.Fatalf("data_url %q is not under %s", a.DataURL, inbox.AttachmentPath)
		}
		got, err := http.Get(e.url + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if d := cmp.Diff([]string{"200", "the notes", "text/plain", `attachment; filename=notes.txt`},
			[]string{strconv.Itoa(got.StatusCode), string(data), got.Header.Get("Content-Type"), got.Header.Get("Content-Disposition")}); d != "" {
			t.Errorf("served attachment (-want +got):\n%s", d)
		}
		missing, _ := http.Get(e.url + inbox.AttachmentPath + "/00000000-0000-0000-0000-000000000000/x.txt")
		if missing.StatusCode != http.StatusNotFound {
			t.Errorf("unknown attachment: %d", missing.StatusCode)
		}
		missing.Body.Close()

		// A stored file that cannot be read is a 500 whose logs (the
		// error and the access line) do not show the token, the secret.
		token := strings.Split(strings.TrimPrefix(u.Path, inbox.AttachmentPath+"/"), "/")[0]
		if _, err := e.db.Writer().Exec(`UPDATE inbox_attachments SET data = '!not base64!' WHERE token = $1`, token); err != nil {
			t.Fatal(err)
		}
		broken, err := http.Get(e.url + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		broken.Body.Close()
		if broken.StatusCode != http.StatusInternalServerError {
			t.Errorf("unreadable attachment: %d, want 500", broken.StatusCode)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `"path":"`+inbox.AttachmentPath+`/{token}/notes.txt"`) || !strings.Contains(logs, `"level":"error"`) {
			t.Errorf("logs have no error line or no access line with {token} in the path:\n%s", logs)
		}
		if strings.Contains(logs, token) {
			t.Errorf("logs show the attachment token %s:\n%s", token, logs)
		}
	})
}
