package server

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/poolspec"
)

// MaxPoolBody bounds a pool file.
const MaxPoolBody = 1 << 20

// Pools: read with pool:read:NAME, changed with pool:write:NAME.

func (s *Server) poolRoutes() {
	s.handle("POST /v1/pools", signedIn, s.wrap(s.createPool))
	s.handle("GET /v1/pools", signedIn, s.wrap(s.listPools))
	s.handle("GET /v1/pools/{name}", mayPool(auth.VerbRead), s.wrap(s.getPool))
	s.handle("PUT /v1/pools/{name}", mayPool(auth.VerbWrite), s.wrap(s.updatePool))
	s.handle("POST /v1/pools/{name}/scale", mayPool(auth.VerbWrite), s.wrap(s.scalePool))
	s.handle("DELETE /v1/pools/{name}", mayPool(auth.VerbWrite), s.wrap(s.destroyPool))
	s.packageRoutes()
}

// mayPool lets in users holding verb on the pool named in the path; who
// may not read it is told it does not exist.
func mayPool(verb string) guard {
	return func(p *auth.Principal, r *http.Request) error {
		if err := signedIn(p, r); err != nil {
			return err
		}
		name := r.PathValue("name")
		if !p.Can(auth.VerbRead, auth.ResourcePool, name) {
			return &notFoundError{what: "pool " + name}
		}
		if !p.Can(verb, auth.ResourcePool, name) {
			return forbidden("you lack the permission pool:%s:%s", verb, name)
		}
		return nil
	}
}

// errNoPools answers when the server runs without a pool manager.
var errNoPools = errors.New("this server runs no pools")

// readPool reads and parses a pool file body.
func readPool(w http.ResponseWriter, r *http.Request) (pool.Pool, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPoolBody))
	if err != nil {
		return pool.Pool{}, err
	}
	p, err := poolspec.Parse(body)
	if err != nil {
		if len(fieldErrors(err)) == 0 {
			err = badRequestf("body", "%s", err)
		}
		return pool.Pool{}, err
	}
	return p, nil
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.pools == nil {
		return 0, nil, errNoPools
	}
	p, err := readPool(w, r)
	if err != nil {
		return 0, nil, err
	}
	if pr := principalOf(r); !pr.Can(auth.VerbWrite, auth.ResourcePool, p.Name) {
		return 0, nil, forbidden("you lack the permission pool:write:%s", p.Name)
	}
	if p, err = s.pools.Create(r.Context(), p); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, toAPIPool(p, nil, s.now()), nil
}

func (s *Server) updatePool(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.pools == nil {
		return 0, nil, errNoPools
	}
	p, err := readPool(w, r)
	if err != nil {
		return 0, nil, err
	}
	if p.Name != r.PathValue("name") {
		return 0, nil, job.Fieldf("pool", "%q is not the name in the path, %s", p.Name, r.PathValue("name"))
	}
	if p, err = s.pools.Update(r.Context(), p); err != nil {
		return 0, nil, notFound("pool "+p.Name, err)
	}
	return s.poolAnswer(r, p.Name)
}

func (s *Server) poolAnswer(r *http.Request, name string) (int, any, error) {
	p, ms, err := s.pools.Get(r.Context(), name)
	if err != nil {
		return 0, nil, notFound("pool "+name, err)
	}
	return http.StatusOK, toAPIPool(p, ms, s.now()), nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) (int, any, error) {
	out := []api.Pool{}
	if s.pools == nil {
		return http.StatusOK, out, nil
	}
	ps, err := s.pools.List(r.Context())
	if err != nil {
		return 0, nil, err
	}
	pr := principalOf(r)
	for _, p := range ps {
		if !pr.Can(auth.VerbRead, auth.ResourcePool, p.Name) {
			continue
		}
		_, ms, err := s.pools.Get(r.Context(), p.Name)
		if err != nil {
			return 0, nil, err
		}
		ap := toAPIPool(p, ms, s.now())
		ap.Machines = nil
		out = append(out, ap)
	}
	return http.StatusOK, out, nil
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.pools == nil {
		return 0, nil, &notFoundError{what: "pool " + r.PathValue("name")}
	}
	return s.poolAnswer(r, r.PathValue("name"))
}

func (s *Server) scalePool(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.pools == nil {
		return 0, nil, errNoPools
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req api.ScaleRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if _, err := s.pools.Scale(r.Context(), name, req.Size); err != nil {
		return 0, nil, notFound("pool "+name, err)
	}
	return s.poolAnswer(r, name)
}

func (s *Server) destroyPool(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.pools == nil {
		return 0, nil, errNoPools
	}
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		var err error
		if force, err = strconv.ParseBool(v); err != nil {
			return 0, nil, badRequestf("force", "must be true or false, not %q", v)
		}
	}
	name := r.PathValue("name")
	if err := s.pools.Destroy(r.Context(), name, force); err != nil {
		return 0, nil, notFound("pool "+name, err)
	}
	return http.StatusOK, struct{}{}, nil
}

// toAPIPool shows a pool with its machines: desired is what the pool's
// last decision asked for, actual the machines launching or running.
func toAPIPool(p pool.Pool, ms []pool.Machine, now time.Time) api.Pool {
	out := api.Pool{Name: p.Name, Provider: p.Provider, Policy: p.Policy.Kind(), Spec: poolspec.Format(p),
		Desired: p.Desired, Failures: p.Status.Failures, LastDecision: p.Status.LastDecision,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if p.Policy.Fixed == nil {
		out.Desired = p.Status.Desired
	}
	if p.Status.BackoffUntil.After(now) {
		t := p.Status.BackoffUntil
		out.BackoffUntil = &t
	}
	for _, m := range ms {
		am := api.Machine{ID: m.ID, Node: m.Node, ProviderID: m.ProviderID, State: string(m.State), Reason: m.Reason,
			Address: m.Address, LaunchedAt: m.LaunchedAt}
		if !m.RegisteredAt.IsZero() {
			t := m.RegisteredAt
			am.RegisteredAt = &t
		}
		if !m.EndedAt.IsZero() {
			t := m.EndedAt
			am.EndedAt = &t
		}
		switch m.State {
		case pool.Launching, pool.Starting, pool.Ready:
			out.Actual++
		}
		out.Machines = append(out.Machines, am)
	}
	return out
}
