package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/pool/manager"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
	"github.com/drover-dev/drover/internal/task"
)

// The authorization matrix: every route the server registers, each with
// concrete requests, and for each request the answer every kind of caller
// must get. A route without a row fails the test, so a new route cannot
// arrive without someone deciding who may call it.

// principal is one kind of caller in the matrix.
type principal string

const (
	whoAnonymous principal = "anonymous"
	whoBadToken  principal = "bad-token"
	whoRevoked   principal = "revoked-token"
	whoAdmin     principal = "admin"
	whoTeamA     principal = "team-A"
	whoTeamB     principal = "team-B"
	whoViewer    principal = "viewer"
	whoAgent     principal = "agent"
)

var principals = []principal{whoAnonymous, whoBadToken, whoRevoked, whoAdmin, whoTeamA, whoTeamB, whoViewer, whoAgent}

// Fixed names in every world.
const (
	jobA        = "team-a/prod/etl"
	jobB        = "team-b/prod/etl"
	cronB       = "team-b/prod/nightly" // a scheduled job that has not run yet
	poolS       = "shared"              // a pool of size 0
	taskA       = "task0001"            // jobA's only task, RUNNING on n1
	taskB       = "task0002"            // jobB's only task, RUNNING on n1
	logA        = "output of team A\n"
	logB        = "output of team B\n"
	userPass    = "correct horse battery staple"
	bogusBearer = "drv_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// userHash is userPass hashed once: argon2id is slow on purpose, and
// every world's users share it.
var userHash = sync.OnceValues(func() (string, error) { return auth.HashPassword(userPass) })

// world is a server with two teams, each with a running job on node n1:
//
//	users:  admin (admin), alice (team-a), bob (team-b), victor (viewer)
//	roles:  admin, viewer, team-a = job:*:team-a + node:read:*, team-b alike
//	jobs:   team-a/prod/etl (task0001), team-b/prod/etl (task0002), on n1
//	agents: agent1 registered n1, agent2 registered n2 (idle)
//
// Requests go straight to ServeHTTP: no sockets, no goroutines.
type world struct {
	store store.Store
	sched *scheduler.Scheduler
	srv   *server.Server
	clock *fakeClock
	// tok is each principal's bearer token ("" for anonymous).
	tok map[principal]string
	// agent2 is a second agent token, which registered n2.
	agent2 string
	// aliceTokenID and bobTokenID identify alice's and bob's tokens.
	aliceTokenID, bobTokenID string
}

type worldConfig struct {
	logger    *slog.Logger
	retention scheduler.Retention
	// writeRate and writeBurst limit each caller's changing calls.
	writeRate  float64
	writeBurst int
	// wrap, if set, wraps the store the server and scheduler use.
	wrap func(store.Store) store.Store
}

func newWorld(t testing.TB, opts ...func(*worldConfig)) *world {
	t.Helper()
	var cfg worldConfig
	for _, o := range opts {
		o(&cfg)
	}
	w := newBareWorld(t, cfg)
	hash, err := userHash()
	require.NoError(t, err)
	now := time.Now().UTC()
	teamRole := func(team string) auth.Role {
		return auth.Role{Name: team, CreatedAt: now, Permissions: []auth.Permission{
			{Verb: "*", Resource: auth.ResourceJob, Scope: team}, {Verb: auth.VerbRead, Resource: auth.ResourceNode, Scope: "*"},
		}}
	}
	require.NoError(t, w.store.Update(t.Context(), func(tx store.Tx) error {
		for _, r := range []auth.Role{auth.AdminRole, auth.ViewerRole, teamRole("team-a"), teamRole("team-b")} {
			r.CreatedAt = now
			if err := tx.PutRole(t.Context(), r); err != nil {
				return err
			}
		}
		for name, role := range map[string]string{"admin": "admin", "alice": "team-a", "bob": "team-b", "victor": "viewer"} {
			if err := tx.PutUser(t.Context(), auth.User{Name: name, PasswordHash: hash, Roles: []string{role}, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}))
	mk := func(kind auth.TokenKind, owner string) (string, string) {
		tk, sec, err := w.srv.CreateToken(t.Context(), kind, owner, "matrix", nil, 0)
		require.NoError(t, err)
		return tk.ID, sec.Reveal()
	}
	w.tok = map[principal]string{whoAnonymous: "", whoBadToken: bogusBearer}
	_, w.tok[whoAdmin] = mk(auth.APIToken, "admin")
	w.aliceTokenID, w.tok[whoTeamA] = mk(auth.APIToken, "alice")
	w.bobTokenID, w.tok[whoTeamB] = mk(auth.APIToken, "bob")
	_, w.tok[whoViewer] = mk(auth.APIToken, "victor")
	_, w.tok[whoAgent] = mk(auth.AgentToken, "")
	_, w.agent2 = mk(auth.AgentToken, "")
	revokedID, revokedSecret := mk(auth.APIToken, "alice")
	w.tok[whoRevoked] = revokedSecret
	w.must(t, w.tok[whoAdmin], "DELETE", "/v1/tokens/"+revokedID, "", http.StatusOK)

	w.must(t, w.tok[whoAdmin], "POST", "/v1/jobs", jobJSON(jobA, 1), http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/jobs", jobJSON(jobB, 1), http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/jobs", cronJSON(cronB), http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/pools", poolYAML(poolS), http.StatusCreated)
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1")}, http.StatusOK)
	_, err = w.sched.PlaceOnce(t.Context())
	require.NoError(t, err)
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: taskA, State: "RUNNING"}, {TaskID: taskB, State: "RUNNING"},
	}}, http.StatusOK)
	w.syncAs(t, w.agent2, api.SyncRequest{Node: nodeInfo("n2")}, http.StatusOK)
	w.uploadLog(t, w.tok[whoAgent], taskA, 0, logA, http.StatusOK)
	w.uploadLog(t, w.tok[whoAgent], taskB, 0, logB, http.StatusOK)
	require.Equal(t, task.Running, w.task(t, taskA).State)
	require.Equal(t, task.Running, w.task(t, taskB).State)
	return w
}

// newBareWorld is a server over an empty store: no roles, users or jobs.
func newBareWorld(t testing.TB, cfg worldConfig) *world {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	var st store.Store = db
	if cfg.wrap != nil {
		st = cfg.wrap(db)
	}
	w := &world{store: st, clock: &fakeClock{now: t0}}
	var n atomic.Int64
	w.sched, err = scheduler.New(scheduler.Config{
		Store: st, Clock: w.clock, Logger: cfg.logger,
		NewID: func() string { return fmt.Sprintf("task%04d", n.Add(1)) },
	})
	require.NoError(t, err)
	pools, err := manager.New(t.Context(), manager.Config{Store: st, Scheduler: w.sched, Clock: w.clock, Logger: cfg.logger,
		Providers: manager.Providers(dir)})
	require.NoError(t, err)
	w.srv, err = server.New(server.Config{Store: st, Scheduler: w.sched, DataDir: dir, Logger: cfg.logger, Version: "test",
		Retention: cfg.retention, Pools: pools, Clock: w.clock, WriteRate: cfg.writeRate, WriteBurst: cfg.writeBurst})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.srv.Close()) })
	return w
}

// toJSON encodes v.
func toJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

// jobJSON is a small batch job of key with n instances.
func jobJSON(key string, n int) string {
	return fmt.Sprintf(`{"job": %q, "instances": %d, "task": {"command": ["echo", "hi"], "resources": {"cpu": 100, "memory": "64MiB"}}}`, key, n)
}

// poolYAML is a local fixed pool of size 0: it launches nothing.
func poolYAML(name string) string {
	return "pool: " + name + "\nprovider: local\nmax: 2\npolicy: {fixed: {size: 0}}\n"
}

// cronJSON is a small batch job of key run every day at 02:00.
func cronJSON(key string) string {
	return fmt.Sprintf(`{"job": %q, "schedule": {"cron": "0 2 * * *"}, "task": {"command": ["echo", "hi"]}}`, key)
}

// request builds a request from 192.0.2.1 carrying bearer ("" for none).
func (w *world) request(t testing.TB, bearer, method, path, body string) *http.Request {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req
}

// serve answers req.
func (w *world) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	return rec
}

// call sends a request with bearer ("" for none) and returns the answer.
func (w *world) call(t testing.TB, bearer, method, path, body string) (int, []byte) {
	t.Helper()
	rec := w.serve(w.request(t, bearer, method, path, body))
	return rec.Code, rec.Body.Bytes()
}

// callWith is call with extra headers.
func (w *world) callWith(t testing.TB, bearer, method, path, body string, header map[string]string) (int, []byte) {
	t.Helper()
	req := w.request(t, bearer, method, path, body)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := w.serve(req)
	return rec.Code, rec.Body.Bytes()
}

// must sends a request and requires the status.
func (w *world) must(t testing.TB, bearer, method, path, body string, want int) []byte {
	t.Helper()
	code, data := w.call(t, bearer, method, path, body)
	require.Equal(t, want, code, "%s %s: %s", method, path, data)
	return data
}

func (w *world) syncAs(t testing.TB, bearer string, req api.SyncRequest, want int) api.SyncResponse {
	t.Helper()
	data := w.must(t, bearer, "POST", "/v1/agent/sync", toJSON(t, req), want)
	var resp api.SyncResponse
	if want == http.StatusOK {
		require.NoError(t, json.Unmarshal(data, &resp))
	}
	return resp
}

func (w *world) uploadLog(t testing.TB, bearer, taskID string, off int, data string, want int) {
	t.Helper()
	w.must(t, bearer, "POST", "/v1/agent/logs", toJSON(t, api.LogChunk{TaskID: taskID, Stream: "stdout", Offset: int64(off), Data: []byte(data)}), want)
}

// logOf is a task's stdout as the server holds it.
func (w *world) logOf(t testing.TB, taskID string) string {
	t.Helper()
	return string(w.must(t, w.tok[whoAdmin], "GET", "/v1/tasks/"+taskID+"/logs/stdout", "", http.StatusOK))
}

func (w *world) task(t testing.TB, id string) task.Task {
	t.Helper()
	var out task.Task
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		var err error
		out, err = rd.GetTask(t.Context(), id)
		return err
	}))
	return out
}

func (w *world) job(t testing.TB, key string) job.Job {
	t.Helper()
	k, err := job.ParseKey(key)
	require.NoError(t, err)
	var out job.Job
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		var err error
		out, err = rd.GetJob(t.Context(), k)
		return err
	}))
	return out
}

// pool returns a stored pool.
func (w *world) pool(t testing.TB, name string) pool.Pool {
	t.Helper()
	var p pool.Pool
	require.NoError(t, w.store.View(t.Context(), func(r store.Reader) error {
		var err error
		p, err = r.GetPool(t.Context(), name)
		return err
	}))
	return p
}

// hasPool reports whether a pool exists.
func (w *world) hasPool(t testing.TB, name string) bool {
	t.Helper()
	err := w.store.View(t.Context(), func(r store.Reader) error {
		_, err := r.GetPool(t.Context(), name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// runCount counts a job's runs.
func (w *world) runCount(t testing.TB, key string) int {
	t.Helper()
	k, err := job.ParseKey(key)
	require.NoError(t, err)
	var n int
	require.NoError(t, w.store.View(t.Context(), func(r store.Reader) error {
		runs, err := r.ListRuns(t.Context(), store.RunFilter{Job: k})
		n = len(runs)
		return err
	}))
	return n
}

// cronPaused reports whether a job's schedule is paused.
func (w *world) cronPaused(t testing.TB, key string) bool {
	t.Helper()
	k, err := job.ParseKey(key)
	require.NoError(t, err)
	var paused bool
	require.NoError(t, w.store.View(t.Context(), func(r store.Reader) error {
		e, err := r.GetCron(t.Context(), k)
		paused = e.Paused
		return err
	}))
	return paused
}

// hasCron reports whether a job has a schedule.
func (w *world) hasCron(t testing.TB, key string) bool {
	t.Helper()
	k, err := job.ParseKey(key)
	require.NoError(t, err)
	var found bool
	require.NoError(t, w.store.View(t.Context(), func(r store.Reader) error {
		_, err := r.GetCron(t.Context(), k)
		found = err == nil
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}))
	return found
}

// hasJob reports whether a job exists.
func (w *world) hasJob(t testing.TB, key string) bool {
	t.Helper()
	k, err := job.ParseKey(key)
	require.NoError(t, err)
	err = w.store.View(t.Context(), func(rd store.Reader) error {
		_, err := rd.GetJob(t.Context(), k)
		return err
	})
	if err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
		return false
	}
	return true
}

func (w *world) node(t testing.TB, name string) node.Node {
	t.Helper()
	var out node.Node
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		var err error
		out, err = rd.GetNode(t.Context(), name)
		return err
	}))
	return out
}

// user returns a user and whether it exists.
func (w *world) user(t testing.TB, name string) (auth.User, bool) {
	t.Helper()
	var out auth.User
	err := w.store.View(t.Context(), func(rd store.Reader) error {
		var err error
		out, err = rd.GetUser(t.Context(), name)
		return err
	})
	if err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
		return auth.User{}, false
	}
	return out, true
}

// hasRole reports whether a role exists.
func (w *world) hasRole(t testing.TB, name string) bool {
	t.Helper()
	err := w.store.View(t.Context(), func(rd store.Reader) error {
		_, err := rd.GetRole(t.Context(), name)
		return err
	})
	if err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
		return false
	}
	return true
}

// worldTokens is how many tokens a new world has.
const worldTokens = 7

// tokenCount is how many tokens the store holds, revoked ones too.
func (w *world) tokenCount(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		ts, err := rd.ListTokens(t.Context(), "")
		n = len(ts)
		return err
	}))
	return n
}

// whoami is what bearer acts as; it requires a 200.
func (w *world) whoami(t testing.TB, bearer string) api.WhoAmI {
	t.Helper()
	var out api.WhoAmI
	require.NoError(t, json.Unmarshal(w.must(t, bearer, "GET", "/v1/whoami", "", http.StatusOK), &out))
	return out
}

// is2xx in an outcome stands for any success.
const is2xx = 2

// outcomes is the answer each principal must get: an exact status, or
// is2xx.
type outcomes map[principal]int

// guarded is the usual row: anonymous, bad and revoked tokens get 401, and
// the others what is given.
func guarded(adminCode, teamACode, teamBCode, viewerCode, agentCode int) outcomes {
	return outcomes{whoAnonymous: 401, whoBadToken: 401, whoRevoked: 401,
		whoAdmin: adminCode, whoTeamA: teamACode, whoTeamB: teamBCode, whoViewer: viewerCode, whoAgent: agentCode}
}

// page is a web page row: whoever is not signed in is sent to the login
// form (303) instead of answered 401.
func page(adminCode, teamACode, teamBCode, viewerCode, agentCode int) outcomes {
	o := guarded(adminCode, teamACode, teamBCode, viewerCode, agentCode)
	o[whoAnonymous], o[whoBadToken], o[whoRevoked] = 303, 303, 303
	return o
}

// adminOnly is a route for admins (of users, roles, audit, vars).
var adminOnly = guarded(is2xx, 403, 403, 403, 403)

// anyUser is a route every user may call and no agent.
var anyUser = guarded(is2xx, is2xx, is2xx, is2xx, 403)

// matrixCase is one concrete request to a route.
type matrixCase struct {
	name               string
	method, path, body string
	// header is added to the request (a form's Content-Type).
	header map[string]string
	want   outcomes
	// prepare adds state the request needs (optional).
	prepare func(t *testing.T, w *world)
	// unchanged checks, after a refused call, that nothing changed.
	unchanged func(t *testing.T, w *world)
	// changed checks, after an allowed call, that it took effect: proof
	// that unchanged looks at the right thing.
	changed func(t *testing.T, w *world, p principal)
	// check inspects a successful answer.
	check func(t *testing.T, w *world, p principal, body []byte)
	// fresh gives every cell a world of its own (unchanged changes it).
	fresh bool
}

// userOf is the user each user principal acts as.
var userOf = map[principal]string{whoAdmin: "admin", whoTeamA: "alice", whoTeamB: "bob", whoViewer: "victor"}

func jobKeys(t testing.TB, body []byte) []string {
	t.Helper()
	var js []api.Job
	require.NoError(t, json.Unmarshal(body, &js))
	var keys []string
	for _, j := range js {
		keys = append(keys, j.Key)
	}
	slices.Sort(keys)
	return keys
}

// jobsVisible is what GET /v1/jobs and the jobs page must show each user.
var jobsVisible = map[principal][]string{whoAdmin: {jobA, jobB, cronB}, whoTeamA: {jobA}, whoTeamB: {jobB, cronB}, whoViewer: {jobA, jobB, cronB}}

func taskKillRequested(id string) (unchanged func(*testing.T, *world), changed func(*testing.T, *world, principal)) {
	return func(t *testing.T, w *world) {
			tk := w.task(t, id)
			require.False(t, tk.KillRequested, "a refused kill must not touch task %s", id)
			require.Equal(t, task.Running, tk.State)
		}, func(t *testing.T, w *world, _ principal) {
			require.True(t, w.task(t, id).KillRequested)
		}
}

// matrix maps every route pattern to its requests. Team A must get 404, not
// 403, for anything of team B's: it may not learn that it exists.
var matrix = map[string][]matrixCase{
	"GET /health": {{
		name: "health", method: "GET", path: "/health",
		// A bad credential is refused even here: the client learns its
		// token is bad instead of being served as anonymous.
		want: outcomes{whoAnonymous: 200, whoBadToken: 401, whoRevoked: 401, whoAdmin: 200, whoTeamA: 200, whoTeamB: 200, whoViewer: 200, whoAgent: 200},
	}},
	"POST /v1/jobs": {
		{
			name: "new job of team A", method: "POST", path: "/v1/jobs", body: jobJSON("team-a/prod/new", 1),
			want:      guarded(is2xx, is2xx, 403, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.False(t, w.hasJob(t, "team-a/prod/new")) },
			changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasJob(t, "team-a/prod/new")) },
		},
		{
			name: "new job of team B", method: "POST", path: "/v1/jobs", body: jobJSON("team-b/prod/new", 1),
			want:      guarded(is2xx, 403, is2xx, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.False(t, w.hasJob(t, "team-b/prod/new")) },
			changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasJob(t, "team-b/prod/new")) },
		},
	},
	"GET /v1/jobs": {{
		name: "list", method: "GET", path: "/v1/jobs", want: anyUser,
		check: func(t *testing.T, w *world, p principal, body []byte) {
			require.Equal(t, jobsVisible[p], jobKeys(t, body))
		},
	}},
	"GET /v1/jobs/{role}/{env}/{name}": {
		{name: "team A's job", method: "GET", path: "/v1/jobs/" + jobA, want: guarded(is2xx, is2xx, 404, is2xx, 403)},
		{name: "team B's job", method: "GET", path: "/v1/jobs/" + jobB, want: guarded(is2xx, 404, is2xx, is2xx, 403)},
		{name: "missing job", method: "GET", path: "/v1/jobs/team-b/prod/nope", want: guarded(404, 404, 404, 404, 403)},
	},
	"POST /v1/jobs/{role}/{env}/{name}/kill": {
		func() matrixCase {
			un, ch := taskKillRequested(taskB)
			return matrixCase{name: "team B's job", method: "POST", path: "/v1/jobs/" + jobB + "/kill",
				want: guarded(is2xx, 404, is2xx, 403, 403), unchanged: un, changed: ch}
		}(),
		func() matrixCase {
			un, ch := taskKillRequested(taskA)
			return matrixCase{name: "team A's job", method: "POST", path: "/v1/jobs/" + jobA + "/kill",
				want: guarded(is2xx, is2xx, 404, 403, 403), unchanged: un, changed: ch}
		}(),
	},
	"GET /v1/jobs/{role}/{env}/{name}/events": {
		{name: "team B's job", method: "GET", path: "/v1/jobs/" + jobB + "/events", want: guarded(is2xx, 404, is2xx, is2xx, 403)},
	},
	"GET /v1/jobs/{role}/{env}/{name}/versions": {
		{name: "team B's job", method: "GET", path: "/v1/jobs/" + jobB + "/versions", want: guarded(is2xx, 404, is2xx, is2xx, 403)},
		{name: "team A's job", method: "GET", path: "/v1/jobs/" + jobA + "/versions", want: guarded(is2xx, is2xx, 404, is2xx, 403)},
	},
	"GET /v1/jobs/{role}/{env}/{name}/versions/{version}": {
		{name: "team B's job", method: "GET", path: "/v1/jobs/" + jobB + "/versions/1", want: guarded(is2xx, 404, is2xx, is2xx, 403)},
		{name: "team A's job", method: "GET", path: "/v1/jobs/" + jobA + "/versions/1", want: guarded(is2xx, is2xx, 404, is2xx, 403)},
	},
	"GET /v1/jobs/{role}/{env}/{name}/runs": {
		{name: "team B's job", method: "GET", path: "/v1/jobs/" + jobB + "/runs", want: guarded(is2xx, 404, is2xx, is2xx, 403)},
	},
	"GET /v1/jobs/{role}/{env}/{name}/runs/{run}": {
		{name: "team B's job", method: "GET", path: "/v1/jobs/" + jobB + "/runs/1", want: guarded(is2xx, 404, is2xx, is2xx, 403)},
	},
	"POST /v1/jobs/{role}/{env}/{name}/rerun": {
		// The job still runs: those who may rerun it are told so.
		{name: "team B's running job", method: "POST", path: "/v1/jobs/" + jobB + "/rerun", want: guarded(409, 404, 409, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.Equal(t, 1, w.runCount(t, jobB)) }},
	},
	"GET /v1/schedules": {{
		name: "list", method: "GET", path: "/v1/schedules", want: anyUser,
		check: func(t *testing.T, w *world, p principal, body []byte) {
			var got []api.Schedule
			require.NoError(t, json.Unmarshal(body, &got))
			var keys []string
			for _, s := range got {
				keys = append(keys, s.Job)
			}
			var want []string
			if slices.Contains(jobsVisible[p], cronB) {
				want = []string{cronB}
			}
			require.Equal(t, want, keys)
		},
	}},
	"GET /v1/jobs/{role}/{env}/{name}/schedule": {
		{name: "team B's schedule", method: "GET", path: "/v1/jobs/" + cronB + "/schedule", want: guarded(is2xx, 404, is2xx, is2xx, 403)},
	},
	"POST /v1/jobs/{role}/{env}/{name}/schedule/run": {
		{name: "team B's schedule", method: "POST", path: "/v1/jobs/" + cronB + "/schedule/run", want: guarded(is2xx, 404, is2xx, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.Zero(t, w.runCount(t, cronB)) },
			changed:   func(t *testing.T, w *world, _ principal) { require.Equal(t, 1, w.runCount(t, cronB)) }},
	},
	"POST /v1/jobs/{role}/{env}/{name}/schedule/pause": {
		{name: "team B's schedule", method: "POST", path: "/v1/jobs/" + cronB + "/schedule/pause", want: guarded(is2xx, 404, is2xx, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.False(t, w.cronPaused(t, cronB)) },
			changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.cronPaused(t, cronB)) }},
	},
	"POST /v1/jobs/{role}/{env}/{name}/schedule/resume": {
		{name: "team B's schedule", method: "POST", path: "/v1/jobs/" + cronB + "/schedule/resume", want: guarded(is2xx, 404, is2xx, 403, 403)},
	},
	"DELETE /v1/jobs/{role}/{env}/{name}/schedule": {
		{name: "team B's schedule", method: "DELETE", path: "/v1/jobs/" + cronB + "/schedule", want: guarded(is2xx, 404, is2xx, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.True(t, w.hasCron(t, cronB)) },
			changed:   func(t *testing.T, w *world, _ principal) { require.False(t, w.hasCron(t, cronB)) }},
	},
	"POST /v1/pools": {{
		name: "new pool", method: "POST", path: "/v1/pools", body: poolYAML("new"),
		want:      guarded(is2xx, 403, 403, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.False(t, w.hasPool(t, "new")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasPool(t, "new")) },
	}},
	"GET /v1/pools": {{
		name: "list", method: "GET", path: "/v1/pools", want: anyUser,
		check: func(t *testing.T, w *world, p principal, body []byte) {
			var got []api.Pool
			require.NoError(t, json.Unmarshal(body, &got))
			var names []string
			for _, q := range got {
				names = append(names, q.Name)
			}
			var want []string
			if p == whoAdmin || p == whoViewer {
				want = []string{poolS}
			}
			require.Equal(t, want, names)
		},
	}},
	"GET /v1/pools/{name}": {
		{name: "the pool", method: "GET", path: "/v1/pools/" + poolS, want: guarded(is2xx, 404, 404, is2xx, 403)},
	},
	"PUT /v1/pools/{name}": {{
		name: "the pool", method: "PUT", path: "/v1/pools/" + poolS, body: strings.Replace(poolYAML(poolS), "max: 2", "max: 3", 1),
		want:      guarded(is2xx, 404, 404, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.Equal(t, 2, w.pool(t, poolS).Max) },
		changed:   func(t *testing.T, w *world, _ principal) { require.Equal(t, 3, w.pool(t, poolS).Max) },
	}},
	"POST /v1/pools/{name}/scale": {{
		name: "the pool", method: "POST", path: "/v1/pools/" + poolS + "/scale", body: `{"size": 1}`,
		want:      guarded(is2xx, 404, 404, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.Equal(t, 0, w.pool(t, poolS).Desired) },
		changed:   func(t *testing.T, w *world, _ principal) { require.Equal(t, 1, w.pool(t, poolS).Desired) },
	}},
	"PUT /v1/pools/{name}/packages": {{
		name: "the pool", method: "PUT", path: "/v1/pools/" + poolS + "/packages?to=" + matrixPackageDir, body: matrixPackage,
		want:      guarded(is2xx, 404, 404, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.Empty(t, w.pool(t, poolS).Packages) },
		changed: func(t *testing.T, w *world, _ principal) {
			require.Equal(t, []string{matrixPackageSHA}, []string{w.pool(t, poolS).Packages[0].SHA256})
		},
	}},
	"GET /v1/agent/packages/{sha256}": {{
		name: "a package of the agent's node's pool", method: "GET", path: "/v1/agent/packages/" + matrixPackageSHA + "?node=n3",
		want: guarded(403, 403, 403, 403, is2xx), prepare: prepareAgentPackage,
		check: func(t *testing.T, _ *world, _ principal, body []byte) { require.Equal(t, matrixPackage, string(body)) },
	}},
	"DELETE /v1/pools/{name}": {{
		name: "the pool", method: "DELETE", path: "/v1/pools/" + poolS,
		want:      guarded(is2xx, 404, 404, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.True(t, w.hasPool(t, poolS)) },
		changed:   func(t *testing.T, w *world, _ principal) { require.False(t, w.hasPool(t, poolS)) },
	}},
	"GET /v1/tasks/{id}": {
		{name: "team B's task", method: "GET", path: "/v1/tasks/" + taskB, want: guarded(is2xx, 404, is2xx, is2xx, 403)},
		{name: "team A's task", method: "GET", path: "/v1/tasks/" + taskA, want: guarded(is2xx, is2xx, 404, is2xx, 403)},
	},
	"GET /v1/tasks/{id}/logs/{stream}": {{
		name: "team B's log", method: "GET", path: "/v1/tasks/" + taskB + "/logs/stdout", want: guarded(is2xx, 404, is2xx, is2xx, 403),
		check: func(t *testing.T, _ *world, _ principal, body []byte) { require.Equal(t, logB, string(body)) },
	}},
	"GET /v1/nodes": {{name: "list", method: "GET", path: "/v1/nodes", want: anyUser}},
	"POST /v1/nodes/{name}/drain": {{
		name: "n1", method: "POST", path: "/v1/nodes/n1/drain", want: guarded(is2xx, 403, 403, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.False(t, w.node(t, "n1").Drain) },
		changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.node(t, "n1").Drain) },
	}},
	"POST /v1/nodes/{name}/undrain": {{
		name: "n2", method: "POST", path: "/v1/nodes/n2/undrain", want: guarded(is2xx, 403, 403, 403, 403),
		prepare: func(t *testing.T, w *world) {
			_, err := w.sched.Drain(t.Context(), "n2", true)
			require.NoError(t, err)
		},
		unchanged: func(t *testing.T, w *world) { require.True(t, w.node(t, "n2").Drain) },
		changed:   func(t *testing.T, w *world, _ principal) { require.False(t, w.node(t, "n2").Drain) },
	}},
	"GET /v1/events":     {{name: "all events", method: "GET", path: "/v1/events", want: adminOnly}},
	"GET /vars.json":     {{name: "vars", method: "GET", path: "/vars.json", want: adminOnly}},
	"GET /{$}":           {{name: "jobs page", method: "GET", path: "/", want: page(is2xx, is2xx, is2xx, is2xx, 403), check: checkJobsPage}},
	"GET /ui/tasks/{id}": {{name: "team B's task page", method: "GET", path: "/ui/tasks/" + taskB, want: page(is2xx, 404, is2xx, is2xx, 403)}},
	"GET /ui/jobs/{role}/{env}/{name}": {
		{name: "team B's job page", method: "GET", path: "/ui/jobs/" + jobB, want: page(is2xx, 404, is2xx, is2xx, 403)},
		{name: "team B's job page, run 1", method: "GET", path: "/ui/jobs/" + jobB + "?run=1", want: page(is2xx, 404, is2xx, is2xx, 403),
			check: func(t *testing.T, _ *world, _ principal, body []byte) { require.Contains(t, string(body), taskB) }},
		{name: "team B's scheduled job page", method: "GET", path: "/ui/jobs/" + cronB, want: page(is2xx, 404, is2xx, is2xx, 403),
			check: func(t *testing.T, _ *world, _ principal, body []byte) { require.Contains(t, string(body), "0 2 * * *") }},
	},
	"GET /ui/pools": {{
		name: "pools page", method: "GET", path: "/ui/pools", want: page(is2xx, is2xx, is2xx, is2xx, 403),
		check: func(t *testing.T, _ *world, p principal, body []byte) {
			link := `href="/ui/pools/` + poolS + `"`
			if p == whoAdmin || p == whoViewer {
				require.Contains(t, string(body), link)
			} else {
				require.NotContains(t, string(body), link, "the page shows pool %s only to those who may read it", poolS)
			}
		},
	}},
	"GET /ui/pools/{name}": {
		{name: "the pool's page", method: "GET", path: "/ui/pools/" + poolS, want: page(is2xx, 404, 404, is2xx, 403)},
	},
	"POST /v1/agent/sync": {{
		name: "as n1", method: "POST", path: "/v1/agent/sync",
		body: `{"node": {"name": "n1", "attributes": {"os": "linux"}, "capacity": {"cpu": 4000, "memory": 8589934592}},
			"tasks": [{"task_id": "task0001", "state": "RUNNING"}, {"task_id": "task0002", "state": "RUNNING"}], "seq": 99}`,
		want:  guarded(403, 403, 403, 403, is2xx),
		fresh: true,
		// A refused sync is not heard: n1's last report stays the one
		// before, so an older sequence number still counts.
		unchanged: func(t *testing.T, w *world) {
			w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Seq: 98, Tasks: []api.TaskStatus{
				{TaskID: taskA, State: "RUNNING"}, {TaskID: taskB, State: "FAILED", ExitCode: new(int)},
			}}, http.StatusOK)
			require.Equal(t, task.Failed, w.task(t, taskB).State)
		},
	}},
	"POST /v1/agent/logs": {{
		name: "team A's task", method: "POST", path: "/v1/agent/logs",
		body: fmt.Sprintf(`{"task_id": %q, "stream": "stdout", "offset": %d, "data": "bW9yZQo="}`, taskA, len(logA)),
		want: guarded(403, 403, 403, 403, is2xx),
		unchanged: func(t *testing.T, w *world) {
			require.Equal(t, logA, w.logOf(t, taskA))
		},
		changed: func(t *testing.T, w *world, _ principal) { require.Equal(t, logA+"more\n", w.logOf(t, taskA)) },
	}},
	"POST /v1/login": {{
		name: "alice's password", method: "POST", path: "/v1/login", body: `{"user": "alice", "password": "` + userPass + `"}`,
		// Public: anyone with the password may log in, whatever
		// token the request also carries, but a bad one is refused.
		want: outcomes{whoAnonymous: 201, whoBadToken: 401, whoRevoked: 401, whoAdmin: 201, whoTeamA: 201, whoTeamB: 201, whoViewer: 201, whoAgent: 201},
	}},
	"GET /login": {{
		name: "form", method: "GET", path: "/login",
		// A signed-in user is sent on to the page; a bad credential to
		// the form.
		want: outcomes{whoAnonymous: 200, whoBadToken: 303, whoRevoked: 303, whoAdmin: 303, whoTeamA: 303, whoTeamB: 303, whoViewer: 303, whoAgent: 200},
	}},
	"POST /login": {{
		// What a page on another site would post: no CSRF token.
		name: "form without CSRF token", method: "POST", path: "/login", body: "user=alice&password=" + strings.ReplaceAll(userPass, " ", "+"),
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		// Anonymous: refused for want of the form's CSRF token. With a
		// bearer token there is no session to log in: programs use
		// POST /v1/login.
		want: outcomes{whoAnonymous: 403, whoBadToken: 401, whoRevoked: 401, whoAdmin: 400, whoTeamA: 400, whoTeamB: 400, whoViewer: 400, whoAgent: 400},
	}},
	"POST /logout": {{
		name: "without CSRF token", method: "POST", path: "/logout",
		want: outcomes{whoAnonymous: 403, whoBadToken: 401, whoRevoked: 401, whoAdmin: 303, whoTeamA: 303, whoTeamB: 303, whoViewer: 303, whoAgent: 303},
	}},
	"GET /v1/whoami": {{
		name: "whoami", method: "GET", path: "/v1/whoami", want: anyUser,
		check: func(t *testing.T, _ *world, p principal, body []byte) {
			var who api.WhoAmI
			require.NoError(t, json.Unmarshal(body, &who))
			require.Equal(t, userOf[p], who.Name)
		},
	}},
	"GET /v1/users": {{
		name: "list", method: "GET", path: "/v1/users", want: adminOnly,
		check: func(t *testing.T, _ *world, _ principal, body []byte) {
			require.NotContains(t, string(body), "argon2")
			require.NotContains(t, string(body), "password")
		},
	}},
	"POST /v1/users": {{
		name: "carol", method: "POST", path: "/v1/users", body: `{"name": "carol"}`, want: adminOnly,
		unchanged: func(t *testing.T, w *world) {
			_, ok := w.user(t, "carol")
			require.False(t, ok)
		},
		changed: func(t *testing.T, w *world, _ principal) {
			_, ok := w.user(t, "carol")
			require.True(t, ok)
		},
	}},
	"DELETE /v1/users/{name}": {{
		name: "bob", method: "DELETE", path: "/v1/users/bob", want: adminOnly,
		unchanged: func(t *testing.T, w *world) {
			_, ok := w.user(t, "bob")
			require.True(t, ok)
			require.Equal(t, "bob", w.whoami(t, w.tok[whoTeamB]).Name)
		},
		changed: func(t *testing.T, w *world, _ principal) {
			_, ok := w.user(t, "bob")
			require.False(t, ok)
		},
	}},
	"GET /v1/roles": {{name: "list", method: "GET", path: "/v1/roles", want: adminOnly}},
	"POST /v1/roles": {{
		name: "ops", method: "POST", path: "/v1/roles", body: `{"name": "ops", "permissions": ["job:read:team-a"]}`, want: adminOnly,
		unchanged: func(t *testing.T, w *world) { require.False(t, w.hasRole(t, "ops")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasRole(t, "ops")) },
	}},
	"DELETE /v1/roles/{name}": {{
		name: "team-b", method: "DELETE", path: "/v1/roles/team-b", want: adminOnly,
		unchanged: func(t *testing.T, w *world) { require.True(t, w.hasRole(t, "team-b")) },
		changed: func(t *testing.T, w *world, _ principal) {
			require.False(t, w.hasRole(t, "team-b"))
			u, _ := w.user(t, "bob")
			require.NotContains(t, u.Roles, "team-b", "a deleted role leaves its members")
		},
	}},
	"POST /v1/roles/{name}/grant": {{
		name: "team-b to alice", method: "POST", path: "/v1/roles/team-b/grant", body: `{"user": "alice"}`, want: adminOnly,
		unchanged: func(t *testing.T, w *world) {
			u, _ := w.user(t, "alice")
			require.Equal(t, []string{"team-a"}, u.Roles)
		},
		changed: func(t *testing.T, w *world, _ principal) {
			u, _ := w.user(t, "alice")
			require.Equal(t, []string{"team-a", "team-b"}, u.Roles)
		},
	}},
	"POST /v1/roles/{name}/revoke": {{
		name: "team-a from alice", method: "POST", path: "/v1/roles/team-a/revoke", body: `{"user": "alice"}`, want: adminOnly,
		unchanged: func(t *testing.T, w *world) {
			u, _ := w.user(t, "alice")
			require.Equal(t, []string{"team-a"}, u.Roles)
		},
		changed: func(t *testing.T, w *world, _ principal) {
			u, _ := w.user(t, "alice")
			require.Empty(t, u.Roles)
		},
	}},
	"GET /v1/tokens": {
		{
			name: "own", method: "GET", path: "/v1/tokens", want: anyUser,
			check: func(t *testing.T, _ *world, p principal, body []byte) {
				var ts []api.Token
				require.NoError(t, json.Unmarshal(body, &ts))
				require.NotEmpty(t, ts)
				for _, tk := range ts {
					require.Equal(t, userOf[p], tk.Owner, "a user lists only their own tokens")
					require.Empty(t, tk.Secret)
				}
			},
		},
		{name: "everyone's", method: "GET", path: "/v1/tokens?all=true", want: adminOnly},
	},
	"POST /v1/tokens": {
		{
			name: "own", method: "POST", path: "/v1/tokens", body: `{"name": "mine"}`, want: guarded(201, 201, 201, 201, 403),
			check: func(t *testing.T, _ *world, p principal, body []byte) {
				var tk api.Token
				require.NoError(t, json.Unmarshal(body, &tk))
				require.Equal(t, userOf[p], tk.Owner)
			},
			unchanged: func(t *testing.T, w *world) { require.Equal(t, worldTokens, w.tokenCount(t)) },
			changed:   func(t *testing.T, w *world, _ principal) { require.Equal(t, worldTokens+1, w.tokenCount(t)) },
		},
		{
			name: "agent token", method: "POST", path: "/v1/tokens", body: `{"name": "n9", "kind": "agent"}`, want: guarded(201, 403, 403, 403, 403),
			unchanged: func(t *testing.T, w *world) { require.Equal(t, worldTokens, w.tokenCount(t)) },
		},
	},
	"DELETE /v1/tokens/{id}": {{
		name: "bob's token", method: "DELETE", want: guarded(is2xx, 404, is2xx, 404, 403),
		unchanged: func(t *testing.T, w *world) { require.Equal(t, "bob", w.whoami(t, w.tok[whoTeamB]).Name) },
		changed: func(t *testing.T, w *world, _ principal) {
			code, _ := w.call(t, w.tok[whoTeamB], "GET", "/v1/whoami", "")
			require.Equal(t, http.StatusUnauthorized, code)
		},
	}},
}

// paramSecret is team A's secret parameter's value: no answer but an
// explicit reveal may hold it.
const paramSecret = "s3cret-of-team-a"

// withParams gives alice and bob read and write (not reveal) on their
// team's parameters, and each team a parameter "host"; team A also a
// secret "pw".
func withParams(t *testing.T, w *world) {
	t.Helper()
	for user, team := range map[string]string{"alice": "team-a", "bob": "team-b"} {
		role := team + "-params"
		w.must(t, w.tok[whoAdmin], "POST", "/v1/roles", toJSON(t, api.Role{Name: role, Permissions: []string{
			"param:read:" + team, "param:write:" + team,
		}}), http.StatusCreated)
		w.must(t, w.tok[whoAdmin], "POST", "/v1/roles/"+role+"/grant", toJSON(t, api.GrantRequest{User: user}), http.StatusOK)
		w.must(t, w.tok[whoAdmin], "PUT", "/v1/params/"+team+"/host", `{"value": "db.`+team+`"}`, http.StatusOK)
	}
	w.must(t, w.tok[whoAdmin], "PUT", "/v1/params/team-a/pw", `{"value": "`+paramSecret+`", "secret": true}`, http.StatusOK)
}

// hasParam reports whether a parameter exists.
func (w *world) hasParam(t testing.TB, role, name string) bool {
	t.Helper()
	err := w.store.View(t.Context(), func(rd store.Reader) error {
		_, err := rd.GetParam(t.Context(), role, name)
		return err
	})
	if err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
		return false
	}
	return true
}

func noSecret(t *testing.T, _ *world, _ principal, body []byte) {
	t.Helper()
	require.NotContains(t, string(body), paramSecret)
}

func init() {
	matrix["GET /v1/params/{role}"] = []matrixCase{
		{name: "team A's", method: "GET", path: "/v1/params/team-a", prepare: withParams, want: guarded(is2xx, is2xx, 404, 404, 403),
			check: func(t *testing.T, w *world, p principal, body []byte) {
				noSecret(t, w, p, body)
				var ps []api.Param
				require.NoError(t, json.Unmarshal(body, &ps))
				require.Len(t, ps, 2)
				require.Equal(t, api.Param{Role: "team-a", Name: "host", Value: "db.team-a", UpdatedAt: ps[0].UpdatedAt}, ps[0])
				require.Equal(t, "<redacted>", ps[1].Value)
			}},
		{name: "team B's", method: "GET", path: "/v1/params/team-b", prepare: withParams, want: guarded(is2xx, 404, is2xx, 404, 403)},
	}
	matrix["GET /v1/params/{role}/{name}"] = []matrixCase{
		{name: "team A's", method: "GET", path: "/v1/params/team-a/host", prepare: withParams, want: guarded(is2xx, is2xx, 404, 404, 403)},
		{name: "team A's secret", method: "GET", path: "/v1/params/team-a/pw", prepare: withParams, want: guarded(is2xx, is2xx, 404, 404, 403), check: noSecret},
		{name: "team A's secret revealed", method: "GET", path: "/v1/params/team-a/pw?reveal=true", prepare: withParams,
			// Reading is not revealing: that takes param:reveal:team-a.
			want:  guarded(is2xx, 403, 404, 404, 403),
			check: func(t *testing.T, _ *world, _ principal, body []byte) { require.Contains(t, string(body), paramSecret) }},
		{name: "team B's", method: "GET", path: "/v1/params/team-b/host", prepare: withParams, want: guarded(is2xx, 404, is2xx, 404, 403)},
		{name: "missing", method: "GET", path: "/v1/params/team-b/nope", prepare: withParams, want: guarded(404, 404, 404, 404, 403)},
	}
	matrix["PUT /v1/params/{role}/{name}"] = []matrixCase{{
		name: "team B's", method: "PUT", path: "/v1/params/team-b/new", body: `{"value": "v"}`, prepare: withParams,
		want:      guarded(is2xx, 404, is2xx, 404, 403),
		unchanged: func(t *testing.T, w *world) { require.False(t, w.hasParam(t, "team-b", "new")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasParam(t, "team-b", "new")) },
	}}
	matrix["DELETE /v1/params/{role}/{name}"] = []matrixCase{{
		name: "team A's secret", method: "DELETE", path: "/v1/params/team-a/pw", prepare: withParams,
		want:      guarded(is2xx, is2xx, 404, 404, 403),
		unchanged: func(t *testing.T, w *world) { require.True(t, w.hasParam(t, "team-a", "pw")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.False(t, w.hasParam(t, "team-a", "pw")) },
	}}
}

func checkJobsPage(t *testing.T, _ *world, p principal, body []byte) {
	t.Helper()
	for _, key := range []string{jobA, jobB, cronB} {
		if slices.Contains(jobsVisible[p], key) {
			require.Contains(t, string(body), key)
		} else {
			require.NotContains(t, string(body), key, "the page shows %s only to those who may read it", key)
		}
	}
}

// pathOf fills a case's path; bob's token ID is known only once the world
// exists.
func (c matrixCase) pathOf(w *world) string {
	if c.path == "" {
		return "/v1/tokens/" + w.bobTokenID
	}
	return c.path
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	routes := newBareWorld(t, worldConfig{}).srv.Routes()
	require.NotEmpty(t, routes)
	for _, r := range routes {
		if _, ok := matrix[r]; !ok {
			t.Errorf("new route %q has no row in the authorization matrix: decide who may call it and add one", r)
		}
	}
	for pattern := range matrix {
		if !slices.Contains(routes, pattern) {
			t.Errorf("the matrix has a row for %q, which is no route: remove it", pattern)
		}
	}
	// Each case's request must reach its row's route, not a neighbour or
	// the catch-all 404.
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r, http.NotFoundHandler())
	}
	for pattern, cases := range matrix {
		for _, c := range cases {
			path := c.path
			if path == "" {
				path = "/v1/tokens/x"
			}
			_, got := mux.Handler(httptest.NewRequest(c.method, path, nil))
			require.Equal(t, pattern, got, "case %q of row %q", c.name, pattern)
			for _, p := range principals {
				_, ok := c.want[p]
				require.True(t, ok, "case %q of row %q has no outcome for %s", c.name, pattern, p)
			}
		}
	}
	if t.Failed() {
		return
	}
	for pattern, cases := range matrix {
		for _, c := range cases {
			t.Run(pattern+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				// Calls that change nothing (reads, refusals) share one
				// world, in turn; each call that may change something gets
				// a world of its own.
				var shared *world
				for _, p := range principals {
					if !c.fresh && (c.method == "GET" || c.want[p] >= 400) {
						if shared == nil {
							shared = newWorld(t)
							if c.prepare != nil {
								c.prepare(t, shared)
							}
						}
						t.Run(string(p), func(t *testing.T) { runCell(t, shared, c, p) })
						continue
					}
					t.Run(string(p), func(t *testing.T) {
						t.Parallel()
						w := newWorld(t)
						if c.prepare != nil {
							c.prepare(t, w)
						}
						runCell(t, w, c, p)
					})
				}
			})
		}
	}
}

// runCell makes c's request as p and checks the answer and its effect.
func runCell(t *testing.T, w *world, c matrixCase, p principal) {
	t.Helper()
	code, body := w.callWith(t, w.tok[p], c.method, c.pathOf(w), c.body, c.header)
	want := c.want[p]
	if want == is2xx {
		require.True(t, code >= 200 && code < 300, "%s %s as %s: want 2xx, got %d: %s", c.method, c.pathOf(w), p, code, body)
	} else {
		require.Equal(t, want, code, "%s %s as %s: %s", c.method, c.pathOf(w), p, body)
	}
	if code >= 300 {
		// A refusal shows nothing of what it guards.
		require.NotContains(t, string(body), strings.TrimSpace(logA))
		require.NotContains(t, string(body), strings.TrimSpace(logB))
		if c.unchanged != nil {
			c.unchanged(t, w)
		}
		return
	}
	if c.changed != nil {
		c.changed(t, w, p)
	}
	if c.check != nil {
		c.check(t, w, p, body)
	}
}

// TestOtherTeamsJobLooksMissing: team A's answer about team B's job is the
// answer about a job that does not exist, word for word but the name.
func TestOtherTeamsJobLooksMissing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, c := range []struct{ method, suffix string }{
		{"GET", ""}, {"GET", "/events"}, {"POST", "/kill"}, {"GET", "/versions"}, {"GET", "/versions/1"},
	} {
		codeB, bodyB := w.call(t, w.tok[whoTeamA], c.method, "/v1/jobs/"+jobB+c.suffix, "")
		codeX, bodyX := w.call(t, w.tok[whoTeamA], c.method, "/v1/jobs/team-b/prod/nope"+c.suffix, "")
		require.Equal(t, http.StatusNotFound, codeB)
		require.Equal(t, codeX, codeB)
		require.Equal(t, strings.ReplaceAll(string(bodyX), "nope", "etl"), string(bodyB), "%s %s", c.method, c.suffix)
	}
	codeB, bodyB := w.call(t, w.tok[whoTeamA], "GET", "/v1/tasks/"+taskB, "")
	codeX, bodyX := w.call(t, w.tok[whoTeamA], "GET", "/v1/tasks/task9999", "")
	require.Equal(t, http.StatusNotFound, codeB)
	require.Equal(t, codeX, codeB)
	require.Equal(t, strings.ReplaceAll(string(bodyX), "task9999", taskB), string(bodyB))
	codeB, _ = w.call(t, w.tok[whoTeamA], "GET", "/v1/tasks/"+taskB+"/logs/stdout", "")
	require.Equal(t, http.StatusNotFound, codeB)
}

// TestJobsPageShowsNodesOnlyToNodeReaders: the page answers to any user,
// but shows the nodes only to those who may read them, as GET /v1/nodes
// does.
func TestJobsPageShowsNodesOnlyToNodeReaders(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/roles", `{"name": "a-jobs", "permissions": ["job:*:team-a"]}`, http.StatusCreated)
	w.must(t, w.tok[whoAdmin], "POST", "/v1/users", `{"name": "ann", "roles": ["a-jobs"]}`, http.StatusCreated)
	_, tk, err := w.srv.CreateToken(t.Context(), auth.APIToken, "ann", "", nil, 0)
	require.NoError(t, err)

	w.must(t, tk.Reveal(), "GET", "/v1/nodes", "", http.StatusForbidden)
	page := string(w.must(t, tk.Reveal(), "GET", "/", "", http.StatusOK))
	require.Contains(t, page, jobA)
	require.NotContains(t, page, "<td>n1</td>", "the nodes are not ann's to see")
	require.NotContains(t, page, "<td>n2</td>")

	page = string(w.must(t, w.tok[whoTeamA], "GET", "/", "", http.StatusOK))
	require.Contains(t, page, "<td>n1</td>")
}
