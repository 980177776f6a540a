package server_test

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/task"
)

// Privilege escalation: nobody grants — by a role, a grant or a token —
// what they do not hold, and agents are no users.

// addUser makes a role named after the user with perms, and the user with
// that role and any others, and returns an unscoped token of theirs.
func (w *world) addUser(t *testing.T, name string, perms []string, roles ...string) string {
	t.Helper()
	if len(perms) > 0 {
		w.must(t, w.tok[whoAdmin], "POST", "/v1/roles", mustJSON(t, api.Role{Name: name, Permissions: perms}), http.StatusCreated)
		roles = append([]string{name}, roles...)
	}
	w.must(t, w.tok[whoAdmin], "POST", "/v1/users", mustJSON(t, api.UserRequest{Name: name, Roles: roles}), http.StatusCreated)
	_, sec, err := w.srv.CreateToken(t.Context(), auth.APIToken, name, "test", nil, 0)
	require.NoError(t, err)
	return sec.Reveal()
}

// mint asks for a token as bearer; on 201 it returns it.
func (w *world) mint(t *testing.T, bearer string, req api.TokenRequest, want int) api.Token {
	t.Helper()
	data := w.must(t, bearer, "POST", "/v1/tokens", mustJSON(t, req), want)
	var tk api.Token
	if want == http.StatusCreated {
		require.NoError(t, json.Unmarshal(data, &tk))
		require.NotEmpty(t, tk.Secret)
	}
	return tk
}

// allTokens lists every token (as admin).
func (w *world) allTokens(t *testing.T) []api.Token {
	t.Helper()
	var ts []api.Token
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoAdmin], "GET", "/v1/tokens?all=true", "", http.StatusOK), &ts))
	return ts
}

func (w *world) rolesOf(t *testing.T, name string) []string {
	t.Helper()
	u, ok := w.user(t, name)
	require.True(t, ok, "user %s", name)
	return u.Roles
}

// grantor manages roles (and reads them) and runs team A, but is no admin.
var grantorPerms = []string{"role:grant:*", "role:write:*", "role:read:*", "job:*:team-a", "node:read:*"}

func TestCannotMakeARoleBeyondWhatYouHold(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.addUser(t, "grantor", grantorPerms)
	for _, perms := range [][]string{
		{"admin"},
		{"*:*:*"},
		{"job:*:team-b"},
		{"job:read:*"},
		{"job:*:*"},
		{"user:write:*"},
		{"token:write:*"},
		{"job:read:team-a", "audit:read:*"}, // one of several is enough to refuse
	} {
		body := mustJSON(t, api.Role{Name: "evil", Permissions: perms})
		code, data := w.call(t, g, "POST", "/v1/roles", body)
		require.Equal(t, http.StatusForbidden, code, "%v: %s", perms, data)
		require.False(t, w.hasRole(t, "evil"), "%v", perms)
	}
	// What the grantor holds, it may pass on.
	w.must(t, g, "POST", "/v1/roles", `{"name": "a-readers", "permissions": ["job:read:team-a"]}`, http.StatusCreated)

	// Nor may it delete a role beyond it (which could lock the admins
	// out), nor remake its own role bigger.
	w.must(t, g, "DELETE", "/v1/roles/admin", "", http.StatusForbidden)
	require.True(t, w.hasRole(t, "admin"))
	w.must(t, g, "DELETE", "/v1/roles/grantor", "", http.StatusOK)
	w.must(t, g, "POST", "/v1/roles", `{"name": "grantor", "permissions": ["admin"]}`, http.StatusForbidden)
	require.False(t, w.hasRole(t, "grantor"))
}

func TestCannotGrantWhatYouDoNotHold(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.addUser(t, "grantor", grantorPerms)
	for _, c := range []struct{ role, user string }{
		{"admin", "grantor"}, {"admin", "alice"}, {"team-b", "grantor"}, {"team-b", "alice"}, {"viewer", "grantor"},
	} {
		before := w.rolesOf(t, c.user)
		code, data := w.call(t, g, "POST", "/v1/roles/"+c.role+"/grant", mustJSON(t, api.GrantRequest{User: c.user}))
		require.Equal(t, http.StatusForbidden, code, "grant %s to %s: %s", c.role, c.user, data)
		require.Equal(t, before, w.rolesOf(t, c.user))
	}
	require.False(t, slices.Contains(w.whoami(t, g).Permissions, "admin"))
	// Revoking is held to the same rule: the admin stays admin.
	w.must(t, g, "POST", "/v1/roles/admin/revoke", `{"user": "admin"}`, http.StatusForbidden)
	require.Equal(t, []string{"admin"}, w.rolesOf(t, "admin"))
	// A role within its reach it may grant.
	w.must(t, g, "POST", "/v1/roles/team-a/grant", `{"user": "bob"}`, http.StatusOK)
	require.Equal(t, []string{"team-b", "team-a"}, w.rolesOf(t, "bob"))
}

func TestCannotMakeATokenBeyondWhatYouHold(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.addUser(t, "grantor", grantorPerms)
	before := len(w.allTokens(t))
	for _, scope := range [][]string{{"admin"}, {"job:submit:team-b"}, {"job:read:*"}, {"token:write:*"}} {
		w.mint(t, g, api.TokenRequest{Name: "x", Scope: scope}, http.StatusForbidden)
	}
	// Tokens for others need token:write:*, and agent tokens too.
	w.mint(t, g, api.TokenRequest{Name: "x", User: "alice"}, http.StatusForbidden)
	w.mint(t, g, api.TokenRequest{Name: "x", Kind: "agent"}, http.StatusForbidden)
	require.Len(t, w.allTokens(t), before, "no refused token was made")

	tk := w.mint(t, g, api.TokenRequest{Name: "x", Scope: []string{"job:read:team-a"}}, http.StatusCreated)
	require.Equal(t, []string{"job:read:team-a"}, tk.Scope)
	require.Equal(t, []string{"job:read:team-a"}, w.whoami(t, tk.Secret).Permissions)

	// With token:write:*, tokens for others — but only for users it
	// covers: not for the admin, not for team B.
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles", `{"name": "token-writer", "permissions": ["token:write:*"]}`, http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles/token-writer/grant", `{"user": "grantor"}`, http.StatusOK)
	before = len(w.allTokens(t))
	w.mint(t, g, api.TokenRequest{Name: "x", User: "admin"}, http.StatusForbidden)
	w.mint(t, g, api.TokenRequest{Name: "x", User: "bob"}, http.StatusForbidden)
	require.Len(t, w.allTokens(t), before)
	forAlice := w.mint(t, g, api.TokenRequest{Name: "x", User: "alice"}, http.StatusCreated)
	require.Equal(t, "alice", forAlice.Owner)
	who := w.whoami(t, forAlice.Secret)
	require.Equal(t, "alice", who.Name)
	require.ElementsMatch(t, []string{"job:*:team-a", "node:read:*"}, who.Permissions)
}

// TestTokenForAnotherUserActsAsThem: a token an admin makes for a user
// holds what that user holds — not nothing, and not the admin's power.
func TestTokenForAnotherUserActsAsThem(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tk := w.mint(t, w.tok[whoAdmin], api.TokenRequest{Name: "for alice", User: "alice"}, http.StatusCreated)
	who := w.whoami(t, tk.Secret)
	require.Equal(t, "alice", who.Name)
	require.ElementsMatch(t, []string{"job:*:team-a", "node:read:*"}, who.Permissions)
	w.must(t, tk.Secret, "GET", "/v1/jobs/"+jobA, "", http.StatusOK)
	w.must(t, tk.Secret, "GET", "/v1/jobs/"+jobB, "", http.StatusNotFound)
	w.must(t, tk.Secret, "GET", "/v1/users", "", http.StatusForbidden)
}

func TestCannotDeleteOrMakeSomeoneMorePowerful(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.addUser(t, "grantor", append(slices.Clone(grantorPerms), "user:write:*", "user:read:*"))
	w.must(t, g, "DELETE", "/v1/users/admin", "", http.StatusForbidden)
	_, ok := w.user(t, "admin")
	require.True(t, ok)
	require.Equal(t, "admin", w.whoami(t, w.tok[whoAdmin]).Name, "the admin's token still works")
	w.must(t, g, "DELETE", "/v1/users/bob", "", http.StatusForbidden)
	w.must(t, g, "POST", "/v1/users", `{"name": "mallory", "roles": ["admin"]}`, http.StatusForbidden)
	w.must(t, g, "POST", "/v1/users", `{"name": "mallory", "roles": ["team-b"]}`, http.StatusForbidden)
	_, ok = w.user(t, "mallory")
	require.False(t, ok)
	// Within its reach: alice holds nothing the grantor lacks.
	w.must(t, g, "DELETE", "/v1/users/alice", "", http.StatusOK)
}

func TestScopedTokenCannotMintAWiderOne(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scoped := w.mint(t, w.tok[whoTeamA], api.TokenRequest{Name: "ro", Scope: []string{"job:read:team-a"}}, http.StatusCreated)
	// Asking for nothing in particular gets the caller's scope, not the
	// owner's whole power.
	child := w.mint(t, scoped.Secret, api.TokenRequest{Name: "child"}, http.StatusCreated)
	require.Equal(t, []string{"job:read:team-a"}, child.Scope)
	require.Equal(t, []string{"job:read:team-a"}, w.whoami(t, child.Secret).Permissions)
	// Asking for what the owner holds but the token does not is refused.
	w.mint(t, scoped.Secret, api.TokenRequest{Name: "wider", Scope: []string{"job:submit:team-a"}}, http.StatusForbidden)
	w.mint(t, scoped.Secret, api.TokenRequest{Name: "wider", Scope: []string{"admin"}}, http.StatusForbidden)
	for _, bearer := range []string{scoped.Secret, child.Secret} {
		w.must(t, bearer, "GET", "/v1/jobs/"+jobA, "", http.StatusOK)
		w.must(t, bearer, "POST", "/v1/jobs", jobJSON("team-a/prod/new", 1), http.StatusForbidden)
		w.must(t, bearer, "POST", "/v1/jobs/"+jobA+"/kill", "", http.StatusForbidden)
	}
	require.False(t, w.task(t, taskA).KillRequested)
	require.False(t, w.hasJob(t, "team-a/prod/new"))
}

// TestEmptiedScopedTokenCannotMintAnUnscopedOne: a token whose scope the
// owner no longer holds has no permission left; an empty scope must not
// turn into "all of the owner's".
func TestEmptiedScopedTokenCannotMintAnUnscopedOne(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles", `{"name": "a-read", "permissions": ["job:read:team-a"]}`, http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles", `{"name": "b-read", "permissions": ["job:read:team-b"]}`, http.StatusCreated)
	dave := w.addUser(t, "dave", nil, "a-read", "b-read")
	scoped := w.mint(t, dave, api.TokenRequest{Name: "a only", Scope: []string{"job:read:team-a"}}, http.StatusCreated)
	w.must(t, scoped.Secret, "GET", "/v1/jobs/"+jobB, "", http.StatusNotFound)

	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles/a-read/revoke", `{"user": "dave"}`, http.StatusOK)
	require.Empty(t, w.whoami(t, scoped.Secret).Permissions)
	code, data := w.call(t, scoped.Secret, "POST", "/v1/tokens", `{"name": "escape"}`)
	if code == http.StatusCreated {
		var tk api.Token
		require.NoError(t, json.Unmarshal(data, &tk))
		w.must(t, tk.Secret, "GET", "/v1/jobs/"+jobB, "", http.StatusNotFound)
		t.Fatalf("a token with no permission left minted %+v", tk)
	}
	require.Equal(t, http.StatusForbidden, code, "%s", data)
}

func TestRevokingARoleNarrowsTokensAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scoped := w.mint(t, w.tok[whoTeamA], api.TokenRequest{Name: "rw", Scope: []string{"job:*:team-a"}}, http.StatusCreated)
	for _, bearer := range []string{w.tok[whoTeamA], scoped.Secret} {
		w.must(t, bearer, "GET", "/v1/jobs/"+jobA, "", http.StatusOK)
	}
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles/team-a/revoke", `{"user": "alice"}`, http.StatusOK)
	for _, bearer := range []string{w.tok[whoTeamA], scoped.Secret} {
		require.Empty(t, w.whoami(t, bearer).Permissions)
		w.must(t, bearer, "GET", "/v1/jobs/"+jobA, "", http.StatusNotFound)
		w.must(t, bearer, "POST", "/v1/jobs/"+jobA+"/kill", "", http.StatusNotFound)
		require.Equal(t, "[]\n", string(w.must(t, bearer, "GET", "/v1/jobs", "", http.StatusOK)))
	}
	require.False(t, w.task(t, taskA).KillRequested)
	// Granted again, the tokens follow.
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles/team-a/grant", `{"user": "alice"}`, http.StatusOK)
	w.must(t, scoped.Secret, "GET", "/v1/jobs/"+jobA, "", http.StatusOK)
	// A deleted role grants nothing either.
	w.must(t, w.tok[whoAdmin], "DELETE", "/v1/roles/team-a", "", http.StatusOK)
	w.must(t, w.tok[whoTeamA], "GET", "/v1/jobs/"+jobA, "", http.StatusNotFound)
}

func TestDeletingAUserRevokesTheirTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	second := w.mint(t, w.tok[whoTeamB], api.TokenRequest{Name: "second"}, http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "DELETE", "/v1/users/bob", "", http.StatusOK)
	for _, bearer := range []string{w.tok[whoTeamB], second.Secret} {
		code, _ := w.call(t, bearer, "GET", "/v1/whoami", "")
		require.Equal(t, http.StatusUnauthorized, code)
	}
	for _, tk := range w.allTokens(t) {
		if tk.Owner == "bob" {
			require.NotNil(t, tk.RevokedAt, "token %s", tk.ID)
		}
	}
	// A new user of the same name is someone else: the old tokens stay
	// dead.
	w.must(t, w.tok[whoAdmin], "POST", "/v1/users", `{"name": "bob", "roles": ["team-b"]}`, http.StatusCreated)
	for _, bearer := range []string{w.tok[whoTeamB], second.Secret} {
		code, _ := w.call(t, bearer, "GET", "/v1/jobs/"+jobB, "")
		require.Equal(t, http.StatusUnauthorized, code)
	}
}

// TestAgentTokenIsNoUser: a stolen agent token submits, reads and changes
// nothing a user could.
func TestAgentTokenIsNoUser(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ag := w.tok[whoAgent]
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/jobs", jobJSON("team-a/prod/new", 1)},
		{"GET", "/v1/jobs", ""},
		{"GET", "/v1/jobs/" + jobA, ""},
		{"GET", "/v1/jobs/" + jobA + "/events", ""},
		{"POST", "/v1/jobs/" + jobA + "/kill", ""},
		{"GET", "/v1/tasks/" + taskA, ""},
		{"GET", "/v1/tasks/" + taskA + "/logs/stdout", ""},
		{"GET", "/v1/nodes", ""},
		{"POST", "/v1/nodes/n1/drain", ""},
		{"GET", "/v1/events", ""},
		{"GET", "/v1/whoami", ""},
		{"POST", "/v1/tokens", `{"name": "x"}`},
		{"POST", "/v1/tokens", `{"name": "x", "kind": "agent"}`},
		{"POST", "/v1/users", `{"name": "x", "roles": ["admin"]}`},
	} {
		code, data := w.call(t, ag, c.method, c.path, c.body)
		require.Equal(t, http.StatusForbidden, code, "%s %s: %s", c.method, c.path, data)
		require.NotContains(t, string(data), "team-a/prod")
	}
	require.False(t, w.hasJob(t, "team-a/prod/new"))
	require.False(t, w.task(t, taskA).KillRequested)
	require.False(t, w.node(t, "n1").Drain)
	_, ok := w.user(t, "x")
	require.False(t, ok)
}

// assignOnN1 submits a job and places its task on n1 (n2 is drained), so
// n1 has an assignment waiting; it returns the task.
func (w *world) assignOnN1(t *testing.T) string {
	t.Helper()
	w.must(t, w.tok[whoAdmin], "POST", "/v1/nodes/n2/drain", "", http.StatusOK)
	var sub api.SubmitResponse
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoAdmin], "POST", "/v1/jobs", jobJSON("team-a/prod/more", 1), http.StatusCreated), &sub))
	_, err := w.sched.PlaceOnce(t.Context())
	require.NoError(t, err)
	tk := w.task(t, sub.Tasks[0])
	require.Equal(t, task.Assigned, tk.State)
	require.Equal(t, "n1", tk.Node)
	return tk.ID
}

// TestAgentCannotSyncAsAnotherAgentsNode: n1 is agent1's. agent2 syncing
// as n1 is refused however it words its report, learns nothing of n1's
// work, and leaves no trace: n1's tasks, its sequence of reports and its
// liveness are as if agent2 had not called.
func TestAgentCannotSyncAsAnotherAgentsNode(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	queued := w.assignOnN1(t)
	running := []api.TaskStatus{{TaskID: taskA, State: "RUNNING"}, {TaskID: taskB, State: "RUNNING"}}
	// agent1 syncs with sequence numbers, as real agents do.
	resp := w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Seq: 1000, Tasks: running}, http.StatusOK)
	require.Len(t, resp.Assign, 1)

	for _, req := range []api.SyncRequest{
		{Node: nodeInfo("n1")},            // no tasks: would make n1's tasks LOST
		{Node: nodeInfo("n1"), Seq: 1},    // an old sequence number
		{Node: nodeInfo("n1"), Seq: 1000}, // agent1's last one
		{Node: nodeInfo("n1"), Seq: math.MaxUint64, Tasks: []api.TaskStatus{{TaskID: taskA, State: "FAILED", ExitCode: new(int)}}},
		{Node: nodeInfo("n1"), Seq: 2000, Wait: api.Duration(time.Second)},
	} {
		code, data := w.call(t, w.agent2, "POST", "/v1/agent/sync", mustJSON(t, req))
		require.Equal(t, http.StatusForbidden, code, "seq %d: %s", req.Seq, data)
		require.NotContains(t, string(data), queued, "agent2 must not see n1's assignments")
		require.NotContains(t, string(data), "echo")
	}
	require.Equal(t, task.Running, w.task(t, taskA).State)
	require.Equal(t, task.Running, w.task(t, taskB).State)
	require.Equal(t, task.Assigned, w.task(t, queued).State)

	// agent1's next report still counts, whatever sequence number agent2
	// claimed for n1.
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Seq: 1001,
		Tasks: append(running, api.TaskStatus{TaskID: queued, State: "RUNNING"})}, http.StatusOK)
	require.Equal(t, task.Running, w.task(t, queued).State, "agent1's report was applied")

	// agent2's refused syncs do not keep n1 alive once agent1 is silent.
	w.clock.mu.Lock()
	w.clock.now = w.clock.now.Add(2 * scheduler.DefaultNodeGrace)
	w.clock.mu.Unlock()
	w.must(t, w.agent2, "POST", "/v1/agent/sync", mustJSON(t, api.SyncRequest{Node: nodeInfo("n1"), Seq: 3000}), http.StatusForbidden)
	require.NoError(t, w.sched.CheckOnce(t.Context()))
	require.Equal(t, node.Down, w.node(t, "n1").State, "only n1's own agent proves it alive")
}

// TestAgentChangesOnlyItsOwnTasks: agent2 reporting n1's task from its own
// node n2, or uploading its output, changes nothing.
func TestAgentChangesOnlyItsOwnTasks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	resp := w.syncAs(t, w.agent2, api.SyncRequest{Node: nodeInfo("n2"),
		Tasks: []api.TaskStatus{{TaskID: taskA, State: "FAILED", ExitCode: new(int)}, {TaskID: taskB, State: "RUNNING"}}}, http.StatusOK)
	require.Empty(t, resp.Assign)
	require.Equal(t, task.Running, w.task(t, taskA).State)
	require.Equal(t, task.Running, w.task(t, taskB).State)

	for _, off := range []int{0, len(logA)} {
		code, data := w.call(t, w.agent2, "POST", "/v1/agent/logs",
			mustJSON(t, api.LogChunk{TaskID: taskA, Stream: "stdout", Offset: int64(off), Data: []byte("forged\n")}))
		require.Equal(t, http.StatusNotFound, code, "%s", data)
	}
	require.Equal(t, logA, w.logOf(t, taskA))
	// A task that does not exist answers the same.
	_, missing := w.call(t, w.agent2, "POST", "/v1/agent/logs", mustJSON(t, api.LogChunk{TaskID: "task9999", Stream: "stdout", Data: []byte("x")}))
	_, other := w.call(t, w.agent2, "POST", "/v1/agent/logs", mustJSON(t, api.LogChunk{TaskID: taskA, Stream: "stdout", Data: []byte("x")}))
	require.Equal(t, strings.ReplaceAll(string(missing), "task9999", taskA), string(other), "another node's task looks missing")
}

// TestDeletedRoleStaysDeleted: deleting a role takes it from its members,
// so a role of the same name made later — by someone who may write roles
// but not grant them — gives them nothing.
func TestDeletedRoleStaysDeleted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ad := w.tok[whoAdmin]
	w.must(t, ad, "POST", "/v1/roles", `{"name": "ops", "permissions": ["job:read:team-b"]}`, http.StatusCreated)
	w.must(t, ad, "POST", "/v1/roles/ops/grant", `{"user": "alice"}`, http.StatusOK)
	w.must(t, w.tok[whoTeamA], "GET", "/v1/jobs/"+jobB, "", http.StatusOK)
	w.must(t, ad, "DELETE", "/v1/roles/ops", "", http.StatusOK)
	w.must(t, w.tok[whoTeamA], "GET", "/v1/jobs/"+jobB, "", http.StatusNotFound)
	require.Equal(t, []string{"team-a"}, w.rolesOf(t, "alice"))

	writer := w.addUser(t, "writer", []string{"role:write:*", "job:read:team-b"})
	w.must(t, writer, "POST", "/v1/roles/team-b/grant", `{"user": "alice"}`, http.StatusForbidden)
	w.must(t, writer, "POST", "/v1/roles", `{"name": "ops", "permissions": ["job:read:team-b"]}`, http.StatusCreated)
	w.must(t, w.tok[whoTeamA], "GET", "/v1/jobs/"+jobB, "", http.StatusNotFound)
}

// TestUserWithoutPasswordCannotLogIn: a user made without a password signs
// in with tokens only; no password, not even an empty one, logs them in.
func TestUserWithoutPasswordCannotLogIn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/users", `{"name": "robot", "roles": ["viewer"]}`, http.StatusCreated)
	for _, pw := range []string{"", userPass, "not-a-password-of-anyone"} {
		w.must(t, "", "POST", "/v1/login", toJSON(t, api.LoginRequest{User: "robot", Password: pw}), http.StatusUnauthorized)
	}
}

// TestTokenForAnotherUserDoesNotFollowTheirPromotion: a token someone
// (not an admin) makes for another user holds what that user held then,
// all of which its maker held. Were it to follow the user's later grants,
// its maker would hold them too: promote the user to admin, and the
// maker's copy of their token is an admin token.
func TestTokenForAnotherUserDoesNotFollowTheirPromotion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	minter := w.addUser(t, "minter", []string{"token:write:*", "job:*:team-a", "node:read:*"})
	tk := w.mint(t, minter, api.TokenRequest{Name: "for alice", User: "alice"}, http.StatusCreated)
	require.ElementsMatch(t, []string{"job:*:team-a", "node:read:*"}, w.whoami(t, tk.Secret).Permissions)

	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles/admin/grant", `{"user": "alice"}`, http.StatusOK)
	require.Equal(t, "alice", w.whoami(t, w.tok[whoTeamA]).Name)
	require.Contains(t, w.whoami(t, w.tok[whoTeamA]).Permissions, "admin", "alice's own token follows her roles")
	require.ElementsMatch(t, []string{"job:*:team-a", "node:read:*"}, w.whoami(t, tk.Secret).Permissions,
		"the minter's token for alice does not")
	w.must(t, tk.Secret, "GET", "/v1/users", "", http.StatusForbidden)
	w.must(t, tk.Secret, "GET", "/v1/jobs/"+jobB, "", http.StatusNotFound)

	// A user with nothing to hold gets no token from a non-admin: an
	// empty scope would mean whatever they are granted later.
	w.must(t, w.tok[whoAdmin], "POST", "/v1/users", `{"name": "blank"}`, http.StatusCreated)
	w.mint(t, minter, api.TokenRequest{Name: "for blank", User: "blank"}, http.StatusForbidden)
	// An admin may: it holds whatever they will be granted.
	w.mint(t, w.tok[whoAdmin], api.TokenRequest{Name: "for blank", User: "blank"}, http.StatusCreated)
}
