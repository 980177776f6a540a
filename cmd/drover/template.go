package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
)

func newTemplateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Create, show, list, delete and launch job templates",
		Long: `A template is a job file with declared inputs. Its job refers to them as
{{ .Inputs.NAME }}, and to the role's parameters as {{ .Params.NAME }}, in
task.command elements and task.env values. 'template launch' makes a job
from it now: the job's key is the template's, and its stored version is the
resolved spec.

Permissions: as for the jobs the template makes: job:read:ROLE to see it,
job:submit:ROLE to write, delete and launch it.`,
	}
	cmd.AddCommand(newTemplatePutCmd("create"), newTemplatePutCmd("update"), newTemplateListCmd(),
		newTemplateShowCmd(), newTemplateDeleteCmd(), newTemplateLaunchCmd())
	return cmd
}

// newTemplatePutCmd is 'template create' (which refuses a template that
// exists) or 'template update' (which refuses one that does not).
func newTemplatePutCmd(verb string) *cobra.Command {
	var f clientFlags
	short, mode, done := "Store a new template from a YAML template file", client.CreateOnly, "created"
	if verb == "update" {
		short, mode, done = "Replace a template with a YAML template file", client.UpdateOnly, "updated"
	}
	cmd := &cobra.Command{
		Use:   verb + " FILE",
		Short: short,
		Long: short + ` ('-' reads standard input). The file is
checked before anything is sent: every bad field is reported with its path.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			spec, err := jobspec.ParseTemplate(data)
			if err != nil {
				return fileError(args[0], err)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if _, err := c.PutTemplate(cmd.Context(), spec.Key.String(), data, mode); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "template %s %s\n", spec.Key, done)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newTemplateListCmd() *cobra.Command {
	cmd := listCmd("list", "List the templates you may read", cobra.NoArgs, noArgs((*client.Client).ListTemplates),
		func(w io.Writer, ts []api.Template) error {
			t := newTable(w, "TEMPLATE", "INPUTS", "UPDATED")
			for _, tp := range ts {
				var ins []string
				for _, in := range tp.Inputs {
					switch {
					case in.Required:
						ins = append(ins, in.Name+" (required)")
					case in.Default != nil:
						ins = append(ins, in.Name+"="+*in.Default)
					}
				}
				t.row(tp.Key, strings.Join(ins, " "), tp.UpdatedAt.Local().Format(time.DateTime))
			}
			return t.flush()
		})
	return cmd
}

func newTemplateShowCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "show KEY",
		Short: "Print a template file as it was written",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			key, err := job.ParseKey(args[0])
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			tp, err := c.GetTemplate(cmd.Context(), key.String())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), tp)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), tp.Source)
			return err
		},
	}
	f.register(cmd, true)
	return cmd
}

func newTemplateDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a template (the jobs it made stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := job.ParseKey(args[0])
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteTemplate(cmd.Context(), key.String()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "template %s deleted\n", key)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newTemplateLaunchCmd() *cobra.Command {
	var f clientFlags
	var sets []string
	var wait bool
	cmd := &cobra.Command{
		Use:   "launch KEY",
		Short: "Make a job from a template now",
		Long: `Make a job from a template now. --set NAME=VALUE gives an input (repeat it
for several); inputs not set take their defaults, and a required one left
unset is an error that names it. With --wait, follow the job until it ends;
the exit code is 0 only if every instance succeeded (3 if the job ended
otherwise).`,
		Example: `  drover template launch etl/prod/nightly --set date=2026-11-21 --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := job.ParseKey(args[0])
			if err != nil {
				return err
			}
			inputs := make(map[string]string, len(sets))
			for _, s := range sets {
				name, value, ok := strings.Cut(s, "=")
				if !ok || name == "" {
					return fmt.Errorf("--set %q: write it as NAME=VALUE", s)
				}
				if _, dup := inputs[name]; dup {
					return fmt.Errorf("--set %s: given twice", name)
				}
				inputs[name] = value
			}
			return startRun(cmd, &f, wait, func(ctx context.Context, c *client.Client) (api.SubmitResponse, error) {
				return c.LaunchTemplate(ctx, key.String(), inputs)
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringArrayVar(&sets, "set", nil, "give an input as NAME=VALUE (repeatable)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the job until it ends; exit non-zero unless it succeeded")
	return cmd
}
