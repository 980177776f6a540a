package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/spf13/cobra"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "List, drain, reach and run commands on nodes; ship packages to them"}
	cmd.AddCommand(newNodeListCmd(), newNodeDrainCmd(true), newNodeDrainCmd(false), newNodeExecCmd(), newNodeSSHCmd(), newNodeSyncCmd())
	return cmd
}

func newNodeListCmd() *cobra.Command {
	var pool string
	list := func(ctx context.Context, c *client.Client, _ []string) ([]api.Node, error) {
		if pool != "" {
			return c.ListNodesInPool(ctx, pool)
		}
		return c.ListNodes(ctx)
	}
	cmd := listCmd("list", "List nodes with their pool, state, load and attributes", cobra.NoArgs, list,
		func(w io.Writer, nodes []api.Node) error {
			t := newTable(w, "NODE", "POOL", "STATE", "TASKS", "CPU", "MEMORY", "LAST SEEN", "ATTRIBUTES")
			for _, n := range nodes {
				var attrs []string
				for k, v := range n.Attributes {
					attrs = append(attrs, k+"="+v)
				}
				sort.Strings(attrs)
				t.row(n.Name, orDash(n.Pool), n.State, strconv.Itoa(n.Tasks),
					fmt.Sprintf("%d/%d", n.Allocated.CPU, n.Capacity.CPU),
					fmt.Sprintf("%s/%s", jobspec.HumanSize(n.Allocated.Memory), jobspec.HumanSize(n.Capacity.Memory)),
					ago(n.LastSeen), strings.Join(attrs, ","))
			}
			return t.flush()
		})
	cmd.Flags().StringVar(&pool, "pool", "", "list only the nodes of this pool")
	return cmd
}

func newNodeDrainCmd(drain bool) *cobra.Command {
	var f clientFlags
	use, short := "undrain NODE", "Let a DRAINING node take new work again"
	if drain {
		use, short = "drain NODE", "Stop new work going to a node; its running tasks finish"
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
			n, err := c.DrainNode(cmd.Context(), args[0], drain)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s is %s (%d tasks running)\n", clean(n.Name), n.State, n.Tasks)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
