package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/store"
)

// Web sessions. A browser logs in with the form at /login and from then on
// carries a session cookie: a random token naming a row of the sessions
// table (keyed by the token's hash), which holds the user's name and the
// session's CSRF token. Each request rebuilds the principal from the user's
// current roles, so a revoked role takes effect at once and a deleted
// user's sessions are dead. scs keeps the cookie and the timeouts; the
// rules on top are ours:
//
//   - the token changes at login (session fixation), and the session ends
//     at logout, after SessionIdleTimeout unused and SessionLifetime after
//     login, however busy;
//   - the cookie is HttpOnly and SameSite=Lax, Secure (and __Host-) on TLS;
//   - a state-changing request that rides on the cookie must come from our
//     own origin and carry the session's CSRF token (form field
//     csrf_token or header X-CSRF-Token). Requests with a bearer token
//     carry no ambient credential and are exempt.

// Session defaults.
const (
	// DefaultSessionIdleTimeout ends a web session left unused this long.
	DefaultSessionIdleTimeout = 30 * time.Minute
	// DefaultSessionLifetime ends a web session this long after its login.
	DefaultSessionLifetime = 12 * time.Hour
)

const (
	// sessionCookieName is the cookie on plain HTTP; the __Host- prefix on
	// TLS makes browsers insist on Secure, Path=/ and no Domain, so a
	// sibling host cannot plant or shadow it.
	sessionCookieName       = "drover_session"
	secureSessionCookieName = "__Host-drover_session"

	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
	// maxFormBody bounds a form post (a login, a button).
	maxFormBody = 64 << 10

	// Session keys.
	sessionUser        = "user"
	sessionUserCreated = "user_created" // unix ns: a re-created user is someone else
	sessionCSRF        = "csrf"
)

var (
	errCrossOrigin = forbidden("cross-origin request refused: state-changing calls with a session cookie must come from this site")
	errCSRFToken   = forbidden("missing or wrong CSRF token: reload the page and try again")
)

// sessionManager keeps web logins: two scs managers over one store that
// differ only in the cookie (Secure or not), chosen per request.
type sessionManager struct {
	store  *sessionStore
	plain  *scs.SessionManager
	secure *scs.SessionManager
	// alwaysSecure picks the Secure cookie on plain HTTP too (TLS ends at a
	// proxy in front of us).
	alwaysSecure bool
	origin       *http.CrossOriginProtection
}

// sessionConfig is the part of [Config] sessions use.
type sessionConfig struct {
	idle, lifetime time.Duration
	alwaysSecure   bool
	onError        func(http.ResponseWriter, *http.Request, error)
}

func newSessionManager(st store.Store, cfg sessionConfig) *sessionManager {
	m := &sessionManager{
		store:        newSessionStore(st),
		alwaysSecure: cfg.alwaysSecure,
		origin:       http.NewCrossOriginProtection(),
	}
	// Not scs.New: it starts an in-memory store's cleanup goroutine that
	// nothing stops. The two managers then share scs's (empty) context
	// key, which is harmless: a request goes through one of them.
	mk := func(name string, secure bool) *scs.SessionManager {
		return &scs.SessionManager{
			Store: m.store, Codec: scs.GobCodec{}, ErrorFunc: cfg.onError,
			IdleTimeout: cfg.idle, Lifetime: cfg.lifetime,
			Cookie: scs.SessionCookie{
				Name: name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure,
				// A browser session: the cookie goes when the browser
				// closes; the server ends it sooner by the timeouts.
				Persist: false,
			},
		}
	}
	m.plain = mk(sessionCookieName, false)
	m.secure = mk(secureSessionCookieName, true)
	return m
}

type sessionKey struct{}

// wrap loads the request's session (if its cookie names one) around next,
// and saves it and sets the cookie when next answers.
func (m *sessionManager) wrap(next http.Handler) http.Handler {
	load := func(sm *scs.SessionManager) http.Handler {
		return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sm)))
		}))
	}
	plain, secure := load(m.plain), load(m.secure)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || m.alwaysSecure {
			secure.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

// sessionOf returns the manager that loaded r's session, or nil when r
// has none (it came with a bearer token).
func sessionOf(r *http.Request) *scs.SessionManager {
	sm, _ := r.Context().Value(sessionKey{}).(*scs.SessionManager)
	return sm
}

// principal is the session's user with their current roles, or anonymous.
func (m *sessionManager) principal(r *http.Request) (*auth.Principal, error) {
	sm := sessionOf(r)
	if sm == nil {
		return auth.AnonymousPrincipal, nil
	}
	ctx := r.Context()
	name := sm.GetString(ctx, sessionUser)
	if name == "" {
		return auth.AnonymousPrincipal, nil
	}
	created, _ := sm.Get(ctx, sessionUserCreated).(int64)
	var p *auth.Principal
	err := m.store.store.View(ctx, func(rd store.Reader) error {
		u, err := rd.GetUser(ctx, name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.CreatedAt.UnixNano() != created) {
			return errBadCredentials
		}
		if err != nil {
			return err
		}
		p, err = userPrincipal(ctx, rd, name)
		return err
	})
	if errors.Is(err, errBadCredentials) {
		// The user was deleted (and perhaps made again, for someone
		// else): the session ends with them.
		if err := sm.Destroy(ctx); err != nil {
			return nil, fmt.Errorf("end session of a deleted user: %w", err)
		}
		return auth.AnonymousPrincipal, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load session user: %w", err)
	}
	return p, nil
}

// start logs u in on r's session: a new token (whatever token the browser
// came with, perhaps one an attacker planted, is dropped with its row), a
// new CSRF token, and the user.
func (m *sessionManager) start(r *http.Request, u auth.User) error {
	sm := sessionOf(r)
	if sm == nil {
		return badRequestf("", "log in from a browser here; programs use POST /v1/login")
	}
	ctx := r.Context()
	if err := sm.RenewToken(ctx); err != nil {
		return fmt.Errorf("renew session token: %w", err)
	}
	m.store.issue(sm.Token(ctx))
	sm.Put(ctx, sessionUser, u.Name)
	sm.Put(ctx, sessionUserCreated, u.CreatedAt.UnixNano())
	sm.Put(ctx, sessionCSRF, randomToken())
	return nil
}

// end logs r's session out, deleting its row.
func (m *sessionManager) end(r *http.Request) error {
	sm := sessionOf(r)
	if sm == nil {
		return nil
	}
	if err := sm.Destroy(r.Context()); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// csrfToken returns the session's CSRF token for a form, making a session
// to hold one if need be (the login form posts it back, so a page on
// another site cannot log a victim in as the attacker). "" when r has no
// session.
func (m *sessionManager) csrfToken(r *http.Request) (string, error) {
	sm := sessionOf(r)
	if sm == nil {
		return "", nil
	}
	ctx := r.Context()
	if tok := sm.GetString(ctx, sessionCSRF); tok != "" {
		return tok, nil
	}
	if sm.Token(ctx) == "" {
		// A new session: name it now, so its first save may create a row.
		if err := sm.RenewToken(ctx); err != nil {
			return "", fmt.Errorf("new session: %w", err)
		}
		m.store.issue(sm.Token(ctx))
	}
	tok := randomToken()
	sm.Put(ctx, sessionCSRF, tok)
	return tok, nil
}

// checkCSRF refuses a state-changing request that rides on the session
// cookie unless it comes from our own origin and carries the session's
// CSRF token. The login and logout forms are held to it even without a
// cookie. Requests with an Authorization header are exempt: a browser
// never adds one on its own, so another site cannot borrow it.
func (m *sessionManager) checkCSRF(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	sm := sessionOf(r)
	if sm == nil || r.Header.Get("Authorization") != "" {
		return nil
	}
	if _, err := r.Cookie(sm.Cookie.Name); err != nil && !isSessionForm(r) {
		return nil // no ambient credential: nothing to forge
	}
	if err := m.sameOrigin(r); err != nil {
		return err
	}
	want := sm.GetString(r.Context(), sessionCSRF)
	got := r.Header.Get(csrfHeader)
	if got == "" && isFormPost(r) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		got = r.PostFormValue(csrfField)
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRFToken
	}
	return nil
}

// sameOrigin trusts the browser's Sec-Fetch-Site, else Origin (both
// through net/http's CrossOriginProtection), else Referer. A request with
// none of them is left to the token check.
func (m *sessionManager) sameOrigin(r *http.Request) error {
	if err := m.origin.Check(r); err != nil {
		return errCrossOrigin
	}
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return nil
	}
	if ref := r.Referer(); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Host != r.Host {
			return errCrossOrigin
		}
	}
	return nil
}

// isSessionForm reports whether r posts the login or logout form.
func isSessionForm(r *http.Request) bool {
	return r.URL.Path == "/login" || r.URL.Path == "/logout"
}

// isFormPost reports whether r's body is an HTML form we parse: only
// urlencoded ones, never multipart.
func isFormPost(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionStore keeps scs's sessions in our store, keyed by a hash of the
// token so that a copy of the database opens no session.
//
// It creates a row only for a token the manager has just issued (a new
// session, a login). Any other save updates an existing row or does
// nothing: a request still running when its session ends (logout, a
// timeout, a deleted user) saves it on the way out, and must not bring it
// back.
type sessionStore struct {
	store store.Store
	now   func() time.Time

	mu sync.Mutex
	// issued holds tokens not yet saved, with when they were issued.
	issued map[string]time.Time
}

var _ scs.CtxStore = (*sessionStore)(nil)

// issuedTTL forgets an issued token whose request never saved it.
const issuedTTL = time.Minute

func newSessionStore(st store.Store) *sessionStore {
	return &sessionStore{store: st, now: time.Now, issued: map[string]time.Time{}}
}

// issue allows token's first save.
func (s *sessionStore) issue(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for t, at := range s.issued {
		if now.Sub(at) > issuedTTL {
			delete(s.issued, t)
		}
	}
	s.issued[token] = now
}

// take reports whether token was issued and not yet saved, and forgets it.
func (s *sessionStore) take(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.issued[token]
	delete(s.issued, token)
	return ok
}

// FindCtx returns a session's data if it exists and has not expired.
func (s *sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var data []byte
	err := s.store.View(ctx, func(rd store.Reader) error {
		var err error
		data, err = rd.GetSession(ctx, auth.HashToken(token), s.now())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// CommitCtx saves a session until expiry.
func (s *sessionStore) CommitCtx(ctx context.Context, token string, data []byte, expiry time.Time) error {
	isNew := s.take(token)
	key := auth.HashToken(token)
	return s.store.Update(ctx, func(tx store.Tx) error {
		if !isNew {
			_, err := tx.GetSession(ctx, key, s.now())
			if errors.Is(err, store.ErrNotFound) {
				return nil // ended while this request ran: it stays ended
			}
			if err != nil {
				return err
			}
		}
		return tx.PutSession(ctx, key, data, expiry)
	})
}

// DeleteCtx removes a session; a missing one is not an error.
func (s *sessionStore) DeleteCtx(ctx context.Context, token string) error {
	s.take(token)
	return s.store.Update(ctx, func(tx store.Tx) error {
		return tx.DeleteSession(ctx, auth.HashToken(token))
	})
}

// Find, Commit and Delete are scs's context-free forms; scs calls the Ctx
// ones.

func (s *sessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *sessionStore) Commit(token string, data []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, data, expiry)
}

func (s *sessionStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}
