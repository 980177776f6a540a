package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

func newBenchCmd() *cobra.Command {
	var (
		tasks, nodes int
		cpu          int64
		command      string
		keep         bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure task throughput and latency on a local cluster against an xargs baseline",
		Long: `Start a throw-away local cluster (a real server, SQLite store and --nodes agent
processes), run one job of --tasks instances of a trivial command, and print
tasks per second and the p50/p99 latency from submit to each task's end.
Beside it, run the same number of the same command through 'xargs -P<nodes>'
on this machine: the physical baseline no scheduler can beat.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tasks < 1 || tasks > 100000 {
				return fmt.Errorf("--tasks %d: must be between 1 and 100000", tasks)
			}
			if nodes < 1 || nodes > 64 {
				return fmt.Errorf("--nodes %d: must be between 1 and 64", nodes)
			}
			out := cmd.OutOrStdout()
			argv := strings.Fields(command)
			base, err := xargsBaseline(cmd.Context(), tasks, nodes, argv)
			if err != nil {
				return fmt.Errorf("xargs baseline: %w", err)
			}
			res, err := benchCluster(cmd.Context(), tasks, nodes, cpu, argv, keep, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "tasks:             %d x %q on %d local agents (cpu %d millicores each)\n", tasks, command, nodes, cpu)
			fmt.Fprintf(out, "xargs -P%d:         %s (%.0f runs/s)\n", nodes, base.Round(time.Millisecond), float64(tasks)/base.Seconds())
			fmt.Fprintf(out, "drover:            %s (%.0f tasks/s)\n", res.total.Round(time.Millisecond), float64(tasks)/res.total.Seconds())
			fmt.Fprintf(out, "submit→end p50:    %s\n", res.p50.Round(time.Millisecond))
			fmt.Fprintf(out, "submit→end p99:    %s\n", res.p99.Round(time.Millisecond))
			fmt.Fprintf(out, "drover / xargs:    %.2fx\n", res.total.Seconds()/base.Seconds())
			if res.state != "SUCCEEDED" {
				return fmt.Errorf("bench job ended %s", res.state)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&tasks, "tasks", 1000, "number of tasks (instances of one job)")
	cmd.Flags().IntVar(&nodes, "nodes", 2, "number of local agents")
	cmd.Flags().Int64Var(&cpu, "cpu", 100, "millicores each task reserves (sets how many run at once per node)")
	cmd.Flags().StringVar(&command, "command", "/bin/true", "command each task runs (split on spaces)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the cluster's data directory and print where it is")
	return cmd
}

// xargsBaseline runs the command n times through xargs -P<p>.
func xargsBaseline(ctx context.Context, n, p int, argv []string) (time.Duration, error) {
	var in strings.Builder
	for i := range n {
		in.WriteString(strconv.Itoa(i) + "\n")
	}
	// xargs appends one input word to each run (/bin/true ignores it): one
	// fork and exec per run, nothing more, so the baseline is the cheapest
	// honest way to run the command n times p at a time.
	args := append([]string{"-P", strconv.Itoa(p), "-n", "1", "--"}, argv...)
	c := exec.CommandContext(ctx, "xargs", args...)
	c.Stdin = strings.NewReader(in.String())
	c.Stdout, c.Stderr = io.Discard, os.Stderr
	start := time.Now()
	if err := c.Run(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

type benchResult struct {
	total, p50, p99 time.Duration
	state           string
}

func benchCluster(ctx context.Context, n, nodes int, cpu int64, argv []string, keep bool, out io.Writer) (benchResult, error) {
	dir, err := os.MkdirTemp("", "drover-bench-")
	if err != nil {
		return benchResult{}, err
	}
	if keep {
		fmt.Fprintf(out, "bench data in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := serverOpts{data: dir, listen: "127.0.0.1:0", logLevel: "error"}
	rs, err := startServer(ctx, opts, newLogger("error"))
	if err != nil {
		return benchResult{}, err
	}
	ao := localAgentOpts{logLevel: "error"}
	admin, err := devCredentials(ctx, rs, dir, &ao, false) // a throw-away cluster: not remembered
	if err != nil {
		cancel()
		_ = rs.wait()
		return benchResult{}, err
	}
	agents, err := startLocalAgents(dir, rs.url, nodes, ao)
	if err != nil {
		cancel()
		_ = rs.wait()
		return benchResult{}, err
	}
	defer func() {
		cancel()
		agents.stop(10 * time.Second)
		_ = rs.wait()
	}()
	c, err := client.New(rs.url, nil)
	if err != nil {
		return benchResult{}, err
	}
	c = c.WithToken(admin)
	if err := waitForNodes(ctx, c, nodes, 30*time.Second); err != nil {
		return benchResult{}, err
	}
	zero := 0
	doc, err := json.Marshal(api.JobSpec{
		Job: "bench/local/trivial", Type: "batch", Instances: &n,
		Task:  api.TaskSpec{Command: argv, Resources: &api.ResourcesSpec{CPU: &cpu, Memory: "1MiB"}},
		Retry: &api.RetrySpec{Attempts: &zero},
	})
	if err != nil {
		return benchResult{}, err
	}
	start := time.Now()
	res, err := c.SubmitJob(ctx, doc, "")
	if err != nil {
		return benchResult{}, err
	}
	var j api.Job
	for j.State == "" || j.State == "RUNNING" {
		if j, err = c.WaitJobEnd(ctx, res.Job, time.Minute); err != nil {
			return benchResult{}, err
		}
	}
	total := time.Since(start)
	var lat []time.Duration
	for _, t := range j.Tasks {
		if t.FinishedAt != nil {
			lat = append(lat, t.FinishedAt.Sub(start))
		}
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return benchResult{total: total, p50: pct(0.50), p99: pct(0.99), state: j.State}, nil
}
