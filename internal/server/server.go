// Package server is drover's HTTP face: the /v1 API used by the CLI, the web
// page and the agents, the web page itself, and /health. It converts wire
// types to domain types at its edge and leaves every decision to scheduler.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/pool/manager"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
)

// Limits and defaults.
const (
	MaxJobBody      = 1 << 20  // bytes of a job document
	MaxSyncBody     = 4 << 20  // bytes of an agent sync
	MaxLogChunkBody = 12 << 20 // bytes of a log upload (base64 of 8 MiB)
	// MaxParamBody is the bytes of a parameter's PUT: room for a value
	// of param.MaxValue bytes, escaped.
	MaxParamBody = 4 * param.MaxValue
	// MaxTemplateBody is the bytes of a template file, a job document
	// and its inputs.
	MaxTemplateBody = MaxJobBody
	// MaxLaunchBody is the bytes of a template's launch: its inputs.
	MaxLaunchBody = 64 << 10
	MaxSyncWait   = 60 * time.Second
	// DefaultSyncInterval is how soon an idle agent syncs again.
	DefaultSyncInterval = 5 * time.Second
)

// Config configures a [Server].
type Config struct {
	Store     store.Store
	Scheduler *scheduler.Scheduler
	// DataDir holds the server's task logs (DataDir/logs).
	DataDir string
	Logger  *slog.Logger
	Version string
	// SessionIdleTimeout ends a web session left unused this long
	// (default [DefaultSessionIdleTimeout]).
	SessionIdleTimeout time.Duration
	// SessionLifetime ends a web session this long after its login,
	// however busy (default [DefaultSessionLifetime]).
	SessionLifetime time.Duration
	// SecureCookies marks session cookies Secure on plain-HTTP requests
	// too, for a server behind a proxy that ends TLS. A request that
	// arrives over TLS always gets a Secure cookie.
	SecureCookies bool
	// Retention is how long ended runs, their events and logs are kept.
	Retention scheduler.Retention
	// Pools runs the pools; nil serves no pools (their routes answer 501).
	Pools *manager.Manager
	// Clock tells the time (default: the system's).
	Clock scheduler.Clock
	// WriteRate and WriteBurst limit each caller's changing calls
	// (default DefaultWriteRate a second, bursts of DefaultWriteBurst).
	WriteRate  float64
	WriteBurst int
}

// Server serves drover's HTTP API and web page.
type Server struct {
	store     store.Store
	sched     *scheduler.Scheduler
	logs      *logStore
	log       *slog.Logger
	version   string
	retention scheduler.Retention
	pools     *manager.Manager
	pkgs      *packageStore
	clock     scheduler.Clock
	writes    *writeLimiter
	mux       *http.ServeMux
	// routeList is every route with its guard.
	routeList []route
	// stopping is closed when shutdown begins, so held-open calls (agent
	// syncs, job waits, log follows) answer at once.
	stopping chan struct{}
	stopOnce sync.Once
	// sessions are the web page's logins.
	sessions *sessionManager
	// browser is the server behind its session cookie: requests without
	// an Authorization header go through it.
	browser http.Handler
	// loginUsers and loginAddrs bound failed logins per user and per
	// client address.
	loginUsers, loginAddrs *auth.Limiter
}

// New returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Scheduler == nil {
		return nil, errors.New("server config: Store and Scheduler are required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("server config: DataDir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionIdleTimeout < 0 || cfg.SessionLifetime < 0 {
		return nil, errors.New("server config: SessionIdleTimeout and SessionLifetime must not be negative")
	}
	if cfg.SessionIdleTimeout == 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	s := &Server{
		store: cfg.Store, sched: cfg.Scheduler, log: cfg.Logger.With("component", "server"),
		logs: newLogStore(filepath.Join(cfg.DataDir, "logs")), version: cfg.Version, retention: cfg.Retention, pools: cfg.Pools, clock: cfg.Clock, writes: newWriteLimiter(cfg.WriteRate, cfg.WriteBurst), mux: http.NewServeMux(),
		pkgs:       newPackageStore(cfg.DataDir),
		stopping:   make(chan struct{}),
		loginUsers: auth.NewLimiter(loginFailuresPerUser, loginWindow),
		loginAddrs: auth.NewLimiter(loginFailuresPerAddr, loginWindow),
	}
	s.sessions = newSessionManager(cfg.Store, sessionConfig{
		idle: cfg.SessionIdleTimeout, lifetime: cfg.SessionLifetime, alwaysSecure: cfg.SecureCookies,
		onError: s.writeError,
	})
	s.browser = s.sessions.wrap(http.HandlerFunc(s.handleRequest))
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.handle("GET /health", public, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK\n"))
	}))
	s.handle("POST /v1/jobs", signedIn, s.wrap(s.submitJob))
	s.handle("GET /v1/jobs", signedIn, s.wrap(s.listJobs))
	s.handle("GET /v1/jobs/{role}/{env}/{name}", mayJob(auth.VerbRead), s.wrap(s.getJob))
	s.handle("POST /v1/jobs/{role}/{env}/{name}/kill", mayJob(auth.VerbKill), s.wrap(s.killJob))
	s.handle("GET /v1/jobs/{role}/{env}/{name}/events", mayJob(auth.VerbRead), s.wrap(s.jobEvents))
	s.handle("GET /v1/jobs/{role}/{env}/{name}/versions", mayJob(auth.VerbRead), s.wrap(s.listJobVersions))
	s.handle("GET /v1/jobs/{role}/{env}/{name}/versions/{version}", mayJob(auth.VerbRead), s.wrap(s.getJobVersion))
	s.handle("GET /v1/tasks/{id}", signedIn, s.wrap(s.getTask))
	s.handle("GET /v1/tasks/{id}/logs/{stream}", signedIn, s.wrap(s.taskLogs))
	s.handle("GET /v1/nodes", may(auth.VerbRead, auth.ResourceNode), s.wrap(s.listNodes))
	s.handle("POST /v1/nodes/{name}/drain", mayNode(auth.VerbDrain), s.wrap(s.drainNode(true)))
	s.handle("POST /v1/nodes/{name}/undrain", mayNode(auth.VerbDrain), s.wrap(s.drainNode(false)))
	s.handle("GET /v1/events", may(auth.VerbRead, auth.ResourceAudit), s.wrap(s.listEvents))
	s.handle("GET /vars.json", may(auth.VerbRead, auth.ResourceVars), s.wrap(s.vars))
	s.handle("POST /v1/agent/sync", agentOnly, s.wrap(s.agentSync))
	s.handle("POST /v1/agent/logs", agentOnly, s.wrap(s.agentLogs))
	s.handle("GET /{$}", signedIn, s.wrap(s.pageJobs))
	s.handle("GET /ui/jobs/{role}/{env}/{name}", mayJob(auth.VerbRead), s.wrap(s.pageJob))
	s.handle("GET /ui/tasks/{id}", signedIn, s.wrap(s.pageTask))
	s.handle("GET /ui/pools", signedIn, s.wrap(s.pagePools))
	s.handle("GET /ui/pools/{name}", mayPool(auth.VerbRead), s.wrap(s.pagePool))
	s.authRoutes()
	s.paramRoutes()
	s.templateRoutes()
	s.runRoutes()
	s.poolRoutes()
	s.sessionRoutes()
	// Unknown routes answer 404 to anyone signed in, 401 to anonymous
	// callers: they learn nothing of what exists.
	s.mux.Handle("/", s.wrap(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		if principalOf(r).Kind == auth.Anonymous {
			return 0, nil, errUnauthenticated
		}
		return 0, nil, fmt.Errorf("no route %s %s: %w", r.Method, r.URL.Path, store.ErrNotFound)
	}))
}

// ServeHTTP makes the server an http.Handler: it finds the principal, lets
// the route's guard judge, and audits every call that changes something.
// A request without an Authorization header may be a browser's: it goes
// through its session cookie, and if it changes something, through the
// CSRF check.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		s.browser.ServeHTTP(w, r)
		return
	}
	s.handleRequest(w, r)
}

func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	if isPage(r) {
		pw := &pageWriter{ResponseWriter: w}
		defer func() { s.finishPage(pw, r) }() // r as the handlers saw it, with its principal
		w = pw
	}
	p, err := s.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="drover"`)
		s.writeError(w, r, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	var h http.Handler = s.mux
	if err := s.sessions.checkCSRF(w, r); err != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, err) })
	}
	if !isMutating(r) {
		h.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	r = r.WithContext(context.WithValue(r.Context(), auditKey{}, &auditNote{}))
	h.ServeHTTP(rec, r)
	s.audit(r, p, rec.status)
}

// Close releases open log files.
func (s *Server) Close() error { return s.logs.close() }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish up to grace, then
// closes what is left.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	return s.serve(ctx, ln, grace, nil)
}

// ServeTLS is [Server.Serve] over TLS: conf holds the server's
// certificate (Certificates or GetCertificate). Clients older than TLS 1.2
// are refused whatever conf says.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, grace time.Duration, conf *tls.Config) error {
	if conf == nil || (len(conf.Certificates) == 0 && conf.GetCertificate == nil) {
		return errors.New("serve TLS: no certificate")
	}
	conf = conf.Clone()
	if conf.MinVersion < tls.VersionTLS12 {
		conf.MinVersion = tls.VersionTLS12
	}
	return s.serve(ctx, ln, grace, conf)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, grace time.Duration, tlsConf *tls.Config) error {
	hs := &http.Server{
		Handler:           s,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	jctx, stopJanitor := context.WithCancel(ctx)
	janitorDone := make(chan struct{})
	go func() {
		defer close(janitorDone)
		s.sessionJanitor(jctx)
	}()
	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		s.runJanitor(jctx)
	}()
	defer func() { <-pruneDone }()
	defer func() {
		stopJanitor()
		<-janitorDone
	}()
	errc := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			// The certificate is in TLSConfig; ServeTLS also offers HTTP/2.
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.stopOnce.Do(func() { close(s.stopping) })
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	<-errc
	return err
}

func itoa(i int) string { return strconv.Itoa(i) }

// now is the server's time.
func (s *Server) now() time.Time {
	if s.clock == nil {
		return time.Now().UTC()
	}
	return s.clock.Now()
}

// pruneEvery is how often ended runs past their retention are removed.
const pruneEvery = time.Hour

// runJanitor removes ended runs past their retention, with their logs,
// at start and then every pruneEvery, until ctx ends.
func (s *Server) runJanitor(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "could not remove old runs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune removes the ended runs the server's retention no longer keeps,
// with their tasks' logs.
func (s *Server) Prune(ctx context.Context) error {
	n, ids, err := s.sched.Prune(ctx, s.retention)
	for _, id := range ids {
		if rerr := s.logs.remove(id); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if n > 0 {
		s.log.InfoContext(ctx, "removed old runs", "runs", n, "tasks", len(ids), "retention", s.retention.String())
	}
	return err
}

// sessionSweep is how often expired web sessions are deleted.
const sessionSweep = 10 * time.Minute

// sessionJanitor deletes expired web sessions until ctx ends: every visit
// to the login page stores one.
func (s *Server) sessionJanitor(ctx context.Context) {
	t := time.NewTicker(sessionSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.store.Update(ctx, func(tx store.Tx) error {
			_, err := tx.DeleteExpiredSessions(ctx, time.Now())
			return err
		})
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "could not delete expired sessions", "err", err)
		}
	}
}
