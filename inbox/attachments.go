package inbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/store"
)

// AttachmentPath is where attachments are served:
// AttachmentPath/{token}/{filename}. The token is the secret: Messenger
// fetches the file from there without credentials, as it fetches any
// attachment URL.
const AttachmentPath = "/attachments"

// Attachment limits: Messenger takes files up to 25 MB; handoverd keeps
// them in its database, so it takes less.
const (
	MaxAttachmentBytes = 8 << 20
	MaxAttachments     = 10
	maxMultipartBytes  = MaxAttachments*MaxAttachmentBytes + 1<<20
)

// Upload is one file of a multipart message.
type Upload struct {
	// Filename is the file's (cleaned) name.
	Filename string
	// ContentType is its media type.
	ContentType string
	// Data is its content.
	Data []byte
}

// AttachmentView is an attachment as Chatwoot shows it.
type AttachmentView struct {
	ID        int64  `json:"id"`
	MessageID int64  `json:"message_id"`
	FileType  string `json:"file_type"`
	AccountID int64  `json:"account_id"`
	Extension string `json:"extension"`
	DataURL   string `json:"data_url"`
	ThumbURL  string `json:"thumb_url"`
	FileSize  int64  `json:"file_size"`
	Filename  string `json:"filename"`
}

// fileType is Chatwoot's (and Messenger's) attachment type for a media type.
func fileType(contentType string) string {
	for _, t := range []string{"image", "audio", "video"} {
		if strings.HasPrefix(contentType, t+"/") {
			return t
		}
	}
	return "file"
}

// cleanFilename keeps a file name's last element, without control
// characters or separators, at most 200 bytes.
func cleanFilename(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '"' {
			return -1
		}
		return r
	}, name)
	if name == "." || name == "" || name == "/" {
		name = "file"
	}
	for len(name) > 200 {
		_, size := lastRune(name)
		name = name[:len(name)-size]
	}
	return name
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return rune(s[i]), len(s) - i
		}
	}
	return 0, 1
}

// isMultipart reports whether r carries a multipart/form-data body.
func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// decodeMultipartMessage reads a message sent as multipart/form-data, as
// Chatwoot's SDK and dashboard send every message: the message's fields as
// form values (content_attributes as JSON text) and the files as
// attachments[] (or attachments).
func decodeMultipartMessage(w http.ResponseWriter, r *http.Request) (MessageInput, error) {
	var in MessageInput
	r.Body = http.MaxBytesReader(w, r.Body, maxMultipartBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return in, apperr.Field("body", "is not a valid multipart/form-data body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return in, apperr.New(apperr.TooLarge, "request body is over %d bytes", maxMultipartBytes)
		}
		if err != nil {
			return in, apperr.Field("body", "is not a valid multipart/form-data body: %v", err)
		}
		name := part.FormName()
		if part.FileName() != "" || name == "attachments[]" || name == "attachments" {
			if name != "attachments[]" && name != "attachments" {
				return in, apperr.Field(name, "files go in attachments[]")
			}
			if len(in.Files) == MaxAttachments {
				return in, apperr.Field("attachments", "at most %d files", MaxAttachments)
			}
			data, err := io.ReadAll(io.LimitReader(part, MaxAttachmentBytes+1))
			if errors.As(err, &tooBig) {
				return in, apperr.New(apperr.TooLarge, "request body is over %d bytes", maxMultipartBytes)
			}
			if err != nil {
				return in, apperr.Field("attachments", "could not be read: %v", err)
			}
			if len(data) > MaxAttachmentBytes {
				return in, apperr.Field("attachments["+strconv.Itoa(len(in.Files))+"]", "is over %d bytes", MaxAttachmentBytes)
			}
			if len(data) == 0 {
				return in, apperr.Field("attachments["+strconv.Itoa(len(in.Files))+"]", "is empty")
			}
			filename := cleanFilename(part.FileName())
			ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
			if ct == "" || ct == "application/octet-stream" {
				if byExt := mime.TypeByExtension(path.Ext(filename)); byExt != "" {
					ct, _, _ = mime.ParseMediaType(byExt)
				} else {
					ct, _, _ = mime.ParseMediaType(http.DetectContentType(data))
				}
			}
			in.Files = append(in.Files, Upload{Filename: filename, ContentType: ct, Data: data})
			continue
		}
		value, err := io.ReadAll(io.LimitReader(part, 64<<10+1))
		if err != nil {
			return in, apperr.Field(name, "could not be read: %v", err)
		}
		if len(value) > 64<<10 {
			return in, apperr.Field(name, "is over 64 KB")
		}
		v := string(value)
		switch name {
		case "content":
			in.Content = v
		case "message_type":
			in.MessageType = jsonString(v)
		case "private":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return in, apperr.Field("private", "must be true or false")
			}
			in.Private = b
		case "content_type":
			in.ContentType = v
		case "content_attributes":
			in.ContentAttributes = []byte(v)
		}
	}
	return in, nil
}

// jsonString is v as a JSON value: a number stays a number (message_type
// 0/1), anything else becomes a JSON string.
func jsonString(v string) []byte {
	if _, err := strconv.Atoi(v); err == nil {
		return []byte(v)
	}
	return []byte(strconv.Quote(v))
}

// baseURL is where this request reached handoverd, for attachment URLs:
// the configured public URL, else the request's scheme and host.
func (s *Service) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// storeAttachments keeps a message's files and returns their views.
func (s *Service) storeAttachments(ctx context.Context, tx *store.Tx, accountID, messageID int64, base string, files []Upload) ([]AttachmentView, error) {
	var out []AttachmentView
	for _, f := range files {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		token := hex.EncodeToString(b[:])
		v := AttachmentView{MessageID: messageID, FileType: fileType(f.ContentType), AccountID: accountID,
			Extension: strings.TrimPrefix(path.Ext(f.Filename), "."), FileSize: int64(len(f.Data)), Filename: f.Filename}
		if err := tx.QueryRowContext(ctx, `INSERT INTO inbox_attachments (account_id, message_id, token, file_type, content_type, filename, size, data, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`, accountID, messageID, token, v.FileType, f.ContentType, f.Filename,
			v.FileSize, base64.StdEncoding.EncodeToString(f.Data), store.Millis(s.now())).Scan(&v.ID); err != nil {
			return nil, err
		}
		v.DataURL = base + AttachmentPath + "/" + token + "/" + url.PathEscape(f.Filename)
		if v.FileType == "image" {
			v.ThumbURL = v.DataURL
		}
		out = append(out, v)
	}
	return out, nil
}

// attachment serves a stored attachment by its token (the file name in
// the path is for people and browsers; the token alone selects the file).
func (a *API) attachment(w http.ResponseWriter, r *http.Request) {
	token := httpapi.Var(r, "token")
	var ct, filename, data string
	err := sql.ErrNoRows
	if len(token) == 36 {
		err = a.Service.db.Reader().QueryRowContext(r.Context(), `SELECT content_type, filename, data FROM inbox_attachments WHERE token = $1`, token).
			Scan(&ct, &filename, &data)
	}
	if errNoRows(err) {
		httpapi.WriteError(w, r, apperr.New(apperr.NotFound, "no such attachment"))
		return
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": filename}))
	if !strings.HasPrefix(ct, "image/") && !strings.HasPrefix(ct, "audio/") && !strings.HasPrefix(ct, "video/") {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, _ = w.Write(b)
}
