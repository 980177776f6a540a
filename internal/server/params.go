package server

import (
	"context"
	"net/http"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/store"
)

// Parameters: each role's named values, which its jobs refer to as
// {{ .Params.NAME }}. A secret one is "<redacted>" in every answer but
// GET .../{name}?reveal=true, which needs param:reveal:ROLE.

func (s *Server) paramRoutes() {
	s.handle("GET /v1/params/{role}", mayParam(auth.VerbRead), s.wrap(s.listParams))
	s.handle("GET /v1/params/{role}/{name}", mayParam(auth.VerbRead), s.wrap(s.getParam))
	s.handle("PUT /v1/params/{role}/{name}", mayParam(auth.VerbWrite), s.wrap(s.putParam))
	s.handle("DELETE /v1/params/{role}/{name}", mayParam(auth.VerbWrite), s.wrap(s.deleteParam))
}

// mayParam lets in users holding verb on the parameters of the role in the
// path. Someone who may not read them is told they do not exist, as for
// jobs.
func mayParam(verb string) guard {
	return func(p *auth.Principal, r *http.Request) error {
		if err := signedIn(p, r); err != nil {
			return err
		}
		role := r.PathValue("role")
		if !job.ValidName(role) {
			return badRequestf("role", "%q %s", role, job.NameRule)
		}
		if name := r.PathValue("name"); name != "" && !job.ValidName(name) {
			return badRequestf("name", "%q %s", name, job.NameRule)
		}
		if !p.Can(auth.VerbRead, auth.ResourceParam, role) {
			return paramNotFound(r)
		}
		if !p.Can(verb, auth.ResourceParam, role) {
			return forbidden("you lack the permission param:%s:%s", verb, role)
		}
		return nil
	}
}

// paramNotFound is the answer about a parameter (or a role's parameters)
// that does not exist, or that the caller may not see.
func paramNotFound(r *http.Request) error {
	if name := r.PathValue("name"); name != "" {
		return &notFoundError{what: "parameter " + r.PathValue("role") + "/" + name}
	}
	return &notFoundError{what: "parameters of role " + r.PathValue("role")}
}

// toAPIParam shows a parameter, its value redacted if it is secret and
// reveal is false.
func toAPIParam(p param.Param, reveal bool) api.Param {
	v := p.Shown()
	if reveal {
		v = p.Value.Reveal()
	}
	return api.Param{Role: p.Role, Name: p.Name, Value: v, Secret: p.Secret, UpdatedAt: p.UpdatedAt}
}

func (s *Server) listParams(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var ps []param.Param
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		ps, err = rd.ListParams(r.Context(), r.PathValue("role"))
		return err
	})
	out := make([]api.Param, 0, len(ps))
	for _, p := range ps {
		out = append(out, toAPIParam(p, false))
	}
	return http.StatusOK, out, err
}

// getParam answers one parameter. A secret's value is shown only with
// ?reveal=true and the permission param:reveal:ROLE.
func (s *Server) getParam(w http.ResponseWriter, r *http.Request) (int, any, error) {
	role, name := r.PathValue("role"), r.PathValue("name")
	var reveal bool
	switch v := r.URL.Query().Get("reveal"); v {
	case "", "false":
	case "true":
		reveal = true
	default:
		return 0, nil, badRequestf("reveal", "must be true or false, not %q", v)
	}
	var p param.Param
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		p, err = rd.GetParam(r.Context(), role, name)
		return err
	})
	if err != nil {
		return 0, nil, notFound("parameter "+role+"/"+name, err)
	}
	if reveal && p.Secret && !principalOf(r).Can(auth.VerbReveal, auth.ResourceParam, role) {
		return 0, nil, forbidden("you lack the permission param:reveal:%s", role)
	}
	return http.StatusOK, toAPIParam(p, reveal), nil
}

func (s *Server) putParam(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxParamBody)
	var req api.ParamRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	p := param.Param{Role: r.PathValue("role"), Name: r.PathValue("name"), Value: secret.New(req.Value),
		Secret: req.Secret, UpdatedAt: time.Now().UTC()}
	if err := p.Validate(); err != nil {
		return 0, nil, err
	}
	err := s.store.Update(r.Context(), func(tx store.Tx) error { return tx.PutParam(r.Context(), p) })
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIParam(p, false), nil
}

func (s *Server) deleteParam(w http.ResponseWriter, r *http.Request) (int, any, error) {
	role, name := r.PathValue("role"), r.PathValue("name")
	err := s.store.Update(r.Context(), func(tx store.Tx) error { return tx.DeleteParam(r.Context(), role, name) })
	if err != nil {
		return 0, nil, notFound("parameter "+role+"/"+name, err)
	}
	return http.StatusOK, struct{}{}, nil
}

// revealSecrets puts the secret parameters' values in place of their
// markers in the tasks an agent is handed, read at this moment: the stored
// spec never holds them. A secret deleted since the job was submitted
// leaves its marker, and a warning that names it.
func (s *Server) revealSecrets(ctx context.Context, o scheduler.Orders) (scheduler.Orders, error) {
	roles := map[string]map[string]param.Param{}
	for i, a := range o.Assign {
		if !param.HasMarker(a.Spec.Task) {
			continue
		}
		role := a.Task.Job.Role
		ps, ok := roles[role]
		if !ok {
			var list []param.Param
			err := s.store.View(ctx, func(rd store.Reader) error {
				var err error
				list, err = rd.ListParams(ctx, role)
				return err
			})
			if err != nil {
				return scheduler.Orders{}, err
			}
			ps = make(map[string]param.Param, len(list))
			for _, p := range list {
				ps[p.Name] = p
			}
			roles[role] = ps
		}
		ts, missing := param.Reveal(a.Spec.Task, func(name string) (param.Param, bool) {
			p, ok := ps[name]
			return p, ok
		})
		if len(missing) > 0 {
			s.log.WarnContext(ctx, "secret parameters not set when the task was handed out; their markers stay",
				"task", a.Task.ID, "role", role, "params", missing)
		}
		a.Spec.Task = ts
		o.Assign[i] = a
	}
	return o, nil
}
