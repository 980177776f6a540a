package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Inspect nodes"}
	cmd.AddCommand(newNodeListCmd())
	return cmd
}

func newNodeListCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes with their state, load and attributes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			nodes, err := c.ListNodes(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), nodes)
			}
			t := newTable(cmd.OutOrStdout(), "NODE", "STATE", "TASKS", "CPU", "MEMORY", "LAST SEEN", "ATTRIBUTES")
			for _, n := range nodes {
				var attrs []string
				for k, v := range n.Attributes {
					attrs = append(attrs, k+"="+v)
				}
				sort.Strings(attrs)
				t.row(n.Name, n.State, strconv.Itoa(n.Tasks),
					fmt.Sprintf("%d/%d", n.Allocated.CPU, n.Capacity.CPU),
					fmt.Sprintf("%s/%s", sizeText(n.Allocated.Memory), sizeText(n.Capacity.Memory)),
					ago(n.LastSeen), strings.Join(attrs, ","))
			}
			return t.flush()
		},
	}
	f.register(cmd, true)
	return cmd
}

func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
