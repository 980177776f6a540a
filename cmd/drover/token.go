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

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API and agent tokens",
		Long: `API tokens act as their owner, narrowed to a scope if they have one; agent
tokens let agents join the cluster and do nothing else. The server keeps
only a hash of each token: its secret is shown once, when it is created.
Nobody makes a token with more than they hold.`,
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var f clientFlags
	var req api.TokenRequest
	var ttl time.Duration
	var agent bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a token and print its secret, once",
		Long: `Make an API token acting as you (or, with token:write:*, as --user), narrowed
to the --scope permissions if given, or with --agent a token agents join
with. The secret goes to standard output alone, so it can be redirected to
a file; what the token is goes to standard error. The secret is shown this
once: the server keeps only its hash.

Every --scope permission must be one you hold, and a token for another
user needs you to hold all they hold.`,
		Example: `  drover token create --name ci --scope job:submit:analytics --scope job:read:analytics --ttl 720h
  (umask 077; drover token create --agent --name rack-3 > agent.token)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			if ttl < 0 {
				return errors.New("--ttl: must not be negative")
			}
			if agent {
				if req.User != "" || len(req.Scope) > 0 {
					return errors.New("--agent: an agent token has no --user or --scope (it may only sync)")
				}
				req.Kind = "agent"
			}
			req.TTL = api.Duration(ttl)
			c, err := f.client()
			if err != nil {
				return err
			}
			tok, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), tok)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "created "+tokenText(tok)+"; its secret:")
			fmt.Fprintln(cmd.OutOrStdout(), tok.Secret)
			fmt.Fprintln(cmd.ErrOrStderr(), "The secret is shown once: the server keeps only its hash. Keep it in a file only you can read (--token-file) or in DROVER_TOKEN.")
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&req.Name, "name", "", "what the token is for (shown in lists)")
	cmd.Flags().StringArrayVar(&req.Scope, "scope", nil, "permission the token is narrowed to, e.g. job:read:analytics (repeatable; default: all of the owner's)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the token lasts, e.g. 720h (default: until revoked)")
	cmd.Flags().BoolVar(&agent, "agent", false, "make an agent token (needs token:write:*)")
	cmd.Flags().StringVar(&req.User, "user", "", "user the token acts as (default: you; another user needs token:write:*)")
	return cmd
}

// tokenText describes a token in one line.
func tokenText(t api.Token) string {
	parts := []string{t.Kind + " token " + t.ID}
	if t.Owner != "" {
		parts = append(parts, "for "+t.Owner)
	}
	if t.Name != "" {
		parts = append(parts, fmt.Sprintf("named %q", t.Name))
	}
	if len(t.Scope) > 0 {
		parts = append(parts, "scope "+strings.Join(t.Scope, " "))
	}
	if t.ExpiresAt != nil {
		parts = append(parts, "expires "+t.ExpiresAt.Local().Format(time.DateTime))
	}
	return clean(strings.Join(parts, ", "))
}

func newTokenListCmd() *cobra.Command {
	var all bool
	cmd := listCmd("list", "List your tokens (everyone's with --all), never their secrets", cobra.NoArgs, func(ctx context.Context, c *client.Client, _ []string) ([]api.Token, error) {
		return c.ListTokens(ctx, all)
	},
		func(w io.Writer, toks []api.Token) error {
			t := newTable(w, "ID", "KIND", "OWNER", "NAME", "SCOPE", "CREATED", "EXPIRES", "STATUS")
			now := time.Now()
			for _, tk := range toks {
				t.row(tk.ID, tk.Kind, orDash(tk.Owner), orDash(tk.Name), orDash(strings.Join(tk.Scope, " ")),
					tk.CreatedAt.Local().Format(time.DateTime), timeOrDash(tk.ExpiresAt), tokenStatus(tk, now))
			}
			return t.flush()
		})
	cmd.Flags().BoolVar(&all, "all", false, "list every user's tokens (needs token:read:*)")
	return cmd
}

func tokenStatus(t api.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired"
	}
	return "active"
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func newTokenRevokeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once (yours, or anyone's with token:write:*)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			tok, err := c.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", tokenText(tok))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
