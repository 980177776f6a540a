package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/internal/api"
)

// Reasons of the audit trail's events (internal/event).
const (
	reasonAudit       = "audit"
	reasonLoginFailed = "login_failed"
)

func newEventsCmd() *cobra.Command {
	var f clientFlags
	var audit bool
	var after int64
	var limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the cluster's events; with --audit, the audit trail",
		Long: `List the cluster's events, oldest first: task transitions, job and node
changes, and the audit trail. With --audit, only the audit trail: every call
that changes something (who, from which address, what, and the status it
got, refusals included) and every refused login.

Page with --after: the ID of the last event seen. Reading events needs the
permission audit:read:*.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			if after < 0 {
				return errors.New("--after: must not be negative")
			}
			if limit < 1 || limit > 10000 {
				return errors.New("--limit: must be between 1 and 10000")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var events []api.Event
			if audit {
				// Two reasons, each paged alike: the first limit events of
				// their union are among the first limit of each.
				for _, reason := range []string{reasonAudit, reasonLoginFailed} {
					es, err := c.Events(cmd.Context(), reason, after, limit)
					if err != nil {
						return err
					}
					events = append(events, es...)
				}
				slices.SortFunc(events, func(a, b api.Event) int { return cmp.Compare(a.ID, b.ID) })
				events = events[:min(len(events), limit)]
			} else {
				if events, err = c.Events(cmd.Context(), "", after, limit); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), events)
			}
			var t *table
			if audit {
				t = newTable(cmd.OutOrStdout(), "ID", "TIME", "ACTOR", "SOURCE", "MESSAGE")
				for _, e := range events {
					msg := e.Message
					if e.Reason == reasonLoginFailed {
						msg = "login refused: " + msg
					}
					t.row(strconv.FormatInt(e.ID, 10), e.At.Local().Format(time.DateTime), orDash(e.Actor), orDash(e.Source), msg)
				}
			} else {
				t = newTable(cmd.OutOrStdout(), "ID", "TIME", "REASON", "SUBJECT", "ACTOR", "MESSAGE")
				for _, e := range events {
					t.row(strconv.FormatInt(e.ID, 10), e.At.Local().Format(time.DateTime), e.Reason, eventSubject(e), orDash(e.Actor), eventMessage(e))
				}
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(events) == limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "(more may follow: --after %d)\n", events[len(events)-1].ID)
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&audit, "audit", false, "only the audit trail: changes made through the API, and refused logins")
	cmd.Flags().Int64Var(&after, "after", 0, "list events after this event ID")
	cmd.Flags().IntVar(&limit, "limit", 1000, "list at most this many events (1 to 10000)")
	return cmd
}

// eventSubject names what an event is about: job, task, node.
func eventSubject(e api.Event) string {
	var parts []string
	for _, p := range []string{e.Job, e.TaskID, e.Node} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return orDash(strings.Join(parts, " "))
}

// eventMessage is an event's transition, if any, and its message.
func eventMessage(e api.Event) string {
	msg := e.Message
	if e.To != "" {
		tr := strings.TrimSpace(e.From + " → " + e.To)
		if msg == "" {
			return tr
		}
		return tr + ": " + msg
	}
	return msg
}
