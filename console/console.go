// Package console is the agents' console: a web page served by handoverd
// at / where agents work the queue live, take over from the bot, reply and
// hand back. The page is plain HTML, CSS and JavaScript modules embedded in
// the binary (no build step, no CDN); it talks to the same JSON APIs as any
// other client.
//
// Agents sign in with their API token. The token is checked once and never
// kept: the browser gets an HttpOnly, SameSite=Strict cookie holding a
// random session id, of which the database keeps only the SHA-256. Every
// write made with the cookie must carry the session's CSRF token in the
// X-CSRF-Token header. Middleware (Console.Middleware) turns a valid session
// into a request-scoped credential for the token-based APIs, so those APIs
// accept the console without any change of their own.
package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/store"
)

//go:embed assets
var assets embed.FS

// CookieName is the session cookie's name.
const CookieName = "handoverd_console"

// CSRFHeader is the header every write made with the session cookie carries.
const CSRFHeader = "X-CSRF-Token"

// DefaultTTL is how long a session lasts when Options.TTL is zero.
const DefaultTTL = 12 * time.Hour

// contentSecurityPolicy allows only the console's own files: no inline
// script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
	"media-src https:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Options configures a Console.
type Options struct {
	// DB holds the sessions.
	DB *store.DB
	// Users authenticates tokens and issues request grants.
	Users *auth.Users
	// Config lists the configured users (to offer agents for assignment).
	Config []config.User
	// Pages are the configured Pages (an admin's accounts).
	Pages []config.Page
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// TTL is a session's lifetime (zero: DefaultTTL).
	TTL time.Duration
}

// Console serves the page and its sessions.
type Console struct {
	db     *store.DB
	users  *auth.Users
	config []config.User
	pages  []config.Page
	now    func() time.Time
	ttl    time.Duration
}

// New returns a console.
func New(o Options) *Console {
	c := &Console{db: o.DB, users: o.Users, config: o.Config, pages: o.Pages, now: o.Now, ttl: o.TTL}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	return c
}

// Session is a signed-in console session.
type Session struct {
	// Principal is the signed-in user.
	Principal auth.Principal
	// CSRF is the token writes must carry.
	CSRF string
	// ExpiresAt is when the session ends.
	ExpiresAt time.Time
}

// AccountView is an account (client) the user may work in.
type AccountView struct {
	// ID is the account (client) id.
	ID int64 `json:"id"`
	// Pages are the account's Page ids.
	Pages []string `json:"pages"`
}

// AgentView is an agent the conversation can be assigned to.
type AgentView struct {
	// ID is the agent id of the inbox API.
	ID int64 `json:"id"`
	// Name is the user's name.
	Name string `json:"name"`
}

// SessionView is what the page learns about its session.
type SessionView struct {
	// Name is the signed-in user.
	Name string `json:"name"`
	// Role is agent or admin.
	Role string `json:"role"`
	// AgentID is the user's agent id (0 when none).
	AgentID int64 `json:"agent_id"`
	// CSRFToken goes in X-CSRF-Token on every write.
	CSRFToken string `json:"csrf_token"`
	// ExpiresAt is when the session ends.
	ExpiresAt time.Time `json:"expires_at"`
	// ServerTime is the server's clock, so the page counts reply windows
	// down on the server's time rather than the browser's.
	ServerTime time.Time `json:"server_time"`
	// Accounts are the accounts the user may work in.
	Accounts []AccountView `json:"accounts"`
	// Agents are the agents of those accounts.
	Agents []AgentView `json:"agents"`
}

func digest(id string) string {
	d := sha256.Sum256([]byte(id))
	return hex.EncodeToString(d[:])
}

func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SignIn checks an agent's or admin's token and opens a session. It
// returns the session and the id for the cookie (shown nowhere else).
func (c *Console) SignIn(ctx context.Context, token string) (Session, string, error) {
	if strings.TrimSpace(token) == "" {
		return Session{}, "", apperr.Field("token", "is required: paste your agent API token")
	}
	p, err := c.users.Authenticate(token)
	if err != nil {
		return Session{}, "", &apperr.Error{Code: apperr.Unauthorized, Field: "token", Message: "this token is not a handoverd user's token"}
	}
	if !p.Can(config.RoleAgent, config.RoleAdmin) {
		return Session{}, "", &apperr.Error{Code: apperr.Forbidden, Field: "token", Message: "only agents and admins can sign in to the console"}
	}
	now := c.now()
	s := Session{Principal: p, CSRF: random(), ExpiresAt: now.Add(c.ttl)}
	id := random()
	err = c.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1`, store.Millis(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id_sha256, user_name, csrf_token, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $4, $5)`, digest(id), p.Name, s.CSRF, store.Millis(now), store.Millis(s.ExpiresAt))
		return err
	})
	if err != nil {
		return Session{}, "", err
	}
	return s, id, nil
}

// errNoSession is the answer for a missing, ended or unknown session.
var errNoSession = apperr.New(apperr.Unauthorized, "you are not signed in, or your console session has ended: sign in again")

// Lookup returns the live session with cookie id id. The user must still
// be configured: removing a user from the config ends their sessions.
func (c *Console) Lookup(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, errNoSession
	}
	var name, csrf string
	var expires int64
	err := c.db.Reader().QueryRowContext(ctx, `SELECT user_name, csrf_token, expires_at FROM console_sessions WHERE id_sha256 = $1`, digest(id)).
		Scan(&name, &csrf, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, err
	}
	if !c.now().Before(store.Time(expires)) {
		return Session{}, errNoSession
	}
	p, ok := c.users.ByName(name)
	if !ok || !p.Can(config.RoleAgent, config.RoleAdmin) {
		return Session{}, errNoSession
	}
	return Session{Principal: p, CSRF: csrf, ExpiresAt: store.Time(expires)}, nil
}

// SignOut ends the session with cookie id id.
func (c *Console) SignOut(ctx context.Context, id string) error {
	return c.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_sha256 = $1`, digest(id))
		return err
	})
}

// View describes s to the page: who, the CSRF token, the accounts and agents.
func (c *Console) View(ctx context.Context, s Session) (SessionView, error) {
	p := s.Principal
	v := SessionView{Name: p.Name, Role: p.Role, CSRFToken: s.CSRF, ExpiresAt: s.ExpiresAt, ServerTime: c.now().UTC(),
		Accounts: []AccountView{}, Agents: []AgentView{}}
	byID := map[int64]int{}
	for _, pg := range c.pages {
		if !p.CanActOnClient(pg.ClientID) {
			continue
		}
		i, ok := byID[pg.ClientID]
		if !ok {
			i = len(v.Accounts)
			byID[pg.ClientID] = i
			v.Accounts = append(v.Accounts, AccountView{ID: pg.ClientID, Pages: []string{}})
		}
		v.Accounts[i].Pages = append(v.Accounts[i].Pages, pg.ID)
	}
	if len(v.Accounts) == 0 && p.ClientID != 0 {
		v.Accounts = append(v.Accounts, AccountView{ID: p.ClientID, Pages: []string{}})
	}
	var names []string
	for _, u := range c.config {
		if u.Role != config.RoleBot && (u.ClientID == p.ClientID || p.ClientID == 0 || u.ClientID == 0) {
			names = append(names, u.Name)
		}
	}
	rows, err := c.db.Reader().QueryContext(ctx, `SELECT id, name FROM agents ORDER BY name`)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var a AgentView
		if err := rows.Scan(&a.ID, &a.Name); err != nil {
			return v, err
		}
		if slices.Contains(names, a.Name) {
			v.Agents = append(v.Agents, a)
		}
		if a.Name == p.Name {
			v.AgentID = a.ID
		}
	}
	return v, rows.Err()
}

// Routes registers the page, its files and the session endpoints.
func (c *Console) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, "/", c.index)
	r.HandleFunc(http.MethodGet, "/console/assets/{file}", c.asset)
	r.HandleFunc(http.MethodPost, "/console/session", c.signIn)
	r.HandleFunc(http.MethodGet, "/console/session", c.session)
	r.HandleFunc(http.MethodDelete, "/console/session", c.signOut)
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	serve(w, r, files["index.html"])
}

// assetTypes are the content types of the files the page loads.
var assetTypes = map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

// file is one embedded file, ready to serve plain or gzipped.
type file struct {
	ctype, etag string
	raw, gz     []byte
}

// files are the embedded files by name, read and compressed once.
var files = func() map[string]file {
	out := map[string]file{}
	entries, _ := fs.ReadDir(assets, "assets")
	for _, e := range entries {
		ctype, ok := assetTypes[path.Ext(e.Name())]
		if !ok {
			continue
		}
		raw, err := fs.ReadFile(assets, "assets/"+e.Name())
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		d := sha256.Sum256(raw)
		out[e.Name()] = file{ctype: ctype, etag: hex.EncodeToString(d[:8]), raw: raw, gz: buf.Bytes()}
	}
	return out
}()

// serve writes f, gzipped when the client accepts it, answering 304 when
// the client's copy is current.
func serve(w http.ResponseWriter, r *http.Request, f file) {
	securityHeaders(w)
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Vary", "Accept-Encoding")
	body, etag := f.raw, `"`+f.etag+`"`
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		body, etag = f.gz, `"`+f.etag+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// asset serves one of the page's script modules or its style sheet.
// Cache-Control no-cache: a reload revalidates with the ETag instead of
// downloading again, and a new binary's files are picked up at once.
func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	name := httpapi.Var(r, "file")
	f, ok := files[name]
	if !ok || name == "index.html" {
		httpapi.WriteError(w, r, apperr.New(apperr.NotFound, "the console has no file %q", name))
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	serve(w, r, f)
}

// sameOrigin refuses a browser request sent from another site (login CSRF):
// a present Origin header must name this host.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return &apperr.Error{Code: apperr.Forbidden, Field: "Origin", Message: "requests to the console must come from the console's own page"}
	}
	return nil
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	err := sameOrigin(r)
	if err == nil {
		err = httpapi.DecodeJSON(w, r, 4<<10, &in)
	}
	var s Session
	var id string
	if err == nil {
		s, id, err = c.SignIn(r.Context(), in.Token)
	}
	var v SessionView
	if err == nil {
		v, err = c.View(r.Context(), s)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c.setCookie(w, r, id, int(c.ttl/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, v)
}

func cookie(r *http.Request) string {
	if ck, err := r.Cookie(CookieName); err == nil {
		return ck.Value
	}
	return ""
}

func (c *Console) session(w http.ResponseWriter, r *http.Request) {
	s, err := c.Lookup(r.Context(), cookie(r))
	var v SessionView
	if err == nil {
		v, err = c.View(r.Context(), s)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, v)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	id := cookie(r)
	s, err := c.Lookup(r.Context(), id)
	if err == nil {
		err = checkCSRF(r, s)
	}
	if err == nil {
		err = c.SignOut(r.Context(), id)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c.setCookie(w, r, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

// checkCSRF compares the request's X-CSRF-Token with the session's, in
// constant time.
func checkCSRF(r *http.Request, s Session) error {
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return &apperr.Error{Code: apperr.Forbidden, Field: CSRFHeader,
			Message: "this write carries no valid CSRF token (X-CSRF-Token): reload the console and try again"}
	}
	return nil
}

// hasCredentials reports whether the request names its own credentials,
// in any of the headers or parameters the APIs read: then the cookie is
// not consulted.
func hasCredentials(r *http.Request) bool {
	h := r.Header
	return h.Get("Authorization") != "" || h.Get("api_access_token") != "" || h.Get("Api-Access-Token") != "" ||
		h.Get("Auth-Api-Token") != "" || h.Get("Security-Token") != "" || r.URL.Query().Get("access_token") != ""
}

// apiPath reports whether path belongs to the JSON APIs the console uses.
func apiPath(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/1.0/")
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// Middleware lets the console's session stand in for an API token: a
// request to the JSON APIs that names no credentials of its own but
// carries the session cookie is checked (a live session; on a write, the
// CSRF token in X-CSRF-Token) and then passed on with a credential that
// authenticates as the session's user for this request only.
func (c *Console) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := cookie(r)
		if id == "" || !apiPath(r.URL.Path) || hasCredentials(r) {
			next.ServeHTTP(w, r)
			return
		}
		s, err := c.Lookup(r.Context(), id)
		if err == nil && unsafeMethod(r.Method) {
			err = checkCSRF(r, s)
		}
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		token, revoke := c.users.Grant(s.Principal)
		defer revoke()
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+token)
		next.ServeHTTP(w, r)
	})
}
