package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and delete users",
		Long: `Users are people or programs. A user holds the permissions of their roles
and acts through API tokens ('drover token create --user', 'drover login').
Nobody gives a user a role with permissions they do not hold themselves.`,
	}
	cmd.AddCommand(newUserCreateCmd(), newUserListCmd(), newUserDeleteCmd())
	return cmd
}

func newUserCreateCmd() *cobra.Command {
	var f clientFlags
	var roles []string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a user with roles, and a password with --password-stdin",
		Long: `Make a user holding the permissions of the --role roles. Without
--password-stdin the user has no password and acts only through tokens
made for them ('drover token create --user NAME').

--password-stdin reads the password from standard input, one line (at
least 12 characters); from a terminal, drover asks twice with echo off. A
password is never a flag: every local user can read a command line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			req := api.UserRequest{Name: args[0], Roles: roles}
			if passwordStdin {
				pw, err := readPassword(cmd, "Password for "+clean(args[0])+": ", true)
				if err != nil {
					return err
				}
				req.Password = pw.Reveal()
			}
			u, err := c.CreateUser(cmd.Context(), req)
			if err != nil {
				return err
			}
			how := "tokens only"
			if passwordStdin {
				how = "password login and tokens"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created user %s with roles %s (%s)\n", clean(u.Name), rolesText(u.Roles), how)
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringArrayVar(&roles, "role", nil, "role the user holds (repeatable)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the user's password from standard input")
	return cmd
}

func rolesText(roles []string) string {
	if len(roles) == 0 {
		return "(none)"
	}
	return clean(strings.Join(roles, ", "))
}

func newUserListCmd() *cobra.Command {
	return listCmd("list", "List users and their roles", cobra.NoArgs, noArgs((*client.Client).ListUsers),
		func(w io.Writer, users []api.User) error {
			t := newTable(w, "USER", "ROLES", "CREATED")
			for _, u := range users {
				t.row(u.Name, orDash(strings.Join(u.Roles, ",")), u.CreatedAt.Local().Format(time.DateTime))
			}
			return t.flush()
		})
}

func newUserDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and revoke their tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s; their tokens are revoked\n", clean(args[0]))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
