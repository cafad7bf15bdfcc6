// Package auth authenticates API clients (bots, agents, admins) by their
// bearer tokens. Tokens are held only as SHA-256 digests and every
// comparison runs in constant time over all users, so neither the config in
// memory nor response timing reveals a token.
//
// A signed-in console session reaches the same APIs through a grant: a
// random credential that stands for one user for the duration of one
// request (see Users.Grant), so every API authenticates the same way
// whichever door the caller came in by.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"sync"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
)

// Principal is an authenticated API client.
type Principal struct {
	// Name is the user's configured name.
	Name string
	// Role is bot, agent or admin.
	Role string
	// ClientID is the tenant the user belongs to (0 for a global admin).
	ClientID int64
}

// Can reports whether p holds one of roles.
func (p Principal) Can(roles ...string) bool {
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

// CanActOnClient reports whether p may act on the tenant clientID: its own,
// or any when p is an admin without a client.
func (p Principal) CanActOnClient(clientID int64) bool {
	return p.ClientID == clientID || (p.Role == config.RoleAdmin && p.ClientID == 0)
}

// Page returns the Page named id among pages if p may act on it:
// NotFound when it is not configured, Forbidden when it is another
// client's.
func (p Principal) Page(pages map[string]config.Page, id string) (config.Page, error) {
	page, ok := pages[id]
	if !ok {
		return config.Page{}, apperr.New(apperr.NotFound, "page %s is not configured", id)
	}
	if !p.CanActOnClient(page.ClientID) {
		return config.Page{}, apperr.New(apperr.Forbidden, "page %s belongs to another client", id)
	}
	return page, nil
}

type user struct {
	digest [sha256.Size]byte
	p      Principal
}

// Users is the set of configured API users.
type Users struct {
	users []user

	mu     sync.Mutex
	grants map[[sha256.Size]byte]Principal // digest of a request-scoped credential → its user
}

// NewUsers builds the directory from configured users; plain tokens are
// hashed immediately and not kept.
func NewUsers(cfg []config.User) (*Users, error) {
	u := &Users{}
	for _, c := range cfg {
		var d [sha256.Size]byte
		if c.Token != "" {
			d = sha256.Sum256([]byte(c.Token.Reveal()))
		} else {
			b, err := hex.DecodeString(c.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, apperr.Field("token_sha256", "user %s: not a SHA-256 hex digest", c.Name)
			}
			copy(d[:], b)
		}
		u.users = append(u.users, user{digest: d, p: Principal{Name: c.Name, Role: c.Role, ClientID: c.ClientID}})
	}
	return u, nil
}

// Authenticate returns the user whose token is token. It compares against
// every user, in constant time, whatever matches.
func (u *Users) Authenticate(token string) (Principal, error) {
	if token == "" {
		return Principal{}, apperr.New(apperr.Unauthorized, "missing API token")
	}
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range u.users {
		if subtle.ConstantTimeCompare(d[:], u.users[i].digest[:]) == 1 {
			found = i
		}
	}
	if found >= 0 {
		return u.users[found].p, nil
	}
	u.mu.Lock()
	p, ok := u.grants[d]
	u.mu.Unlock()
	if ok {
		return p, nil
	}
	return Principal{}, apperr.New(apperr.Unauthorized, "invalid API token")
}

// ByName returns the configured user called name.
func (u *Users) ByName(name string) (Principal, bool) {
	for _, x := range u.users {
		if x.p.Name == name {
			return x.p, true
		}
	}
	return Principal{}, false
}

// Grant issues a random credential that authenticates as p until revoke is
// called. A session layer (the console) uses it to hand a request it has
// authenticated by other means to the token-based APIs; the credential is
// never shown to anyone and dies with the request.
func (u *Users) Grant(p Principal) (token string, revoke func()) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = "grant_" + base64.RawURLEncoding.EncodeToString(b[:])
	d := sha256.Sum256([]byte(token))
	u.mu.Lock()
	if u.grants == nil {
		u.grants = map[[sha256.Size]byte]Principal{}
	}
	u.grants[d] = p
	u.mu.Unlock()
	return token, func() {
		u.mu.Lock()
		delete(u.grants, d)
		u.mu.Unlock()
	}
}

// Require authenticates token and checks the principal holds one of roles.
func (u *Users) Require(token string, roles ...string) (Principal, error) {
	p, err := u.Authenticate(token)
	if err != nil {
		return p, err
	}
	if !p.Can(roles...) {
		return p, apperr.New(apperr.Forbidden, "role %s may not use this API", p.Role)
	}
	return p, nil
}
