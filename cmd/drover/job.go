package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
)

// exitJobFailed is the exit code of 'job run --wait' when the job did not
// succeed.
const exitJobFailed = 3

func newJobCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Run, list, inspect, kill and rerun jobs; their runs and history"}
	cmd.AddCommand(newJobRunCmd(), newJobListCmd(), newJobStatusCmd(), newJobKillCmd(), newJobInspectCmd(), newJobDiffCmd(),
		newJobHistoryCmd(), newJobRerunCmd())
	return cmd
}

func newJobRunCmd() *cobra.Command {
	var f clientFlags
	var wait bool
	var pin string
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Submit the job(s) in a YAML job file",
		Long: `Submit the job(s) in a YAML job file ('-' reads standard input). The file is
checked before anything is sent: every bad field is reported with its path.
Each submission makes a run of the job; a job with a schedule: makes none
now and runs at its fire times instead (see 'drover cron').
With --wait, follow the run until it ends; the exit code is 0 only if every
instance succeeded (3 if the run ended otherwise).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			specs, err := jobspec.Parse(data)
			if err != nil {
				return fileError(args[0], err)
			}
			if pin != "" {
				if !job.ValidName(pin) {
					return fmt.Errorf("--node %q: %s", pin, job.NameRule)
				}
				for i := range specs {
					specs[i].Node = pin
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			// One idempotency key per invocation and job: a retry after a
			// lost answer never creates a second job.
			var rnd [12]byte
			_, _ = rand.Read(rnd[:])
			invocation := hex.EncodeToString(rnd[:])
			type started struct {
				key string
				run int
			}
			var runs []started
			for i, spec := range specs {
				doc, err := json.Marshal(jobspec.Format(spec))
				if err != nil {
					return err
				}
				res, err := c.SubmitJobWithRetry(cmd.Context(), doc, invocation+"-"+strconv.Itoa(i))
				var ce *client.Error
				if errors.As(err, &ce) {
					return err // the server's message names the job already
				}
				if err != nil {
					return fmt.Errorf("submit %s: %w", spec.Key, err)
				}
				printSubmitted(cmd.OutOrStdout(), res)
				if res.Run > 0 {
					runs = append(runs, started{res.Job, res.Run})
				}
			}
			if !wait {
				return nil
			}
			failed := 0
			for _, r := range runs {
				j, err := followJob(cmd, c, r.key, r.run)
				if err != nil {
					return err
				}
				if j.RunState != "SUCCEEDED" {
					failed++
				}
			}
			if failed > 0 {
				return &exitError{code: exitJobFailed, msg: fmt.Sprintf("%d of %d runs did not succeed", failed, len(runs))}
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the job until it ends; exit non-zero unless it succeeded")
	cmd.Flags().StringVar(&pin, "node", "", "run every task on this node (as the job file's node: field)")
	return cmd
}

// fileError names the file of a parse error; several problems go one per
// indented line.
func fileError(name string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		return fmt.Errorf("%s:\n  %s", name, strings.ReplaceAll(msg, "\n", "\n  "))
	}
	return fmt.Errorf("%s: %w", name, err)
}

// printSubmitted says what a submission, launch, rerun or fire did.
func printSubmitted(w io.Writer, res api.SubmitResponse) {
	if res.Schedule != nil {
		fmt.Fprintf(w, "job %s version %d scheduled: %s\n", res.Job, res.Version, scheduleText(*res.Schedule))
		return
	}
	verb := "submitted"
	if !res.Created {
		verb = "already submitted"
	}
	fmt.Fprintf(w, "job %s run %d (version %d) %s: %d tasks\n", res.Job, res.Run, res.Version, verb, len(res.Tasks))
}

// followJob prints each task's changes until a run of a job ends, then a
// summary.
func followJob(cmd *cobra.Command, c *client.Client, key string, run int) (api.Job, error) {
	out := cmd.OutOrStdout()
	seen := map[string]string{}
	var index int64
	for {
		j, err := c.WaitRun(cmd.Context(), key, run, index, 30*time.Second)
		if err != nil {
			return api.Job{}, err
		}
		index = j.EventIndex
		for _, t := range j.Tasks {
			if seen[t.ID] == t.State {
				continue
			}
			seen[t.ID] = t.State
			line := fmt.Sprintf("  instance %d task %s attempt %d: %s", t.Instance, t.ID, t.Attempt, t.State)
			if t.Node != "" {
				line += " on " + t.Node
			}
			if t.Message != "" && (t.State == "FAILED" || t.State == "LOST" || t.State == "KILLED" || t.State == "SUCCEEDED") {
				line += " (" + t.Message + ")"
			}
			fmt.Fprintln(out, clean(line))
		}
		if j.RunState != "RUNNING" && j.RunState != "WAITING" {
			fmt.Fprintf(out, "job %s run %d %s\n", j.Key, j.Run, j.RunState)
			return j, nil
		}
	}
}

func newJobListCmd() *cobra.Command {
	return listCmd("list", "List jobs", cobra.NoArgs, noArgs((*client.Client).ListJobs),
		func(w io.Writer, jobs []api.Job) error {
			t := newTable(w, "JOB", "VERSION", "RUN", "TYPE", "STATE", "INSTANCES", "UPDATED")
			for _, j := range jobs {
				t.row(j.Key, strconv.Itoa(j.Version), strconv.Itoa(j.Run), j.Type, j.State, countsText(j), ago(j.UpdatedAt))
			}
			return t.flush()
		})
}

func countsText(j api.Job) string {
	var parts []string
	for _, s := range []string{"PENDING", "ASSIGNED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "KILLED", "LOST"} {
		if n := j.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return fmt.Sprintf("%d: %s", j.Instances, strings.Join(parts, ", "))
}

func newJobStatusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status KEY",
		Short: "Show a job, its tasks and its events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			j, err := c.GetJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			events, err := c.JobEvents(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					api.Job
					Events []api.Event `json:"events"`
				}{j, events})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "job %s version %d: %s", clean(j.Key), j.Version, j.State)
			if j.Run > 0 {
				fmt.Fprintf(out, "; run %d: %s (%s)", j.Run, j.RunState, countsText(j))
			}
			fmt.Fprintln(out)
			if s, err := c.GetSchedule(cmd.Context(), args[0]); err == nil {
				fmt.Fprintf(out, "schedule: %s\n", scheduleText(s))
			} else if !client.IsNotFound(err) {
				return err
			}
			fmt.Fprintln(out)
			tasks := j.Tasks
			sort.SliceStable(tasks, func(a, b int) bool {
				if tasks[a].Instance != tasks[b].Instance {
					return tasks[a].Instance < tasks[b].Instance
				}
				return tasks[a].Attempt < tasks[b].Attempt
			})
			t := newTable(out, "INSTANCE", "ATTEMPT", "TASK", "STATE", "NODE", "EXIT", "REASON")
			for _, tk := range tasks {
				exit := "-"
				if tk.ExitCode != nil {
					exit = strconv.Itoa(*tk.ExitCode)
				}
				reason := tk.Reason
				if tk.Message != "" {
					reason += ": " + tk.Message
				}
				t.row(strconv.Itoa(tk.Instance), strconv.Itoa(tk.Attempt), tk.ID, tk.State, orDash(tk.Node), exit, reason)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nEVENTS")
			t = newTable(out, "TIME", "TASK", "TRANSITION", "REASON")
			for _, e := range events {
				tr := ""
				if e.To != "" {
					tr = strings.TrimSpace(e.From + " → " + e.To)
				}
				reason := e.Reason
				if e.Message != "" {
					reason += ": " + e.Message
				}
				t.row(e.At.Local().Format("15:04:05.000"), orDash(e.TaskID), tr, reason)
			}
			return t.flush()
		},
	}
	f.register(cmd, true)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newJobKillCmd() *cobra.Command {
	var f clientFlags
	var instances []int
	cmd := &cobra.Command{
		Use:   "kill KEY",
		Short: "Kill a job's tasks (or only some instances with --instance)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			res, err := c.KillJob(cmd.Context(), args[0], instances)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "asked %d tasks of %s to stop\n", len(res.Tasks), clean(args[0]))
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntSliceVar(&instances, "instance", nil, "instance to kill (repeatable; default: all)")
	return cmd
}
