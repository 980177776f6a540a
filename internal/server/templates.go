package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/template"
)

// Templates: job specs with declared inputs, stored by the key of the jobs
// they make. They are guarded like those jobs: whoever may submit jobs of
// a role may write and launch its templates, whoever may read them may
// read its templates, and other teams' templates answer 404.

func (s *Server) templateRoutes() {
	s.handle("GET /v1/templates", signedIn, s.wrap(s.listTemplates))
	s.handle("GET /v1/templates/{role}/{env}/{name}", mayJob(auth.VerbRead), s.wrap(s.getTemplate))
	s.handle("PUT /v1/templates/{role}/{env}/{name}", mayJob(auth.VerbSubmit), s.wrap(s.putTemplate))
	s.handle("DELETE /v1/templates/{role}/{env}/{name}", mayJob(auth.VerbSubmit), s.wrap(s.deleteTemplate))
	s.handle("POST /v1/templates/{role}/{env}/{name}/launch", mayJob(auth.VerbSubmit), s.wrap(s.launchTemplate))
}

// toAPITemplate shows a stored template and its parsed spec; the source
// only if withSource.
func toAPITemplate(t template.Template, spec template.Spec, withSource bool) api.Template {
	out := api.Template{Key: t.Key.String(), Inputs: []api.TemplateInput{}, UpdatedAt: t.UpdatedAt}
	for _, in := range spec.Inputs {
		ai := api.TemplateInput{Name: in.Name, Required: in.Required}
		if in.HasDefault {
			ai.Default = &in.Default
		}
		out.Inputs = append(out.Inputs, ai)
	}
	if withSource {
		out.Source = t.Source
	}
	return out
}

// parseStored parses a stored template's source. It was valid when it was
// stored; failing now is the server's problem, not the caller's.
func parseStored(t template.Template) (template.Spec, error) {
	spec, err := jobspec.ParseTemplate([]byte(t.Source))
	if err != nil {
		return template.Spec{}, fmt.Errorf("parse stored template %s: %s", t.Key, err)
	}
	return spec, nil
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var ts []template.Template
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		ts, err = rd.ListTemplates(r.Context())
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	p := principalOf(r)
	out := []api.Template{}
	for _, t := range ts {
		if !p.Can(auth.VerbRead, auth.ResourceJob, t.Key.Role) {
			continue // other teams' templates are not shown, as for jobs
		}
		spec, err := parseStored(t)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, toAPITemplate(t, spec, false))
	}
	return http.StatusOK, out, nil
}

func (s *Server) loadTemplate(r *http.Request) (template.Template, template.Spec, error) {
	key, err := pathKey(r)
	if err != nil {
		return template.Template{}, template.Spec{}, err
	}
	var t template.Template
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		t, err = rd.GetTemplate(r.Context(), key)
		return err
	})
	if err != nil {
		return template.Template{}, template.Spec{}, notFound("template "+key.String(), err)
	}
	spec, err := parseStored(t)
	return t, spec, err
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) (int, any, error) {
	t, spec, err := s.loadTemplate(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPITemplate(t, spec, true), nil
}

// putTemplate stores a template file (201 when it is new, 200 when it
// replaces one). "If-None-Match: *" stores it only if there is none yet
// (else 409), "If-Match: *" only if there is one (else 404).
func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxTemplateBody))
	if err != nil {
		return 0, nil, err
	}
	spec, err := jobspec.ParseTemplate(body)
	if err != nil {
		if len(fieldErrors(err)) == 0 {
			err = badRequestf("body", "%s", err)
		}
		return 0, nil, err
	}
	if spec.Key != key {
		return 0, nil, job.Fieldf("template", "%q is not the key in the path, %s", spec.Key.String(), key)
	}
	// A scheduled template fires with its inputs' defaults: each input
	// needs one.
	var inputs map[string]string
	if spec.Job.Schedule != nil {
		if inputs, err = spec.Values(nil); err != nil {
			return 0, nil, job.Fieldf("schedule", "a scheduled template fires with its inputs' defaults: %v", err)
		}
	}
	onlyNew, onlyOld := r.Header.Get("If-None-Match") == "*", r.Header.Get("If-Match") == "*"
	t := template.Template{Key: key, Source: string(body), UpdatedAt: time.Now().UTC()}
	created := false
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		_, err := tx.GetTemplate(r.Context(), key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if onlyOld {
				return fmt.Errorf("template %s: %w", key, store.ErrNotFound)
			}
			created = true
		case err != nil:
			return err
		case onlyNew:
			return fmt.Errorf("template %s already exists; use update to change it: %w", key, store.ErrConflict)
		}
		if err := tx.PutTemplate(r.Context(), t); err != nil {
			return err
		}
		_, err = s.sched.ScheduleTemplate(r.Context(), tx, spec.Job, key.String(), inputs)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return code, toAPITemplate(t, spec, false), nil
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		if err := tx.DeleteTemplate(r.Context(), key); err != nil {
			return err
		}
		// The schedule the template set goes with it.
		_, err := s.sched.ScheduleTemplate(r.Context(), tx, job.Spec{Key: key}, key.String(), nil)
		return err
	})
	if err != nil {
		return 0, nil, notFound("template "+key.String(), err)
	}
	return http.StatusOK, struct{}{}, nil
}

// launchTemplate makes a job from a template now: its inputs are those of
// the body, else their defaults, and it is submitted as POST /v1/jobs
// submits, with the same answer.
func (s *Server) launchTemplate(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxLaunchBody)
	var req api.LaunchRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	_, spec, err := s.loadTemplate(r)
	if err != nil {
		return 0, nil, err
	}
	inputs, err := spec.Values(req.Inputs)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.sched.Launch(r.Context(), spec.Job, inputs)
	if err != nil {
		return 0, nil, err
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	return code, toSubmitResponse(res), nil
}
