package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/store"
)

// The web page under attack (SECURITY.md S5, S7): forged requests from
// other sites, hostile text in logs and messages, and error pages.

// killPath is the API call the CSRF cases try to forge.
const killPath = "/v1/jobs/demo/dev/hello/kill"

func TestCSRF(t *testing.T) {
	t.Parallel()
	const evil = "http://evil.example"
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name   string
		path   string
		ctype  string
		body   string
		header map[string]string
		// origin replaces the browser's Origin ("-": none).
		origin string
		// token adds the session's CSRF token: "header" or "form".
		token string
		want  int
	}{
		{name: "cross-origin kill, even with the token", path: killPath, origin: evil, token: "header", want: 403},
		{name: "cross-site kill by Sec-Fetch-Site", path: killPath, origin: "-", token: "header",
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403},
		{name: "cross-origin kill by Referer", path: killPath, origin: "-", token: "header",
			header: map[string]string{"Referer": evil + "/x.html"}, want: 403},
		{name: "cross-origin form post", path: killPath, origin: evil, ctype: form, token: "form", want: 403},
		{name: "cross-origin logout", path: "/logout", origin: evil, ctype: form, token: "form", want: 403},
		// An HTML form with enctype=text/plain can post JSON-looking text
		// without a CORS preflight.
		{name: "text/plain job from another site", path: "/v1/jobs", origin: evil, ctype: "text/plain",
			body: `{"job": "demo/dev/evil", "ignore": "="}`, want: 403},
		{name: "text/plain kill from another site", path: killPath, origin: evil, ctype: "text/plain",
			body: `{"instances": [0], "x": "="}`, want: 403},
		{name: "same origin without the token", path: killPath, want: 403},
		{name: "same origin with a wrong token", path: killPath,
			header: map[string]string{"X-CSRF-Token": "not-the-token"}, want: 403},
		{name: "same origin text/plain without the token", path: killPath, ctype: "text/plain", body: "{}", want: 403},
		{name: "same-origin logout without the token", path: "/logout", ctype: form, want: 403},
		{name: "same origin with the token", path: killPath, token: "header", want: 200},
		{name: "same origin, Sec-Fetch-Site, with the token", path: killPath, origin: "-", token: "header",
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}, want: 200},
		{name: "no origin headers, with the token", path: killPath, origin: "-", token: "header", want: 200},
		{name: "same-origin logout with the token", path: "/logout", ctype: form, token: "form", want: 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.running(t)
			b.addUser(t, "alice", "admin")
			victim := newBrowser(t, b.url, nil)
			victim.mustLogin(t, "alice", alicePassword)
			tok := victim.token(t)
			before := b.snapshot(t)

			// The request the attacker makes the victim's browser send:
			// it carries the victim's cookie.
			header := map[string]string{}
			for k, v := range tt.header {
				header[k] = v
			}
			body := tt.body
			switch tt.token {
			case "header":
				header["X-CSRF-Token"] = tok
			case "form":
				body = url.Values{"csrf_token": {tok}}.Encode()
			}
			switch tt.origin {
			case "":
			case "-":
				victim.origin = ""
			default:
				victim.origin = tt.origin
			}
			resp, got := victim.do(t, http.MethodPost, tt.path, tt.ctype, body, header)
			require.Equal(t, tt.want, resp.StatusCode, "%s", got)
			victim.origin = b.url

			if tt.want == http.StatusForbidden {
				require.Empty(t, cmp.Diff(before, b.snapshot(t)), "a refused request changes nothing")
				resp, _ := victim.get(t, "/v1/whoami")
				require.Equal(t, http.StatusOK, resp.StatusCode, "the victim is still signed in")
				return
			}
			if tt.path == "/logout" {
				resp, _ := victim.get(t, "/v1/whoami")
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "logged out")
				return
			}
			require.NotEmpty(t, cmp.Diff(before, b.snapshot(t)), "an allowed request does its work")
		})
	}
}

// TestCSRFLeavesTokensAlone: a bearer token is no ambient credential (a
// browser never adds it by itself), so calls with one are not held to the
// origin and token checks, whatever Origin says.
func TestCSRFLeavesTokensAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	resp, body := b.do(t, "POST", killPath, "", map[string]string{"Origin": "http://evil.example"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
}

// TestLoginCSRF: the login form is held to the origin and token checks
// too, so another site cannot log a victim in as the attacker.
func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "mallory", "viewer")
	creds := url.Values{"user": {"mallory"}, "password": {alicePassword}}

	victim := newBrowser(t, b.url, nil)
	victim.origin = "http://evil.example"
	resp, _ := victim.postForm(t, "/login", creds)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	victim.origin = b.url
	resp, page := victim.postForm(t, "/login", creds)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no token: %s", page)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, page, "CSRF token")
	resp, _ = victim.get(t, "/v1/whoami")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "not logged in as mallory")
}

// snapshot is everything a request could change, read from the store.
type snapshot struct {
	Jobs   []string
	Tasks  []string
	Nodes  []string
	Users  []string
	Roles  []string
	Tokens []string
	Events []string
}

func (b *bundle) snapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	add := func(to *[]string, v any) { *to = append(*to, mustJSON(t, v)) }
	require.NoError(t, b.store.View(b.ctx, func(rd store.Reader) error {
		js, err := rd.ListJobs(b.ctx)
		require.NoError(t, err)
		for _, j := range js {
			add(&s.Jobs, j)
		}
		ts, err := rd.ListTasks(b.ctx, store.TaskFilter{})
		require.NoError(t, err)
		for _, tk := range ts {
			add(&s.Tasks, tk)
		}
		ns, err := rd.ListNodes(b.ctx)
		require.NoError(t, err)
		for _, n := range ns {
			add(&s.Nodes, n)
		}
		us, err := rd.ListUsers(b.ctx)
		require.NoError(t, err)
		for _, u := range us {
			add(&s.Users, u)
		}
		rs, err := rd.ListRoles(b.ctx)
		require.NoError(t, err)
		for _, r := range rs {
			add(&s.Roles, r)
		}
		tks, err := rd.ListTokens(b.ctx, "")
		require.NoError(t, err)
		for _, tk := range tks {
			add(&s.Tokens, tk)
		}
		es, err := rd.ListEvents(b.ctx, store.EventFilter{Limit: 100000})
		require.NoError(t, err)
		for _, e := range es {
			if e.Reason == "audit" {
				continue // the refusal itself is recorded
			}
			add(&s.Events, e)
		}
		return nil
	}))
	return s
}

// TestNoGETMutates calls every GET route, as the admin and as a signed-in
// browser, and finds the store as it was: following a link (which SameSite
// =Lax lets another site do with the cookie) changes nothing.
func TestNoGETMutates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	b.upload(t, "stdout", 0, "hello\n")
	b.addUser(t, "alice", "admin")
	br := newBrowser(t, b.url, nil)
	br.mustLogin(t, "alice", alicePassword)
	fill := strings.NewReplacer("{role}/{env}/{name}", "demo/dev/hello", "{id}", "task0001",
		"{stream}", "stdout", "{name}", "n1", "{$}", "")

	before := b.snapshot(t)
	n := 0
	for _, pattern := range b.srv.Routes() {
		path, ok := strings.CutPrefix(pattern, "GET ")
		if !ok {
			continue
		}
		path = fill.Replace(path)
		n++
		resp, body := b.do(t, "GET", path, "", nil)
		require.Less(t, resp.StatusCode, 500, "%s: %s", pattern, body)
		resp, page := br.get(t, path)
		require.Less(t, resp.StatusCode, 500, "%s: %s", pattern, page)
	}
	require.Greater(t, n, 10)
	require.Empty(t, cmp.Diff(before, b.snapshot(t)), "a GET changed the store")
}

func TestPagesEscapeHostileText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)

	// Names are validated: a job key cannot hold markup.
	for _, key := range []string{`demo/dev/<script>`, `demo/dev/x"onmouseover="alert(1)`, `demo/<b>/x`} {
		spec := strings.Replace(helloYAML(t), "job: demo/dev/hello", "job: '"+strings.ReplaceAll(key, "'", "''")+"'", 1)
		resp, body := b.do(t, "POST", "/v1/jobs", spec, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", key, body)
	}

	// Task output and messages are the task's own: anything goes, and
	// the page shows it as text.
	payloads := []string{
		`<script>alert(1)</script>`,
		`<img src=x onerror=alert(1)>`,
		`http://a/</a><b>x</b>`,
		`"><svg onload=alert(1)>`,
		"\x1b]0;pwn\x07",
	}
	b.upload(t, "stdout", 0, strings.Join(payloads, "\n")+"\n")
	one := 1
	b.sync(t, api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{{
		TaskID: "task0001", State: "FAILED", ExitCode: &one, Message: `exited: <script>alert(2)</script>`,
	}}})

	for _, path := range []string{"/ui/tasks/task0001", "/ui/jobs/demo/dev/hello"} {
		resp, body := b.do(t, "GET", path, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		page := string(body)
		require.NotContains(t, page, "<script", "%s: no script element at all", path)
		for _, p := range payloads[1:4] {
			require.NotContains(t, page, p, path)
		}
		require.Contains(t, page, "&lt;script&gt;alert(2)&lt;/script&gt;", "%s shows the message as text", path)
		requireStrictCSP(t, resp)
	}
	resp, body := b.do(t, "GET", "/ui/tasks/task0001", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "&lt;script&gt;alert(1)&lt;/script&gt;", "the log line as text")
	require.Contains(t, string(body), "&lt;img src=x onerror=alert(1)&gt;")
}

// requireStrictCSP checks that the page's policy forbids inline script
// and framing.
func requireStrictCSP(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	dirs := map[string]string{}
	for d := range strings.SplitSeq(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		dirs[name] = value
	}
	script, ok := dirs["script-src"]
	if !ok {
		script = dirs["default-src"]
	}
	require.Equal(t, "'self'", script, "scripts only from our own files: %s", csp)
	require.Equal(t, "'none'", dirs["frame-ancestors"], csp)
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}

func TestPageErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	b.addUser(t, "alice", "admin")
	b.addUser(t, "carol")
	alice := newBrowser(t, b.url, nil)
	alice.mustLogin(t, "alice", alicePassword)
	carol := newBrowser(t, b.url, nil) // signed in, but may read no job
	carol.mustLogin(t, "carol", alicePassword)
	anonymous := newBrowser(t, b.url, nil)

	tests := []struct {
		name string
		br   *browser
		path string
		code int
		want string
	}{
		{name: "unknown task", br: alice, path: "/ui/tasks/nosuch", code: 404, want: "not found"},
		{name: "bad task id", br: alice, path: "/ui/tasks/NOPE", code: 400},
		{name: "unknown page", br: alice, path: "/ui/nope", code: 404},
		{name: "another team's job", br: carol, path: "/ui/jobs/demo/dev/hello", code: 404},
		{name: "anonymous, unknown page", br: anonymous, path: "/ui/nope", code: 303},
		{name: "anonymous, jobs", br: anonymous, path: "/", code: 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, page := tt.br.get(t, tt.path)
			require.Equal(t, tt.code, resp.StatusCode, "%s", page)
			if tt.code == http.StatusSeeOther {
				require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/login"))
				return
			}
			require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			require.True(t, strings.HasPrefix(page, "<!doctype html>"), "%.200s", page)
			require.Contains(t, page, http.StatusText(tt.code))
			require.Contains(t, page, tt.want)
			requireStrictCSP(t, resp)
		})
	}

	// The API keeps answering JSON, signed in or not.
	resp, _ := anonymous.get(t, "/v1/jobs")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	resp, _ = alice.get(t, "/v1/tasks/nosuch")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
}
