package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/drover-dev/drover/internal/store"
)

// Job versions: every submission that changed a job (or ran it again after
// it ended) stored a version, numbered from 1, and the job record points at
// the newest. Versions are never changed or deleted, so what ran can always
// be shown. These routes sit behind mayJob(read): someone who may not read
// the job is told it does not exist.

// listJobVersions answers a job's versions, newest first, without their
// specs. The idempotency keys stay inside: they are the submitters'
// business.
func (s *Server) listJobVersions(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	out := []api.JobVersion{}
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		if _, err := rd.GetJob(r.Context(), key); err != nil {
			return notFound("job "+key.String(), err)
		}
		vs, err := rd.ListJobVersions(r.Context(), key)
		if err != nil {
			return err
		}
		for _, v := range vs {
			out = append(out, toAPIJobVersion(v, false))
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// getJobVersion answers one version of a job with its resolved spec.
func (s *Server) getJobVersion(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	raw := r.PathValue("version")
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, nil, badRequestf("version", "must be a whole number from 1 up, not %q", raw)
	}
	var out api.JobVersion
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		j, err := rd.GetJob(r.Context(), key)
		if err != nil {
			return notFound("job "+key.String(), err)
		}
		v, err := rd.GetJobVersion(r.Context(), key, n)
		if errors.Is(err, store.ErrNotFound) {
			// Versions are numbered from 1 to the current one, without gaps.
			has := "only version 1"
			if j.Version > 1 {
				has = fmt.Sprintf("versions 1 to %d", j.Version)
			}
			return fmt.Errorf("%w: the job has %s", &notFoundError{what: fmt.Sprintf("job %s version %d", key, n)}, has)
		}
		if err != nil {
			return err
		}
		out = toAPIJobVersion(v, true)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// toAPIJobVersion converts a stored version; withSpec adds its spec as a
// job document.
func toAPIJobVersion(v job.Version, withSpec bool) api.JobVersion {
	out := api.JobVersion{Job: v.Key.String(), Version: v.Version, CreatedAt: v.CreatedAt}
	if withSpec {
		spec := jobspec.Format(v.Spec)
		out.Spec = &spec
	}
	return out
}
