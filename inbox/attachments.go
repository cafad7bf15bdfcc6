package inbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"

	"github.com/handoverd/handoverd/apperr"
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

// CleanFilename keeps a file name's last element, without control
// characters or separators, at most 200 bytes: the name an uploaded file
// is kept under.
func CleanFilename(name string) string {
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

// PublicURL is the configured public URL handoverd is reached at, without
// a trailing slash ("" when not configured: adapters use the request's).
func (s *Service) PublicURL() string { return s.publicURL }

// File is a stored attachment's content.
type File struct {
	// ContentType is its media type.
	ContentType string
	// Filename is its (cleaned) name.
	Filename string
	// Data is its content.
	Data []byte
}

// Attachment returns the attachment whose token is token (NotFound when
// there is none). The token alone selects the file; it is the secret.
func (s *Service) Attachment(ctx context.Context, token string) (File, error) {
	var f File
	var id int64
	var data string
	err := sql.ErrNoRows
	if len(token) == 36 {
		err = s.db.Reader().QueryRowContext(ctx, `SELECT id, content_type, filename, data FROM inbox_attachments WHERE token = $1`, token).
			Scan(&id, &f.ContentType, &f.Filename, &data)
	}
	if errNoRows(err) {
		return f, apperr.New(apperr.NotFound, "no such attachment")
	}
	if err != nil {
		return f, err
	}
	if f.Data, err = base64.StdEncoding.DecodeString(data); err != nil {
		// The row id, not the token: the error is logged.
		return f, fmt.Errorf("attachment %d: %w", id, err)
	}
	return f, nil
}
