package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/secret"
)

// TokenKind says what a token is for.
type TokenKind string

// Token kinds.
const (
	// APIToken acts as its owner user, narrowed to its scope if it has one.
	APIToken TokenKind = "api"
	// AgentToken lets agents register and sync. A node belongs to the
	// token that registered it: no other token may sync as it.
	AgentToken TokenKind = "agent"
)

// Token is a stored token. Only a hash of its secret is kept.
type Token struct {
	ID         string
	SecretHash string
	Kind       TokenKind
	// Owner is the user an API token acts as.
	Owner string
	Name  string
	// Scope narrows an API token to these permissions (each held by the
	// owner when the token was made); empty means all of the owner's.
	Scope     []Permission
	Node      string // an agent token's node, once bound
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

// IsUsable reports whether the token may be used at now.
func (t Token) IsUsable(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// tokenPrefix starts every token, so a leaked one is easy to search for.
const tokenPrefix = "drv_"

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b32.EncodeToString(b)[:n]
}

// NewTokenSecret makes a token's ID and its full secret text
// "drv_ID_SECRET" (the ID is public, the rest is 160 random bits).
func NewTokenSecret() (id string, full secret.String) {
	id = randomString(12)
	return id, secret.New(tokenPrefix + id + "_" + randomString(32))
}

// ParseToken splits a presented token into its ID and the text to hash.
func ParseToken(presented string) (id string, ok bool) {
	rest, found := strings.CutPrefix(presented, tokenPrefix)
	if !found {
		return "", false
	}
	id, sec, found := strings.Cut(rest, "_")
	if !found || len(id) != 12 || len(sec) != 32 {
		return "", false
	}
	return id, true
}

// HashToken returns the hash stored for a token. Tokens carry 160 random
// bits, so a fast hash is enough (unlike passwords).
func HashToken(presented string) string {
	sum := sha256.Sum256([]byte(presented))
	return hex.EncodeToString(sum[:])
}

// MatchToken compares a presented token with a stored hash in constant
// time.
func MatchToken(presented, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(presented)), []byte(hash)) == 1
}

// User is a person (or a program) that logs in.
type User struct {
	Name         string
	PasswordHash string // argon2id; empty: no password login (tokens only)
	Roles        []string
	CreatedAt    time.Time
}

// Role is a named set of permissions.
type Role struct {
	Name        string
	Permissions []Permission
	CreatedAt   time.Time
}

// Built-in roles, created with the first admin.
var (
	// AdminRole holds every permission.
	AdminRole = Role{Name: "admin", Permissions: []Permission{Admin}}
	// ViewerRole reads every job, node and pool.
	ViewerRole = Role{Name: "viewer", Permissions: []Permission{
		{VerbRead, ResourceJob, "*"}, {VerbRead, ResourceNode, "*"}, {VerbRead, ResourcePool, "*"},
	}}
)

// TeamPermissions are the permissions a team's members usually need for
// its role (tenant) name: read, submit and kill its jobs, read the nodes.
func TeamPermissions(team string) []Permission {
	return []Permission{
		{VerbRead, ResourceJob, team}, {VerbSubmit, ResourceJob, team}, {VerbKill, ResourceJob, team},
		{VerbRead, ResourceNode, "*"},
	}
}

// Validate checks a role's name and permissions.
func (r Role) Validate() error {
	if !partPattern.MatchString(r.Name) || r.Name == "*" {
		return fmt.Errorf("role name %q: must be 1-63 characters of a-z, 0-9, '_', '.', '-'", r.Name)
	}
	if len(r.Permissions) == 0 {
		return fmt.Errorf("role %s: needs at least one permission", r.Name)
	}
	return nil
}
