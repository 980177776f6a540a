package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// Users, roles and tokens. The rule throughout: nobody grants — by making
// a role, granting one, or making a token — a permission they do not hold.

// Login limits: failures allowed within the window, per user and per
// client address.
const (
	loginFailuresPerUser = 5
	loginFailuresPerAddr = 20
	loginWindow          = 15 * time.Minute
	defaultLoginTTL      = 24 * time.Hour
	maxTokenTTL          = 365 * 24 * time.Hour
)

func (s *Server) authRoutes() {
	s.handle("POST /v1/login", public, s.wrap(s.login))
	s.handle("GET /v1/whoami", signedIn, s.wrap(s.whoami))
	s.handle("GET /v1/users", may(auth.VerbRead, auth.ResourceUser), s.wrap(s.listUsers))
	s.handle("POST /v1/users", may(auth.VerbWrite, auth.ResourceUser), s.wrap(s.createUser))
	s.handle("DELETE /v1/users/{name}", may(auth.VerbWrite, auth.ResourceUser), s.wrap(s.deleteUser))
	s.handle("GET /v1/roles", may(auth.VerbRead, auth.ResourceRole), s.wrap(s.listRoles))
	s.handle("POST /v1/roles", may(auth.VerbWrite, auth.ResourceRole), s.wrap(s.createRole))
	s.handle("DELETE /v1/roles/{name}", may(auth.VerbWrite, auth.ResourceRole), s.wrap(s.deleteRole))
	s.handle("POST /v1/roles/{name}/grant", may(auth.VerbGrant, auth.ResourceRole), s.wrap(s.grantRole(true)))
	s.handle("POST /v1/roles/{name}/revoke", may(auth.VerbGrant, auth.ResourceRole), s.wrap(s.grantRole(false)))
	s.handle("GET /v1/tokens", signedIn, s.wrap(s.listTokens))
	s.handle("POST /v1/tokens", signedIn, s.wrap(s.createToken))
	s.handle("DELETE /v1/tokens/{id}", signedIn, s.wrap(s.revokeToken))
}

func validUser(name string) error {
	if !job.ValidName(name) {
		return badRequestf("name", "user name %q %s", name, job.NameRule)
	}
	return nil
}

func toAPIUser(u auth.User) api.User {
	roles := slices.Clone(u.Roles)
	if roles == nil {
		roles = []string{} // "no roles", not null
	}
	return api.User{Name: u.Name, Roles: roles, CreatedAt: u.CreatedAt}
}

func toAPIToken(t auth.Token) api.Token {
	return api.Token{ID: t.ID, Kind: string(t.Kind), Owner: t.Owner, Name: t.Name, Scope: auth.Strings(t.Scope),
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// login exchanges a user's password for an API token. Failures are
// limited per user and per address, and recorded.
func (s *Server) login(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req api.LoginRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	ttl := time.Duration(req.TTL)
	if ttl == 0 {
		ttl = defaultLoginTTL
	}
	if ttl < 0 || ttl > maxTokenTTL {
		return 0, nil, badRequestf("ttl", "must be between 0s and %s", maxTokenTTL)
	}
	if _, err := s.checkPassword(r, req.User, req.Password); err != nil {
		return 0, nil, err
	}
	noteActor(r, "user "+req.User+" (login)")
	tk, sec, err := s.CreateToken(r.Context(), auth.APIToken, req.User, "login", nil, ttl)
	if err != nil {
		return 0, nil, err
	}
	out := toAPIToken(tk)
	out.Secret = sec.Reveal()
	return http.StatusCreated, out, nil
}

// errTooManyLogins answers 429.
var errTooManyLogins = errors.New("too many failed logins; wait and try again")

// checkPassword verifies a login, within the failure limits, and records
// a failure as an event.
func (s *Server) checkPassword(r *http.Request, user, password string) (auth.User, error) {
	addr := source(r)
	if !s.loginUsers.Allowed(user) || !s.loginAddrs.Allowed(addr) {
		s.recordLoginFailure(r, user, "refused: too many failures")
		return auth.User{}, errTooManyLogins
	}
	var u auth.User
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		u, err = rd.GetUser(r.Context(), user)
		return err
	})
	ok := false
	switch {
	case err == nil && u.PasswordHash != "":
		ok = auth.CheckPassword(u.PasswordHash, password)
	case err == nil || errors.Is(err, store.ErrNotFound):
		auth.CheckNoUser(password) // the same time for unknown users
	default:
		return auth.User{}, err
	}
	if !ok {
		s.loginUsers.Failed(user)
		s.loginAddrs.Failed(addr)
		s.recordLoginFailure(r, user, "wrong user or password")
		return auth.User{}, &credentialsError{}
	}
	s.loginUsers.Reset(user)
	return u, nil
}

// credentialsError answers 401 for a failed login without saying whether
// the user exists.
type credentialsError struct{}

func (*credentialsError) Error() string { return "wrong user name or password" }

func (s *Server) recordLoginFailure(r *http.Request, user, why string) {
	e := event.Event{At: time.Now().UTC(), Reason: event.LoginFailed, Actor: "login as " + sanitizeName(user),
		Source: source(r), Message: why}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.store.Update(ctx, func(tx store.Tx) error { return tx.InsertEvents(ctx, e) }); err != nil {
		s.log.WarnContext(ctx, "could not record a failed login", "err", err)
	}
}

// sanitizeName keeps a user-given name printable and short for the
// record.
func sanitizeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	if job.ValidName(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) (int, any, error) {
	p := principalOf(r)
	return http.StatusOK, api.WhoAmI{Kind: string(p.Kind), Name: p.Name, TokenID: p.TokenID, Permissions: auth.Strings(p.Perms)}, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) (int, any, error) {
	out := []api.User{}
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		us, err := rd.ListUsers(r.Context())
		for _, u := range us {
			out = append(out, toAPIUser(u))
		}
		return err
	})
	return http.StatusOK, out, err
}

// rolePermissions returns the permissions of roles, or an error naming a
// role that does not exist.
func rolePermissions(ctx context.Context, rd store.Reader, roles []string) ([]auth.Permission, error) {
	var perms []auth.Permission
	for _, name := range roles {
		role, err := rd.GetRole(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, badRequestf("roles", "there is no role %q", name)
		}
		if err != nil {
			return nil, err
		}
		perms = append(perms, role.Permissions...)
	}
	return perms, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req api.UserRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	if err := validUser(req.Name); err != nil {
		return 0, nil, err
	}
	var hash string
	if req.Password != "" {
		h, err := auth.HashPassword(req.Password)
		if err != nil {
			return 0, nil, badRequestf("password", "%s", strings.TrimPrefix(err.Error(), "password: "))
		}
		hash = h
	}
	p := principalOf(r)
	u := auth.User{Name: req.Name, PasswordHash: hash, Roles: req.Roles, CreatedAt: time.Now().UTC()}
	err := s.store.Update(r.Context(), func(tx store.Tx) error {
		if _, err := tx.GetUser(r.Context(), req.Name); err == nil {
			return &conflictError{msg: "user " + req.Name + " exists"}
		}
		perms, err := rolePermissions(r.Context(), tx, req.Roles)
		if err != nil {
			return err
		}
		if lack, ok := p.HoldsAll(perms); !ok {
			return forbidden("you cannot give roles with %s, which you do not hold", lack)
		}
		return tx.PutUser(r.Context(), u)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, toAPIUser(u), nil
}

// conflictError answers 409.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

func (e *conflictError) Unwrap() error { return store.ErrConflict }

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if err := validUser(name); err != nil {
		return 0, nil, err
	}
	p := principalOf(r)
	err := s.store.Update(r.Context(), func(tx store.Tx) error {
		u, err := tx.GetUser(r.Context(), name)
		if err != nil {
			return notFound("user "+name, err)
		}
		perms, err := rolePermissions(r.Context(), tx, u.Roles)
		if err != nil && !errors.As(err, new(*badRequest)) {
			return err
		}
		// Removing someone more powerful is an escalation too: it could
		// lock the admins out.
		if lack, ok := p.HoldsAll(perms); !ok {
			return forbidden("you cannot delete a user holding %s, which you do not hold", lack)
		}
		if err := tx.DeleteUser(r.Context(), name); err != nil {
			return err
		}
		// Their tokens die with them.
		tks, err := tx.ListTokens(r.Context(), name)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		for _, tk := range tks {
			if tk.RevokedAt == nil {
				tk.RevokedAt = &now
				if err := tx.PutToken(r.Context(), tk); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"deleted": name}, nil
}

// parseGiven parses permissions a caller wants to put in a role or a
// token. Unlike the store's reading, it refuses verbs and resources drover
// does not know: a misspelt or misordered permission would otherwise
// grant nothing without a word.
func parseGiven(ss []string) ([]auth.Permission, error) {
	perms, err := auth.ParsePermissions(ss)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range perms {
		errs = append(errs, p.Validate())
	}
	return perms, errors.Join(errs...)
}

func toAPIRole(r auth.Role) api.Role {
	return api.Role{Name: r.Name, Permissions: auth.Strings(r.Permissions), CreatedAt: r.CreatedAt}
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) (int, any, error) {
	out := []api.Role{}
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		rs, err := rd.ListRoles(r.Context())
		for _, ro := range rs {
			out = append(out, toAPIRole(ro))
		}
		return err
	})
	return http.StatusOK, out, err
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req api.Role
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	perms, err := parseGiven(req.Permissions)
	if err != nil {
		return 0, nil, badRequestf("permissions", "%s", err)
	}
	role := auth.Role{Name: req.Name, Permissions: perms, CreatedAt: time.Now().UTC()}
	if len(perms) == 0 {
		return 0, nil, badRequestf("permissions", "a role needs at least one permission")
	}
	if err := role.Validate(); err != nil {
		return 0, nil, badRequestf("name", "%s", err)
	}
	if lack, ok := principalOf(r).HoldsAll(perms); !ok {
		return 0, nil, forbidden("you cannot make a role with %s, which you do not hold", lack)
	}
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		if _, err := tx.GetRole(r.Context(), req.Name); err == nil {
			return &conflictError{msg: "role " + req.Name + " exists"}
		}
		return tx.PutRole(r.Context(), role)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, toAPIRole(role), nil
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	p := principalOf(r)
	err := s.store.Update(r.Context(), func(tx store.Tx) error {
		role, err := tx.GetRole(r.Context(), name)
		if err != nil {
			return notFound("role "+name, err)
		}
		if lack, ok := p.HoldsAll(role.Permissions); !ok {
			return forbidden("you cannot delete a role with %s, which you do not hold", lack)
		}
		if err := tx.DeleteRole(r.Context(), name); err != nil {
			return err
		}
		// Its members lose it now: left on their lists, it would come
		// back with any role made later under the name, granted by
		// someone who may write roles but not grant them.
		users, err := tx.ListUsers(r.Context())
		if err != nil {
			return err
		}
		for _, u := range users {
			if slices.Contains(u.Roles, name) {
				u.Roles = slices.DeleteFunc(u.Roles, func(x string) bool { return x == name })
				if err := tx.PutUser(r.Context(), u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"deleted": name}, nil
}

func (s *Server) grantRole(grant bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		var req api.GrantRequest
		if err := decodeJSON(r, &req); err != nil {
			return 0, nil, err
		}
		name := r.PathValue("name")
		p := principalOf(r)
		var out auth.User
		err := s.store.Update(r.Context(), func(tx store.Tx) error {
			role, err := tx.GetRole(r.Context(), name)
			if err != nil {
				return notFound("role "+name, err)
			}
			if lack, ok := p.HoldsAll(role.Permissions); !ok {
				return forbidden("you cannot grant or revoke a role with %s, which you do not hold", lack)
			}
			u, err := tx.GetUser(r.Context(), req.User)
			if err != nil {
				return notFound("user "+req.User, err)
			}
			has := slices.Contains(u.Roles, name)
			switch {
			case grant && !has:
				u.Roles = append(u.Roles, name)
			case !grant && has:
				u.Roles = slices.DeleteFunc(u.Roles, func(x string) bool { return x == name })
			}
			out = u
			return tx.PutUser(r.Context(), u)
		})
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, toAPIUser(out), nil
	}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) (int, any, error) {
	p := principalOf(r)
	owner := p.Name
	if r.URL.Query().Get("all") == "true" {
		if !p.Can(auth.VerbRead, auth.ResourceToken, "*") {
			return 0, nil, forbidden("you lack the permission token:read:*")
		}
		owner = ""
	}
	out := []api.Token{}
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		ts, err := rd.ListTokens(r.Context(), owner)
		for _, t := range ts {
			out = append(out, toAPIToken(t))
		}
		return err
	})
	return http.StatusOK, out, err
}

// createToken makes an API token for the caller (or, with token:write:*,
// for another user) narrowed to a scope the caller holds, or an agent
// token (token:write:*). The answer carries the secret, once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req api.TokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	p := principalOf(r)
	ttl := time.Duration(req.TTL)
	if ttl < 0 || ttl > maxTokenTTL {
		return 0, nil, badRequestf("ttl", "must be between 0s and %s", maxTokenTTL)
	}
	if len(req.Name) > 64 {
		return 0, nil, badRequestf("name", "must be at most 64 characters")
	}
	scope, err := parseGiven(req.Scope)
	if err != nil {
		return 0, nil, badRequestf("scope", "%s", err)
	}
	var kind auth.TokenKind
	owner := p.Name
	switch req.Kind {
	case "", string(auth.APIToken):
		kind = auth.APIToken
		if req.User != "" && req.User != p.Name {
			if !p.Can(auth.VerbWrite, auth.ResourceToken, "*") {
				return 0, nil, forbidden("you lack the permission token:write:* to make tokens for others")
			}
			owner = req.User
			// Acting as another user is holding what they hold.
			var theirs []auth.Permission
			err := s.store.View(r.Context(), func(rd store.Reader) error {
				up, err := userPrincipal(r.Context(), rd, owner)
				if err != nil {
					return notFound("user "+owner, store.ErrNotFound)
				}
				theirs = up.Perms
				return nil
			})
			if err != nil {
				return 0, nil, err
			}
			if lack, ok := p.HoldsAll(theirs); !ok {
				return 0, nil, forbidden("you cannot make a token for a user holding %s, which you do not hold", lack)
			}
			if len(scope) == 0 && !p.IsAdmin() {
				// Unscoped, it would follow the user's later grants,
				// which its maker (who keeps a copy) may not hold: it is
				// narrowed to what the user holds now, all of which the
				// maker holds.
				if len(theirs) == 0 {
					return 0, nil, forbidden("user %s holds no permission to put in a token", owner)
				}
				scope = slices.Clone(theirs)
			}
		}
		if lack, ok := p.HoldsAll(scope); !ok {
			return 0, nil, forbidden("you cannot make a token with %s, which you do not hold", lack)
		}
		if p.Scoped && len(scope) == 0 && owner == p.Name {
			// A scoped token must not mint an unscoped one for its own
			// user: the new token gets what is left of the caller's
			// scope. (For another user, the caller already holds all
			// that user holds, so their unscoped token grants nothing
			// new.) If nothing
			// is left, an empty scope would mean all of the owner's
			// permissions.
			if len(p.Perms) == 0 {
				return 0, nil, forbidden("this token has no permission left to put in a new one")
			}
			scope = slices.Clone(p.Perms)
		}
	case string(auth.AgentToken):
		if !p.Can(auth.VerbWrite, auth.ResourceToken, "*") {
			return 0, nil, forbidden("you lack the permission token:write:* to make agent tokens")
		}
		kind, owner, scope = auth.AgentToken, "", nil
	default:
		return 0, nil, badRequestf("kind", "must be api or agent, not %q", req.Kind)
	}
	tk, sec, err := s.CreateToken(r.Context(), kind, owner, req.Name, scope, ttl)
	if err != nil {
		return 0, nil, err
	}
	out := toAPIToken(tk)
	out.Secret = sec.Reveal()
	return http.StatusCreated, out, nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	p := principalOf(r)
	var out auth.Token
	err := s.store.Update(r.Context(), func(tx store.Tx) error {
		tk, err := tx.GetToken(r.Context(), id)
		if err != nil {
			return notFound("token "+id, err)
		}
		if tk.Owner != p.Name && !p.Can(auth.VerbWrite, auth.ResourceToken, "*") {
			return &notFoundError{what: "token " + id}
		}
		if tk.RevokedAt == nil {
			now := time.Now().UTC()
			tk.RevokedAt = &now
			if err := tx.PutToken(r.Context(), tk); err != nil {
				return err
			}
		}
		out = tk
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIToken(out), nil
}
