package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newTaskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "task", Short: "Inspect tasks"}
	cmd.AddCommand(newTaskLogsCmd())
	return cmd
}

func newTaskLogsCmd() *cobra.Command {
	var f clientFlags
	var stderr, follow, raw bool
	var tail int64
	cmd := &cobra.Command{
		Use:   "logs TASK_ID",
		Short: "Print a task's output (stdout, or stderr with --stderr)",
		Long: `Print a task's output as the server keeps it. --follow keeps printing while the
task runs and returns when it has ended and all its output was printed.

The output is the task's, that is whoever submitted the job's: terminal
control characters in it (escape sequences, carriage returns, bells) are
printed as '?', so it cannot move the cursor, retitle the terminal or hide
lines; newlines and tabs are kept. --raw prints the bytes as the task
wrote them, for piping to a file or another program.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			rc, err := c.TaskLogs(cmd.Context(), args[0], stream, -tail, follow)
			if err != nil {
				return err
			}
			defer rc.Close()
			if raw {
				_, err = io.Copy(cmd.OutOrStdout(), rc)
				return err
			}
			cw := &cleanWriter{w: cmd.OutOrStdout()}
			if _, err := io.Copy(cw, rc); err != nil {
				return err
			}
			return cw.Flush()
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print standard error instead of standard output")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the task has ended")
	cmd.Flags().Int64Var(&tail, "tail", 0, "start this many bytes before the end (0: from the start)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the output as the task wrote it, control characters and all")
	return cmd
}
