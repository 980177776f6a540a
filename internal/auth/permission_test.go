package auth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/auth"
)

func perm(t *testing.T, s string) auth.Permission {
	t.Helper()
	p, err := auth.ParsePermission(s)
	require.NoError(t, err)
	return p
}

func TestParsePermission(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want auth.Permission
	}{
		// The resource comes first, as in the examples.
		{"job:submit:analytics", auth.Permission{Verb: "submit", Resource: "job", Scope: "analytics"}},
		{"job:read:*", auth.Permission{Verb: "read", Resource: "job", Scope: "*"}},
		{"node:drain:*", auth.Permission{Verb: "drain", Resource: "node", Scope: "*"}},
		{"job:*:team-a", auth.Permission{Verb: "*", Resource: "job", Scope: "team-a"}},
		{"*:read:*", auth.Permission{Verb: "read", Resource: "*", Scope: "*"}},
		{"admin", auth.Admin},
		{"*:*:*", auth.Admin},
		{"job:read:a.b_c-9", auth.Permission{Verb: "read", Resource: "job", Scope: "a.b_c-9"}},
	} {
		got, err := auth.ParsePermission(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got, c.in)
	}
}

func TestParsePermissionErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "admin ", "Admin", "root", "job", "job:read", "job:read:a:b", "::", "job::a", ":read:a",
		"Job:read:a", "job:read:A", "job:read:a b", "job:read:-a", "job:read:.a", "job:read:a*", "job:re*d:a",
		"job:read:" + string(make([]byte, 64)), "job:read:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"job:read:a\n", "job:read:ä", "job:read:a/b", "job:read:../x",
	} {
		_, err := auth.ParsePermission(in)
		require.Error(t, err, "%q", in)
	}
	_, err := auth.ParsePermissions([]string{"job:read:a", "nonsense", "job:read:b"})
	require.ErrorContains(t, err, `"nonsense"`)
	ps, err := auth.ParsePermissions(nil)
	require.NoError(t, err)
	require.Empty(t, ps)
}

func TestPermissionString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"job:submit:analytics", "node:read:*", "*:read:*", "job:*:x", "admin"} {
		require.Equal(t, s, perm(t, s).String())
	}
	require.Equal(t, "admin", auth.Permission{Verb: "*", Resource: "*", Scope: "*"}.String())
	require.Equal(t, []string{"job:read:a", "admin"}, auth.Strings([]auth.Permission{perm(t, "job:read:a"), auth.Admin}))
}

func TestPermissionValidate(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"admin", "job:submit:x", "job:*:x", "*:read:*", "node:drain:n1", "token:write:*", "audit:read:*", "vars:read:*", "agent:sync:*", "param:write:x", "param:reveal:x"} {
		require.NoError(t, perm(t, s).Validate(), s)
	}
	// Misordered (verb first) or misspelt: refused, not silently useless.
	for _, s := range []string{"read:job:*", "submit:job:a", "jobs:read:*", "job:reed:*", "params:write:x", "param:show:x"} {
		require.Error(t, perm(t, s).Validate(), s)
	}
}

func TestPermissionCovers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		held, asked string
		want        bool
	}{
		{"admin", "job:submit:a", true},
		{"admin", "admin", true},
		{"job:submit:a", "job:submit:a", true},
		{"job:submit:a", "job:submit:b", false},
		{"job:submit:a", "job:read:a", false},
		{"job:submit:a", "node:submit:a", false},
		{"job:*:a", "job:kill:a", true},
		{"job:*:a", "job:kill:b", false},
		{"job:read:*", "job:read:anything", true},
		{"job:read:*", "job:read:*", true},
		{"*:read:*", "node:read:n1", true},
		{"*:read:*", "node:drain:n1", false},
		// A narrow permission never covers a wider one.
		{"job:read:a", "job:read:*", false},
		{"job:read:a", "admin", false},
		{"job:*:a", "job:*:*", false},
		{"job:*:*", "admin", false},
		{"*:*:a", "job:read:*", false},
		// "*" in what is asked is a literal for a narrower holder.
		{"job:read:x", "job:*:x", false},
	} {
		require.Equal(t, c.want, perm(t, c.held).Covers(perm(t, c.asked)), "%s covers %s", c.held, c.asked)
	}
}

func TestHoldsAll(t *testing.T) {
	t.Parallel()
	p := &auth.Principal{Kind: auth.UserKind, Name: "u", Perms: []auth.Permission{perm(t, "job:*:a"), perm(t, "node:read:*")}}
	lack, ok := p.HoldsAll(nil)
	require.True(t, ok)
	require.Equal(t, auth.Permission{}, lack)
	_, ok = p.HoldsAll([]auth.Permission{perm(t, "job:submit:a"), perm(t, "node:read:n1")})
	require.True(t, ok)
	lack, ok = p.HoldsAll([]auth.Permission{perm(t, "job:submit:a"), perm(t, "job:submit:b"), auth.Admin})
	require.False(t, ok)
	require.Equal(t, perm(t, "job:submit:b"), lack, "names the first it lacks")
	_, ok = p.HoldsAll([]auth.Permission{auth.Admin})
	require.False(t, ok)
	require.False(t, p.IsAdmin())
	require.True(t, p.Can("kill", "job", "a"))
	require.False(t, p.Can("kill", "job", "b"))

	admin := &auth.Principal{Kind: auth.UserKind, Perms: []auth.Permission{auth.Admin}}
	require.True(t, admin.IsAdmin())
	_, ok = admin.HoldsAll([]auth.Permission{auth.Admin, perm(t, "token:write:*")})
	require.True(t, ok)

	require.False(t, auth.AnonymousPrincipal.Can("read", "job", "a"))
	_, ok = auth.AnonymousPrincipal.HoldsAll([]auth.Permission{perm(t, "job:read:a")})
	require.False(t, ok)
}

func TestBuiltInRoles(t *testing.T) {
	t.Parallel()
	require.NoError(t, auth.AdminRole.Validate())
	require.NoError(t, auth.ViewerRole.Validate())
	viewer := &auth.Principal{Perms: auth.ViewerRole.Permissions}
	require.True(t, viewer.Can("read", "job", "any"))
	require.True(t, viewer.Can("read", "node", "n1"))
	require.False(t, viewer.Can("kill", "job", "any"))
	require.False(t, viewer.Can("read", "audit", "*"))
	team := &auth.Principal{Perms: auth.TeamPermissions("a")}
	require.True(t, team.Can("submit", "job", "a"))
	require.False(t, team.Can("submit", "job", "b"))

	require.Error(t, auth.Role{Name: "*", Permissions: []auth.Permission{auth.Admin}}.Validate())
	require.Error(t, auth.Role{Name: "Ops", Permissions: []auth.Permission{auth.Admin}}.Validate())
	require.Error(t, auth.Role{Name: "ops"}.Validate(), "a role grants something")
}

func FuzzParsePermission(f *testing.F) {
	for _, s := range []string{"admin", "job:submit:analytics", "*:*:*", "job:*:a", "a:b:c:d", "", ":::", "job:read:*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.ParsePermission(s)
		if err != nil {
			return
		}
		// The text form parses back to the same permission, and is
		// the input itself unless the input spelt admin out.
		back, err := auth.ParsePermission(p.String())
		if err != nil {
			t.Fatalf("%q parsed to %#v whose String %q does not parse: %v", s, p, p.String(), err)
		}
		if back != p {
			t.Fatalf("%q → %#v → %q → %#v", s, p, p.String(), back)
		}
		if p.String() != s && !(p == auth.Admin && s == "*:*:*") {
			t.Fatalf("%q renders as %q", s, p.String())
		}
		// Every permission covers itself; admin covers it.
		if !p.Covers(p) || !auth.Admin.Covers(p) {
			t.Fatalf("%q does not cover itself, or admin does not cover it", s)
		}
	})
}
