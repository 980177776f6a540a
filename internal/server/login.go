package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/drover-dev/drover/internal/auth"
)

// The login form and logout button of the web page. Programs log in with
// POST /v1/login and get a token instead.

func (s *Server) sessionRoutes() {
	s.handle("GET /login", public, s.wrap(s.loginPage))
	s.handle("POST /login", public, s.wrap(s.loginSubmit))
	s.handle("POST /logout", public, s.wrap(s.logout))
}

// loginPage shows the form; someone already signed in goes on.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) (int, any, error) {
	next := safeNext(r.URL.Query().Get("next"))
	if principalOf(r).Kind == auth.UserKind {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return 0, nil, nil
	}
	return s.renderLogin(w, r, http.StatusOK, "", "", next)
}

// loginSubmit checks the form's password (limited per user and address,
// failures recorded) and logs the session in under a new token. The CSRF
// token of the form was checked before: see [sessionManager.checkCSRF].
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return 0, nil, badRequestf("body", "not a form: %v", err)
	}
	user, next := r.PostForm.Get("user"), safeNext(r.PostForm.Get("next"))
	u, err := s.checkPassword(r, user, r.PostForm.Get("password"))
	switch {
	case errors.As(err, new(*credentialsError)):
		return s.renderLogin(w, r, http.StatusUnauthorized, user, "Wrong user name or password.", next)
	case errors.Is(err, errTooManyLogins):
		return s.renderLogin(w, r, http.StatusTooManyRequests, user,
			"Too many failed logins: wait a few minutes and try again.", next)
	case err != nil:
		return 0, nil, err
	}
	if err := s.sessions.start(r, u); err != nil {
		return 0, nil, err
	}
	noteActor(r, "user "+u.Name+" (web login)")
	http.Redirect(w, r, next, http.StatusSeeOther)
	return 0, nil, nil
}

// logout ends the session and goes back to the login form.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := s.sessions.end(r); err != nil {
		return 0, nil, err
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return 0, nil, nil
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, user, problem, next string) (int, any, error) {
	return s.renderStatus(w, r, code, "login", map[string]any{
		"Title": "log in", "Name": user, "Problem": problem, "Next": next,
	})
}

// loginURL is the login form, coming back to r's page after.
func loginURL(r *http.Request) string {
	if r.URL.Path == "/" && r.URL.RawQuery == "" {
		return "/login"
	}
	return "/login?next=" + url.QueryEscape(r.URL.RequestURI())
}

// safeNext returns next if it is a path on this site, else "/": after a
// login we go back where the user was, never to another site (an open
// redirect would lend our name to a phishing link).
func safeNext(next string) string {
	// "//host" and "/\host" are other sites to a browser.
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if u.Path == "/login" || u.Path == "/logout" {
		return "/"
	}
	return next
}
