package api

import "time"

// User is a user as the API shows it (never its password).
type User struct {
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

// UserRequest creates a user (POST /v1/users).
type UserRequest struct {
	Name string `json:"name"`
	// Password may be empty: the user then signs in with tokens only.
	Password string   `json:"password,omitempty"`
	Roles    []string `json:"roles,omitempty"`
}

// Role is a named set of permissions ("job:submit:analytics", "admin").
type Role struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

// GrantRequest grants a role to a user, or revokes it.
type GrantRequest struct {
	User string `json:"user"`
}

// TokenRequest creates a token (POST /v1/tokens).
type TokenRequest struct {
	Name string `json:"name"`
	// Kind is "api" (default) or "agent".
	Kind string `json:"kind,omitempty"`
	// User owns an API token; default: the caller.
	User string `json:"user,omitempty"`
	// Scope narrows an API token to these permissions.
	Scope []string `json:"scope,omitempty"`
	// TTL makes the token expire ("720h"); zero: never.
	TTL Duration `json:"ttl,omitempty"`
}

// Token is a token as the API shows it. Secret is set only in the answer
// that creates it: the server keeps a hash and cannot show it again.
type Token struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Owner     string     `json:"owner,omitempty"`
	Name      string     `json:"name,omitempty"`
	Scope     []string   `json:"scope,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Secret    string     `json:"secret,omitempty"`
}

// LoginRequest exchanges a password for an API token (POST /v1/login).
type LoginRequest struct {
	User     string   `json:"user"`
	Password string   `json:"password"`
	TTL      Duration `json:"ttl,omitempty"`
}

// WhoAmI answers GET /v1/whoami.
type WhoAmI struct {
	Kind        string   `json:"kind"`
	Name        string   `json:"name"`
	TokenID     string   `json:"token_id,omitempty"`
	Permissions []string `json:"permissions"`
}

// Param is a role's parameter as the API shows it. Value is "<redacted>"
// for a secret one, unless it was asked for with ?reveal=true.
type Param struct {
	Role      string    `json:"role"`
	Name      string    `json:"name"`
	Value     string    `json:"value"`
	Secret    bool      `json:"secret"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ParamRequest sets a parameter (PUT /v1/params/{role}/{name}).
type ParamRequest struct {
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}
