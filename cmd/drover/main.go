// Command drover is the one binary of drover: the server, the agent, the
// development cluster and the command-line client. This package only wires
// flags to the internal packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	// Schedules name IANA zones; a machine without tzdata still knows them.
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a specific exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "drover: "+ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "drover: "+err.Error())
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "drover",
		Short: "drover runs jobs on an elastic fleet of machines",
		Long: `drover runs jobs on an elastic fleet of machines. One binary holds the server,
the agent that runs tasks on each node, and this command-line client.

Start a local cluster with 'drover dev', then run a job with
'drover job run examples/hello.yaml --wait'.

Client commands find the server from --addr or DROVER_ADDR. Settings flags
can also be set by an environment variable: DROVER_ plus the flag name in
upper case with '-' as '_' (DROVER_ADDR, DROVER_DATA, DROVER_LISTEN,
DROVER_TOKEN_FILE, DROVER_CA, DROVER_NODE_GRACE, ...); a command's own
arguments (--version, --instance, --wait) cannot.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := flagsFromEnv(cmd); err != nil {
				return err
			}
			return startProfile()
		},
		PersistentPostRun: func(cmd *cobra.Command, args []string) { stopProfile() },
	}
	root.AddCommand(newServerCmd(), newAgentCmd(), newDevCmd(), newJobCmd(), newTaskCmd(), newNodeCmd(), newBenchCmd())
	root.AddCommand(newLoginCmd(), newWhoamiCmd(), newTokenCmd(), newUserCmd(), newRoleCmd(), newEventsCmd(), newParamCmd(), newTemplateCmd(), newCronCmd(), newPoolCmd())
	return root
}

// startProfile writes a CPU profile to $DROVER_CPUPROFILE, for measuring
// the bench and the processes it starts (agents inherit the variable and
// add their pid to the name).
func startProfile() error {
	path := os.Getenv("DROVER_CPUPROFILE")
	if path == "" {
		return nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f)
}

func stopProfile() { pprof.StopCPUProfile() }

// envFlags are the flags that DROVER_<NAME> variables fill: settings of
// where and how drover runs, not arguments of one command (an unrelated
// VERSION or INSTANCE in a CI environment must not change what a command
// does).
var envFlags = map[string]bool{
	"addr": true, "token-file": true, "ca": true, "output": true,
	"data": true, "listen": true, "log-level": true, "server": true, "name": true,
	"tls-cert": true, "tls-key": true, "insecure-http": true, "secure-cookies": true,
	"node-grace": true, "start-timeout": true, "stop-after": true, "sync-interval": true,
	"capability": true, "cpu": true, "memory": true, "nodes": true, "task-user": true,
	"keep-days": true, "keep-runs": true, "keep-sandboxes": true,
}

// flagsFromEnv fills the [envFlags] the user did not set from DROVER_<NAME>.
func flagsFromEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || !envFlags[f.Name] {
			return
		}
		env := "DROVER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
	})
	return errors.Join(errs...)
}
