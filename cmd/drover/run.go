package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/job"
)

// waitRun follows the run a launch, rerun or fire made until it ends; an
// end other than SUCCEEDED is exit code 3.
func waitRun(cmd *cobra.Command, c *client.Client, res api.SubmitResponse) error {
	j, err := followJob(cmd, c, res.Job, res.Run)
	if err != nil {
		return err
	}
	if j.RunState != "SUCCEEDED" {
		return &exitError{code: exitJobFailed, msg: fmt.Sprintf("job %s run %d did not succeed", res.Job, res.Run)}
	}
	return nil
}

// startRun makes a run with call (a rerun, a fire, a launch), says so,
// and with wait follows it to its end.
func startRun(cmd *cobra.Command, f *clientFlags, wait bool, call func(context.Context, *client.Client) (api.SubmitResponse, error)) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	res, err := call(cmd.Context(), c)
	if err != nil {
		return err
	}
	printSubmitted(cmd.OutOrStdout(), res)
	if !wait {
		return nil
	}
	return waitRun(cmd, c, res)
}

func newJobHistoryCmd() *cobra.Command {
	var limit int
	cmd := listCmd("history KEY", "List a job's runs, newest first, with every retry and its reason", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) ([]api.Run, error) {
			return c.ListRuns(ctx, args[0], limit)
		}, renderRuns)
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many runs")
	return cmd
}

// renderRuns prints runs as a table, each run's retries and reschedules
// below it.
func renderRuns(w io.Writer, runs []api.Run) error {
	t := newTable(w, "RUN", "VERSION", "TRIGGER", "SCHEDULED", "STARTED", "ENDED", "STATE", "ATTEMPTS")
	for _, r := range runs {
		t.row(strconv.Itoa(r.Run), strconv.Itoa(r.Version), triggerText(r), timeText(r.ScheduledAt), timeText(r.StartedAt),
			timeText(r.FinishedAt), r.State, fmt.Sprintf("%d for %d instances", r.Attempts, len(r.Instances)))
		for _, rt := range r.Retries {
			t.row("", "", "", "", "", "", "", fmt.Sprintf("instance %d attempt %d: %s after %s", rt.Instance, rt.Attempt, rt.Kind, clean(rt.Reason)))
		}
	}
	return t.flush()
}

func triggerText(r api.Run) string {
	if r.Of > 0 {
		return fmt.Sprintf("%s of %d", r.Trigger, r.Of)
	}
	return r.Trigger
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func newJobRerunCmd() *cobra.Command {
	var f clientFlags
	var run int
	var instances []int
	var failed, wait bool
	cmd := &cobra.Command{
		Use:   "rerun KEY",
		Short: "Run an ended run of a job again, with the same resolved version",
		Long: `Run an ended run of a job again as a new run, with exactly the version it ran
(parameters as they were then). --run picks the run (default: the newest),
--instance some of its instances, --failed those that did not succeed.
With --wait, follow the new run until it ends (exit code 3 unless it succeeded).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := job.ParseKey(args[0]); err != nil {
				return err
			}
			return startRun(cmd, &f, wait, func(ctx context.Context, c *client.Client) (api.SubmitResponse, error) {
				return c.Rerun(ctx, args[0], api.RerunRequest{Run: run, Instances: instances, Failed: failed})
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&run, "run", 0, "the run to repeat (default: the newest)")
	cmd.Flags().IntSliceVar(&instances, "instance", nil, "rerun only this instance (repeatable)")
	cmd.Flags().BoolVar(&failed, "failed", false, "rerun only the instances that did not succeed")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the new run until it ends; exit non-zero unless it succeeded")
	return cmd
}

// scheduleText says when a schedule fires next.
func scheduleText(s api.Schedule) string {
	text := fmt.Sprintf("%s (%s), overlap %s, catch_up %s", s.Cron, s.TimeZone, s.Overlap, s.CatchUp)
	switch {
	case s.Paused:
		text += ", paused"
	case s.Next != nil:
		text += ", next fire at " + s.Next.Format(time.RFC3339)
	default:
		text += ", never fires"
	}
	return text
}

func newCronCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cron", Short: "List, fire, pause and resume job schedules",
		Long: `Jobs (and templates) with a schedule: run at its cron times. 'cron list' shows
each schedule's next fire time and what its last one did.`}
	list := listCmd("list", "List schedules with their next fire times", cobra.NoArgs, noArgs((*client.Client).ListSchedules),
		func(w io.Writer, ss []api.Schedule) error {
			t := newTable(w, "JOB", "CRON", "ZONE", "OVERLAP", "CATCH_UP", "NEXT", "LAST")
			for _, s := range ss {
				next := "never"
				switch {
				case s.Paused:
					next = "paused"
				case s.Next != nil:
					next = s.Next.Format(time.RFC3339)
				}
				last := "-"
				if f := s.LastFire; f != nil {
					last = f.At.In(zoneOf(s)).Format(time.RFC3339) + " " + f.Outcome
					if f.Run > 0 {
						last += fmt.Sprintf(" (run %d)", f.Run)
					}
				}
				t.row(s.Job, s.Cron, s.TimeZone, s.Overlap, s.CatchUp, next, last)
			}
			return t.flush()
		})
	cmd.AddCommand(list, newCronRunCmd(), newCronPauseCmd(true), newCronPauseCmd(false), newCronDeleteCmd())
	return cmd
}

func zoneOf(s api.Schedule) *time.Location {
	if loc, err := time.LoadLocation(s.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

func newCronRunCmd() *cobra.Command {
	var f clientFlags
	var wait bool
	cmd := &cobra.Command{
		Use:   "run KEY",
		Short: "Fire a job's schedule now, as its overlap policy allows",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return startRun(cmd, &f, wait, func(ctx context.Context, c *client.Client) (api.SubmitResponse, error) {
				return c.FireSchedule(ctx, args[0])
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run until it ends; exit non-zero unless it succeeded")
	return cmd
}

func newCronPauseCmd(pause bool) *cobra.Command {
	var f clientFlags
	use, short := "pause KEY", "Pause a job's schedule: no fire until it is resumed"
	if !pause {
		use, short = "resume KEY", "Resume a paused schedule (times passed while paused are not run)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			s, err := c.PauseSchedule(cmd.Context(), args[0], pause)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s: %s\n", s.Job, scheduleText(s))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newCronDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete KEY",
		Short: "Remove a job's schedule (its runs and versions stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSchedule(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s: schedule removed\n", strings.TrimSpace(args[0]))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
