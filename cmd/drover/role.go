package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

func newRoleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Create and list roles; grant them to users and revoke them",
		Long: `A role is a named set of permissions, each resource:verb:scope, where any
part may be '*', or 'admin' for all of them:

  job:submit:analytics   submit jobs whose key starts with analytics/
  job:read:*             read every team's jobs, tasks and logs
  node:drain:*           drain and undrain any node
  admin                  everything

The scope of a job permission is the first part of the job key, ROLE in
ROLE/ENV/NAME: it is the team that owns the job. Jobs of a team whose jobs
you may not read answer 404, as if they did not exist.

Nobody makes, grants or revokes a role holding a permission they do not
hold themselves.`,
	}
	cmd.AddCommand(newRoleCreateCmd(), newRoleListCmd(), newRoleGrantCmd(true), newRoleGrantCmd(false))
	return cmd
}

func newRoleCreateCmd() *cobra.Command {
	var f clientFlags
	var perms []string
	cmd := &cobra.Command{
		Use:     "create NAME --permission P...",
		Short:   "Make a role with permissions",
		Example: `  drover role create team-a --permission job:submit:team-a --permission job:read:team-a --permission job:kill:team-a --permission 'node:read:*'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(perms) == 0 {
				return errors.New("--permission: a role needs at least one")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.CreateRole(cmd.Context(), api.Role{Name: args[0], Permissions: perms})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created role %s: %s\n", clean(r.Name), clean(strings.Join(r.Permissions, " ")))
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringArrayVarP(&perms, "permission", "p", nil, "permission resource:verb:scope, e.g. job:submit:analytics, or admin (repeatable)")
	return cmd
}

func newRoleListCmd() *cobra.Command {
	return listCmd("list", "List roles and their permissions", cobra.NoArgs, noArgs((*client.Client).ListRoles),
		func(w io.Writer, roles []api.Role) error {
			t := newTable(w, "ROLE", "PERMISSIONS", "CREATED")
			for _, r := range roles {
				created := "-"
				if !r.CreatedAt.IsZero() {
					created = r.CreatedAt.Local().Format(time.DateTime)
				}
				t.row(r.Name, strings.Join(r.Permissions, " "), created)
			}
			return t.flush()
		})
}

func newRoleGrantCmd(grant bool) *cobra.Command {
	var f clientFlags
	use, short := "revoke ROLE USER", "Take a role from a user (their tokens lose its permissions at once)"
	if grant {
		use, short = "grant ROLE USER", "Give a role to a user"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			u, err := c.GrantRole(cmd.Context(), args[0], args[1], grant)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s has roles %s\n", clean(u.Name), rolesText(u.Roles))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
