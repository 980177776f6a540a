package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/pool/manager"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

const defaultListen = "127.0.0.1:7070"

func defaultDataDir(sub string) string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), "drover", sub)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "drover", sub)
}

func newServerCmd() *cobra.Command {
	var opts serverOpts
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the drover server: store, scheduler, HTTP API and web page",
		Long: `Run the drover server. It keeps its SQLite store and the task logs agents
upload under --data, and answers the HTTP API, the web page and /health on
--listen. Agents connect to it with 'drover agent --server URL'.

With --tls-cert and --tls-key it serves HTTPS (TLS 1.2 or later); clients
verify it with the system's roots or with --ca. Plain HTTP is refused on
any --listen address but loopback (127.0.0.1, ::1, localhost) unless
--insecure-http is given, for a proxy in front that terminates TLS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := newLogger(opts.logLevel)
			rs, err := startServer(cmd.Context(), opts, logger)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "drover server listening on %s (data in %s)\n", rs.url, opts.data)
			pw, _, err := serverCredentials(cmd.Context(), rs, opts.data)
			if err != nil {
				return err
			}
			if !pw.IsZero() {
				fmt.Fprintf(out, "first start: created user admin with password %s\n(shown once; change it by making another admin and deleting this one)\n", pw.Reveal())
			}
			caHint := ""
			if rs.caFile != "" {
				caHint = " --ca CA.pem"
			}
			fmt.Fprintf(out, "agents join with the token in %s: drover agent --server %s --token-file FILE%s\n",
				filepath.Join(opts.data, "agent.token"), rs.url, caHint)
			return rs.wait()
		},
	}
	cmd.Flags().StringVar(&opts.data, "data", defaultDataDir("server"), "directory for the store and task logs")
	cmd.Flags().StringVar(&opts.listen, "listen", defaultListen, "HOST:PORT to serve HTTP(S) on")
	cmd.Flags().StringVar(&opts.logLevel, "log-level", "info", "debug, info, warn or error")
	opts.registerLiveness(cmd)
	opts.tls.register(cmd)
	return cmd
}

type serverOpts struct {
	data, listen, logLevel  string
	nodeGrace, startTimeout time.Duration
	secureCookies           bool
	tls                     tlsOpts
	keepDays, keepRuns      int
	// stopLocalMachines terminates local pools' machines when the server
	// stops ('drover dev'); 'drover server' leaves them to be adopted
	// when it starts again.
	stopLocalMachines bool
}

// retention is the runs the server keeps, as its flags say.
func (o *serverOpts) retention() (scheduler.Retention, error) {
	if o.keepDays < 0 {
		return scheduler.Retention{}, fmt.Errorf("--keep-days %d: must be 0 (no age limit) or more", o.keepDays)
	}
	if o.keepRuns < 0 {
		return scheduler.Retention{}, fmt.Errorf("--keep-runs %d: must be 0 (no count limit) or more", o.keepRuns)
	}
	return scheduler.Retention{KeepFor: time.Duration(o.keepDays) * 24 * time.Hour, KeepRuns: o.keepRuns}, nil
}

func (o *serverOpts) registerLiveness(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&o.nodeGrace, "node-grace", scheduler.DefaultNodeGrace,
		"how long a node may miss syncs before it is DOWN and its tasks rescheduled; also the reconnection window after a restart")
	cmd.Flags().DurationVar(&o.startTimeout, "start-timeout", scheduler.DefaultStartTimeout,
		"how long a task may stay ASSIGNED or STARTING before it is LOST and rescheduled")
	cmd.Flags().BoolVar(&o.secureCookies, "secure-cookies", false,
		"mark web session cookies Secure even on plain HTTP (behind a proxy that terminates TLS)")
	cmd.Flags().IntVar(&o.keepDays, "keep-days", int(scheduler.DefaultKeepRunsFor/(24*time.Hour)),
		"keep ended runs, their events and logs this many days (0: no age limit); each job's newest run is always kept")
	cmd.Flags().IntVar(&o.keepRuns, "keep-runs", scheduler.DefaultKeepRuns,
		"keep at most this many runs of each job (0: no count limit)")
}

// runningServer is a started server; wait blocks until it has stopped.
type runningServer struct {
	url string
	// caFile is what local clients verify the server with (the served
	// certificate); empty without TLS.
	caFile string
	srv    *server.Server
	pools  *manager.Manager
	// poolCtx is what the pool loop runs under, once started.
	poolCtx   context.Context
	poolsOnce sync.Once
	done      chan error
}

func (r *runningServer) wait() error { return <-r.done }

// startPools starts the pool loop once the agents' join token is known:
// the machines it launches join with it.
func (r *runningServer) startPools(agentToken secret.String) {
	r.poolsOnce.Do(func() {
		r.pools.SetJoinToken(agentToken.Reveal())
		r.pools.Start(r.poolCtx)
	})
}

// newPoolManager makes the pool manager: local pools keep their machines
// under DATA/machines, and launched agents join at url. DROVER_FAILPOINT (tests only) names a point where the server kills
// itself mid-launch.
func newPoolManager(ctx context.Context, db store.Store, sched *scheduler.Scheduler, logger *slog.Logger, data, url, caFile string) (*manager.Manager, error) {
	// The providers run (local) or copy (ssh) this binary by default.
	agent := provider.Agent{ServerURL: url}
	if caFile != "" {
		var err error
		if agent.CACert, err = os.ReadFile(caFile); err != nil {
			return nil, err
		}
	}
	return manager.New(ctx, manager.Config{Store: db, Scheduler: sched, Logger: logger.With("component", "pools"),
		Agent: agent, Providers: manager.Providers(data), Failpoint: os.Getenv("DROVER_FAILPOINT")})
}

// startServer opens the store, starts the scheduler and serves HTTP until
// ctx ends; then it shuts down in order: stop taking requests (in-flight
// ones finish), stop the scheduler, close the store.
func startServer(ctx context.Context, opts serverOpts, logger *slog.Logger) (*runningServer, error) {
	// The listener comes first: a refused address leaves no data behind.
	tlsConf, err := opts.tls.load()
	if err != nil {
		return nil, err
	}
	caFile, err := opts.tls.localCA()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.listen, err)
	}
	if err := checkPlainHTTP(opts.listen, ln.Addr(), tlsConf != nil, opts.tls.insecureHTTP, logger); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.MkdirAll(opts.data, 0o700); err != nil {
		ln.Close()
		return nil, fmt.Errorf("data dir: %w", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(opts.data, "drover.db"))
	if err != nil {
		ln.Close()
		return nil, err
	}
	sched, err := scheduler.New(scheduler.Config{Store: db, Logger: logger, NodeGrace: opts.nodeGrace, StartTimeout: opts.startTimeout})
	if err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	retention, err := opts.retention()
	if err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	url := serverURL(opts.listen, ln.Addr(), tlsConf != nil)
	pools, err := newPoolManager(ctx, db, sched, logger, opts.data, url, caFile)
	if err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: opts.data, Logger: logger, Version: version,
		SecureCookies: opts.secureCookies, Retention: retention, Pools: pools})
	if err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	sched.Start(context.WithoutCancel(ctx))
	rs := &runningServer{url: url, caFile: caFile, srv: srv, pools: pools, poolCtx: context.WithoutCancel(ctx), done: make(chan error, 1)}
	go func() {
		var err error
		if tlsConf != nil {
			err = srv.ServeTLS(ctx, ln, 10*time.Second, tlsConf)
		} else {
			err = srv.Serve(ctx, ln, 10*time.Second)
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if perr := pools.Stop(sctx); err == nil {
			err = perr
		}
		if opts.stopLocalMachines {
			tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if terr := pools.TerminateLocal(tctx); err == nil {
				err = terr
			}
			cancel()
		}
		if serr := sched.Stop(sctx); err == nil {
			err = serr
		}
		if cerr := srv.Close(); err == nil {
			err = cerr
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		logger.Info("server stopped")
		rs.done <- err
	}()
	logger.Info("server started", "url", rs.url, "data", opts.data)
	return rs, nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
