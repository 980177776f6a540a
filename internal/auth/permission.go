// Package auth holds who may do what: users, roles, API and agent tokens,
// permissions in Aurora's spirit (resource:verb:scope), the principal a
// request acts as, and the rules that keep a principal from granting more
// than it holds. Persistence lives in store; HTTP lives in server.
package auth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Permission allows one verb on one resource within one scope (a role,
// that is a tenant, or a node). Any part may be "*". Its text form names
// the resource first, as Aurora's permissions do: "job:submit:analytics".
type Permission struct {
	Verb, Resource, Scope string
}

// Admin is the permission that covers every other.
var Admin = Permission{"*", "*", "*"}

var partPattern = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9_.-]{0,62})$`)

// ParsePermission parses "resource:verb:scope" (job:submit:analytics) or
// "admin".
func ParsePermission(s string) (Permission, error) {
	if s == "admin" {
		return Admin, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Permission{}, fmt.Errorf("permission %q: must be resource:verb:scope (job:submit:analytics) or admin", s)
	}
	for _, p := range parts {
		if !partPattern.MatchString(p) {
			return Permission{}, fmt.Errorf("permission %q: each part must be * or a name of a-z, 0-9, '_', '.', '-'", s)
		}
	}
	return Permission{Resource: parts[0], Verb: parts[1], Scope: parts[2]}, nil
}

// ParsePermissions parses a list, naming the first bad one.
func ParsePermissions(ss []string) ([]Permission, error) {
	out := make([]Permission, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePermission(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// String returns "resource:verb:scope", or "admin".
func (p Permission) String() string {
	if p == Admin {
		return "admin"
	}
	return p.Resource + ":" + p.Verb + ":" + p.Scope
}

// Validate checks that p names a verb and a resource drover knows (or
// "*"), so that a misspelt or misordered permission is refused instead of
// granting nothing without a word.
func (p Permission) Validate() error {
	if p.Resource != "*" && !slices.Contains(resources, p.Resource) {
		return fmt.Errorf("permission %s: unknown resource %q (resource:verb:scope; resources are %s)", p, p.Resource, strings.Join(resources, ", "))
	}
	if p.Verb != "*" && !slices.Contains(verbs, p.Verb) {
		return fmt.Errorf("permission %s: unknown verb %q (resource:verb:scope; verbs are %s)", p, p.Verb, strings.Join(verbs, ", "))
	}
	return nil
}

// Covers reports whether holding p allows everything q allows.
func (p Permission) Covers(q Permission) bool {
	part := func(a, b string) bool { return a == "*" || a == b }
	return part(p.Verb, q.Verb) && part(p.Resource, q.Resource) && part(p.Scope, q.Scope)
}

// Strings renders permissions.
func Strings(ps []Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// Verbs and resources drover checks. A route needs one permission.
const (
	VerbRead   = "read"
	VerbSubmit = "submit"
	VerbKill   = "kill"
	VerbDrain  = "drain"
	VerbWrite  = "write"
	VerbGrant  = "grant"
	VerbSync   = "sync"
	// VerbReveal reads a secret parameter's value.
	VerbReveal = "reveal"

	ResourceJob   = "job"
	ResourceNode  = "node"
	ResourceUser  = "user"
	ResourceRole  = "role"
	ResourceToken = "token"
	ResourceAudit = "audit"
	ResourceAgent = "agent"
	ResourceVars  = "vars"
	ResourceParam = "param"
	// ResourcePool is pools (scope: the pool's name).
	ResourcePool = "pool"
)

var (
	verbs     = []string{VerbRead, VerbSubmit, VerbKill, VerbDrain, VerbWrite, VerbGrant, VerbSync, VerbReveal}
	resources = []string{ResourceJob, ResourceNode, ResourceUser, ResourceRole, ResourceToken, ResourceAudit, ResourceAgent, ResourceVars, ResourceParam, ResourcePool}
)

// Kind is what sort of principal acts.
type Kind string

// Kinds of principal.
const (
	Anonymous Kind = "anonymous"
	UserKind  Kind = "user"
	AgentKind Kind = "agent"
)

// Principal is who a request acts as, with what it may do.
type Principal struct {
	Kind Kind
	// Name is the user's name, or the agent token's name.
	Name string
	// TokenID is the token the request came with, if any.
	TokenID string
	Perms   []Permission
	// Scoped says the request's token is narrowed to a scope: Perms is
	// what is left of it, and a token it makes must be no wider.
	Scoped bool
}

// AnonymousPrincipal is a request without credentials.
var AnonymousPrincipal = &Principal{Kind: Anonymous, Name: "anonymous"}

// Can reports whether the principal holds a permission covering verb on
// resource within scope.
func (p *Principal) Can(verb, resource, scope string) bool {
	return p.Holds(Permission{verb, resource, scope})
}

// Holds reports whether one of the principal's permissions covers q.
func (p *Principal) Holds(q Permission) bool {
	return slices.ContainsFunc(p.Perms, func(h Permission) bool { return h.Covers(q) })
}

// HoldsAll reports whether the principal holds every permission of qs, and
// names the first it lacks: the rule that nobody grants more than they
// hold.
func (p *Principal) HoldsAll(qs []Permission) (Permission, bool) {
	for _, q := range qs {
		if !p.Holds(q) {
			return q, false
		}
	}
	return Permission{}, true
}

// IsAdmin reports whether the principal holds [Admin].
func (p *Principal) IsAdmin() bool { return p.Holds(Admin) }
