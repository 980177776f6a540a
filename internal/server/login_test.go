package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// Web sessions (SECURITY.md S6, S14): cookie hygiene, fixation, logout,
// timeouts, brute force, open redirects, and roles that change under a
// live session.

// alicePassword is the password of the users tests make.
const alicePassword = "correct horse battery staple"

// browser is a web browser's side of the web page: a cookie jar, no
// automatic redirects, and an Origin header on posts, as browsers send.
type browser struct {
	base   string
	client *http.Client
	// origin is sent as Origin on non-GET requests ("" sends none).
	origin string
}

func newBrowser(t *testing.T, base string, rt http.RoundTripper) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{base: base, origin: base, client: &http.Client{
		Jar: jar, Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request with the browser's cookies and returns the answer
// with its body.
func (br *browser) do(t *testing.T, method, path, contentType, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, br.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if method != http.MethodGet && br.origin != "" {
		req.Header.Set("Origin", br.origin)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := br.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(data)
}

func (br *browser) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return br.do(t, http.MethodGet, path, "", "", nil)
}

// postForm posts an HTML form.
func (br *browser) postForm(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return br.do(t, http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), nil)
}

var csrfInPage = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf returns the CSRF token a page carries in its forms.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfInPage.FindStringSubmatch(page)
	require.NotNil(t, m, "no CSRF token in the page: %.400s", page)
	return m[1]
}

// login fills in the login form as a person would and returns the answer
// to the post.
func (br *browser) login(t *testing.T, user, password, next string) (*http.Response, string) {
	t.Helper()
	resp, page := br.get(t, "/login")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
	return br.postForm(t, "/login", url.Values{
		"csrf_token": {csrf(t, page)}, "user": {user}, "password": {password}, "next": {next},
	})
}

// mustLogin logs in and checks that it worked.
func (br *browser) mustLogin(t *testing.T, user, password string) {
	t.Helper()
	resp, body := br.login(t, user, password, "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
	require.Equal(t, "/", resp.Header.Get("Location"))
}

// token returns the CSRF token of the signed-in session, from a page.
func (br *browser) token(t *testing.T) string {
	t.Helper()
	resp, page := br.get(t, "/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
	return csrf(t, page)
}

// sessionCookie returns the cookie the server set last for the session.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "drover_session") {
			return c
		}
	}
	require.FailNow(t, "no session cookie set", "Set-Cookie: %q", resp.Header.Values("Set-Cookie"))
	return nil
}

// withCookie sends a request with exactly this cookie (a replay, a stolen
// or planted one) and no other credential.
func withCookie(t *testing.T, base, method, path string, c *http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
	require.NoError(t, err)
	req.AddCookie(c)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp
}

// addUser makes a user with alicePassword and roles, as the admin.
func (b *bundle) addUser(t *testing.T, name string, roles ...string) {
	t.Helper()
	call[api.User](t, b, "POST", "/v1/users",
		mustJSON(t, api.UserRequest{Name: name, Password: alicePassword, Roles: roles}), http.StatusCreated)
}

func TestLoginCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tls    bool
		cookie string
	}{
		{name: "plain HTTP", cookie: "drover_session"},
		// Under TLS the cookie is Secure, and its __Host- name makes
		// browsers insist on it.
		{name: "TLS", tls: true, cookie: "__Host-drover_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.addUser(t, "alice", "admin")
			base, rt := b.url, http.DefaultTransport
			if tt.tls {
				ts := httptest.NewTLSServer(b.srv)
				t.Cleanup(ts.Close)
				base, rt = ts.URL, ts.Client().Transport
			}
			br := newBrowser(t, base, rt)

			resp, body := br.login(t, "alice", alicePassword, "")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
			c := sessionCookie(t, resp)
			require.Equal(t, tt.cookie, c.Name)
			require.True(t, c.HttpOnly, "scripts cannot read it")
			require.Equal(t, http.SameSiteLaxMode, c.SameSite)
			require.Equal(t, tt.tls, c.Secure)
			require.Equal(t, "/", c.Path)
			require.Empty(t, c.Domain)
			require.GreaterOrEqual(t, len(c.Value), 43, "256 random bits")

			resp, page := br.get(t, "/")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
			require.Contains(t, page, `<span id="user">alice</span>`)
			require.Contains(t, page, `<form id="logout" method="post" action="/logout">`)
			who := mustDecode[api.WhoAmI](t, br, "/v1/whoami")
			require.Equal(t, "alice", who.Name)
			require.Equal(t, []string{"admin"}, who.Permissions)
		})
	}
}

// mustDecode GETs an API path with the browser's cookie and decodes the
// JSON answer.
func mustDecode[T any](t *testing.T, br *browser, path string) T {
	t.Helper()
	resp, body := br.get(t, path)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var v T
	require.NoError(t, json.Unmarshal([]byte(body), &v), "%s", body)
	return v
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "alice", "admin")
	br := newBrowser(t, b.url, nil)

	// The attacker gets a session from the login page and plants its
	// cookie in the victim's browser; the victim logs in with it.
	resp, page := br.get(t, "/login")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	planted := sessionCookie(t, resp)
	resp, body := br.postForm(t, "/login", url.Values{
		"csrf_token": {csrf(t, page)}, "user": {"alice"}, "password": {alicePassword},
	})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
	fresh := sessionCookie(t, resp)
	require.NotEqual(t, planted.Value, fresh.Value, "login issues a new session id")

	// The planted id gives the attacker nothing.
	resp = withCookie(t, b.url, "GET", "/", planted)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/login", resp.Header.Get("Location"))
	require.Equal(t, http.StatusUnauthorized, withCookie(t, b.url, "GET", "/v1/whoami", planted).StatusCode)
	// The victim's is signed in.
	require.Equal(t, http.StatusOK, withCookie(t, b.url, "GET", "/", fresh).StatusCode)
	// An id the server never issued is not taken up either.
	made := &http.Cookie{Name: planted.Name, Value: strings.Repeat("A", 43)}
	require.Equal(t, http.StatusUnauthorized, withCookie(t, b.url, "GET", "/v1/whoami", made).StatusCode)
}

func TestLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "alice", "admin")
	br := newBrowser(t, b.url, nil)
	br.mustLogin(t, "alice", alicePassword)
	tok := br.token(t)
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	old := br.client.Jar.Cookies(u)[0]

	resp, body := br.postForm(t, "/logout", url.Values{"csrf_token": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
	require.Equal(t, "/login", resp.Header.Get("Location"))
	gone := sessionCookie(t, resp)
	require.Empty(t, gone.Value)
	require.Negative(t, gone.MaxAge, "the browser drops the cookie")

	// Replaying the old cookie: the server ended the session.
	resp = withCookie(t, b.url, "GET", "/", old)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/login", resp.Header.Get("Location"))
	resp = withCookie(t, b.url, "GET", "/v1/jobs", old)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "the API answers as an API")
}

func TestLoginBruteForce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "alice", "admin")
	br := newBrowser(t, b.url, nil)

	for i := range 5 {
		resp, page := br.login(t, "alice", fmt.Sprintf("wrong password %d", i), "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "try %d", i+1)
		require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Contains(t, page, "Wrong user name or password.")
		require.Contains(t, page, `value="alice"`, "the form keeps the user name")
		require.NotContains(t, page, "wrong password", "never the password")
	}
	// The sixth try within the window is refused, even with the right
	// password, and says so.
	resp, page := br.login(t, "alice", alicePassword, "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", page)
	require.Contains(t, page, "Too many failed logins")
	require.Equal(t, http.StatusUnauthorized, withCookie(t, b.url, "GET", "/v1/whoami", sessionCookie(t, resp)).StatusCode)

	events := call[[]api.Event](t, b, "GET", "/v1/events?reason=login_failed", "", http.StatusOK)
	require.Len(t, events, 6, "each failure is recorded")
	for i, e := range events {
		require.Equal(t, "login as alice", e.Actor)
		require.NotEmpty(t, e.Source)
		if i < 5 {
			require.Equal(t, "wrong user or password", e.Message)
		} else {
			require.Contains(t, e.Message, "too many failures")
		}
	}

	// Other users are not locked out by alice's attacker (the limit per
	// address is higher).
	b.addUser(t, "bob", "viewer")
	newBrowser(t, b.url, nil).mustLogin(t, "bob", alicePassword)
}

func TestLoginRedirect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "alice", "admin")
	b.running(t)

	tests := []struct {
		name, next, want string
	}{
		{name: "none", next: "", want: "/"},
		{name: "a page", next: "/ui/tasks/task0001", want: "/ui/tasks/task0001"},
		{name: "a page with a query", next: "/ui/jobs/demo/dev/hello?x=1", want: "/ui/jobs/demo/dev/hello?x=1"},
		{name: "scheme-relative", next: "//evil.example", want: "/"},
		{name: "scheme-relative with path", next: "//evil.example/login", want: "/"},
		{name: "absolute", next: "https://evil.example/", want: "/"},
		{name: "backslash", next: `/\evil.example`, want: "/"},
		{name: "javascript", next: "javascript:alert(1)", want: "/"},
		{name: "tab trick", next: "/\t/evil.example", want: "/"},
		{name: "relative", next: "evil.example", want: "/"},
		{name: "back to login", next: "/login", want: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			br := newBrowser(t, b.url, nil)
			resp, body := br.login(t, "alice", alicePassword, tt.next)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
			require.Equal(t, tt.want, resp.Header.Get("Location"))
		})
	}

	t.Run("anonymous page visit", func(t *testing.T) {
		t.Parallel()
		br := newBrowser(t, b.url, nil)
		resp, _ := br.get(t, "/ui/jobs/demo/dev/hello?x=1")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		loc := resp.Header.Get("Location")
		require.Equal(t, "/login?next=%2Fui%2Fjobs%2Fdemo%2Fdev%2Fhello%3Fx%3D1", loc)
		// The form carries next, and logging in goes back there.
		resp, page := br.get(t, loc)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, page, `name="next" value="/ui/jobs/demo/dev/hello?x=1"`)
		resp, body := br.postForm(t, "/login", url.Values{
			"csrf_token": {csrf(t, page)}, "user": {"alice"}, "password": {alicePassword},
			"next": {"/ui/jobs/demo/dev/hello?x=1"},
		})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
		require.Equal(t, "/ui/jobs/demo/dev/hello?x=1", resp.Header.Get("Location"))
		resp, page = br.get(t, "/ui/jobs/demo/dev/hello?x=1")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
		// Signed in, the login page sends the user on.
		resp, _ = br.get(t, "/login?next=//evil.example")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/", resp.Header.Get("Location"))
	})
}

func TestSessionFollowsRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "bob", "viewer")
	br := newBrowser(t, b.url, nil)
	br.mustLogin(t, "bob", alicePassword)

	resp, _ := br.get(t, "/v1/nodes")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Revoking the role takes effect on the next request.
	call[map[string]any](t, b, "POST", "/v1/roles/viewer/revoke", `{"user": "bob"}`, http.StatusOK)
	resp, _ = br.get(t, "/v1/nodes")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = br.get(t, "/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "still bob, with fewer rights")

	// A deleted user's session is dead, and stays dead when a new user
	// of the same name is made for someone else.
	call[map[string]string](t, b, "DELETE", "/v1/users/bob", "", http.StatusOK)
	b.addUser(t, "bob", "admin")
	resp, _ = br.get(t, "/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/login", resp.Header.Get("Location"))
	resp, _ = br.get(t, "/v1/whoami")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// handlerTransport sends requests straight to a handler, without a
// network, so that a test in a synctest bubble can let the fake clock
// run: a goroutine waiting on a socket would keep the bubble from ever
// being idle.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sreq := req.Clone(req.Context())
	sreq.RemoteAddr = "192.0.2.1:1234"
	sreq.RequestURI = req.URL.RequestURI()
	sreq.Host = req.URL.Host
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, sreq)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// inBubble builds a server for a synctest bubble: a real SQLite store and
// real scs, reached without a network, with user alice.
func inBubble(t *testing.T) *browser {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	sched, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	_, err = srv.Bootstrap(t.Context())
	require.NoError(t, err)
	addUserTo(t, db, "alice")
	return newBrowser(t, "http://drover.test", handlerTransport{srv})
}

// addUserTo makes user alice with the admin role straight in the store.
func addUserTo(t *testing.T, db store.Store, name string) {
	t.Helper()
	hash, err := auth.HashPassword(alicePassword)
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, db.Update(ctx, func(tx store.Tx) error {
		return tx.PutUser(ctx, auth.User{Name: name, PasswordHash: hash, Roles: []string{"admin"}, CreatedAt: time.Now()})
	}))
}

// TestSessionTimeouts runs in a synctest bubble: scs reads time.Now, which
// the bubble's fake clock answers, so the real 30 minutes and 12 hours
// pass at once and the test checks the defaults themselves.
func TestSessionTimeouts(t *testing.T) {
	t.Parallel()
	signedIn := func(t *testing.T, br *browser) bool {
		t.Helper()
		resp, _ := br.get(t, "/")
		switch resp.StatusCode {
		case http.StatusOK:
			return true
		case http.StatusSeeOther:
			require.Equal(t, "/login", resp.Header.Get("Location"))
			return false
		}
		require.FailNow(t, "unexpected status", "%d", resp.StatusCode)
		return false
	}

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			br := inBubble(t)
			br.mustLogin(t, "alice", alicePassword)
			time.Sleep(server.DefaultSessionIdleTimeout - time.Minute)
			require.True(t, signedIn(t, br), "29 minutes idle")
			time.Sleep(server.DefaultSessionIdleTimeout - time.Minute)
			require.True(t, signedIn(t, br), "each use restarts the idle clock")
			time.Sleep(server.DefaultSessionIdleTimeout + time.Second)
			require.False(t, signedIn(t, br), "30 minutes idle ends the session")
		})
	})

	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			br := inBubble(t)
			br.mustLogin(t, "alice", alicePassword)
			start := time.Now()
			const step = 20 * time.Minute
			for time.Since(start)+step < server.DefaultSessionLifetime {
				time.Sleep(step)
				require.True(t, signedIn(t, br), "busy after %s", time.Since(start))
			}
			time.Sleep(server.DefaultSessionLifetime - time.Since(start) + time.Second)
			require.False(t, signedIn(t, br), "12 hours after login the session ends, however busy")
			// A new login starts a new lifetime.
			br.mustLogin(t, "alice", alicePassword)
			require.True(t, signedIn(t, br))
		})
	})
}

// TestLogoutWinsOverRequestsInFlight: a request that loaded the session
// before the logout saves it on its way out (scs renews the idle deadline
// on every request); that save must not bring the session back.
func TestLogoutWinsOverRequestsInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submitHello(t)
	b.addUser(t, "alice", "admin")
	br := newBrowser(t, b.url, nil)
	br.mustLogin(t, "alice", alicePassword)
	tok := br.token(t)
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	cookie := br.client.Jar.Cookies(u)[0]
	j := call[api.Job](t, b, "GET", "/v1/jobs/demo/dev/hello", "", http.StatusOK)

	// Another tab holds a call open (a long poll on the job) with the
	// session; the spy says when it has loaded the session.
	loaded := b.store.once(&b.store.afterView)
	done := make(chan int, 1)
	go func() {
		req, err := http.NewRequestWithContext(b.ctx, "GET",
			fmt.Sprintf("%s/v1/jobs/demo/dev/hello?wait=1m&index=%d", b.url, j.EventIndex), nil)
		if err != nil {
			done <- 0
			return
		}
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		_ = resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-loaded
	b.store.set(&b.store.afterView, nil)

	resp, body := br.postForm(t, "/logout", url.Values{"csrf_token": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
	// A change to the job ends the long poll, which saves the session.
	call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", "", http.StatusOK)
	require.NotZero(t, <-done)

	require.Equal(t, http.StatusUnauthorized, withCookie(t, b.url, "GET", "/v1/whoami", cookie).StatusCode,
		"the session stays ended")
}
