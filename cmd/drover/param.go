package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

func newParamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "param",
		Short: "Set, read, list and delete a role's parameters",
		Long: `Each role (team) has named parameters that its jobs refer to as
{{ .Params.NAME }} in task.command elements and task.env values. They are
resolved when the job is submitted; a missing one is an error that names it.

A secret parameter (--secret) is shown as <redacted> everywhere. A job's
stored spec holds a marker (⟦secret:NAME⟧) in its place; the value goes only
to the agent that runs the task. 'param get --reveal' shows it, with the
permission param:reveal:ROLE.

Permissions: param:read:ROLE, param:write:ROLE, param:reveal:ROLE.`,
	}
	cmd.AddCommand(newParamSetCmd(), newParamGetCmd(), newParamListCmd(), newParamDeleteCmd())
	return cmd
}

func newParamSetCmd() *cobra.Command {
	var f clientFlags
	var isSecret, fromStdin bool
	cmd := &cobra.Command{
		Use:   "set ROLE NAME [VALUE]",
		Short: "Set a parameter (VALUE, or --value-stdin to keep it out of argv and history)",
		Example: `  drover param set analytics db_host db.internal
  printf %s "$PASSWORD" | drover param set analytics db_password --secret --value-stdin`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value string
			switch {
			case fromStdin && len(args) == 3:
				return errors.New("give VALUE or --value-stdin, not both")
			case fromStdin:
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				if err != nil {
					return fmt.Errorf("read the value from stdin: %w", err)
				}
				value = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			case len(args) == 3:
				value = args[2]
			default:
				return errors.New("give VALUE, or --value-stdin")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			p, err := c.PutParam(cmd.Context(), args[0], args[1], api.ParamRequest{Value: value, Secret: isSecret})
			if err != nil {
				return err
			}
			kind := "parameter"
			if p.Secret {
				kind = "secret parameter"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s %s of role %s\n", kind, clean(p.Name), clean(p.Role))
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&isSecret, "secret", false, "keep the value secret: redacted when shown, kept out of stored job specs")
	cmd.Flags().BoolVar(&fromStdin, "value-stdin", false, "read the value from stdin (one trailing newline is dropped)")
	return cmd
}

func newParamGetCmd() *cobra.Command {
	var f clientFlags
	var reveal bool
	cmd := &cobra.Command{
		Use:   "get ROLE NAME",
		Short: "Print a parameter's value (a secret's only with --reveal)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			p, err := c.GetParam(cmd.Context(), args[0], args[1], reveal)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			v := p.Value
			if !reveal {
				v = clean(v)
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show a secret parameter's value (needs param:reveal:ROLE)")
	return cmd
}

func newParamListCmd() *cobra.Command {
	cmd := listCmd("list ROLE", "List a role's parameters, secret values redacted", cobra.ExactArgs(1), func(ctx context.Context, c *client.Client, args []string) ([]api.Param, error) {
		return c.ListParams(ctx, args[0])
	},
		func(w io.Writer, ps []api.Param) error {
			t := newTable(w, "NAME", "SECRET", "VALUE", "UPDATED")
			for _, p := range ps {
				secret := "no"
				if p.Secret {
					secret = "yes"
				}
				t.row(p.Name, secret, p.Value, p.UpdatedAt.Local().Format(time.DateTime))
			}
			return t.flush()
		})
	return cmd
}

func newParamDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete ROLE NAME",
		Short: "Delete a parameter",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteParam(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted parameter %s of role %s\n", clean(args[1]), clean(args[0]))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
