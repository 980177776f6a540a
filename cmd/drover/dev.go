package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/examples"
	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/secret"
)

func newDevCmd() *cobra.Command {
	var opts serverOpts
	var agentOpts localAgentOpts
	var nodes int
	var demo bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole drover cluster on this machine: server, store, web page and local agents",
		Long: `Run a development cluster in one command: the server with its SQLite store
under --data, the web page and API on --listen, and --nodes agents, each its
own 'drover agent' process of this binary. Ctrl-C or SIGTERM stops all of it;
agents whose parent is gone stop by themselves.

With --demo, it runs examples/hello.yaml once the agents are up and prints
what each instance wrote.

With --tls-cert and --tls-key it serves HTTPS; the local agents and the CLI
(through the cluster list) trust that certificate itself, which must name
the --listen host. Plain HTTP off loopback needs --insecure-http.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 0 || nodes > 64 {
				return fmt.Errorf("--nodes %d: must be between 0 and 64", nodes)
			}
			logger := newLogger(opts.logLevel)
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// The server outlives ctx: it stops only after the agents,
			// so it can still hear them report the tasks they stopped.
			srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
			defer stopServer()
			opts.stopLocalMachines = true
			rs, err := startServer(srvCtx, opts, logger)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "drover dev: server and web page at %s (data in %s)\n", rs.url, opts.data)
			admin, err := devCredentials(ctx, rs, opts.data, &agentOpts, true)
			if err != nil {
				stopServer()
				_ = rs.wait()
				return err
			}
			fmt.Fprintf(out, "drover dev: admin token in %s (the CLI finds it through %s)\n",
				filepath.Join(opts.data, "admin.token"), clustersPath())
			fmt.Fprintf(out, "drover dev: web page login: user admin, password in %s\n", filepath.Join(opts.data, "admin.password"))
			agentOpts.logLevel = opts.logLevel
			agentOpts.ca = rs.caFile
			agents, err := startLocalAgents(opts.data, rs.url, nodes, agentOpts)
			if err != nil {
				stopServer()
				_ = rs.wait()
				return err
			}
			fmt.Fprintf(out, "drover dev: %d local agents started (logs in %s)\n", nodes, filepath.Join(opts.data, "agents"))
			var demoErr error
			if demo {
				demoErr = runDemo(ctx, out, rs.url, rs.caFile, admin, nodes)
				if demoErr != nil {
					fmt.Fprintf(out, "drover dev: demo failed: %v\n", demoErr)
				}
			}
			fmt.Fprintf(out, "drover dev: ready. Try:\n  export DROVER_ADDR=%s\n  drover job run examples/hello.yaml --wait\n  drover job list\nPress Ctrl-C to stop.\n", rs.url)
			select {
			case <-ctx.Done():
			case err := <-agents.exited:
				logger.Error("a local agent exited; stopping", "err", err)
			}
			cancel()
			// Order: agents first (they kill their tasks and report them
			// while the server still listens), then the server.
			agents.stop(15 * time.Second)
			stopServer()
			fmt.Fprintln(out, "drover dev: stopped")
			return errors.Join(rs.wait(), demoErr)
		},
	}
	cmd.Flags().StringVar(&opts.data, "data", defaultDataDir("dev"), "directory for the store, task logs and agent sandboxes")
	cmd.Flags().StringVar(&opts.listen, "listen", defaultListen, "HOST:PORT to serve HTTP(S) on")
	cmd.Flags().StringVar(&opts.logLevel, "log-level", "warn", "debug, info, warn or error")
	cmd.Flags().IntVar(&nodes, "nodes", 2, "number of local agents")
	cmd.Flags().BoolVar(&demo, "demo", false, "run examples/hello.yaml once the cluster is up")
	opts.registerLiveness(cmd)
	opts.tls.register(cmd)
	cmd.Flags().DurationVar(&agentOpts.syncInterval, "sync-interval", agent.DefaultSyncWait, "the agents' heartbeat interval")
	cmd.Flags().StringVar(&agentOpts.taskUser, "task-user", "", "run the agents' tasks as this user (the agents run as you)")
	cmd.Flags().DurationVar(&agentOpts.stopAfter, "stop-after", agent.DefaultStopAfter, "the agents' stop_after: cut off this long, they kill their tasks")
	return cmd
}

// localAgents are agent processes started by 'drover dev'.
type localAgents struct {
	procs  []*exec.Cmd
	exited chan error
}

// localAgentOpts are the agent flags 'drover dev' passes on.
type localAgentOpts struct {
	logLevel                string
	syncInterval, stopAfter time.Duration
	taskUser                string
	// token is the agent token, passed in the environment (never argv,
	// which every local user can read).
	token secret.String
	// ca verifies the server's certificate (empty: plain HTTP).
	ca string
}

// devCredentials prepares a development cluster's credentials: the store's
// first admin, an admin API token in DATA/admin.token remembered in the
// CLI's cluster list for this address (so the CLI needs no flag), and the
// agents' token.
func devCredentials(ctx context.Context, rs *runningServer, data string, ao *localAgentOpts, remember bool) (secret.String, error) {
	pw, agentTok, err := serverCredentials(ctx, rs, data)
	if err != nil {
		return secret.String{}, err
	}
	if !pw.IsZero() {
		// The web page needs a password; a development cluster keeps the
		// first admin's beside its token, readable by its owner only.
		if err := writeTokenFile(filepath.Join(data, "admin.password"), pw); err != nil {
			return secret.String{}, err
		}
	}
	ao.token = agentTok
	admin, err := adminToken(ctx, rs.srv, data)
	if err != nil {
		return secret.String{}, err
	}
	if !remember {
		return admin, nil
	}
	abs, err := filepath.Abs(filepath.Join(data, "admin.token"))
	if err != nil {
		return secret.String{}, err
	}
	if err := rememberCluster(clusterEntry{Name: "dev", Addr: rs.url, TokenFile: abs, CA: rs.caFile}); err != nil {
		return secret.String{}, fmt.Errorf("remember the dev cluster: %w", err)
	}
	return admin, nil
}

func startLocalAgents(data, serverURL string, n int, o localAgentOpts) (*localAgents, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	la := &localAgents{exited: make(chan error, n)}
	for i := 1; i <= n; i++ {
		name := "local-" + strconv.Itoa(i)
		dir := filepath.Join(data, "agents", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			la.stop(5 * time.Second)
			return nil, err
		}
		logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			la.stop(5 * time.Second)
			return nil, err
		}
		args := []string{"agent", "--server", serverURL, "--data", dir, "--name", name,
			"--log-level", o.logLevel, "--parent-pid", strconv.Itoa(os.Getpid())}
		if o.syncInterval > 0 {
			args = append(args, "--sync-interval", o.syncInterval.String())
		}
		if o.stopAfter > 0 {
			args = append(args, "--stop-after", o.stopAfter.String())
		}
		if o.taskUser != "" {
			args = append(args, "--task-user", o.taskUser)
		}
		if o.ca != "" {
			args = append(args, "--ca", o.ca)
		}
		c := exec.Command(self, args...)
		c.Env = append(os.Environ(), "DROVER_TOKEN="+o.token.Reveal())
		c.Stdout, c.Stderr = logf, logf
		// The agent stops if this process dies, even by SIGKILL: the
		// kernel sends it SIGTERM (and the agent watches its parent too,
		// since the death signal follows the thread that forked it).
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := c.Start(); err != nil {
			logf.Close()
			la.stop(5 * time.Second)
			return nil, fmt.Errorf("start agent %s: %w", name, err)
		}
		logf.Close()
		la.procs = append(la.procs, c)
		go func() {
			err := c.Wait()
			la.exited <- fmt.Errorf("agent %s exited: %v", name, err)
		}()
	}
	return la, nil
}

// stop sends SIGTERM to every agent and waits up to grace, then SIGKILLs
// what is left.
func (la *localAgents) stop(grace time.Duration) {
	for _, c := range la.procs {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(grace)
	for range la.procs {
		select {
		case <-la.exited:
		case <-deadline:
			for _, c := range la.procs {
				_ = c.Process.Kill()
			}
			return
		}
	}
}

// runDemo waits for the agents, runs examples/hello.yaml and prints what
// each instance wrote.
func runDemo(ctx context.Context, out io.Writer, url, caFile string, token secret.String, nodes int) error {
	tlsConf, err := client.TLSConfig(caFile)
	if err != nil {
		return err
	}
	c, err := client.New(url, client.NewHTTPClient(tlsConf))
	if err != nil {
		return err
	}
	c = c.WithToken(token)
	if err := waitForNodes(ctx, c, nodes, 30*time.Second); err != nil {
		return err
	}
	doc, err := examples.FS.ReadFile("hello.yaml")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\ndemo: running examples/hello.yaml:\n%s\n", indent(string(doc)))
	res, err := c.SubmitJobWithRetry(ctx, doc, "")
	if err != nil {
		return err
	}
	var index int64
	for {
		j, err := c.WaitRun(ctx, res.Job, res.Run, index, 30*time.Second)
		if err != nil {
			return err
		}
		index = j.EventIndex
		if j.RunState == "RUNNING" || j.RunState == "WAITING" {
			continue
		}
		fmt.Fprintf(out, "demo: job %s run %d (version %d) %s\n", j.Key, j.Run, j.Version, j.RunState)
		for _, t := range j.Tasks {
			rc, err := c.TaskLogs(ctx, t.ID, "stdout", 0, false)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			fmt.Fprintf(out, "demo: instance %d (task %s on %s, %s): %s", t.Instance, t.ID, t.Node, t.State, cleanText(string(b)))
			if len(b) == 0 || b[len(b)-1] != '\n' {
				fmt.Fprintln(out)
			}
		}
		fmt.Fprintf(out, "demo: see it in the web page at %s/ui/jobs/%s\n\n", url, j.Key)
		if j.State != "SUCCEEDED" {
			return fmt.Errorf("job %s ended %s", j.Key, j.State)
		}
		return nil
	}
}

func waitForNodes(ctx context.Context, c *client.Client, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		nodes, err := c.ListNodes(ctx)
		ready := 0
		for _, nd := range nodes {
			if nd.State == "READY" && time.Since(nd.LastSeen) < 10*time.Second {
				ready++
			}
		}
		if err == nil && ready >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents registered within %s", ready, n, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
