package server

import (
	"net/http"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
)

// Authorization is default deny: every route names its guard when it is
// registered, and [Server.Routes] lists them so a test can check each
// route against the matrix of who may call it.

// guard decides whether the principal may make the request: nil, or an
// error that answers 401, 403 or 404.
type guard func(p *auth.Principal, r *http.Request) error

// public lets anyone in.
func public(*auth.Principal, *http.Request) error { return nil }

// signedIn lets in any user (not anonymous, not an agent); what they see
// is filtered by the handler.
func signedIn(p *auth.Principal, _ *http.Request) error {
	switch p.Kind {
	case auth.Anonymous:
		return errUnauthenticated
	case auth.AgentKind:
		return forbidden("an agent token can only sync")
	}
	return nil
}

// agentOnly lets in agents.
func agentOnly(p *auth.Principal, _ *http.Request) error {
	switch p.Kind {
	case auth.Anonymous:
		return errUnauthenticated
	case auth.AgentKind:
		return nil
	}
	return forbidden("only agents may call this")
}

// may lets in users holding verb on resource in every scope ("*").
func may(verb, resource string) guard {
	return func(p *auth.Principal, r *http.Request) error {
		if err := signedIn(p, r); err != nil {
			return err
		}
		if !p.Can(verb, resource, "*") {
			return forbidden("you lack the permission %s:%s:*", resource, verb)
		}
		return nil
	}
}

// mayNode lets in users holding verb on the node named in the path.
func mayNode(verb string) guard {
	return func(p *auth.Principal, r *http.Request) error {
		if err := signedIn(p, r); err != nil {
			return err
		}
		if !p.Can(verb, auth.ResourceNode, r.PathValue("name")) {
			return forbidden("you lack the permission node:%s:%s", verb, r.PathValue("name"))
		}
		return nil
	}
}

// mayJob lets in users holding verb on the jobs of the role (tenant) in
// the path. Someone who may not even read that role's jobs is told the job
// does not exist, so other teams' jobs cannot be discovered.
func mayJob(verb string) guard {
	return func(p *auth.Principal, r *http.Request) error {
		if err := signedIn(p, r); err != nil {
			return err
		}
		key, err := pathKey(r)
		if err != nil {
			return err
		}
		return canJob(p, verb, key)
	}
}

// canJob checks verb on a job, hiding what the principal may not read.
func canJob(p *auth.Principal, verb string, key job.Key) error {
	if !p.Can(auth.VerbRead, auth.ResourceJob, key.Role) {
		return &notFoundError{what: "job " + key.String()}
	}
	if !p.Can(verb, auth.ResourceJob, key.Role) {
		return forbidden("you lack the permission job:%s:%s", verb, key.Role)
	}
	return nil
}

// route is a registered route and its guard.
type route struct {
	Pattern string
	guard   guard
}

// handle registers a route behind its guard.
func (s *Server) handle(pattern string, g guard, h http.Handler) {
	s.routeList = append(s.routeList, route{Pattern: pattern, guard: g})
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g(principalOf(r), r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if s.limit(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// Routes returns the pattern of every route, in registration order.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routeList))
	for i, rt := range s.routeList {
		out[i] = rt.Pattern
	}
	return out
}
