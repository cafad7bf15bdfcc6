package chatwoot

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
)

// maxMultipartBytes bounds a multipart message: its files and 1 MiB more.
const maxMultipartBytes = inbox.MaxAttachments*inbox.MaxAttachmentBytes + 1<<20

// isMultipart reports whether r carries a multipart/form-data body.
func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// decodeMultipartMessage reads a message sent as multipart/form-data, as
// Chatwoot's SDK and dashboard send every message: the message's fields as
// form values (content_attributes as JSON text) and the files as
// attachments[] (or attachments).
func decodeMultipartMessage(w http.ResponseWriter, r *http.Request) (inbox.MessageInput, error) {
	var in inbox.MessageInput
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
			if len(in.Files) == inbox.MaxAttachments {
				return in, apperr.Field("attachments", "at most %d files", inbox.MaxAttachments)
			}
			data, err := io.ReadAll(io.LimitReader(part, inbox.MaxAttachmentBytes+1))
			if errors.As(err, &tooBig) {
				return in, apperr.New(apperr.TooLarge, "request body is over %d bytes", maxMultipartBytes)
			}
			if err != nil {
				return in, apperr.Field("attachments", "could not be read: %v", err)
			}
			if len(data) > inbox.MaxAttachmentBytes {
				return in, apperr.Field("attachments["+strconv.Itoa(len(in.Files))+"]", "is over %d bytes", inbox.MaxAttachmentBytes)
			}
			if len(data) == 0 {
				return in, apperr.Field("attachments["+strconv.Itoa(len(in.Files))+"]", "is empty")
			}
			filename := inbox.CleanFilename(part.FileName())
			ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
			if ct == "" || ct == "application/octet-stream" {
				if byExt := mime.TypeByExtension(path.Ext(filename)); byExt != "" {
					ct, _, _ = mime.ParseMediaType(byExt)
				} else {
					ct, _, _ = mime.ParseMediaType(http.DetectContentType(data))
				}
			}
			in.Files = append(in.Files, inbox.Upload{Filename: filename, ContentType: ct, Data: data})
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
func baseURL(public string, r *http.Request) string {
	if public != "" {
		return public
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// attachment serves a stored attachment by its token (the file name in
// the path is for people and browsers; the token alone selects the file).
func (a *API) attachment(w http.ResponseWriter, r *http.Request) {
	f, err := a.Service.Attachment(r.Context(), httpapi.Var(r, "token"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ct, filename := f.ContentType, f.Filename
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": filename}))
	if !strings.HasPrefix(ct, "image/") && !strings.HasPrefix(ct, "audio/") && !strings.HasPrefix(ct, "video/") {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, _ = w.Write(f.Data)
}
