package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
)

// syncPollEvery is how often node sync --wait looks at the pool's nodes.
const syncPollEvery = 500 * time.Millisecond

func newNodeSyncCmd() *cobra.Command {
	var f clientFlags
	var poolName, to string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync FILE.tar.gz --pool P --to DIR",
		Short: "Ship a package to every node of a pool and unpack it there",
		Long: `Ship a package (a .tar.gz) to every node of a pool: each node unpacks it into
DIR (an absolute path), replacing what an earlier package put there in one
step, and nodes that join the pool later get it when they start. The newest
package for a pool and DIR wins. Packages are unpacked by drover's safe
extractor: entries that would land outside DIR, links out of it, devices and
archive bombs are refused (by the server, before any node sees them). A DIR
that drover did not create must be missing or empty.

With --wait (the default) the command waits until every READY node of the
pool, and at least as many as the pool wants, reports the package in DIR,
printing each node as it is done, or fails after --timeout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !job.ValidName(poolName) {
				return fmt.Errorf("--pool %q: %s", poolName, job.NameRule)
			}
			if !filepath.IsAbs(to) || filepath.Clean(to) != to || to == "/" {
				return fmt.Errorf("--to %q: must be an absolute, clean path other than /", to)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be more than 0s", timeout)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			file, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer file.Close()
			h := sha256.New()
			size, err := io.Copy(h, file)
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return err
			}
			sum := hex.EncodeToString(h.Sum(nil))
			if _, err := c.UploadPackage(cmd.Context(), poolName, to, file); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "package %s (%s) ships to %s on the nodes of pool %s\n", sum, jobspec.HumanSize(size), to, poolName)
			if !wait {
				return nil
			}
			return waitPackage(cmd, c, poolName, to, sum, timeout)
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&poolName, "pool", "", "the pool whose nodes get the package (required)")
	cmd.Flags().StringVar(&to, "to", "", "the absolute directory the package becomes on each node (required)")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the pool's nodes have installed the package")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	_ = cmd.MarkFlagRequired("pool")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// waitPackage waits until every READY node of the pool, and at least as
// many as the pool wants, reports package sum in to, printing each node
// once it does. A pool that wants no node and has none is done at once:
// its future nodes get the package when they start.
func waitPackage(cmd *cobra.Command, c *client.Client, poolName, to, sum string, timeout time.Duration) error {
	out := cmd.OutOrStdout()
	deadline := time.Now().Add(timeout)
	done := map[string]bool{}
	for {
		p, err := c.GetPool(cmd.Context(), poolName)
		if err != nil {
			return err
		}
		nodes, err := c.ListNodesInPool(cmd.Context(), poolName)
		if err != nil {
			return err
		}
		slices.SortFunc(nodes, func(a, b api.Node) int { return strings.Compare(a.Name, b.Name) })
		var missing []string
		ready := 0
		for _, n := range nodes {
			if n.State != "READY" {
				continue
			}
			ready++
			if n.Packages[to] != sum {
				missing = append(missing, clean(n.Name))
				continue
			}
			if !done[n.Name] {
				done[n.Name] = true
				fmt.Fprintf(out, "node %s: installed\n", clean(n.Name))
			}
		}
		switch {
		case len(missing) == 0 && ready >= p.Desired && ready > 0:
			fmt.Fprintf(out, "all %d nodes of pool %s have the package\n", ready, poolName)
			return nil
		case len(missing) == 0 && p.Desired == 0:
			fmt.Fprintf(out, "pool %s has no READY node; nodes that join it get the package when they start\n", poolName)
			return nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%d of %d READY nodes of pool %s have the package after %s (the pool wants %d)", ready-len(missing), ready, poolName, timeout, p.Desired)
			if len(missing) > 0 {
				msg += "; waiting for " + strings.Join(missing, ", ") + " (see its agent's log)"
			}
			return errors.New(msg)
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(syncPollEvery):
		}
	}
}
