package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/poolspec"
)

func newPoolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Create, show, scale and destroy pools of nodes",
		Long: `A pool is a named group of nodes of one shape, from one provider (local,
ssh or ec2), kept at a size its policy decides: fixed (keep N, replacing
those that die), queue (grow while tasks wait, shrink when idle) or schedule
(N nodes from a cron time for a while). A job asks for a pool's nodes with
'pool: NAME'. examples/pools holds a pool file of each kind.`,
	}
	cmd.AddCommand(newPoolPutCmd("create"), newPoolPutCmd("update"), newPoolListCmd(), newPoolShowCmd(),
		newPoolScaleCmd(), newPoolDestroyCmd())
	return cmd
}

// newPoolPutCmd is 'pool create' (which refuses a pool that exists) or
// 'pool update' (which refuses one that does not).
func newPoolPutCmd(verb string) *cobra.Command {
	var f clientFlags
	short, done := "Create a pool from a pool file", "created"
	if verb == "update" {
		short, done = "Replace a pool's definition with a pool file", "updated"
	}
	cmd := &cobra.Command{
		Use:   verb + " FILE",
		Short: short,
		Long: short + ` ('-' reads standard input). The file is
checked before anything is sent: every bad field is reported with its path
and line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			p, err := poolspec.Parse(data)
			if err != nil {
				return fileError(args[0], err)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			// The file goes as written: the server parses it as this
			// command did, and keeps what the user wrote.
			var out api.Pool
			if verb == "update" {
				out, err = c.UpdatePool(cmd.Context(), p.Name, data)
			} else {
				out, err = c.CreatePool(cmd.Context(), data)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pool %s %s: %s, %s, desired %d\n",
				clean(out.Name), done, clean(out.Provider), clean(out.Policy), out.Desired)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newPoolListCmd() *cobra.Command {
	return listCmd("list", "List pools with their size and state", cobra.NoArgs, noArgs((*client.Client).ListPools),
		func(w io.Writer, pools []api.Pool) error {
			t := newTable(w, "POOL", "PROVIDER", "POLICY", "MIN", "MAX", "DESIRED", "ACTUAL", "FAILURES", "LAST DECISION")
			for _, p := range pools {
				t.row(p.Name, p.Provider, p.Policy, sizeField(p.Spec.Min), sizeField(p.Spec.Max),
					strconv.Itoa(p.Desired), strconv.Itoa(p.Actual), failuresText(p), orDash(p.LastDecision))
			}
			return t.flush()
		})
}

func newPoolShowCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a pool: its size, failures, last decision and machines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			if err := checkPoolName(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			p, err := c.GetPool(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			return printPool(cmd.OutOrStdout(), p, time.Now())
		},
	}
	f.register(cmd, true)
	return cmd
}

// printPool writes what 'pool show' shows of p at now: the pool's wish
// against what it has, why, and its machines.
func printPool(w io.Writer, p api.Pool, now time.Time) error {
	fmt.Fprintf(w, "pool:          %s (%s, %s)\n", clean(p.Name), clean(p.Provider), clean(p.Policy))
	fmt.Fprintf(w, "size:          desired %d, actual %d (min %s, max %s)\n",
		p.Desired, p.Actual, sizeField(p.Spec.Min), sizeField(p.Spec.Max))
	fmt.Fprintf(w, "failures:      %d in a row (max %s)\n", p.Failures, sizeField(p.Spec.MaxFailures))
	backoff := "-"
	if p.BackoffUntil != nil && p.BackoffUntil.After(now) {
		backoff = fmt.Sprintf("until %s (%s more)", p.BackoffUntil.Local().Format(time.DateTime),
			p.BackoffUntil.Sub(now).Round(time.Second))
	}
	fmt.Fprintf(w, "backoff:       %s\n", backoff)
	fmt.Fprintf(w, "last decision: %s\n\n", clean(orDash(p.LastDecision)))
	if len(p.Machines) == 0 {
		fmt.Fprintln(w, "no machines")
		return nil
	}
	t := newTable(w, "ID", "NODE", "STATE", "AGE", "REASON")
	for _, m := range p.Machines {
		t.row(m.ID, orDash(m.Node), m.State, age(m.LaunchedAt, m.EndedAt, now), orDash(m.Reason))
	}
	return t.flush()
}

func newPoolScaleCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "scale NAME SIZE",
		Short: "Set how many nodes a fixed pool keeps (between its min and max)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPoolName(args[0]); err != nil {
				return err
			}
			size, err := strconv.Atoi(args[1])
			if err != nil || size < 0 {
				return fmt.Errorf("SIZE %q: must be a whole number, 0 or more", args[1])
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			p, err := c.ScalePool(cmd.Context(), args[0], size)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pool %s scaled: desired %d, actual %d\n", clean(p.Name), p.Desired, p.Actual)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newPoolDestroyCmd() *cobra.Command {
	var (
		f     clientFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:   "destroy NAME",
		Short: "Delete a pool and terminate its machines",
		Long: `Delete a pool and terminate its machines. Without --force the server
refuses while the pool has any machine; with it, it drains and terminates
them and waits until the provider lists none: their unfinished tasks are
LOST and rescheduled elsewhere as their jobs' reschedule budgets allow.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPoolName(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DestroyPool(cmd.Context(), args[0], force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pool %s destroyed\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "destroy the pool even while its nodes run tasks")
	f.register(cmd, false)
	return cmd
}

// checkPoolName refuses a name no pool can have before anything is sent.
func checkPoolName(name string) error {
	if !job.ValidName(name) {
		return fmt.Errorf("pool name %q: %s", name, job.NameRule)
	}
	return nil
}

// sizeField shows a size from a pool's stored spec, which has every
// default filled in; "-" if the server left it out.
func sizeField(n *int) string {
	if n == nil {
		return "-"
	}
	return strconv.Itoa(*n)
}

// failuresText is a pool's failed launches in a row, and whether it is
// backing off because of them.
func failuresText(p api.Pool) string {
	s := strconv.Itoa(p.Failures)
	if p.BackoffUntil != nil && p.BackoffUntil.After(time.Now()) {
		s += " (backing off)"
	}
	return s
}

// age is how long a machine has been (or was, when ended) up.
func age(launched time.Time, ended *time.Time, now time.Time) string {
	if launched.IsZero() {
		return "-"
	}
	end := now
	if ended != nil {
		end = *ended
	}
	return max(end.Sub(launched), 0).Round(time.Second).String()
}
