package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/store"
)

// Authentication: every request but GET /health is made by a principal —
// a user through an API token (Authorization: Bearer drv_…) or a web
// session, an agent through an agent token, or nobody (anonymous), which
// no route but /health and the login page serves.

var (
	// errUnauthenticated answers 401: no credentials, or bad ones.
	errUnauthenticated = errors.New("authentication required: send an API token (Authorization: Bearer …) or log in")
	// errBadCredentials answers 401 for a token that is unknown, revoked
	// or expired; it never says which.
	errBadCredentials = errors.New("the token is not valid (unknown, revoked or expired)")
)

// forbiddenError answers 403.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string { return e.msg }

func forbidden(format string, args ...any) error {
	return &forbiddenError{msg: fmt.Sprintf(format, args...)}
}

type principalKey struct{}

// principalOf returns the request's principal (anonymous if none).
func principalOf(r *http.Request) *auth.Principal { return principalFrom(r.Context()) }

// principalFrom returns the principal a context carries (anonymous if none).
func principalFrom(ctx context.Context) *auth.Principal {
	if p, ok := ctx.Value(principalKey{}).(*auth.Principal); ok {
		return p
	}
	return auth.AnonymousPrincipal
}

// authenticate finds who makes the request.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return s.sessionPrincipal(r)
	}
	presented, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, errBadCredentials
	}
	return s.tokenPrincipal(r.Context(), strings.TrimSpace(presented))
}

// tokenPrincipal checks a presented token and returns whom it acts as.
func (s *Server) tokenPrincipal(ctx context.Context, presented string) (*auth.Principal, error) {
	id, ok := auth.ParseToken(presented)
	if !ok {
		auth.MatchToken(presented, "") // spend the same time as a real check
		return nil, errBadCredentials
	}
	var p *auth.Principal
	err := s.store.View(ctx, func(rd store.Reader) error {
		tk, err := rd.GetToken(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			auth.MatchToken(presented, "")
			return errBadCredentials
		}
		if err != nil {
			return err
		}
		if !auth.MatchToken(presented, tk.SecretHash) || !tk.IsUsable(time.Now()) {
			return errBadCredentials
		}
		if tk.Kind == auth.AgentToken {
			p = &auth.Principal{Kind: auth.AgentKind, Name: tk.Name, TokenID: tk.ID,
				Perms: []auth.Permission{{Verb: auth.VerbSync, Resource: auth.ResourceAgent, Scope: "*"}}}
			return nil
		}
		up, err := userPrincipal(ctx, rd, tk.Owner)
		if err != nil {
			return err
		}
		up.TokenID = tk.ID
		if len(tk.Scope) > 0 {
			// A scoped token can do what its scope says and its owner
			// still may: removing a role from the user narrows the token.
			var perms []auth.Permission
			for _, q := range tk.Scope {
				if up.Holds(q) {
					perms = append(perms, q)
				}
			}
			up.Perms, up.Scoped = perms, true
		}
		p = up
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// userPrincipal builds a user's principal from their roles. A user who no
// longer exists has no credentials.
func userPrincipal(ctx context.Context, rd store.Reader, name string) (*auth.Principal, error) {
	u, err := rd.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, err
	}
	p := &auth.Principal{Kind: auth.UserKind, Name: u.Name}
	for _, rn := range u.Roles {
		r, err := rd.GetRole(ctx, rn)
		if errors.Is(err, store.ErrNotFound) {
			continue // a deleted role grants nothing
		}
		if err != nil {
			return nil, err
		}
		p.Perms = append(p.Perms, r.Permissions...)
	}
	return p, nil
}

// sessionPrincipal is the web session's user, or anonymous.
func (s *Server) sessionPrincipal(r *http.Request) (*auth.Principal, error) {
	if s.sessions == nil {
		return auth.AnonymousPrincipal, nil
	}
	return s.sessions.principal(r)
}

// BootstrapResult says what [Server.Bootstrap] created.
type BootstrapResult struct {
	// AdminPassword is the new admin user's password, shown once; zero if
	// the store already had users.
	AdminPassword secret.String
}

// Bootstrap prepares an empty store: the built-in roles admin and viewer,
// and a user "admin" with a random password, returned once. A store with
// users is left alone.
func (s *Server) Bootstrap(ctx context.Context) (BootstrapResult, error) {
	var res BootstrapResult
	err := s.store.Update(ctx, func(tx store.Tx) error {
		users, err := tx.ListUsers(ctx)
		if err != nil || len(users) > 0 {
			return err
		}
		now := time.Now().UTC()
		for _, r := range []auth.Role{auth.AdminRole, auth.ViewerRole} {
			r.CreatedAt = now
			if err := tx.PutRole(ctx, r); err != nil {
				return err
			}
		}
		pw := auth.RandomPassword()
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		res.AdminPassword = secret.New(pw)
		return tx.PutUser(ctx, auth.User{Name: "admin", PasswordHash: hash, Roles: []string{"admin"}, CreatedAt: now})
	})
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap: %w", err)
	}
	return res, nil
}

// CreateToken makes a token and returns its secret text, which is stored
// only as a hash: this is the one time it is seen. An API token acts as
// owner (narrowed to scope, if given); an agent token lets agents register
// and sync. The caller has checked the right to make it.
func (s *Server) CreateToken(ctx context.Context, kind auth.TokenKind, owner, name string, scope []auth.Permission, ttl time.Duration) (auth.Token, secret.String, error) {
	id, full := auth.NewTokenSecret()
	now := time.Now().UTC()
	tk := auth.Token{ID: id, SecretHash: auth.HashToken(full.Reveal()), Kind: kind, Owner: owner, Name: name,
		Scope: scope, CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		tk.ExpiresAt = &exp
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		if kind == auth.APIToken {
			if _, err := tx.GetUser(ctx, owner); err != nil {
				return notFound("user "+owner, err)
			}
		}
		return tx.PutToken(ctx, tk)
	})
	if err != nil {
		return auth.Token{}, secret.String{}, fmt.Errorf("create token: %w", err)
	}
	return tk, full, nil
}

// CheckToken returns whom a token acts as, or an error if it is not valid.
func (s *Server) CheckToken(ctx context.Context, token secret.String) (*auth.Principal, error) {
	return s.tokenPrincipal(ctx, token.Reveal())
}
