package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store"
)

// The attacks of SECURITY.md that apply to the server today, each with
// what must hold.

// publicRoutes answer without credentials.
var publicRoutes = []string{"GET /health", "POST /v1/login", "GET /login", "POST /login", "POST /logout"}

// isPagePattern reports whether a route is a web page, which sends
// whoever is not signed in to the login form instead of answering 401.
func isPagePattern(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return path == "/{$}" || strings.HasPrefix(path, "/ui/")
}

// firstCase is the matrix's first request for a route.
func firstCase(t *testing.T, pattern string) matrixCase {
	t.Helper()
	cases, ok := matrix[pattern]
	require.True(t, ok && len(cases) > 0, "route %q has no row in the authorization matrix", pattern)
	return cases[0]
}

// requireNoData checks a refusal's body: an error message and nothing of
// what the route guards.
func requireNoData(t *testing.T, w *world, code int, body []byte, what string) {
	t.Helper()
	for _, leak := range []string{jobA, jobB, strings.TrimSpace(logA), strings.TrimSpace(logB), "alice", "victor", w.tok[whoAgent]} {
		require.NotContains(t, string(body), leak, "%s", what)
	}
	if code != http.StatusSeeOther {
		// A page's redirect to the login form names the page asked
		// for, query and all; anything else keeps the admin's token out.
		require.NotContains(t, string(body), w.tok[whoAdmin], "%s", what)
	}
	if code == http.StatusUnauthorized && json.Valid(body) {
		var fields map[string]any
		require.NoError(t, json.Unmarshal(body, &fields))
		require.Len(t, fields, 1, "%s: a 401 says what is wrong and nothing else: %s", what, body)
		require.Contains(t, fields, "error")
	}
}

// TestS1EveryRouteNeedsCredentials: without a token, with a bad, expired
// or revoked one, or with a good one in the query string, no route but the
// public ones serves anything.
func TestS1EveryRouteNeedsCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	adminID, _, _ := strings.Cut(strings.TrimPrefix(w.tok[whoAdmin], "drv_"), "_")
	expired := w.expiredToken(t, "admin")
	badHeaders := map[string]string{
		"garbage":          "Bearer garbage",
		"empty bearer":     "Bearer ",
		"unknown token":    "Bearer " + bogusBearer,
		"wrong secret":     "Bearer drv_" + adminID + "_" + strings.Repeat("a", 32),
		"truncated":        "Bearer " + w.tok[whoAdmin][:len(w.tok[whoAdmin])-1],
		"extended":         "Bearer " + w.tok[whoAdmin] + "a",
		"revoked":          "Bearer " + w.tok[whoRevoked],
		"expired":          "Bearer " + expired,
		"basic":            "Basic YWRtaW46cGFzc3dvcmQ=",
		"token, no scheme": w.tok[whoAdmin],
	}
	for _, pattern := range w.srv.Routes() {
		c := firstCase(t, pattern)
		path := c.pathOf(w)
		isPublic := slices.Contains(publicRoutes, pattern)

		// No credentials at all.
		code, body := w.callWith(t, "", c.method, path, c.body, c.header)
		switch {
		case isPublic:
			continue
		case isPagePattern(pattern):
			require.Equal(t, http.StatusSeeOther, code, "%s without a token", pattern)
		default:
			require.Equal(t, http.StatusUnauthorized, code, "%s without a token: %s", pattern, body)
		}
		requireNoData(t, w, code, body, pattern+" without a token")

		// A good token where tokens do not go: the query string (it
		// would end up in proxies' logs and browsers' history).
		for _, q := range []string{"token", "access_token", "api_key", "bearer", "authorization"} {
			u := path + sep(path) + q + "=" + w.tok[whoAdmin]
			code, body := w.callWith(t, "", c.method, u, c.body, c.header)
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusSeeOther}, code, "%s with ?%s=: %s", pattern, q, body)
			if pattern == "GET /v1/whoami" {
				require.Equal(t, http.StatusUnauthorized, code)
			}
			requireNoData(t, w, code, body, pattern+" ?"+q)
		}

		// Bad credentials are refused everywhere, public routes too.
		for name, h := range badHeaders {
			req := w.request(t, "", c.method, path, c.body)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			req.Header.Set("Authorization", h)
			rec := w.serve(req)
			want := []int{http.StatusUnauthorized}
			if isPagePattern(pattern) || (c.method == "GET" && isPublic && pattern != "GET /health") {
				want = append(want, http.StatusSeeOther)
			}
			require.Contains(t, want, rec.Code, "%s with %s: %s", pattern, name, rec.Body)
			if rec.Code == http.StatusUnauthorized && !isPagePattern(pattern) && !strings.HasPrefix(pattern, "POST /log") {
				require.Equal(t, `Bearer realm="drover"`, rec.Header().Get("WWW-Authenticate"))
			}
			requireNoData(t, w, rec.Code, rec.Body.Bytes(), pattern+" with "+name)
		}
	}
	// Nothing was changed by any of it.
	require.False(t, w.task(t, taskB).KillRequested)
	require.False(t, w.node(t, "n1").Drain)
	_, ok := w.user(t, "bob")
	require.True(t, ok)
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// expiredToken stores a token of owner that expired a minute ago.
func (w *world) expiredToken(t testing.TB, owner string) string {
	t.Helper()
	id, full := auth.NewTokenSecret()
	past := time.Now().Add(-time.Minute)
	require.NoError(t, w.store.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutToken(t.Context(), auth.Token{ID: id, SecretHash: auth.HashToken(full.Reveal()), Kind: auth.APIToken,
			Owner: owner, CreatedAt: past.Add(-time.Hour), ExpiresAt: &past})
	}))
	return full.Reveal()
}

// TestS8InjectionPayloadsArriveVerbatim: shell metacharacters and option
// look-alikes in a job are data. They are stored and handed to the agent
// as the very argv elements and env values submitted, with no shell put in
// front; names, which do reach paths and logs, refuse them.
func TestS8InjectionPayloadsArriveVerbatim(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pwn := filepath.Join(t.TempDir(), "pwn")
	argv := []string{
		"/bin/echo",
		"; touch " + pwn,
		"$(touch " + pwn + ")",
		"`touch " + pwn + "`",
		"x\ntouch " + pwn,
		"--upload-pack=touch " + pwn,
		"-oProxyCommand=touch " + pwn,
		"&& touch " + pwn,
		"| touch " + pwn,
		`'"\`,
		"${IFS}touch${IFS}" + pwn,
	}
	env := map[string]string{"SEMI": "; touch " + pwn, "SUB": "$(touch " + pwn + ")", "TICK": "`id`", "NL": "a\nb", "OPT": "--upload-pack=x"}
	n := 1
	spec := api.JobSpec{Job: "team-a/prod/inject", Instances: &n, Task: api.TaskSpec{Command: argv, Env: env,
		Resources: &api.ResourcesSpec{Memory: "64MiB"}}}
	// Template text in a command is a parameter reference (docs/jobs.md,
	// "Parameters"): one that is not .Params.NAME is refused, never
	// expanded; parameter values themselves are never templated
	// (TestParamsInJobs).
	withTemplate := spec
	withTemplate.Task.Command = append(slices.Clone(argv), "{{.Env}}")
	w.must(t, w.tok[whoTeamA], "POST", "/v1/jobs", toJSON(t, withTemplate), http.StatusBadRequest)
	var sub api.SubmitResponse
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoTeamA], "POST", "/v1/jobs", toJSON(t, spec), http.StatusCreated), &sub))

	var got api.Job
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoTeamA], "GET", "/v1/jobs/team-a/prod/inject", "", http.StatusOK), &got))
	require.NotNil(t, got.Spec)
	require.Equal(t, argv, got.Spec.Task.Command)
	require.Equal(t, env, got.Spec.Task.Env)

	_, err := w.sched.PlaceOnce(t.Context())
	require.NoError(t, err)
	tk := w.task(t, sub.Tasks[0])
	// The node's agent picks it up (n1's agent also reports the two tasks
	// it runs, lest they be judged lost).
	req := api.SyncRequest{Node: nodeInfo(tk.Node)}
	bearer := w.agent2
	if tk.Node == "n1" {
		bearer = w.tok[whoAgent]
		req.Tasks = []api.TaskStatus{{TaskID: taskA, State: "RUNNING"}, {TaskID: taskB, State: "RUNNING"}}
	}
	resp := w.syncAs(t, bearer, req, http.StatusOK)
	require.Len(t, resp.Assign, 1)
	require.Equal(t, argv, resp.Assign[0].Command, "argv unchanged, no shell added")
	require.Equal(t, env, resp.Assign[0].Env)

	_, err = os.Stat(pwn)
	require.ErrorIs(t, err, os.ErrNotExist)

	// A command is a list: a string is not split by a shell.
	code, body := w.call(t, w.tok[whoTeamA], "POST", "/v1/jobs",
		`{"job": "team-a/prod/str", "task": {"command": "echo hi; touch `+pwn+`", "resources": {"cpu": 100, "memory": "64MiB"}}}`)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.False(t, w.hasJob(t, "team-a/prod/str"))

	// Names refuse what a shell or a path would read.
	for _, name := range []string{"x;id", "$(id)", "`id`", "a\nb", "--upload-pack=x", "../x", "a b"} {
		code, body := w.call(t, w.tok[whoAdmin], "POST", "/v1/jobs", jobJSON("team-a/prod/"+name, 1))
		require.Equal(t, http.StatusBadRequest, code, "job name %q: %s", name, body)
		code, body = w.call(t, w.tok[whoAgent], "POST", "/v1/agent/sync", toJSON(t, api.SyncRequest{Node: nodeInfo(name)}))
		require.Equal(t, http.StatusBadRequest, code, "node name %q: %s", name, body)
		code, body = w.call(t, w.tok[whoAdmin], "POST", "/v1/users", toJSON(t, api.UserRequest{Name: name}))
		require.Equal(t, http.StatusBadRequest, code, "user name %q: %s", name, body)
		code, body = w.call(t, w.tok[whoAdmin], "POST", "/v1/roles", toJSON(t, api.Role{Name: name, Permissions: []string{"job:read:x"}}))
		require.Equal(t, http.StatusBadRequest, code, "role name %q: %s", name, body)
	}
	_, err = os.Stat(pwn)
	require.ErrorIs(t, err, os.ErrNotExist)
}

// flakyStore is the real store, whose writes fail while fail is set.
type flakyStore struct {
	store.Store
	fail atomic.Bool
}

func (f *flakyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.fail.Load() {
		return errors.New("the disk is on fire")
	}
	return f.Store.Update(ctx, fn)
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestS13SecretsNeverShown: a token's secret is shown once, in the answer
// that creates it; a password never. Neither is in any later answer, any
// error, the events, the audit trail or the server's debug log.
func TestS13SecretsNeverShown(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	flaky := &flakyStore{}
	w := newWorld(t, func(c *worldConfig) {
		c.logger = logger
		c.wrap = func(st store.Store) store.Store { flaky.Store = st; return flaky }
	})
	ad := w.tok[whoAdmin]

	const (
		password  = "carol's very secret password"
		wrong     = "carol's wrong secret password"
		unknownPw = "nobody's secret password 42"
		short     = "shortpw1"
	)
	var secrets []string // every value that must not show
	addToken := func(tk api.Token) {
		require.NotEmpty(t, tk.Secret)
		_, sec, ok := strings.Cut(strings.TrimPrefix(tk.Secret, "drv_"), "_")
		require.True(t, ok)
		secrets = append(secrets, tk.Secret, sec)
	}
	secrets = append(secrets, password, wrong, unknownPw, short)

	var made api.Token
	require.NoError(t, json.Unmarshal(w.must(t, ad, "POST", "/v1/tokens", `{"name": "ci"}`, http.StatusCreated), &made))
	addToken(made)
	var agentTok api.Token
	require.NoError(t, json.Unmarshal(w.must(t, ad, "POST", "/v1/tokens", `{"name": "n7", "kind": "agent"}`, http.StatusCreated), &agentTok))
	addToken(agentTok)
	w.must(t, ad, "POST", "/v1/users", toJSON(t, api.UserRequest{Name: "carol", Password: password, Roles: []string{"team-a"}}), http.StatusCreated)
	var login api.Token
	require.NoError(t, json.Unmarshal(w.must(t, "", "POST", "/v1/login", toJSON(t, api.LoginRequest{User: "carol", Password: password}), http.StatusCreated), &login))
	addToken(login)

	// Calls that fail, with the secrets in them.
	var answers [][]byte
	keep := func(what string, code int, body []byte) {
		t.Helper()
		require.Less(t, code, 500, "%s: %s", what, body)
		answers = append(answers, []byte(what+": "), body)
	}
	for _, c := range []struct{ bearer, method, path, body string }{
		{"", "POST", "/v1/login", toJSON(t, api.LoginRequest{User: "carol", Password: wrong})},
		{"", "POST", "/v1/login", toJSON(t, api.LoginRequest{User: "nobody", Password: unknownPw})},
		{"", "POST", "/v1/login", `{"user": "carol", "password": "` + password + `", "extra": 1}`},
		{"", "POST", "/v1/login", `{"user": "carol", "password": "` + password + `"` + "\x00}"},
		{"", "POST", "/v1/login", `{"user": "carol", "password": ["` + password + `"]}`},
		{ad, "POST", "/v1/users", toJSON(t, api.UserRequest{Name: "dan", Password: short})},
		{ad, "POST", "/v1/users", toJSON(t, api.UserRequest{Name: "carol", Password: password})},
		{ad, "POST", "/v1/users", `{"name": "bad name!", "password": "` + password + `"}`},
		{made.Secret + "x", "GET", "/v1/whoami", ""},
		{login.Secret, "POST", "/v1/jobs", jobJSON("team-b/prod/x", 1)},
		{login.Secret, "GET", "/v1/users", ""},
		{agentTok.Secret, "GET", "/v1/jobs", ""},
	} {
		code, body := w.call(t, c.bearer, c.method, c.path, c.body)
		keep(c.method+" "+c.path, code, body)
	}
	// The tokens at work.
	for _, bearer := range []string{made.Secret, login.Secret} {
		code, body := w.call(t, bearer, "GET", "/v1/whoami", "")
		require.Equal(t, http.StatusOK, code)
		keep("whoami", code, body)
		code, body = w.call(t, bearer, "GET", "/v1/tokens", "")
		keep("tokens", code, body)
	}
	code, body := w.call(t, agentTok.Secret, "POST", "/v1/agent/sync", toJSON(t, api.SyncRequest{Node: nodeInfo("n7")}))
	keep("sync", code, body)
	// A late status: the scheduler notes at debug level that it ignores it.
	code, body = w.call(t, w.tok[whoAgent], "POST", "/v1/agent/sync", toJSON(t, api.SyncRequest{Node: nodeInfo("n1"),
		Tasks: []api.TaskStatus{{TaskID: taskA, State: "STARTING"}, {TaskID: taskB, State: "RUNNING"}}}))
	keep("late sync", code, body)

	// Failures the server logs: the store refuses every write while
	// secrets are in flight.
	flaky.fail.Store(true)
	for _, c := range []struct{ bearer, method, path, body string }{
		{"", "POST", "/v1/login", toJSON(t, api.LoginRequest{User: "carol", Password: password})},
		{ad, "POST", "/v1/users", toJSON(t, api.UserRequest{Name: "erin", Password: password})},
		{login.Secret, "POST", "/v1/tokens", `{"name": "more"}`},
		{made.Secret, "POST", "/v1/roles", `{"name": "r", "permissions": ["job:read:x"]}`},
	} {
		code, body := w.call(t, c.bearer, c.method, c.path, c.body)
		require.GreaterOrEqual(t, code, 500, "%s %s: %s", c.method, c.path, body)
		answers = append(answers, body)
	}
	flaky.fail.Store(false)
	require.Contains(t, logs.String(), "request failed", "the failures were logged")
	require.Contains(t, logs.String(), "level=DEBUG", "debug logging was on")

	// Everything an admin can read afterwards.
	for _, path := range []string{"/v1/tokens?all=true", "/v1/users", "/v1/roles", "/v1/events?limit=10000",
		"/v1/events?reason=audit", "/v1/events?reason=login_failed", "/vars.json", "/v1/whoami", "/v1/nodes", "/v1/jobs", "/"} {
		code, body := w.call(t, ad, "GET", path, "")
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
		keep(path, code, body)
	}
	for _, pattern := range w.srv.Routes() {
		if !strings.HasPrefix(pattern, "GET ") {
			continue
		}
		for _, c := range matrix[pattern] {
			code, body := w.call(t, ad, "GET", c.pathOf(w), "")
			keep(c.pathOf(w), code, body)
		}
	}
	var audit []api.Event
	require.NoError(t, json.Unmarshal(w.must(t, ad, "GET", "/v1/events?reason=audit&limit=10000", "", http.StatusOK), &audit))
	require.NotEmpty(t, audit, "the calls above were audited")

	t.Logf("%d answers, %d log lines", len(answers)/2, strings.Count(logs.String(), "\n"))
	all := string(bytes.Join(answers, []byte("\n")))
	for _, sec := range secrets {
		requireAbsent(t, all, sec, "the answers")
		requireAbsent(t, logs.String(), sec, "the debug log")
	}
	// Nor are they stored in clear.
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		ts, err := rd.ListTokens(t.Context(), "")
		for _, tk := range ts {
			for _, sec := range secrets {
				require.NotContains(t, tk.SecretHash, sec)
			}
		}
		return err
	}))
}

// requireAbsent fails if secret is in text, showing where (not all of
// text).
func requireAbsent(t *testing.T, text, secret, where string) {
	t.Helper()
	if i := strings.Index(text, secret); i >= 0 {
		t.Fatalf("%s show the secret %q: …%s…", where, secret, text[max(i-300, 0):min(i+len(secret)+100, len(text))])
	}
}

// TestS14PasswordsAndTokensStoredHashed: passwords as salted argon2id,
// tokens as SHA-256 of the secret.
func TestS14PasswordsAndTokensStoredHashed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const pw = "a password of some length"
	for _, name := range []string{"carol", "dan"} {
		w.must(t, w.tok[whoAdmin], "POST", "/v1/users", toJSON(t, api.UserRequest{Name: name, Password: pw}), http.StatusCreated)
	}
	carol, _ := w.user(t, "carol")
	dan, _ := w.user(t, "dan")
	for _, u := range []auth.User{carol, dan} {
		require.True(t, strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$"), u.PasswordHash)
		require.NotContains(t, u.PasswordHash, pw)
		require.True(t, auth.CheckPassword(u.PasswordHash, pw))
	}
	require.NotEqual(t, carol.PasswordHash, dan.PasswordHash, "salted: one password, two hashes")

	var tk api.Token
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoAdmin], "POST", "/v1/tokens", `{"name": "x"}`, http.StatusCreated), &tk))
	_, sec, _ := strings.Cut(strings.TrimPrefix(tk.Secret, "drv_"), "_")
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		stored, err := rd.GetToken(t.Context(), tk.ID)
		require.NoError(t, err)
		require.Equal(t, auth.HashToken(tk.Secret), stored.SecretHash)
		require.NotContains(t, stored.SecretHash, sec)
		return nil
	}))
}

// TestS14BruteForceLogin: 1,000 wrong passwords from one address. After
// the limit, every try answers 429 without a password check — even the
// right password — and every failure is recorded.
func TestS14BruteForceLogin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const tries = 1000
	try := func(addr, user, password string) (int, time.Duration) {
		req := w.request(t, "", "POST", "/v1/login", toJSON(t, api.LoginRequest{User: user, Password: password}))
		req.RemoteAddr = addr + ":40000"
		start := time.Now()
		rec := w.serve(req)
		return rec.Code, time.Since(start)
	}
	var checked, refused []time.Duration
	for i := range tries {
		code, d := try("203.0.113.7", "alice", fmt.Sprintf("guess number %04d", i))
		if len(checked) < 5 {
			require.Equal(t, http.StatusUnauthorized, code, "try %d", i)
			checked = append(checked, d)
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, code, "try %d", i)
		refused = append(refused, d)
	}
	code, _ := try("203.0.113.7", "alice", userPass)
	require.Equal(t, http.StatusTooManyRequests, code, "the right password does not lift the limit")
	code, _ = try("198.51.100.1", "alice", userPass)
	require.Equal(t, http.StatusTooManyRequests, code, "the limit on the user holds from any address")
	code, _ = try("198.51.100.1", "bob", userPass)
	require.Equal(t, http.StatusCreated, code, "other users are not locked out")

	// Refusals skip the password check: each costs a small part of one.
	mean := func(ds []time.Duration) time.Duration {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return sum / time.Duration(len(ds))
	}
	t.Logf("a refused try took %s on average, a checked one %s", mean(refused), mean(checked))
	require.Less(t, mean(refused)*4, mean(checked), "refused %s, checked %s", mean(refused), mean(checked))

	// One address may not walk through many users either.
	for i := range 25 {
		code, _ := try("192.0.2.99", fmt.Sprintf("user%02d", i), "wrong password here")
		want := http.StatusUnauthorized
		if i >= 20 {
			want = http.StatusTooManyRequests
		}
		require.Equal(t, want, code, "user%02d", i)
	}
	code, _ = try("192.0.2.99", "bob", userPass)
	require.Equal(t, http.StatusTooManyRequests, code)

	var failed []api.Event
	require.NoError(t, json.Unmarshal(w.must(t, w.tok[whoAdmin], "GET", "/v1/events?reason="+string(event.LoginFailed)+"&limit=10000", "", http.StatusOK), &failed))
	fromAttacker := 0
	for _, e := range failed {
		if e.Source == "203.0.113.7" {
			fromAttacker++
			require.Equal(t, "login as alice", e.Actor)
		}
	}
	require.Equal(t, tries+1, fromAttacker, "every failed try is recorded")
}

// countingReader yields n bytes of filler, counting what is read.
type countingReader struct {
	n, read int64
	fill    byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.n-c.read)
	for i := range p[:k] {
		p[i] = c.fill
	}
	c.read += k
	return int(k), nil
}

// TestS15OversizeBodies: a 100 MB body to any route is refused after the
// route's limit, without being read to the end.
func TestS15OversizeBodies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const huge = 100 << 20
	limits := map[string]int64{
		"POST /v1/jobs": server.MaxJobBody, "POST /v1/agent/sync": server.MaxSyncBody, "POST /v1/agent/logs": server.MaxLogChunkBody,
		"PUT /v1/params/{role}/{name}": server.MaxParamBody, "PUT /v1/templates/{role}/{env}/{name}": server.MaxTemplateBody,
		"POST /v1/templates/{role}/{env}/{name}/launch": server.MaxLaunchBody,
		"POST /v1/pools": server.MaxPoolBody, "PUT /v1/pools/{name}": server.MaxPoolBody,
		"PUT /v1/pools/{name}/packages": server.MaxPackageBody,
	}
	for _, pattern := range w.srv.Routes() {
		if strings.HasPrefix(pattern, "GET ") {
			continue
		}
		c := firstCase(t, pattern)
		limit, ok := limits[pattern]
		if !ok {
			limit = 64 << 10
		}
		for _, fill := range []byte{' ', '['} {
			for _, p := range []principal{whoAdmin, whoAgent, whoAnonymous} {
				body := &countingReader{n: huge, fill: fill}
				req := httptest.NewRequestWithContext(t.Context(), c.method, c.pathOf(w), body)
				req.ContentLength = huge
				if w.tok[p] != "" {
					req.Header.Set("Authorization", "Bearer "+w.tok[p])
				}
				for k, v := range c.header {
					req.Header.Set(k, v)
				}
				rec := w.serve(req)
				// Routes that take no body ignore it; the others stop at
				// their limit.
				require.Less(t, rec.Code, 500, "%s as %s: %s", pattern, p, rec.Body)
				require.LessOrEqual(t, body.read, limit+64<<10, "%s as %s read %d bytes", pattern, p, body.read)
				switch {
				case body.read <= limit:
				case strings.HasPrefix(pattern, "POST /v1/"):
					require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "%s as %s: %s", pattern, p, rec.Body)
				default: // the login form: refused as a bad form, or for want of its CSRF token
					require.GreaterOrEqual(t, rec.Code, 400, "%s as %s", pattern, p)
				}
				if p == whoAdmin && pattern == "POST /v1/jobs" {
					require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
				}
			}
		}
	}
	require.False(t, w.task(t, taskB).KillRequested)
}

// TestS15HostileJSON: 10,000-deep nesting is a 400, not a crash, on every
// route that reads JSON; a job of 100,000 instances is a 400 too.
func TestS15HostileJSON(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const depth = 10000
	bodies := map[string]string{
		"arrays":          strings.Repeat("[", depth) + strings.Repeat("]", depth),
		"objects":         strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth),
		"in a field":      `{"job": "team-a/prod/deep", "task": {"env": {"X": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}}`,
		"unclosed":        strings.Repeat("[", depth),
		"yaml flow":       strings.Repeat("{a: ", depth) + "1" + strings.Repeat("}", depth),
		"tasks of a sync": `{"node": {"name": "n1"}, "tasks": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
	}
	// A job may be YAML: deep block nesting too (1,000 levels is half a
	// megabyte of indentation).
	code, data := w.call(t, w.tok[whoAdmin], "POST", "/v1/jobs", deepYAML(1000))
	require.Equal(t, http.StatusBadRequest, code, "%.300s", data)
	for _, route := range []struct{ pattern, path string }{
		{"POST /v1/jobs", "/v1/jobs"}, {"POST /v1/agent/sync", "/v1/agent/sync"}, {"POST /v1/agent/logs", "/v1/agent/logs"},
		{"POST /v1/login", "/v1/login"}, {"POST /v1/users", "/v1/users"}, {"POST /v1/roles", "/v1/roles"},
		{"POST /v1/tokens", "/v1/tokens"}, {"POST /v1/roles/{name}/grant", "/v1/roles/team-a/grant"},
		{"POST /v1/jobs/{role}/{env}/{name}/kill", "/v1/jobs/" + jobA + "/kill"},
	} {
		bearer := w.tok[whoAdmin]
		if strings.HasPrefix(route.path, "/v1/agent/") {
			bearer = w.tok[whoAgent]
		}
		for name, body := range bodies {
			code, data := w.call(t, bearer, "POST", route.path, body)
			require.Equal(t, http.StatusBadRequest, code, "%s, %s: %.300s", route.pattern, name, data)
		}
	}
	require.False(t, w.hasJob(t, "team-a/prod/deep"))
	require.False(t, w.task(t, taskA).KillRequested)

	code, data = w.call(t, w.tok[whoAdmin], "POST", "/v1/jobs", jobJSON("team-a/prod/wide", 100000))
	require.Equal(t, http.StatusBadRequest, code, "%s", data)
	var e api.Error
	require.NoError(t, json.Unmarshal(data, &e))
	require.Equal(t, "instances", e.Field)
	require.False(t, w.hasJob(t, "team-a/prod/wide"))
}

// deepYAML is a block mapping nested depth levels.
func deepYAML(depth int) string {
	var b strings.Builder
	for i := range depth {
		b.WriteString(strings.Repeat(" ", i))
		b.WriteString("a:\n")
	}
	return b.String()
}
