package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/drover-dev/drover/internal/secret"
)

func newAgentCmd() *cobra.Command {
	var (
		serverURL, data, name, logLevel, memory string
		tokenFile, caFile, taskUser             string
		caps                                    []string
		cpu                                     int64
		parentPID                               int
		syncWait, stopAfter, keepSandboxes      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a drover agent: the process on a node that runs tasks",
		Long: `Run a drover agent. It registers its node with the server at --server, runs
the tasks it is assigned in sandboxes under --data, and ships their output
to the server. --capability k=v adds node attributes that job constraints
can ask for. On SIGTERM it kills its tasks and reports them before exiting.
An https --server is verified with the system's roots, or with --ca.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tlsConf, err := client.TLSConfig(caFile)
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			c, err := client.New(serverURL, client.NewHTTPClient(tlsConf))
			if err != nil {
				return err
			}
			tok, err := agentToken(tokenFile)
			if err != nil {
				return err
			}
			c = c.WithToken(tok)
			capabilities := map[string]string{}
			for _, kv := range caps {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--capability %q: must be KEY=VALUE", kv)
				}
				capabilities[k] = v
			}
			var mem int64
			if memory != "" {
				if mem, err = jobspec.ParseSize(memory); err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
			}
			a, err := agent.New(agent.Config{
				Client: c, DataDir: data, Name: name, Capabilities: capabilities,
				CPU: cpu, Memory: mem, Logger: newLogger(logLevel), Version: version,
				SyncWait: syncWait, StopAfter: stopAfter, TaskUser: taskUser, KeepSandboxes: keepSandboxes,
			})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if parentPID > 0 {
				ctx = stopWhenOrphaned(ctx, parentPID)
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "http://"+defaultListen, "URL of the drover server")
	cmd.Flags().StringVar(&data, "data", defaultDataDir("agent"), "directory for task sandboxes")
	cmd.Flags().StringVar(&name, "name", "", "node name (default: the host name)")
	cmd.Flags().StringVar(&caFile, "ca", "", "PEM CA bundle that verifies an https --server (default: the system's roots)")
	cmd.Flags().StringVar(&taskUser, "task-user", "", "run tasks as this user (name or uid; the agent must be root); default: the agent's own user")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the agent token (default: $DROVER_TOKEN); the server writes one to DATA/agent.token")
	cmd.Flags().StringArrayVar(&caps, "capability", nil, "node attribute KEY=VALUE (repeatable)")
	cmd.Flags().Int64Var(&cpu, "cpu", 0, "millicores offered to tasks (default: all cores)")
	cmd.Flags().StringVar(&memory, "memory", "", "memory offered to tasks, e.g. 4GiB (default: all)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().DurationVar(&syncWait, "sync-interval", agent.DefaultSyncWait, "heartbeat: the longest the agent goes between syncs (the server holds an idle sync this long)")
	cmd.Flags().DurationVar(&stopAfter, "stop-after", agent.DefaultStopAfter, "cut off from the server this long, the agent kills its tasks (the server has rescheduled them)")
	cmd.Flags().DurationVar(&keepSandboxes, "keep-sandboxes", agent.DefaultKeepSandboxes, "keep an ended task's sandbox this long after its last change (negative: forever)")
	cmd.Flags().IntVar(&parentPID, "parent-pid", 0, "stop when this process is no longer the parent (set by 'drover dev')")
	_ = cmd.Flags().MarkHidden("parent-pid")
	return cmd
}

// stopWhenOrphaned ends ctx when the process's parent is no longer ppid:
// an agent started by 'drover dev' must not outlive it, even if the parent
// was killed with SIGKILL.
func stopWhenOrphaned(ctx context.Context, ppid int) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != ppid {
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}

// agentToken reads the agent's token from --token-file or DROVER_TOKEN.
func agentToken(tokenFile string) (secret.String, error) {
	if tokenFile != "" {
		return readTokenFile(tokenFile)
	}
	if t := strings.TrimSpace(os.Getenv("DROVER_TOKEN")); t != "" {
		return secret.New(t), nil
	}
	return secret.String{}, fmt.Errorf("no agent token: give --token-file (the server writes one to its DATA/agent.token) or set DROVER_TOKEN")
}
